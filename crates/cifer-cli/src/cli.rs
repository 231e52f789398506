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
  5  decryption failed (wrong identity, corrupted or tampered envelope)
  6  refused by the deployment (not authorized, replayed, rate limited, shredded, ...)
  7  the deployment is unavailable (chain, black box or too few shard nodes)
  8  a transaction failed or reverted";

/// Encrypt and decrypt CIFER protocol v1 envelopes (suite 0x01, ML-KEM-768), with local
/// key files or against a deployment (secrets on chain, keys split across shard nodes).
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
    /// Create and manage secrets on a deployment.
    Secret(SecretArgs),
    /// Show the black box's audit log and check its hash chain.
    Audit(AuditArgs),
    /// Chain head, cluster members, and which services answer.
    Status(StatusArgs),
}

/// Where the deployment is and which wallet signs (cast-like options).
#[derive(Debug, Clone, Args)]
pub(crate) struct Deployment {
    /// Endpoints file (written by `scripts/devnet.sh up`).
    #[arg(
        global = true,
        long,
        env = "CIFER_ENDPOINTS",
        default_value = ".devnet/endpoints.json",
        value_name = "FILE"
    )]
    pub(crate) endpoints: PathBuf,
    /// Wallet: a 0x-hex private key.
    #[arg(
        global = true,
        long,
        env = "CIFER_PRIVATE_KEY",
        hide_env_values = true,
        value_name = "HEX"
    )]
    pub(crate) private_key: Option<String>,
    /// Wallet: an Ethereum keystore file (JSON V3).
    #[arg(global = true, long, env = "CIFER_KEYSTORE", value_name = "FILE")]
    pub(crate) keystore: Option<PathBuf>,
    /// Keystore password.
    #[arg(global = true, long, env = "CIFER_PASSWORD", hide_env_values = true)]
    pub(crate) password: Option<String>,
    /// File holding the keystore password.
    #[arg(global = true, long, env = "CIFER_PASSWORD_FILE", value_name = "FILE")]
    pub(crate) password_file: Option<PathBuf>,
    /// Wallet: a BIP-39 mnemonic phrase.
    #[arg(
        global = true,
        long,
        env = "CIFER_MNEMONIC",
        hide_env_values = true,
        value_name = "PHRASE"
    )]
    pub(crate) mnemonic: Option<String>,
    /// Derivation index for --mnemonic (m/44'/60'/0'/0/INDEX).
    #[arg(global = true, long, default_value_t = 0, value_name = "INDEX")]
    pub(crate) mnemonic_index: u32,
    /// Print JSON for scripts.
    #[arg(global = true, long)]
    pub(crate) json: bool,
}

/// `cifer secret`.
#[derive(Debug, Args)]
pub(crate) struct SecretArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) action: SecretAction,
    #[command(flatten)]
    pub(crate) deployment: Deployment,
}

/// `cifer secret ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum SecretAction {
    /// Create a secret (the wallet becomes its owner) and print its id.
    Create {
        /// Cluster (default: the endpoints file's).
        #[arg(long)]
        cluster: Option<u32>,
    },
    /// Show a secret's on-chain record.
    Show {
        /// Secret id.
        id: String,
    },
    /// Let ADDRESS decrypt (owner only).
    Delegate {
        /// Secret id.
        id: String,
        /// The delegate.
        address: String,
        /// Unix time from which the delegation is void (0 = never).
        #[arg(long, default_value_t = 0)]
        expires_at: u64,
    },
    /// Stop ADDRESS from decrypting, from the next block on (owner only).
    Revoke {
        /// Secret id.
        id: String,
        /// The delegate.
        address: String,
    },
    /// Propose ADDRESS as the new owner (it must `accept`).
    Transfer {
        /// Secret id.
        id: String,
        /// The proposed owner.
        address: String,
    },
    /// Accept a proposed transfer (as the proposed owner).
    Accept {
        /// Secret id.
        id: String,
    },
    /// Destroy the secret for good: nobody can decrypt it any more (owner only).
    Shred {
        /// Secret id.
        id: String,
    },
}

/// `cifer audit`.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Show entries after this sequence number.
    #[arg(long, default_value_t = 0)]
    pub(crate) after: u64,
    /// At most this many entries.
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: u32,
    #[command(flatten)]
    pub(crate) deployment: Deployment,
}

/// `cifer status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Cluster (default: the endpoints file's).
    #[arg(long)]
    pub(crate) cluster: Option<u32>,
    #[command(flatten)]
    pub(crate) deployment: Deployment,
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
    /// Recipient file, or a literal `CIFER-MLKEM768-EK-1:...` line. Without it, the key
    /// of `--secret-id` is fetched from the deployment and checked against the chain.
    #[arg(short, long, value_name = "RECIPIENT")]
    pub(crate) recipient: Option<String>,
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
    #[command(flatten)]
    pub(crate) deployment: Deployment,
}

/// `cifer decrypt`.
#[derive(Debug, Args)]
pub(crate) struct DecryptArgs {
    /// The identity file (`-` for standard input when the envelope comes from a file).
    /// Without it, the envelope's key is requested from the deployment with a request
    /// signed by the wallet, and the data is decrypted here.
    #[arg(short, long, value_name = "IDENTITY_FILE")]
    pub(crate) identity: Option<PathBuf>,
    /// Sign the EIP-191 seed payload instead of the EIP-712 request (deployment mode).
    #[arg(long)]
    pub(crate) seed_payload: bool,
    /// Output file (default: standard output).
    #[arg(short, long, value_name = "OUT")]
    pub(crate) output: Option<PathBuf>,
    /// Input file (default: standard input; `-` for standard input).
    pub(crate) input: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) deployment: Deployment,
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
