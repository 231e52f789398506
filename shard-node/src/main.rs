//! `cifer-shard-node`: the shard node service (`--config FILE`), and `keygen` to create its
//! identity and sealing key files.

use std::path::PathBuf;
use std::process::ExitCode;

use cifer_service::run::shutdown_signal;
use cifer_shard_node::config::Config;
use cifer_shard_node::store::SealingKey;
use cifer_shard_node::{identity, server};
use clap::{Parser, Subcommand};

/// CIFER shard node: holds one fragment per secret and releases it only to a verified
/// request.
#[derive(Parser)]
#[command(name = "cifer-shard-node", version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// The TOML configuration file (environment overrides: CIFER_NODE_*).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Creates the node identity (ML-KEM-768 seed) and sealing key files (mode 0600, never
    /// overwriting) and prints the encapsulation key to register in ClusterRegistry.
    Keygen {
        /// Where to write the identity (CIFER-MLKEM768-SEED-1).
        #[arg(long, value_name = "FILE")]
        identity: PathBuf,
        /// Where to write the sealing key (CIFER-SEALING-KEY-1).
        #[arg(long, value_name = "FILE")]
        sealing_key: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match (cli.command, cli.config) {
        (Some(Command::Keygen { identity, sealing_key }), _) => keygen(&identity, &sealing_key),
        (None, Some(config)) => serve(&config),
        (None, None) => {
            eprintln!("cifer-shard-node: give --config FILE (or `keygen`); see --help");
            ExitCode::from(2)
        }
    }
}

fn keygen(identity_path: &std::path::Path, sealing_key: &std::path::Path) -> ExitCode {
    // The sealing key first: if it exists, nothing is written at all.
    if sealing_key.exists() {
        eprintln!("cifer-shard-node: {} exists; not overwriting", sealing_key.display());
        return ExitCode::FAILURE;
    }
    let seed = match identity::generate(identity_path) {
        Ok(seed) => seed,
        Err(e) => {
            eprintln!("cifer-shard-node: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = SealingKey::generate(sealing_key) {
        eprintln!("cifer-shard-node: {e}");
        return ExitCode::FAILURE;
    }
    let ek = seed.encapsulation_key();
    let out = serde_json::json!({
        "identity": identity_path.display().to_string(),
        "sealingKey": sealing_key.display().to_string(),
        "encapsulationKey": format!("0x{}", hex::encode(ek.as_bytes())),
        "publicKeyHash": format!("0x{}", hex::encode(cifer_core::keccak256(ek.as_bytes()))),
    });
    println!("{out}");
    ExitCode::SUCCESS
}

fn serve(path: &std::path::Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cifer-shard-node: {e}");
            return ExitCode::from(2);
        }
    };
    cifer_service::run::init_tracing(config.log_format);
    tracing::info!(config = ?config, "starting");
    let runtime = match config.worker_threads {
        Some(0) => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Some(n) => {
            tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()
        }
        None => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "node stopped with an error");
            ExitCode::FAILURE
        }
    }
}
