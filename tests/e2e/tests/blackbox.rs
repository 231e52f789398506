//! Issue 5 end to end: the black box over HTTP with anvil, the deployed contracts and five
//! real shard-node processes (all started by `scripts/devnet.sh up`), plus a lying node
//! played by the test where a real node was killed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, reason = "tests")]

use std::time::{Duration, Instant};

use cifer_core::{EnvelopePrefix, Fragment, Seed, StreamKey, envelope, keccak256};
use cifer_e2e::{Devnet, Options, code, get, metric, post};
use cifer_sdk::alloy::primitives::{B256, U256};
use cifer_sdk::alloy::signers::Signer;
use cifer_sdk::alloy::signers::local::PrivateKeySigner;
use cifer_sdk::{Client, RequestForm};
use cifer_service::wire::{RequestJson, hex0x};
use serde_json::{Value, json};

const OWNER: usize = 1;
const DELEGATE: usize = 9;
const STRANGER: usize = 10;

/// A signed typed request for `prefix` by dev account `who`, as JSON, with the response
/// seed that opens the reply. `tweak` edits the request before signing.
struct Signed {
    body: Value,
    response: Seed,
}

async fn signed(
    devnet: &Devnet,
    who: usize,
    prefix: &EnvelopePrefix,
    block: u64,
    tweak: impl FnOnce(&mut cifer_auth::TypedRequest),
) -> Signed {
    let key: PrivateKeySigner = devnet.accounts[who].1.parse().unwrap();
    let response = Seed::generate_os().unwrap();
    let ek = response.encapsulation_key();
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).unwrap();
    let mut r = cifer_auth::TypedRequest {
        chain_id: devnet.endpoints.chain_id,
        verifying_contract: devnet.endpoints.secrets_controller.0.0,
        secret_id: prefix.header().secret_id,
        requester: key.address().0.0,
        block_number: block,
        envelope_hash: prefix.envelope_hash(),
        response_key_hash: keccak256(ek.as_bytes()),
        nonce,
    };
    tweak(&mut r);
    let sig = key.sign_hash(&B256::from(r.digest())).await.unwrap();
    let body = json!({
        "request": RequestJson::typed(&r),
        "signature": hex0x(&sig.as_bytes()),
        "envelopePrefix": hex0x(prefix.as_bytes()),
        "responseKey": hex0x(ek.as_bytes()),
    });
    Signed { body, response }
}

