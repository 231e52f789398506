//! Deployment mode: secrets on chain, keys split across shard nodes, the black box in
//! between (all through `cifer-sdk`). Encryption and decryption stay local: only an
//! envelope's prefix and a signed request leave this process.

use std::io::Write;
use std::str::FromStr;

use cifer_sdk::alloy::primitives::{Address, U256};
use cifer_sdk::alloy::signers::local::PrivateKeySigner;
use cifer_sdk::{Client, Endpoints, Error, RequestForm};
use serde_json::json;

use crate::cli::{
    AuditArgs, DecryptArgs, Deployment, EncryptArgs, SecretAction, SecretArgs, StatusArgs,
};
use crate::fail::{
    EXIT_DECRYPT, EXIT_GENERIC, EXIT_IO, EXIT_MALFORMED, EXIT_USAGE, Failure, Result,
};
use crate::files::{Input, Output, is_std};

/// Refused by the deployment (authorization, replay, rate limit, shredded...).
pub(crate) const EXIT_REFUSED: u8 = 6;
/// Chain, black box or too few shard nodes unavailable.
pub(crate) const EXIT_UNAVAILABLE: u8 = 7;
/// A transaction failed or reverted.
pub(crate) const EXIT_TRANSACTION: u8 = 8;

fn failure(e: &Error) -> Failure {
    let code = match e {
        Error::Config(_) | Error::Wallet(_) => EXIT_USAGE,
        Error::Rpc(_) | Error::Unreachable(_) | Error::Timeout(_) => EXIT_UNAVAILABLE,
        Error::Refused { code, .. } => match code.as_str() {
            "chain_unavailable" | "not_enough_fragments" | "internal" | "delivery_incomplete" => {
                EXIT_UNAVAILABLE
            }
            "bad_request" | "envelope_mismatch" | "unsupported_suite" => EXIT_MALFORMED,
            "integrity" => EXIT_DECRYPT,
            _ => EXIT_REFUSED,
        },
        Error::Transaction { .. } => EXIT_TRANSACTION,
        Error::KeyMismatch(_) | Error::BadReply(_) => EXIT_DECRYPT,
        Error::UnknownSecret(_) => EXIT_REFUSED,
        Error::Crypto(err) => crate::fail::core_exit_code(err),
        Error::Io(_) => EXIT_IO,
        _ => EXIT_GENERIC,
    };
    Failure::new(code, e.to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(EXIT_GENERIC, format!("cannot start the runtime: {e}")))
}

fn wallet(d: &Deployment) -> Result<Option<PrivateKeySigner>> {
    let given = [d.private_key.is_some(), d.keystore.is_some(), d.mnemonic.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(Failure::new(EXIT_USAGE, "give one of --private-key, --keystore, --mnemonic"));
    }
    let signer = if let Some(k) = &d.private_key {
        cifer_sdk::signer::private_key(k)
    } else if let Some(path) = &d.keystore {
        let password = match (&d.password, &d.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| Failure::io(f.display(), &e))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            (None, None) => {
                return Err(Failure::new(
                    EXIT_USAGE,
                    "--keystore needs --password or --password-file",
                ));
            }
        };
        cifer_sdk::signer::keystore(path, &password)
    } else if let Some(phrase) = &d.mnemonic {
        cifer_sdk::signer::mnemonic(phrase, d.mnemonic_index)
    } else {
        return Ok(None);
    };
    signer.map(Some).map_err(|e| failure(&e))
}

async fn connect(d: &Deployment, need_wallet: bool) -> Result<Client> {
    let endpoints = Endpoints::from_devnet_file(&d.endpoints).map_err(|e| {
        Failure::new(
            EXIT_USAGE,
            format!("{e}; for local keys give --identity / --recipient, else point --endpoints at a deployment"),
        )
    })?;
    let signer = match wallet(d)? {
        Some(s) => s,
        // Reading and encrypting sign nothing: a throwaway key stands in.
        None if !need_wallet => PrivateKeySigner::random(),
        None => {
            return Err(Failure::new(
                EXIT_USAGE,
                "a wallet is needed: --private-key, --keystore or --mnemonic (or CIFER_PRIVATE_KEY)",
            ));
        }
    };
    Client::connect(&endpoints, signer).await.map_err(|e| failure(&e))
}

