//! # cifer
//!
//! The `cifer` command: encrypt, decrypt and inspect CIFER protocol v1 envelopes
//! (`PROTOCOL.md` §2, suite 0x01 ML-KEM-768) with the local key files of §5, in the
//! manner of `age`:
//!
//! ```text
//! cifer keygen -o me.key > me.pub
//! cifer encrypt -r me.pub --chain-id 31337 --secret-id 7 -o file.cifr file
//! cifer inspect file.cifr
//! cifer decrypt -i me.key -o file file.cifr
//! ```
//!
//! Against a deployment (`scripts/devnet.sh up` writes `.devnet/endpoints.json`):
//!
//! ```text
//! cifer secret create --private-key $KEY            # prints the new secret id
//! cifer encrypt --secret-id 1 -o file.cifr file     # key fetched and checked on chain
//! cifer decrypt --private-key $KEY -o file file.cifr
//! cifer secret delegate 1 0xabc… --private-key $KEY
//! cifer audit
//! ```
//!
//! All cryptography is `cifer-core`'s; this crate only moves bytes and reports errors.
//! Errors are one line, `cifer: error: <message>`, on standard error, with exit codes
//! 1 (generic), 2 (usage), 3 (I/O), 4 (malformed envelope or key file) and 5 (decryption
//! failed). Secrets (seeds, plaintext of failed chunks) are never printed.
//!
//! Output files (`-o`) are written to a temporary file beside them (mode 0600 on Unix)
//! and renamed into place only on success, so a failed run leaves nothing behind and an
//! existing file untouched; in particular a decrypted file appears only once the whole
//! envelope has authenticated. Decrypting to standard output releases each chunk as it
//! authenticates: on failure the output so far must be discarded.
//!
//! Large file inputs (over 64 MiB) show a progress bar on standard error when it is a
//! terminal.

mod chain;
mod cli;
mod fail;
mod files;
mod secret_id;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use cifer_core::keys::RECIPIENT_PREFIX;
use cifer_core::{EncapsulationKey, Header, Seed, Suite, envelope};
use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::{Cli, Command, DecryptArgs, EncryptArgs, InspectArgs, KeygenArgs, RecipientArgs};
use crate::fail::{EXIT_GENERIC, EXIT_USAGE, Failure, Result, quoted};
use crate::files::{Input, Output, is_std, parse_key_file, read_key_file, refuse_overwrite};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Help and version go out as clap prints them; real usage errors become one line.
fn usage_error(err: &clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Nothing useful to do if printing the help fails.
            let _ = err.print();
            ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(EXIT_USAGE))
        }
        _ => {
            // clap's message runs until the first blank line (then usage and tips).
            let rendered = err.to_string();
            let message: Vec<&str> =
                rendered.lines().map(str::trim).take_while(|l| !l.is_empty()).collect();
            let message = message.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            Failure::new(EXIT_USAGE, format!("{message} (see 'cifer --help')")).report()
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Keygen(args) => keygen(&args),
        Command::Recipient(args) => recipient(&args),
        Command::Encrypt(args) => encrypt(&args),
        Command::Decrypt(args) => decrypt(&args),
        Command::Inspect(args) => inspect(&args),
        Command::Secret(args) => chain::secret(&args),
        Command::Audit(args) => chain::audit(&args),
        Command::Status(args) => chain::status(&args),
    }
}

/// Identity files: owner read/write only.
const IDENTITY_MODE: u32 = 0o600;
/// Recipient files are public.
const RECIPIENT_MODE: u32 = 0o644;

fn keygen(args: &KeygenArgs) -> Result<()> {
    let identity_path = args.output.as_deref().filter(|_| !is_std(args.output.as_deref()));
    let recipient_path =
        args.recipient_out.as_deref().filter(|_| !is_std(args.recipient_out.as_deref()));
    // Refuse before generating or writing anything.
    if !args.force {
        for path in [identity_path, recipient_path].into_iter().flatten() {
            if path.symlink_metadata().is_ok() {
                return Err(refuse_overwrite(path));
            }
        }
    }
    let seed = Seed::generate_os().map_err(|e| Failure::core("key generation", &e))?;
    let identity = seed.to_identity_file();
    let recipient = seed.encapsulation_key().to_recipient_file();
    drop(seed);

    match identity_path {
        Some(path) => files::write_new_file(path, identity.as_bytes(), IDENTITY_MODE, args.force)?,
        None => write_stdout(identity.as_bytes())?,
    }
    match recipient_path {
        Some(path) => {
            files::write_new_file(path, recipient.as_bytes(), RECIPIENT_MODE, args.force)?;
        }
        None if identity_path.is_some() => write_stdout(recipient.as_bytes())?,
        // The identity took standard output; keep it a valid one-line identity file.
        None => {
            io::stderr()
                .write_all(recipient.as_bytes())
                .map_err(|e| Failure::io("standard error", &e))?;
        }
    }
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).map_err(|e| Failure::io("standard output", &e))
}