/// The stream key a successful reply seals to `s`'s response key, with `sealed`'s prefix.
fn reply_key(reply: &Value, s: &Signed, sealed: &[u8]) -> (StreamKey, EnvelopePrefix) {
    let prefix = envelope::read_prefix(&mut &sealed[..]).unwrap();
    let key_bytes =
        hex::decode(reply["sealedKey"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let header = prefix.header();
    let key = cifer_custody::open_key_reply(
        &key_bytes,
        &s.response.decapsulation_key(),
        header.chain_id,
        &header.secret_id,
    )
    .unwrap();
    (key, prefix)
}

/// The stream key of a successful reply, as hex (to look for it where it must not be).
fn stream_key_hex(reply: &Value, s: &Signed, sealed: &[u8]) -> String {
    hex::encode(&reply_key(reply, s, sealed).0.to_bytes()[..])
}

/// Opens a successful reply's sealed key and decrypts `sealed` with it.
fn open_with(reply: &Value, s: &Signed, sealed: &[u8]) -> Vec<u8> {
    let (key, prefix) = reply_key(reply, s, sealed);
    envelope::open_body(&key, &prefix, &sealed[prefix.as_bytes().len()..]).unwrap()
}

fn ids(v: &Value) -> Vec<u64> {
    let mut out: Vec<u64> =
        v.as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
    out.sort_unstable();
    out
}

/// Plays a lying shard node on `port`: answers every release item with a well-formed reply,
/// sealed to the black box's response key, carrying the bundle's real commitments and
/// signature but a fragment for its slot that is not the secret's.
fn spawn_liar(port: u16, slot: u8, bundle: Value) -> tokio::task::JoinHandle<()> {
    use axum::routing::post as route_post;
    let commitments = cifer_core::Commitments::from_bytes(
        &hex::decode(bundle["commitments"].as_str().unwrap().trim_start_matches("0x")).unwrap(),
    )
    .unwrap();
    let mut signature = [0u8; 65];
    signature.copy_from_slice(
        &hex::decode(bundle["signature"].as_str().unwrap().trim_start_matches("0x")).unwrap(),
    );
    // A genuine fragment for this slot — of another seed.
    let other = Seed::generate_os().unwrap();
    let (_, fragments) =
        cifer_core::fragment::split(&other, 3, 5, &mut cifer_core::os_rng()).unwrap();
    let fake: Fragment = fragments[usize::from(slot) - 1].clone();
    // The black box asks through `POST /v1/releases`: a sealed lie for every item.
    let app = axum::Router::new().route(
        "/v1/releases",
        route_post(move |axum::Json(body): axum::Json<Value>| {
            let (commitments, fake) = (commitments.clone(), fake.clone());
            async move {
                let results: Vec<Value> = body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|item| {
                        let ek_hex = item["responseKey"].as_str().unwrap().trim_start_matches("0x");
                        let ek =
                            cifer_core::EncapsulationKey::from_bytes(&hex::decode(ek_hex).unwrap())
                                .unwrap();
                        let secret: U256 =
                            item["request"]["secretId"].as_str().unwrap().parse().unwrap();
                        let chain = item["request"]["chainId"].as_u64().unwrap();
                        let reply = cifer_custody::seal_release(
                            chain,
                            secret.to_be_bytes::<32>(),
                            &fake,
                            &commitments,
                            &signature,
                            &ek,
                        )
                        .unwrap();
                        json!({ "status": 200, "fragment": hex0x(&reply) })
                    })
                    .collect();
                axum::Json(json!({ "results": results }))
            }
        }),
    );
    tokio::spawn(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        axum::serve(listener, app).await.unwrap();
    })
}