fn secret_id(text: &str) -> Result<U256> {
    U256::from_str(text.trim())
        .map_err(|_| Failure::new(EXIT_USAGE, "secret id: expected a decimal or 0x-hex uint256"))
}

fn address(text: &str) -> Result<Address> {
    Address::from_str(text.trim())
        .map_err(|_| Failure::new(EXIT_USAGE, "address: expected 0x and 40 hex digits"))
}

fn print(json_out: bool, value: &serde_json::Value, text: &str) -> Result<()> {
    let line = if json_out { format!("{value}\n") } else { format!("{text}\n") };
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::io("standard output", &e))
}

/// `cifer encrypt --secret-id ID` without `--recipient`.
pub(crate) fn encrypt(args: &EncryptArgs) -> Result<()> {
    if args.secret_id == [0; 32] {
        return Err(Failure::new(
            EXIT_USAGE,
            "give --recipient FILE, or --secret-id ID of a secret on the deployment",
        ));
    }
    let rt = runtime()?;
    let client = rt.block_on(connect(&args.deployment, false))?;
    let id = U256::from_be_bytes(args.secret_id);
    let mut input = Input::open(args.input.as_deref())?;
    let mut output = Output::create(args.output.as_deref())?;
    let sealed = match input.regular_file() {
        Some((file, len)) => rt.block_on(client.encrypt_positional(
            id,
            args.chunk_log2,
            file,
            len,
            &mut input.track_output(output.writer()),
        )),
        None => rt.block_on(client.encrypt(
            id,
            args.chunk_log2,
            &mut input.reader(),
            &mut output.writer(),
        )),
    };
    sealed.map_err(|e| failure(&e))?;
    output.commit()
}

/// `cifer decrypt` without `--identity`.
pub(crate) fn decrypt(args: &DecryptArgs) -> Result<()> {
    let rt = runtime()?;
    let client = rt.block_on(connect(&args.deployment, true))?;
    let form = if args.seed_payload { RequestForm::Seed } else { RequestForm::Typed };
    let mut input = Input::open(args.input.as_deref())?;
    let mut output = Output::create(args.output.as_deref())?;
    let to_stdout = output.is_stdout() || is_std(args.output.as_deref());
    let opened = match input.regular_file() {
        Some((file, len)) => rt.block_on(client.decrypt_positional(
            form,
            file,
            len,
            &mut input.track_output(output.writer()),
        )),
        None => rt.block_on(client.decrypt(form, &mut input.reader(), &mut output.writer())),
    };
    if let Err(e) = opened {
        let f = failure(&e);
        return Err(if to_stdout && f.code() == EXIT_DECRYPT {
            f.with_note("discard any output already written")
        } else {
            f
        });
    }
    output.commit()
}

