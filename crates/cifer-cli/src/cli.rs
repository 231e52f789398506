//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit status:
  0  success
  1  generic failure (refused overwrite, binary output to a terminal, RNG failure)
  2  usage error
  3  a file or stream could not be opened, read or written
  4  malformed or unsupported envelope, identity or recipient file
  5  decryption failed (wrong identity, corrupted or tampered envelope)";

/// Encrypt and decrypt CIFER protocol v1 envelopes (suite 0x01, ML-KEM-768) with local
/// key files.
#[derive(Debug, Parser)]
#[command(name = "cifer", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generate a new identity (ML-KEM-768 seed) and print its recipient line.
    Keygen(KeygenArgs),
    /// Print the recipient line of an identity file.
    #[command(visible_alias = "to-recipient")]
    Recipient(RecipientArgs),
    /// Encrypt to a recipient.
    Encrypt(EncryptArgs),
    /// Decrypt with an identity.
    #[command(long_about = DECRYPT_LONG_ABOUT)]
    Decrypt(DecryptArgs),
    /// Print an envelope's header fields without decrypting.
    Inspect(InspectArgs),
}

const DECRYPT_LONG_ABOUT: &str = "\
Decrypt with an identity.

With -o FILE, the plaintext goes to a temporary file in the same directory that replaces
FILE only once the whole envelope has authenticated; on any failure it is deleted and
FILE is left untouched.

On standard output, the plaintext is released chunk by chunk as each chunk authenticates
(memory stays one chunk, whatever the size). If decryption fails part way, the command
exits with a non-zero status and the output already written is a truncated prefix of the
message that must be discarded: the message is authentic only if the command succeeds.";

/// `cifer keygen`.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Write the identity to this file (created with mode 0600) instead of standard
    /// output. The recipient line then goes to standard output.
    #[arg(short, long, value_name = "IDENTITY_FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Write the recipient line to this file. Without it, the recipient line goes to
    /// standard output, or to standard error when the identity itself goes to standard
    /// output.
    #[arg(long, value_name = "RECIPIENT_FILE")]
    pub(crate) recipient_out: Option<PathBuf>,
    /// Overwrite existing files.
    #[arg(short, long)]
    pub(crate) force: bool,
}

/// `cifer recipient`.
#[derive(Debug, Args)]
pub(crate) struct RecipientArgs {
    /// The identity file (`-` for standard input).
    #[arg(short, long, value_name = "IDENTITY_FILE")]
    pub(crate) identity: PathBuf,
}

/// `cifer encrypt`.
#[derive(Debug, Args)]
pub(crate) struct EncryptArgs {
    /// Recipient file, or a literal `CIFER-MLKEM768-EK-1:...` line.
    #[arg(short, long, value_name = "RECIPIENT")]
    pub(crate) recipient: String,
    /// Output file (default: standard output).
    #[arg(short, long, value_name = "OUT")]
    pub(crate) output: Option<PathBuf>,
    /// EVM chain id of the SecretsController that owns the secret.
    #[arg(long, default_value_t = 0, value_name = "U64")]
    pub(crate) chain_id: u64,
    /// Secret id: a decimal uint256 or 0x-prefixed hex of up to 32 bytes.
    #[arg(long, default_value = "0", value_parser = crate::secret_id::parse, value_name = "ID")]
    pub(crate) secret_id: [u8; 32],
    /// Chunk size as a power of two (10 = 1 KiB .. 26 = 64 MiB).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u8).range(10..=26))]
    pub(crate) chunk_log2: u8,
    /// Input file (default: standard input; `-` for standard input).
    pub(crate) input: Option<PathBuf>,
}

/// `cifer decrypt`.
#[derive(Debug, Args)]
pub(crate) struct DecryptArgs {
    /// The identity file (`-` for standard input when the envelope comes from a file).
    #[arg(short, long, value_name = "IDENTITY_FILE")]
    pub(crate) identity: PathBuf,
    /// Output file (default: standard output).
    #[arg(short, long, value_name = "OUT")]
    pub(crate) output: Option<PathBuf>,
    /// Input file (default: standard input; `-` for standard input).
    pub(crate) input: Option<PathBuf>,
}

/// `cifer inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Input file (default: standard input; `-` for standard input).
    pub(crate) input: Option<PathBuf>,
}