async fn decrypt_raw(
    devnet: &Devnet,
    who: usize,
    sealed: &[u8],
    client: &Client,
) -> (u16, Value, Signed) {
    let prefix = envelope::read_prefix(&mut &sealed[..]).unwrap();
    // The black box's view may trail the RPC by a poll interval: `future` means "again".
    loop {
        let block = client.block_number().await.unwrap();
        let s = signed(devnet, who, &prefix, block, |_| {}).await;
        let (status, body) =
            post(&format!("{}/v1/decrypt", devnet.black_box_url(1)), &s.body).await;
        if code(&body) != "future" {
            return (status, body, s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decryption_authorization_faults_liars_and_audit() {
    let devnet = Devnet::up(&Options::default());
    let bb = devnet.black_box_url(1);
    let owner = devnet.client(OWNER).await;
    let prepared = owner.prepare_secret(1).await.unwrap();
    let id = owner.register(&prepared).await.unwrap();
    let message = b"the treasury multisig's recovery phrase".repeat(100);
    let sealed = owner.encrypt_bytes(id, &message).await.unwrap();

    // Owner, both request forms.
    assert_eq!(owner.decrypt_bytes(&sealed).await.unwrap(), message);
    let mut out = Vec::new();
    owner.decrypt(RequestForm::Seed, &mut &sealed[..], &mut out).await.unwrap();
    assert_eq!(out, message);

    // A stranger is refused; a delegate is served; after revocation, refused.
    let stranger = devnet.client(STRANGER).await;
    assert_eq!(stranger.decrypt_bytes(&sealed).await.unwrap_err().code(), Some("not_authorized"));
    let delegate = devnet.client(DELEGATE).await;
    owner.add_delegate(id, delegate.address(), 0).await.unwrap();
    assert_eq!(delegate.decrypt_bytes(&sealed).await.unwrap(), message);
    owner.revoke_delegate(id, delegate.address()).await.unwrap();
    assert_eq!(delegate.decrypt_bytes(&sealed).await.unwrap_err().code(), Some("not_authorized"));

    // The same signed request twice at once: exactly one key leaves.
    let prefix = envelope::read_prefix(&mut &sealed[..]).unwrap();
    let head = owner.block_number().await.unwrap();
    let twice = signed(&devnet, OWNER, &prefix, head, |_| {}).await;
    let url = format!("{bb}/v1/decrypt");
    let (a, b) = tokio::join!(post(&url, &twice.body), post(&url, &twice.body));
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{} / {}", a.1, b.1);
    let winner = if a.0 == 200 { &a.1 } else { &b.1 };
    assert_eq!(open_with(winner, &twice, &sealed), message);
    assert_eq!(code(if a.0 == 409 { &a.1 } else { &b.1 }), "replayed");

    // Bad input: typed errors with stable codes.
    let raw = reqwest::Client::new()
        .post(&url)
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    assert_eq!(code(&raw.json().await.unwrap()), "bad_request");
    let huge = json!({ "pad": "x".repeat(300 * 1024) });
    assert_eq!(code(&post(&url, &huge).await.1), "payload_too_large");
    let other_envelope = signed(&devnet, OWNER, &prefix, head, |r| r.envelope_hash = [7; 32]).await;
    let r = post(&url, &other_envelope.body).await;
    assert_eq!((r.0, code(&r.1)), (422, "envelope_mismatch"), "{}", r.1);
    let other_key = signed(&devnet, OWNER, &prefix, head, |r| r.response_key_hash = [7; 32]).await;
    assert_eq!(code(&post(&url, &other_key.body).await.1), "envelope_mismatch");
    let future = signed(&devnet, OWNER, &prefix, head + 50, |_| {}).await;
    assert_eq!(code(&post(&url, &future.body).await.1), "future");
    let mut forged = signed(&devnet, OWNER, &prefix, head, |_| {}).await;
    forged.body["request"]["requester"] = json!(hex0x(devnet.accounts[STRANGER].0.as_slice()));
    assert_eq!(code(&post(&url, &forged.body).await.1), "bad_signature");
    let mut high_s = signed(&devnet, OWNER, &prefix, head, |_| {}).await;
    high_s.body["signature"] = json!(hex0x(&to_high_s(&high_s.body["signature"])));
    assert_eq!(code(&post(&url, &high_s.body).await.1), "bad_signature");
    let mut wrong_chain = signed(&devnet, OWNER, &prefix, head, |r| r.chain_id = 1).await;
    wrong_chain.body["envelopePrefix"] = twice.body["envelopePrefix"].clone();
    assert_eq!(code(&post(&url, &wrong_chain.body).await.1), "envelope_mismatch");
    let thin = post(&format!("{bb}/v1/decrypt/thin"), &json!({})).await;
    assert_eq!((thin.0, code(&thin.1)), (403, "thin_mode_disabled"));
    let (s, v) = get(&format!("{bb}/nope")).await;
    assert_eq!((s, code(&v)), (404, "not_found"));
    // Every refusal is a typed JSON error, also those axum's extractors and router make.
    let wrong_method = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(wrong_method.status().as_u16(), 405);
    assert_eq!(wrong_method.headers()["allow"], "POST");
    assert_eq!(code(&wrong_method.json().await.unwrap()), "method_not_allowed");
    for bad in [
        "v1/secrets/abc/1/key",
        "v1/secrets/99999999999999999999999/1/key",
        "v1/audit?after=abc",
        "v1/audit?limit=-1",
    ] {
        let (s, v) = get(&format!("{bb}/{bad}")).await;
        assert_eq!((s, code(&v)), (400, "bad_request"), "{bad}: {v}");
    }
    // Past any sequence number: an empty page, not an error.
    let (s, v) = get(&format!("{bb}/v1/audit?after={}", u64::MAX)).await;
    assert_eq!((s, v["entries"].as_array().map(Vec::len)), (200, Some(0)), "{v}");
    let health = get(&format!("{bb}/health")).await;
    assert_eq!(health.0, 200, "{}", health.1);
    assert_eq!(health.1["chains"][0]["registered"], true, "{}", health.1);
    let doc = get(&format!("{bb}/openapi.json")).await.1;
    assert!(doc["paths"]["/v1/decrypt"]["post"].is_object());

    // Stale: mine past the freshness window (64).
    DevnetCast::mine(&devnet, 70);
    let stale = signed(&devnet, OWNER, &prefix, head, |_| {}).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = post(&url, &stale.body).await;
        if code(&r.1) == "stale" {
            break;
        }
        assert!(Instant::now() < deadline, "stale request not refused as stale: {}", r.1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Two nodes down (kill -9): still served, and the missing nodes are named.
    devnet.signal("node1", "KILL");
    devnet.signal("node2", "KILL");
    let (status, body, s) = decrypt_raw(&devnet, OWNER, &sealed, &owner).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(open_with(&body, &s, &sealed), message);
    assert_eq!(ids(&body["nodes"]["unavailable"]), [1, 2], "{body}");
    // Three down: a clear error within the deadline (3 s), naming them.
    devnet.signal("node3", "KILL");
    let started = Instant::now();
    let (status, body, _) = decrypt_raw(&devnet, OWNER, &sealed, &owner).await;
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    assert_eq!((status, code(&body)), (503, "not_enough_fragments"), "{body}");
    assert_eq!(ids(&body["error"]["nodes"]["unavailable"]), [1, 2, 3], "{body}");
    // Restarted from their databases, nothing lost.
    for i in 1..=3 {
        devnet.restart_node(i).await;
    }
    assert_eq!(owner.decrypt_bytes(&sealed).await.unwrap(), message);

    // Many decryptions at once: all served, and the node queues batched them (fewer
    // `POST /v1/releases` than requests carried).
    let metrics = bb.clone();
    let (batches, items) = (
        metric(&metrics, "cifer_bb_release_batches_total").await,
        metric(&metrics, "cifer_bb_release_items_total").await,
    );
    let burst = futures_util::future::join_all((0..24).map(|_| owner.decrypt_bytes(&sealed))).await;
    for plain in burst {
        assert_eq!(plain.unwrap(), message);
    }
    let batches = metric(&metrics, "cifer_bb_release_batches_total").await - batches;
    let items = metric(&metrics, "cifer_bb_release_items_total").await - items;
    assert!(items >= 24.0 * 3.0, "{items} items sent for 24 decryptions");
    assert!(batches < items, "{batches} batches for {items} items: nothing was batched");

    // A hung node (SIGSTOP): served by the other four; what queued for it meanwhile is
    // withdrawn unsent once those decryptions were served, so it does not do the work
    // when it wakes up.
    let node5 = devnet.node_url(5);
    let released_before = metric(&node5, "cifer_releases_total").await;
    let withdrawn_before = metric(&metrics, "cifer_bb_release_items_withdrawn_total").await;
    devnet.signal("node5", "STOP");
    for _ in 0..5 {
        assert_eq!(owner.decrypt_bytes(&sealed).await.unwrap(), message);
    }
    devnet.signal("node5", "CONT");
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&metrics, "cifer_bb_release_items_withdrawn_total").await - withdrawn_before < 4.0
    {
        assert!(Instant::now() < deadline, "the hung node's queue was not withdrawn");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let released = metric(&node5, "cifer_releases_total").await;
    assert!(
        released - released_before <= 1.0,
        "the woken node released {released_before} -> {released}"
    );

    // A lying node (node 2 replaced by one that sends another seed's fragment): with four
    // honest answers the result is still right and the liar is named; with only three
    // answers, one of them a lie, a clean integrity error naming it — never a wrong key.
    devnet.signal("node2", "KILL");
    let liar = spawn_liar(devnet.port + 2, 2, prepared.bundle.clone());
    let mut named = false;
    for _ in 0..8 {
        let (status, body, s) = decrypt_raw(&devnet, OWNER, &sealed, &owner).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(open_with(&body, &s, &sealed), message);
        // First three valid answers win: the liar is named whenever it answered first.
        if ids(&body["nodes"]["liars"]) == [2] {
            named = true;
            break;
        }
    }
    assert!(named, "the lying node was never named");
    assert!(metric(&bb, "cifer_bb_node_invalid_total{node=\"2\"}").await >= 1.0);
    devnet.signal("node4", "KILL");
    devnet.signal("node5", "KILL");
    let (status, body, _) = decrypt_raw(&devnet, OWNER, &sealed, &owner).await;
    assert_eq!((status, code(&body)), (502, "integrity"), "{body}");
    assert_eq!(ids(&body["error"]["nodes"]["liars"]), [2], "{body}");
    liar.abort();

    // The audit log: every outcome recorded, the chain verifies, and its head is anchored.
    let entries =
        get(&format!("{bb}/v1/audit?limit=1000")).await.1["entries"].as_array().unwrap().clone();
    let codes: Vec<&str> = entries.iter().map(|e| e["code"].as_str().unwrap()).collect();
    for expected in [
        "bundle",
        "authorized",
        "not_authorized",
        "replayed",
        "envelope_mismatch",
        "stale",
        "not_enough_fragments",
        "integrity",
    ] {
        assert!(codes.contains(&expected), "no {expected} in {codes:?}");
    }
    let config = devnet.dir.path().join("blackbox/blackbox1.toml");
    let verify = std::process::Command::new(cifer_e2e::bin_dir().join("cifer-blackbox"))
        .args(["audit", "verify", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    let head: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert!(head["seq"].as_u64().unwrap() >= entries.len() as u64);
    let anchor = std::process::Command::new(cifer_e2e::bin_dir().join("cifer-blackbox"))
        .args(["audit", "anchor", "--config"])
        .arg(&config)
        .env("CIFER_BB_ACCOUNT_KEY", &devnet.accounts[7].1)
        .output()
        .unwrap();
    assert!(anchor.status.success(), "{}", String::from_utf8_lossy(&anchor.stderr));
    let anchored = Devnet::cast(&[
        "call",
        &devnet.endpoints.secrets_controller.to_string(),
        "auditAnchor(address)((bytes32,uint64,uint64))",
        &devnet.accounts[7].0.to_string(),
        "--rpc-url",
        &devnet.endpoints.rpc_url,
    ]);
    assert!(anchored.contains(head["hash"].as_str().unwrap()), "{anchored} vs {head}");

    // No secret in any service log: not the plaintext, not a stream key.
    for i in [2, 4, 5] {
        devnet.restart_node(i).await;
    }
    let (status, body, s) = decrypt_raw(&devnet, OWNER, &sealed, &owner).await;
    assert_eq!(status, 200, "{body}");
    let key_hex = stream_key_hex(&body, &s, &sealed);
    // The devnet logs at debug (tests/e2e/src/lib.rs): the per-request lines are there too.
    assert!(devnet.log("blackbox1").contains("decryption served"));
    for name in ["blackbox1", "node1", "node2", "node3", "node4", "node5"] {
        let log = devnet.log(name);
        assert!(!log.contains("recovery phrase") && !log.contains(&key_hex), "{name} log leaks");
        assert!(!log.contains(&key_hex[..32]) && !log.contains(&key_hex.to_uppercase()[..32]));
    }

    // The chain goes away: every decision denies once the view has noticed — at most one
    // poll interval plus one RPC timeout (100 ms + 2 s in the devnet) after the RPC died;
    // until then, answers come from a head confirmed within that bound.
    let last_block = owner.block_number().await.unwrap();
    devnet.signal("anvil", "KILL");
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(20);
    loop {
        let r = post(&url, &signed(&devnet, OWNER, &prefix, last_block, |_| {}).await.body).await;
        if code(&r.1) == "chain_unavailable" {
            assert_eq!(r.0, 503);
            break;
        }
        assert!(
            r.0 != 200 || killed.elapsed() < Duration::from_secs(3),
            "served {:?} after the chain went away: {}",
            killed.elapsed(),
            r.1
        );
        assert!(Instant::now() < deadline, "no chain_unavailable: {}", r.1);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `cast` helpers bound to a devnet.
struct DevnetCast;

impl DevnetCast {
    fn mine(devnet: &Devnet, blocks: u64) {
        let _ = Devnet::cast(&[
            "rpc",
            "anvil_mine",
            &format!("0x{blocks:x}"),
            "--rpc-url",
            &devnet.endpoints.rpc_url,
        ]);
    }
}

/// The same signature with `s` replaced by `n - s` and the parity flipped (valid, high-s).
fn to_high_s(sig: &Value) -> Vec<u8> {
    let bytes = hex::decode(sig.as_str().unwrap().trim_start_matches("0x")).unwrap();
    let n = U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )
    .unwrap();
    let s = U256::from_be_slice(&bytes[32..64]);
    let mut out = bytes.clone();
    out[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    out[64] = if bytes[64] == 27 { 28 } else { 27 };
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_on_one_postgres_accept_a_request_once() {
    let Some(db) = cifer_store::testing::Db::postgres().await else { return };
    // A per-signer limit of 20 decryptions per hour, shared by the replicas.
    let devnet = Devnet::up(&Options {
        replicas: 2,
        bb_database_url: Some(db.url().to_owned()),
        bb_rate_limit: Some((20, 3_600_000)),
        ..Options::default()
    });
    let owner = devnet.client_of_replica(OWNER, 1).await;
    let id = owner.create_secret(1).await.unwrap();
    let sealed = owner.encrypt_bytes(id, b"one key, two replicas").await.unwrap();
    let prefix = envelope::read_prefix(&mut &sealed[..]).unwrap();
    let (one, two) = (
        format!("{}/v1/decrypt", devnet.black_box_url(1)),
        format!("{}/v1/decrypt", devnet.black_box_url(2)),
    );
    for round in 0..8 {
        let head = owner.block_number().await.unwrap();
        let s = signed(&devnet, OWNER, &prefix, head, |_| {}).await;
        let (a, b) = tokio::join!(post(&one, &s.body), post(&two, &s.body));
        let mut statuses = [a.0, b.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "round {round}: {} / {}", a.1, b.1);
        let winner = if a.0 == 200 { &a.1 } else { &b.1 };
        assert_eq!(open_with(winner, &s, &sealed), b"one key, two replicas");
    }
    // The fan-out starts once the claim is decided, and the answer waits for its commit.
    // When that commit fails (here the shared database refuses audit records), the
    // answer is `internal` with no key, and nothing of the claim is kept: not the count,
    // not the claim (the same request is not `replayed` by the black box afterwards; the
    // nodes did release to a key now gone, so it cannot succeed either).
    let raw = db.raw().await;
    raw.refuse_audit_inserts(true).await;
    let head = owner.block_number().await.unwrap();
    let s = signed(&devnet, OWNER, &prefix, head, |_| {}).await;
    let (status, reply) = post(&one, &s.body).await;
    raw.refuse_audit_inserts(false).await;
    assert_eq!((status, code(&reply)), (500, "internal"), "{reply}");
    assert!(reply.get("sealedKey").is_none(), "{reply}");
    let (status, reply) = post(&two, &s.body).await;
    assert_ne!(status, 200, "{reply}");
    assert_ne!(code(&reply), "replayed", "the failed commit kept its claim: {reply}");
    raw.close().await;
    // 17 requests counted (the 8 winners, the 8 replays, the retry just made); 3 more pass
    // on either replica, the 21st is refused by both.
    for n in 0..5 {
        let head = owner.block_number().await.unwrap();
        let s = signed(&devnet, OWNER, &prefix, head, |_| {}).await;
        let url = if n % 2 == 0 { &one } else { &two };
        let (status, reply) = post(url, &s.body).await;
        if n < 3 {
            assert_eq!(status, 200, "request {}: {reply}", 18 + n);
        } else {
            assert_eq!(reply["error"]["code"], "rate_limited", "request {}: {reply}", 18 + n);
            assert_eq!(status, 429);
        }
    }
    // Both replicas append to one hash chain.
    let entries =
        get(&format!("{}/v1/audit?limit=1000", devnet.black_box_url(2))).await.1["entries"]
            .as_array()
            .unwrap()
            .len();
    assert!(entries >= 17, "{entries} entries");
    drop(devnet);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_cache_policy_and_thin_mode() {
    let devnet = Devnet::up(&Options {
        bb_extra: "key_cache_ttl_secs = 300\nthin_mode = true".into(),
        ..Options::default()
    });
    let bb = devnet.black_box_url(1);
    let owner = devnet.client(OWNER).await;
    let delegate = devnet.client(DELEGATE).await;
    let id = owner.create_secret(1).await.unwrap();
    let message = b"cached for a while, never past a revocation".to_vec();
    let sealed = owner.encrypt_bytes(id, &message).await.unwrap();
    owner.add_delegate(id, delegate.address(), 0).await.unwrap();

    let (status, body, _) = decrypt_raw(&devnet, OWNER, &sealed, &owner).await;
    assert_eq!((status, body["cached"].as_bool()), (200, Some(false)), "{body}");
    // With every node down, the cache still serves — after the full request checks.
    for i in 1..=5 {
        devnet.signal(&format!("node{i}"), "KILL");
    }
    let (status, body, s) = decrypt_raw(&devnet, DELEGATE, &sealed, &delegate).await;
    assert_eq!((status, body["cached"].as_bool()), (200, Some(true)), "{body}");
    assert_eq!(open_with(&body, &s, &sealed), message);
    let (status, body, _) = decrypt_raw(&devnet, STRANGER, &sealed, &owner).await;
    assert_eq!(
        (status, code(&body)),
        (403, "not_authorized"),
        "a cache hit still checks authorization"
    );
    assert!(metric(&bb, "cifer_bb_cached_keys").await >= 1.0);

    // A revocation wipes the cached key: the next request needs the cluster again.
    owner.revoke_delegate(id, delegate.address()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&bb, "cifer_bb_cached_keys").await > 0.0 {
        assert!(Instant::now() < deadline, "revocation did not wipe the cache");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body, _) = decrypt_raw(&devnet, OWNER, &sealed, &owner).await;
    assert_eq!((status, code(&body)), (503, "not_enough_fragments"), "{body}");

    // Thin mode: the whole (small) envelope in, the plaintext sealed to the response key out.
    for i in 1..=5 {
        devnet.restart_node(i).await;
    }
    let prefix = envelope::read_prefix(&mut &sealed[..]).unwrap();
    let head = owner.block_number().await.unwrap();
    let mut s = signed(&devnet, OWNER, &prefix, head, |_| {}).await;
    let body = s.body.as_object_mut().unwrap();
    body.remove("envelopePrefix");
    body.insert("envelope".into(), json!(hex0x(&sealed)));
    let (status, reply) = post(&format!("{bb}/v1/decrypt/thin"), &s.body).await;
    assert_eq!(status, 200, "{reply}");
    let sealed_plain =
        hex::decode(reply["sealedPlaintext"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let h = prefix.header();
    let plain = cifer_custody::open_plaintext_reply(
        &sealed_plain,
        &s.response.decapsulation_key(),
        h.chain_id,
        &h.secret_id,
    )
    .unwrap();
    assert_eq!(&plain[..], &message[..]);
}
