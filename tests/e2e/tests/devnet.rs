//! Issue 6 end to end: the devnet as a user meets it — the README's round trip through the
//! `cifer` CLI, requests signed by an independent signer (`cast wallet sign`), a Safe-like
//! EIP-1271 contract wallet as a secret's owner, and shard nodes killed mid-run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, reason = "tests")]

use std::process::Command;
use std::time::Duration;

use cifer_core::{Seed, envelope, keccak256};
use cifer_e2e::{Devnet, Options, bin_dir, code, free_ports, post, root};
use cifer_sdk::alloy::primitives::{Address, B256, U256};
use cifer_sdk::alloy::signers::Signer;
use cifer_sdk::alloy::signers::local::PrivateKeySigner;
use cifer_service::wire::hex0x;
use serde_json::{Value, json};

const OWNER: usize = 1;

fn cast(devnet: &Devnet, args: &[&str]) -> String {
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&["--rpc-url", &devnet.endpoints.rpc_url]);
    Devnet::cast(&all)
}

fn open_key(reply: &Value, response: &Seed, sealed: &[u8]) -> Vec<u8> {
    let prefix = envelope::read_prefix(&mut &sealed[..]).unwrap();
    let h = prefix.header();
    let bytes = hex::decode(reply["sealedKey"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let key = cifer_custody::open_key_reply(
        &bytes,
        &response.decapsulation_key(),
        h.chain_id,
        &h.secret_id,
    )
    .unwrap();
    envelope::open_body(&key, &prefix, &sealed[prefix.as_bytes().len()..]).unwrap()
}

/// `POST /v1/decrypt`, again while the black box's view trails the RPC (`future`).
async fn decrypt_until_current(devnet: &Devnet, make: impl AsyncFn(u64) -> Value) -> (u16, Value) {
    loop {
        let head: u64 = cast(devnet, &["block-number"]).parse().unwrap();
        let body = make(head).await;
        let (status, reply) = post(&format!("{}/v1/decrypt", devnet.black_box_url(1)), &body).await;
        if code(&reply) != "future" {
            return (status, reply);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn readme_round_trip_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(root().join("scripts/devnet.sh"))
        .arg("demo")
        .env("DEVNET_DIR", dir.path())
        .env("DEVNET_PORT", free_ports(16).to_string())
        .env("BIN_DIR", bin_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for expected in [
        "owner: plaintext matches",
        "delegate: plaintext matches",
        "revoked delegate: refused, as it must be",
        "hash chain verified",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    assert!(stderr.contains("round trip OK"), "{stderr}");
    // `down` ran: no process of it is left.
    assert!(!dir.path().join("pids").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cast_signatures_contract_wallet_and_nodes_killed_mid_run() {
    let devnet = Devnet::up(&Options::default());
    let owner = devnet.client(OWNER).await;
    let prepared = owner.prepare_secret(1).await.unwrap();
    let id = owner.register(&prepared).await.unwrap();
    let message = b"signed elsewhere".to_vec();
    let sealed = owner.encrypt_bytes(id, &message).await.unwrap();
    let prefix = envelope::read_prefix(&mut &sealed[..]).unwrap();
    let (owner_addr, owner_key) = devnet.accounts[OWNER].clone();

    // 1. The seed payload (EIP-191) signed by `cast wallet sign`. First with a stray field
    // in the body: refused as a whole (unknown fields are not ignored).
    let (status, reply) = decrypt_until_current(&devnet, async |head| {
        let payload = format!("{}_{id}_{owner_addr:#x}_{head}", devnet.endpoints.chain_id);
        let signature = Devnet::cast(&["wallet", "sign", "--private-key", &owner_key, &payload]);
        let response = Seed::generate_os().unwrap();
        json!({
            "request": { "kind": "seed", "payload": payload },
            "signature": signature,
            "envelopePrefix": hex0x(prefix.as_bytes()),
            "responseKey": hex0x(response.encapsulation_key().as_bytes()),
            "_seed": hex::encode(response.to_identity_file().as_bytes()),
        })
    })
    .await;
    assert_eq!((status, code(&reply)), (400, "bad_request"), "{reply}");
    let response = Seed::generate_os().unwrap();
    let (status, reply) = decrypt_until_current(&devnet, async |head| {
        let payload = format!("{}_{id}_{owner_addr:#x}_{head}", devnet.endpoints.chain_id);
        let signature = Devnet::cast(&["wallet", "sign", "--private-key", &owner_key, &payload]);
        json!({
            "request": { "kind": "seed", "payload": payload },
            "signature": signature,
            "envelopePrefix": hex0x(prefix.as_bytes()),
            "responseKey": hex0x(response.encapsulation_key().as_bytes()),
        })
    })
    .await;
    assert_eq!(status, 200, "cast-signed seed payload: {reply}");
    assert_eq!(open_key(&reply, &response, &sealed), message);

    // 2. The EIP-712 request signed by `cast wallet sign --data`.
    let response = Seed::generate_os().unwrap();
    let ek_hash = keccak256(response.encapsulation_key().as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let (status, reply) = decrypt_until_current(&devnet, async |head| {
        let message = json!({
            "secretId": id.to_string(),
            "requester": format!("{owner_addr:#x}"),
            "blockNumber": head,
            "envelopeHash": hex0x(&prefix.envelope_hash()),
            "responseKeyHash": hex0x(&ek_hash),
            "nonce": hex0x(&keccak256(&head.to_be_bytes())),
        });
        let typed = json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                "DecryptRequest": [
                    {"name": "secretId", "type": "uint256"}, {"name": "requester", "type": "address"},
                    {"name": "blockNumber", "type": "uint64"}, {"name": "envelopeHash", "type": "bytes32"},
                    {"name": "responseKeyHash", "type": "bytes32"}, {"name": "nonce", "type": "bytes32"}],
            },
            "primaryType": "DecryptRequest",
            "domain": { "name": "CIFER", "version": "1", "chainId": devnet.endpoints.chain_id,
                        "verifyingContract": format!("{:#x}", devnet.endpoints.secrets_controller) },
            "message": message,
        });
        let file = dir.path().join(format!("typed-{head}.json"));
        std::fs::write(&file, typed.to_string()).unwrap();
        let signature = Devnet::cast(&[
            "wallet", "sign", "--private-key", &owner_key, "--data", "--from-file", file.to_str().unwrap(),
        ]);
        json!({
            "request": {
                "kind": "typed", "chainId": devnet.endpoints.chain_id,
                "verifyingContract": format!("{:#x}", devnet.endpoints.secrets_controller),
                "secretId": id.to_string(), "requester": format!("{owner_addr:#x}"), "blockNumber": head,
                "envelopeHash": message["envelopeHash"], "responseKeyHash": message["responseKeyHash"],
                "nonce": message["nonce"],
            },
            "signature": signature,
            "envelopePrefix": hex0x(prefix.as_bytes()),
            "responseKey": hex0x(response.encapsulation_key().as_bytes()),
        })
    })
    .await;
    assert_eq!(status, 200, "cast-signed EIP-712 request: {reply}");
    assert_eq!(open_key(&reply, &response, &sealed), message);

    // 3. A Safe-like 2-of-2 contract wallet owns a secret and decrypts through EIP-1271.
    let (a, a_key) = devnet.accounts[10].clone();
    let (b, b_key) = devnet.accounts[11].clone();
    let created = Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". scripts/forge-env.sh && forge create contracts/test/mocks/SafeLikeWallet.sol:SafeLikeWallet \
             --rpc-url {} --private-key {a_key} --broadcast --constructor-args '[{a:#x},{b:#x}]' 2",
            devnet.endpoints.rpc_url
        ))
        .current_dir(root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&created.stdout).to_string();
    assert!(created.status.success(), "{text}{}", String::from_utf8_lossy(&created.stderr));
    let wallet: Address = text
        .lines()
        .find_map(|l| l.strip_prefix("Deployed to: "))
        .unwrap_or_else(|| panic!("no address in {text}"))
        .trim()
        .parse()
        .unwrap();
    let safe_bundle = owner.prepare_secret(1).await.unwrap();
    let create = Devnet::cast(&[
        "calldata",
        "createSecret(uint32,uint8,bytes)",
        "1",
        "1",
        &hex0x(&safe_bundle.encapsulation_key),
    ]);
    let _ = cast(
        &devnet,
        &[
            "send",
            &format!("{wallet:#x}"),
            "execute(address,uint256,bytes)",
            &format!("{:#x}", devnet.endpoints.secrets_controller),
            "0",
            &create,
            "--private-key",
            &a_key,
        ],
    );
    let safe_id: U256 = cast(
        &devnet,
        &["call", &format!("{:#x}", devnet.endpoints.secrets_controller), "secretCount()(uint256)"],
    )
    .split_whitespace()
    .next()
    .unwrap()
    .parse()
    .unwrap();
    assert_eq!(owner.secret(safe_id).await.unwrap().owner, wallet);
    owner.deliver(safe_id, &safe_bundle.bundle, safe_bundle.black_box.as_deref()).await.unwrap();
    let safe_sealed = owner.encrypt_bytes(safe_id, b"held by a multisig").await.unwrap();
    let safe_prefix = envelope::read_prefix(&mut &safe_sealed[..]).unwrap();
    let signers: Vec<PrivateKeySigner> = vec![a_key.parse().unwrap(), b_key.parse().unwrap()];
    let by_wallet = async |head: u64, how_many: usize, response: &Seed| {
        let r = cifer_auth::TypedRequest {
            chain_id: devnet.endpoints.chain_id,
            verifying_contract: devnet.endpoints.secrets_controller.0.0,
            secret_id: safe_id.to_be_bytes::<32>(),
            requester: wallet.0.0,
            block_number: head,
            envelope_hash: safe_prefix.envelope_hash(),
            response_key_hash: keccak256(response.encapsulation_key().as_bytes()),
            nonce: keccak256(
                &[head.to_be_bytes().as_slice(), &[u8::try_from(how_many).unwrap()]].concat(),
            ),
        };
        let mut sorted = signers.clone();
        sorted.sort_by_key(Signer::address);
        let mut signature = Vec::new();
        for s in sorted.iter().take(how_many) {
            signature
                .extend_from_slice(&s.sign_hash(&B256::from(r.digest())).await.unwrap().as_bytes());
        }
        json!({
            "request": cifer_service::wire::RequestJson::typed(&r),
            "signature": hex0x(&signature),
            "envelopePrefix": hex0x(safe_prefix.as_bytes()),
            "responseKey": hex0x(response.encapsulation_key().as_bytes()),
        })
    };
    let response = Seed::generate_os().unwrap();
    let (status, reply) =
        decrypt_until_current(&devnet, async |head| by_wallet(head, 2, &response).await).await;
    assert_eq!(status, 200, "2-of-2 wallet signature: {reply}");
    assert_eq!(open_key(&reply, &response, &safe_sealed), b"held by a multisig");
    let (status, reply) =
        decrypt_until_current(&devnet, async |head| by_wallet(head, 1, &response).await).await;
    assert_eq!((status, code(&reply)), (401, "bad_signature"), "one owner is not enough: {reply}");

    // 4. Kill two nodes while a client keeps decrypting: every decryption succeeds.
    let worker = {
        let client = devnet.client(OWNER).await;
        let sealed = sealed.clone();
        tokio::spawn(async move {
            let mut done = 0;
            for _ in 0..12 {
                client.decrypt_bytes(&sealed).await.unwrap();
                done += 1;
            }
            done
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    devnet.signal("node1", "KILL");
    tokio::time::sleep(Duration::from_millis(300)).await;
    devnet.signal("node4", "KILL");
    assert_eq!(worker.await.unwrap(), 12);

    // 5. kill -9 a node, restart it: its fragment is still there (with nodes 1 and 4 down,
    // node 3 is one of the three needed).
    devnet.signal("node3", "KILL");
    assert_eq!(
        owner.decrypt_bytes(&sealed).await.unwrap_err().code(),
        Some("not_enough_fragments")
    );
    devnet.restart_node(3).await;
    assert_eq!(owner.decrypt_bytes(&sealed).await.unwrap(), message);

    // The CLI sees the same state.
    let status = devnet.cifer(&["status", "--json"]);
    let s: Value = serde_json::from_slice(&status.stdout).unwrap();
    let healthy: Vec<bool> =
        s["members"].as_array().unwrap().iter().map(|m| m["healthy"].as_bool().unwrap()).collect();
    assert_eq!(healthy, [false, true, true, false, true], "{s}");
}