fn load_identity(path: &std::path::Path) -> Result<Seed> {
    let bytes = read_key_file(path, "identity")?;
    parse_key_file(&bytes, &format!("identity {}", quoted(path)), Seed::from_identity_file)
}

fn recipient(args: &RecipientArgs) -> Result<()> {
    let seed = load_identity(&args.identity)?;
    write_stdout(seed.encapsulation_key().to_recipient_file().as_bytes())
}

fn load_recipient(arg: &str) -> Result<EncapsulationKey> {
    if arg.starts_with(RECIPIENT_PREFIX) {
        return parse_key_file(arg.as_bytes(), "recipient", EncapsulationKey::from_recipient_file);
    }
    let path = std::path::Path::new(arg);
    let bytes = read_key_file(path, "recipient")?;
    parse_key_file(
        &bytes,
        &format!("recipient {}", quoted(path)),
        EncapsulationKey::from_recipient_file,
    )
}

fn encrypt(args: &EncryptArgs) -> Result<()> {
    let Some(recipient) = &args.recipient else {
        return chain::encrypt(args);
    };
    let recipient = load_recipient(recipient)?;
    let header = Header::new(Suite::MlKem768, args.chunk_log2, args.chain_id, args.secret_id)
        .map_err(|e| Failure::core("header", &e))?;
    if is_std(args.output.as_deref()) && io::stdout().is_terminal() {
        return Err(Failure::new(
            EXIT_GENERIC,
            "refusing to write a binary envelope to a terminal (use -o or redirect stdout)",
        ));
    }
    let mut input = Input::open(args.input.as_deref())?;
    let mut output = Output::create(args.output.as_deref())?;
    let sealed = match input.regular_file() {
        Some((file, len)) => envelope::encrypt_positional(
            &recipient,
            header,
            file,
            0,
            len,
            &mut input.track_output(output.writer()),
        ),
        None => envelope::encrypt(&recipient, header, &mut input.reader(), &mut output.writer()),
    };
    sealed.map_err(|e| Failure::core("encryption", &e))?;
    output.commit()
}

fn decrypt(args: &DecryptArgs) -> Result<()> {
    let Some(identity) = &args.identity else {
        return chain::decrypt(args);
    };
    if identity.as_os_str() == "-" && is_std(args.input.as_deref()) {
        return Err(Failure::new(
            EXIT_USAGE,
            "the identity and the envelope cannot both come from standard input",
        ));
    }
    let seed = load_identity(identity)?;
    let mut input = Input::open(args.input.as_deref())?;
    let mut output = Output::create(args.output.as_deref())?;
    let to_stdout = output.is_stdout();
    let opened = match input.regular_file() {
        Some((file, len)) => envelope::decrypt_positional(
            &seed,
            file,
            0,
            len,
            &mut input.track_output(output.writer()),
        ),
        None => envelope::decrypt(&seed, &mut input.reader(), &mut output.writer()),
    };
    if let Err(e) = opened {
        let failure = Failure::core(input.name(), &e);
        // A temporary output file is deleted when `output` drops.
        return Err(if to_stdout && failure.code() == fail::EXIT_DECRYPT {
            failure.with_note("discard any output already written")
        } else {
            failure
        });
    }
    output.commit()
}

fn inspect(args: &InspectArgs) -> Result<()> {
    let mut input = Input::open(args.input.as_deref())?;
    let prefix =
        envelope::read_prefix(&mut input.reader()).map_err(|e| Failure::core(input.name(), &e))?;
    let header = prefix.header();
    let secret_id = secret_id::to_decimal(&header.secret_id);
    let secret_id_hex = hex::encode(header.secret_id);
    let hash = hex::encode(prefix.envelope_hash());
    let suite_byte = header.suite as u8;
    let text = if args.json {
        format!(
            "{{\"version\":{},\"suite\":\"{}\",\"suite_id\":{},\"chunk_log2\":{},\
             \"chunk_size\":{},\"chain_id\":{},\"secret_id\":\"{}\",\"secret_id_hex\":\"0x{}\",\
             \"envelope_hash\":\"0x{}\",\"prefix_len\":{}}}\n",
            cifer_core::header::VERSION,
            header.suite.name(),
            suite_byte,
            header.chunk_log2,
            header.chunk_size(),
            header.chain_id,
            secret_id,
            secret_id_hex,
            hash,
            prefix.as_bytes().len(),
        )
    } else {
        format!(
            "version: {}\nsuite: {} (0x{:02x})\nchunk_size: {} (chunk_log2 {})\nchain_id: {}\n\
             secret_id: {}\nsecret_id_hex: 0x{}\nenvelope_hash: 0x{}\n",
            cifer_core::header::VERSION,
            header.suite.name(),
            suite_byte,
            header.chunk_size(),
            header.chunk_log2,
            header.chain_id,
            secret_id,
            secret_id_hex,
            hash,
        )
    };
    write_stdout(text.as_bytes())
}
