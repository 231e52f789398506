//! `cifer-blackbox`: the black box service (`--config FILE`), `keygen` for its signer key,
//! and `audit verify` / `audit anchor` for its hash-chained log.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cifer_blackbox::config::Config;
use cifer_blackbox::server::{self, SIGNER_KEY_PREFIX, address_of};
use cifer_service::run::{init_tracing, shutdown_signal};
use cifer_store::{SealingKey, Store};
use clap::{Parser, Subcommand};

/// CIFER black box: creates secrets, gathers fragments, and hands a stream key only to the
/// requester.
#[derive(Parser)]
#[command(name = "cifer-blackbox", version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// The TOML configuration file (environment overrides: CIFER_BB_*).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Creates a secp256k1 signer key file (mode 0600, never overwriting) and prints its
    /// address, to register with `ClusterRegistry.registerBlackBox`.
    Keygen {
        /// Where to write the key (CIFER-SECP256K1-KEY-1).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Rechecks every entry's hash chain; prints the head, or names the first bad entry.
    Verify {
        /// The black box's configuration (for its database).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Anchors the log's head on chain (`SecretsController.anchorAuditRoot`), sent from the
    /// registered black-box account.
    Anchor {
        /// The black box's configuration (database, chain, controller).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The chain to anchor on (default: the first configured).
        #[arg(long)]
        chain_id: Option<u64>,
        /// The black-box account's private key (0x hex), or set CIFER_BB_ACCOUNT_KEY.
        #[arg(long, env = "CIFER_BB_ACCOUNT_KEY", hide_env_values = true)]
        account_key: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match (cli.command, cli.config) {
        (Some(Command::Keygen { out }), _) => keygen(&out),
        (Some(Command::Audit { action }), _) => audit(action),
        (None, Some(config)) => serve(&config),
        (None, None) => {
            eprintln!("cifer-blackbox: give --config FILE (or a subcommand); see --help");
            ExitCode::from(2)
        }
    }
}

fn keygen(out: &Path) -> ExitCode {
    let key = loop {
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        if getrandom::fill(&mut bytes[..]).is_err() {
            eprintln!("cifer-blackbox: the OS random number generator failed");
            return ExitCode::FAILURE;
        }
        if let Ok(key) = k256::ecdsa::SigningKey::from_slice(&bytes[..]) {
            break key;
        }
    };
    if let Err(e) = cifer_service::keyfile::create(out, SIGNER_KEY_PREFIX, &key.to_bytes()) {
        eprintln!("cifer-blackbox: {e}");
        return ExitCode::FAILURE;
    }
    let out_json = serde_json::json!({
        "signerKey": out.display().to_string(),
        "signer": format!("0x{}", hex::encode(address_of(&key))),
    });
    println!("{out_json}");
    ExitCode::SUCCESS
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("cifer-blackbox: {e}");
        ExitCode::from(2)
    })
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().ok()
}

/// The service's runtime: `worker_threads` as configured (`Some(0)`: a single thread).
fn service_runtime(worker_threads: Option<usize>) -> Option<tokio::runtime::Runtime> {
    match worker_threads {
        Some(0) => tokio::runtime::Builder::new_current_thread().enable_all().build().ok(),
        Some(n) => {
            tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build().ok()
        }
        None => runtime(),
    }
}

fn serve(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    init_tracing(config.log_format);
    tracing::info!(config = ?config, "starting");
    let Some(rt) = service_runtime(config.worker_threads) else {
        tracing::error!("cannot start the runtime");
        return ExitCode::FAILURE;
    };
    match rt.block_on(server::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "black box stopped with an error");
            ExitCode::FAILURE
        }
    }
}

fn audit(action: AuditAction) -> ExitCode {
    let path = match &action {
        AuditAction::Verify { config } | AuditAction::Anchor { config, .. } => config.clone(),
    };
    let config = match load(&path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(rt) = runtime() else { return ExitCode::FAILURE };
    rt.block_on(async move {
        let store = match Store::open(&config.database_url, SealingKey::from_bytes([0; 32])).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cifer-blackbox: {e}");
                return ExitCode::FAILURE;
            }
        };
        let head = match store.verify_audit().await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("cifer-blackbox: audit log does not verify: {e}");
                return ExitCode::from(4);
            }
        };
        let head_json = serde_json::json!({
            "seq": head.seq, "hash": format!("0x{}", hex::encode(head.hash)), "verified": true,
        });
        match action {
            AuditAction::Verify { .. } => {
                println!("{head_json}");
                ExitCode::SUCCESS
            }
            AuditAction::Anchor { chain_id, account_key, .. } => {
                match anchor(&config, chain_id, &account_key, head.seq, head.hash).await {
                    Ok(tx) => {
                        println!(
                            "{}",
                            serde_json::json!({ "anchored": head_json, "transaction": tx })
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("cifer-blackbox: cannot anchor: {e}");
                        ExitCode::FAILURE
                    }
                }
            }
        }
    })
}

async fn anchor(
    config: &Config,
    chain_id: Option<u64>,
    account_key: &str,
    count: u64,
    root: [u8; 32],
) -> Result<String, String> {
    use cifer_chain::alloy::network::EthereumWallet;
    use cifer_chain::alloy::primitives::B256;
    use cifer_chain::alloy::providers::{Provider, ProviderBuilder};
    use cifer_chain::alloy::signers::local::PrivateKeySigner;

    if count == 0 {
        return Err("the log is empty; nothing to anchor".into());
    }
    let chain = match chain_id {
        Some(id) => config.chains.iter().find(|c| c.view.chain_id == id),
        None => config.chains.first(),
    }
    .ok_or("chain not configured")?;
    let signer: PrivateKeySigner = account_key.trim().parse().map_err(|_| "invalid account key")?;
    if signer.address() != config.account {
        return Err("the key is not the configured black-box account's".into());
    }
    let url =
        chain.view.rpc_urls.first().ok_or("no RPC URL")?.parse().map_err(|_| "invalid RPC URL")?;
    let provider = ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_http(url);
    let controller =
        cifer_bindings::SecretsController::new(chain.view.secrets_controller, provider.clone());
    let pending = controller
        .anchorAuditRoot(B256::from(root), count)
        .send()
        .await
        .map_err(|e| format!("transaction refused: {e}"))?;
    let receipt = pending.get_receipt().await.map_err(|e| format!("no receipt: {e}"))?;
    if !receipt.status() {
        return Err("transaction reverted".into());
    }
    let _ = provider.get_chain_id().await;
    Ok(format!("{}", receipt.transaction_hash))
}