/// `cifer secret ...`.
pub(crate) fn secret(args: &SecretArgs) -> Result<()> {
    let rt = runtime()?;
    let d = &args.deployment;
    let needs_wallet = !matches!(args.action, SecretAction::Show { .. });
    let client = rt.block_on(connect(d, needs_wallet))?;
    let tx = |hash: cifer_sdk::alloy::primitives::B256, what: &str| {
        print(
            d.json,
            &json!({ "transaction": hash.to_string(), "done": what }),
            &format!("{what} (tx {hash})"),
        )
    };
    match &args.action {
        SecretAction::Create { cluster } => {
            let cluster = cluster.unwrap_or(client.endpoints().cluster_id);
            let id = rt.block_on(client.create_secret(cluster)).map_err(|e| failure(&e))?;
            print(
                d.json,
                &json!({ "secretId": id.to_string(), "owner": client.address().to_string() }),
                &id.to_string(),
            )
        }
        SecretAction::Show { id } => {
            let s = rt.block_on(client.secret(secret_id(id)?)).map_err(|e| failure(&e))?;
            let v = json!({
                "secretId": s.id.to_string(), "owner": s.owner.to_string(), "clusterId": s.cluster_id,
                "active": s.active, "publicKeyHash": s.public_key_hash.to_string(),
                "pendingOwner": s.pending_owner.to_string(),
            });
            let text = format!(
                "secret {}\nowner: {}\ncluster: {}\nstate: {}\npublic key hash: {}",
                s.id,
                s.owner,
                s.cluster_id,
                if s.active { "active" } else { "shredded" },
                s.public_key_hash
            );
            print(d.json, &v, &text)
        }
        SecretAction::Delegate { id, address: a, expires_at } => {
            let h = rt
                .block_on(client.add_delegate(secret_id(id)?, address(a)?, *expires_at))
                .map_err(|e| failure(&e))?;
            tx(h, "delegate added")
        }
        SecretAction::Revoke { id, address: a } => {
            let h = rt
                .block_on(client.revoke_delegate(secret_id(id)?, address(a)?))
                .map_err(|e| failure(&e))?;
            tx(h, "delegate revoked")
        }
        SecretAction::Transfer { id, address: a } => {
            let h = rt
                .block_on(client.transfer(secret_id(id)?, address(a)?))
                .map_err(|e| failure(&e))?;
            tx(h, "transfer proposed")
        }
        SecretAction::Accept { id } => {
            let h =
                rt.block_on(client.accept_ownership(secret_id(id)?)).map_err(|e| failure(&e))?;
            tx(h, "ownership accepted")
        }
        SecretAction::Shred { id } => {
            let h = rt.block_on(client.shred(secret_id(id)?)).map_err(|e| failure(&e))?;
            tx(h, "secret shredded")
        }
    }
}

/// `cifer audit`.
pub(crate) fn audit(args: &AuditArgs) -> Result<()> {
    let rt = runtime()?;
    let client = rt.block_on(connect(&args.deployment, false))?;
    let records = rt.block_on(client.audit(args.after, args.limit)).map_err(|e| failure(&e))?;
    if args.deployment.json {
        let v: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                json!({ "seq": r.seq, "atUnixMs": r.at_unix_ms, "kind": r.kind, "chainId": r.chain_id,
                        "secretId": r.secret_id, "actor": r.actor, "code": r.code, "hash": r.hash })
            })
            .collect();
        return print(true, &json!({ "entries": v, "chainVerified": true }), "");
    }
    let mut text = String::new();
    for r in &records {
        text.push_str(&format!(
            "#{:<4} {:<8} secret {:<4} {} {:<22} {}…\n",
            r.seq,
            r.kind,
            r.secret_id,
            r.actor,
            r.code,
            &r.hash[..18.min(r.hash.len())]
        ));
    }
    text.push_str(&format!("{} entries; hash chain verified", records.len()));
    print(false, &json!(null), &text)
}

/// `cifer status`.
pub(crate) fn status(args: &StatusArgs) -> Result<()> {
    let rt = runtime()?;
    let client = rt.block_on(connect(&args.deployment, false))?;
    let cluster = args.cluster.unwrap_or(client.endpoints().cluster_id);
    let s = rt.block_on(client.status(cluster)).map_err(|e| failure(&e))?;
    let up = s.members.iter().filter(|m| m.healthy).count();
    let mut text = format!(
        "chain {} head {}\ncluster {} ({}, threshold {}): {up}/{} nodes answer\nblack box {}: {}\n",
        s.chain_id,
        s.head,
        s.cluster_id,
        if s.cluster_active { "active" } else { "inactive" },
        s.threshold,
        s.members.len(),
        client.endpoints().black_box_url,
        if s.black_box_healthy { "ok" } else { "DOWN" },
    );
    for m in &s.members {
        text.push_str(&format!(
            "  node {} {} {}\n",
            m.id,
            m.endpoint,
            if m.healthy { "ok" } else { "DOWN" }
        ));
    }
    let value = serde_json::to_value(&s).map_err(|e| Failure::new(EXIT_GENERIC, e.to_string()))?;
    print(args.deployment.json, &value, text.trim_end())
}
