//! The shard node process over HTTP against a real anvil with the real contracts: delivery,
//! release as owner and delegate, revocation, replay (also concurrent), freshness edges,
//! cross-chain and high-s signatures, unknown black boxes, bad input, rate limit, shred,
//! unreachable RPC, restart, on SQLite and PostgreSQL (`CIFER_SKIP_PG=1` skips the latter).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, reason = "tests")]

use cifer_store::testing as harness;
mod node;

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::ext::AnvilApi;
use cifer_bindings::test_utils::{CHAIN_ID, mined};
use cifer_store::{AuditKind, SealingKey, Store};
use node::{
    DEADLINE, Fixture, NodeProcess, OUR_INDEX, Release, UserRequest, assert_refused, batch,
    batch_json, batch_outcomes, check_reply, code, delivery, free_port, hx, metric, post,
};
use serde_json::json;

const WINDOW: u64 = 8;

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// Store, release as owner (typed and seed payload) and delegate, replay, revocation in
/// the next block, restart (SIGKILL) keeps the fragment, graceful SIGTERM, the audit log,
/// and an RPC that goes away.
async fn main_flow(db_url: Option<String>) {
    let f = Fixture::new().await;
    let db_url = db_url.unwrap_or_else(|| f.sqlite_url());
    let port = free_port();
    let config = f.write_config("node.toml", port, &db_url, WINDOW, "", &[]);
    let mut node = NodeProcess::spawn(&config, port);
    let http = client();
    let health = node.wait_healthy(&http, f.latest().await).await;
    assert_eq!(health["store"], "ok");
    assert_eq!(health["chains"][0]["chainId"], CHAIN_ID);

    let (owner, owner_key) = f.owner();
    let (delegate, delegate_key) = f.delegate();
    let bundle = f.bundle();
    let secret_id = f.create_secret(owner, &bundle).await;
    node.wait_healthy(&http, f.latest().await).await;

    // Delivery: stored once, then idempotent.
    let body = delivery(secret_id, f.bb_account, &bundle);
    let r = post(&http, &node.url("/v1/fragments"), &body).await;
    assert_eq!((r.0, &r.1), (201, &json!({ "status": "stored" })));
    let r = post(&http, &node.url("/v1/fragments"), &body).await;
    assert_eq!((r.0, &r.1), (200, &json!({ "status": "already_stored" })));

    // Release as owner: typed request, then seed payload.
    let head = f.latest().await;
    let typed = Release::new(
        UserRequest::typed(&f, secret_id, owner, head),
        &owner_key,
        f.bb_account,
        &f.bb_key,
    );
    let r = post(&http, &node.url("/v1/release"), &typed.json()).await;
    assert_eq!(r.0, 200, "{}", r.1);
    check_reply(&r.1, &typed, &bundle);
    let seed = Release::new(
        UserRequest::seed(secret_id, owner, head),
        &owner_key,
        f.bb_account,
        &f.bb_key,
    );
    let r = post(&http, &node.url("/v1/release"), &seed.json()).await;
    assert_eq!(r.0, 200, "{}", r.1);
    check_reply(&r.1, &seed, &bundle);

    // Replay of the very same request: refused, whatever the black box's new key.
    assert_refused(&post(&http, &node.url("/v1/release"), &typed.json()).await, 409, "replayed");
    let again = Release::new(typed.request.clone(), &owner_key, f.bb_account, &f.bb_key);
    assert_refused(&post(&http, &node.url("/v1/release"), &again.json()).await, 409, "replayed");

    // A stranger and a not-yet delegate are refused.
    let not_yet = Release::new(
        UserRequest::typed(&f, secret_id, delegate, head),
        &delegate_key,
        f.bb_account,
        &f.bb_key,
    );
    assert_refused(
        &post(&http, &node.url("/v1/release"), &not_yet.json()).await,
        403,
        "not_authorized",
    );

    // Delegate: added, released, revoked in the next block, refused.
    mined(f.chain.controller.addDelegate(secret_id, delegate, 0).from(owner).send().await).await;
    let head = f.latest().await;
    node.wait_healthy(&http, head).await;
    let as_delegate = Release::new(
        UserRequest::typed(&f, secret_id, delegate, head),
        &delegate_key,
        f.bb_account,
        &f.bb_key,
    );
    let r = post(&http, &node.url("/v1/release"), &as_delegate.json()).await;
    assert_eq!(r.0, 200, "{}", r.1);
    check_reply(&r.1, &as_delegate, &bundle);
    mined(f.chain.controller.revokeDelegate(secret_id, delegate).from(owner).send().await).await;
    let revoked_at = f.latest().await;
    assert_eq!(revoked_at, head + 1, "revocation is the next block");
    node.wait_healthy(&http, revoked_at).await;
    let after = Release::new(
        UserRequest::typed(&f, secret_id, delegate, revoked_at),
        &delegate_key,
        f.bb_account,
        &f.bb_key,
    );
    assert_refused(
        &post(&http, &node.url("/v1/release"), &after.json()).await,
        403,
        "not_authorized",
    );
    // The request signed before the revocation, at the earlier (still fresh) block, too.
    let before = Release::new(
        UserRequest::typed(&f, secret_id, delegate, head),
        &delegate_key,
        f.bb_account,
        &f.bb_key,
    );
    assert_refused(
        &post(&http, &node.url("/v1/release"), &before.json()).await,
        403,
        "not_authorized",
    );

    assert_eq!(metric(&http, &node, "cifer_releases_total").await, 3);
    assert_eq!(metric(&http, &node, "cifer_release_refusals_total{code=\"replayed\"}").await, 2);
    assert_eq!(
        metric(&http, &node, "cifer_release_refusals_total{code=\"not_authorized\"}").await,
        3
    );
    assert_eq!(metric(&http, &node, "cifer_deliveries_total{outcome=\"stored\"}").await, 1);
    assert_eq!(metric(&http, &node, "cifer_chain_healthy{chain_id=\"11155111\"}").await, 1);
    assert_eq!(metric(&http, &node, "cifer_fragments").await, 1);

    // Restart without any shutdown: the fragment and the replay set survive.
    node.kill9();
    let mut node = NodeProcess::spawn(&config, port);
    node.wait_healthy(&http, f.latest().await).await;
    assert_refused(&post(&http, &node.url("/v1/release"), &typed.json()).await, 409, "replayed");
    let head = f.latest().await;
    let later = Release::new(
        UserRequest::typed(&f, secret_id, owner, head),
        &owner_key,
        f.bb_account,
        &f.bb_key,
    );
    let r = post(&http, &node.url("/v1/release"), &later.json()).await;
    assert_eq!(r.0, 200, "{}", r.1);
    check_reply(&r.1, &later, &bundle);

    // Graceful stop on SIGTERM, then the audit log as written by both runs.
    assert!(node.terminate(), "SIGTERM: clean exit; log:\n{}", node.log_text());
    let log = node.log_text();
    assert!(log.contains("SIGTERM: shutting down") && log.contains("stopped"), "{log}");
    let store = Store::open(&db_url, SealingKey::load(&f.sealing_key).unwrap()).await.unwrap();
    let head = store.verify_audit().await.unwrap();
    let records = store.read_audit(0, 1000).await.unwrap();
    assert_eq!(head.seq, records.len() as u64);
    let count = |kind, code: &str| {
        records.iter().filter(|r| r.entry.kind == kind && r.entry.code == code).count()
    };
    assert_eq!(count(AuditKind::Store, "stored"), 1);
    assert_eq!(count(AuditKind::Store, "already_stored"), 1);
    assert_eq!(count(AuditKind::Release, "released"), 4);
    assert_eq!(count(AuditKind::Refusal, "replayed"), 3);
    assert_eq!(count(AuditKind::Refusal, "not_authorized"), 3);
    let released = records.iter().find(|r| r.entry.kind == AuditKind::Release).unwrap();
    assert_eq!(released.entry.actor, owner.0.0);
    assert_eq!(released.entry.digest, typed.request.digest());
    assert_eq!(U256::from_be_bytes(released.entry.secret_id), secret_id);
    store.close().await;

    // The RPC goes away: the node denies.
    let mut node = NodeProcess::spawn(&config, port);
    node.wait_healthy(&http, f.latest().await).await;
    let head = f.latest().await;
    let pid = f.chain.anvil.child().id();
    assert!(
        std::process::Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + DEADLINE;
    loop {
        let r = http.get(node.url("/health")).send().await.unwrap();
        if r.status().as_u16() == 503 {
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["chains"][0]["healthy"], false, "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "health never degraded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gone = Release::new(
        UserRequest::typed(&f, secret_id, owner, head),
        &owner_key,
        f.bb_account,
        &f.bb_key,
    );
    assert_refused(
        &post(&http, &node.url("/v1/release"), &gone.json()).await,
        503,
        "chain_unavailable",
    );
    assert_refused(&post(&http, &node.url("/v1/fragments"), &body).await, 503, "chain_unavailable");
    assert_eq!(metric(&http, &node, "cifer_chain_healthy{chain_id=\"11155111\"}").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_main_flow() {
    main_flow(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_main_flow() {
    let Some(db) = harness::Db::postgres().await else { return };
    main_flow(Some(db.url().to_owned())).await;
}

/// Every refusal of the release checks, in the documented order, and the delivery checks.
/// `POST /v1/releases`: each item is checked and answered on its own (released, refused,
/// replayed, even twice in one batch), the one black-box signature must cover exactly the
/// items sent in their order, and a malformed batch is refused whole with nothing claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_batches() {
    let f = Fixture::new().await;
    let port = free_port();
    let config = f.write_config("node.toml", port, &f.sqlite_url(), WINDOW, "", &[]);
    let mut node = NodeProcess::spawn(&config, port);
    let http = client();
    let (owner, owner_key) = f.owner();
    let (stranger, stranger_key) = f.stranger();
    let bundle = f.bundle();
    let secret_id = f.create_secret(owner, &bundle).await;
    node.wait_healthy(&http, f.latest().await).await;
    let r =
        post(&http, &node.url("/v1/fragments"), &delivery(secret_id, f.bb_account, &bundle)).await;
    assert_eq!(r.0, 201, "{}", r.1);
    let releases = node.url("/v1/releases");
    let head = f.latest().await;
    let owner_release =
        |request: UserRequest| Release::new(request, &owner_key, f.bb_account, &f.bb_key);

    // A signature over the items in another order, or over fewer of them, or by a key
    // that is not the registered signer's: every item refused, nothing claimed.
    let (a, b) = (
        owner_release(UserRequest::typed(&f, secret_id, owner, head)),
        owner_release(UserRequest::seed(secret_id, owner, head)),
    );
    let forgeries = [
        batch_json(&[&a, &b], &[b.bound(), a.bound()], f.bb_account, &f.bb_key),
        batch_json(&[&a, &b], &[a.bound()], f.bb_account, &f.bb_key),
        batch_json(&[&a, &b], &[a.bound(), b.bound(), a.bound()], f.bb_account, &f.bb_key),
        batch(&[&a, &b], f.bb_account, &stranger_key),
    ];
    for forged in &forgeries {
        let r = post(&http, &releases, forged).await;
        assert_eq!(r.0, 200, "{}", r.1);
        let refused = (403, "unknown_black_box".to_owned());
        assert_eq!(batch_outcomes(&r.1), [refused.clone(), refused], "{}", r.1);
    }

    // Released, released, refused: each result for its own item, each reply sealed to its
    // own response key.
    let not_allowed = Release::new(
        UserRequest::typed(&f, secret_id, stranger, head),
        &stranger_key,
        f.bb_account,
        &f.bb_key,
    );
    let r = post(&http, &releases, &batch(&[&a, &b, &not_allowed], f.bb_account, &f.bb_key)).await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(
        batch_outcomes(&r.1),
        [(200, String::new()), (200, String::new()), (403, "not_authorized".to_owned())],
        "{}",
        r.1
    );
    check_reply(&r.1["results"][0], &a, &bundle);
    check_reply(&r.1["results"][1], &b, &bundle);
    assert!(r.1["results"][2]["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));

    // The same requests again, alone or batched, with fresh keys: replayed.
    let again = owner_release(a.request.clone());
    let r = post(&http, &releases, &batch(&[&again, &b], f.bb_account, &f.bb_key)).await;
    let replayed = (409, "replayed".to_owned());
    assert_eq!(batch_outcomes(&r.1), [replayed.clone(), replayed.clone()], "{}", r.1);
    assert_refused(&post(&http, &node.url("/v1/release"), &again.json()).await, 409, "replayed");

    // One request twice in one batch: one release, one replay.
    let c = owner_release(UserRequest::typed(&f, secret_id, owner, head));
    let twin = owner_release(c.request.clone());
    let r = post(&http, &releases, &batch(&[&c, &twin], f.bb_account, &f.bb_key)).await;
    let mut outcomes = batch_outcomes(&r.1);
    outcomes.sort();
    assert_eq!(outcomes, [(200, String::new()), replayed], "{}", r.1);

    // Malformed batches: refused whole (400), nothing claimed.
    let d = owner_release(UserRequest::typed(&f, secret_id, owner, head));
    let mut bad_key = batch(&[&d], f.bb_account, &f.bb_key);
    bad_key["items"][0]["responseKey"] = json!("0x00");
    let r = post(&http, &releases, &bad_key).await;
    assert_refused(&r, 400, "bad_request");
    assert!(r.1["error"]["message"].as_str().unwrap().contains("items[0]"), "{}", r.1);
    let empty = json!({ "blackBox": bad_key["blackBox"].clone(), "items": [] });
    assert_refused(&post(&http, &releases, &empty).await, 400, "bad_request");
    let many: Vec<Release> =
        (0..33).map(|_| owner_release(UserRequest::typed(&f, secret_id, owner, head))).collect();
    let too_many = batch(&many.iter().collect::<Vec<_>>(), f.bb_account, &f.bb_key);
    assert_refused(&post(&http, &releases, &too_many).await, 400, "bad_request");
    let r = post(&http, &releases, &batch(&[&d], f.bb_account, &f.bb_key)).await;
    assert_eq!(batch_outcomes(&r.1), [(200, String::new())], "{}", r.1);
    check_reply(&r.1["results"][0], &d, &bundle);

    // Counted per item; every item's outcome and each refused batch is an audit record.
    assert_eq!(metric(&http, &node, "cifer_releases_total").await, 4);
    assert_eq!(metric(&http, &node, "cifer_release_refusals_total{code=\"replayed\"}").await, 4);
    assert_eq!(
        metric(&http, &node, "cifer_release_refusals_total{code=\"unknown_black_box\"}").await,
        8
    );
    assert!(node.terminate(), "SIGTERM: clean exit; log:\n{}", node.log_text());
    let store =
        Store::open(&f.sqlite_url(), SealingKey::load(&f.sealing_key).unwrap()).await.unwrap();
    store.verify_audit().await.unwrap();
    let records = store.read_audit(0, 1000).await.unwrap();
    let count = |kind, code: &str| {
        records.iter().filter(|r| r.entry.kind == kind && r.entry.code == code).count()
    };
    assert_eq!(count(AuditKind::Release, "released"), 4);
    assert_eq!(count(AuditKind::Refusal, "replayed"), 4);
    assert_eq!(count(AuditKind::Refusal, "unknown_black_box"), 8);
    assert_eq!(count(AuditKind::Refusal, "not_authorized"), 1);
    assert_eq!(count(AuditKind::Refusal, "batch:bad_request"), 3);
    let released: Vec<_> = records.iter().filter(|r| r.entry.kind == AuditKind::Release).collect();
    for item in [&a, &b, &d] {
        let digest = item.request.digest();
        assert!(released.iter().any(|r| r.entry.digest == digest), "each record names its request");
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals() {
    let f = Fixture::new().await;
    let port = free_port();
    let config = f.write_config(
        "node.toml",
        port,
        &f.sqlite_url(),
        WINDOW,
        "[rate_limit]\nburst = 4\nper_second = 0.001",
        &[],
    );
    let mut node = NodeProcess::spawn(&config, port);
    let http = client();
    let (owner, owner_key) = f.owner();
    let (stranger, stranger_key) = f.stranger();
    let bundle = f.bundle();
    let secret_id = f.create_secret(owner, &bundle).await;
    node.wait_healthy(&http, f.latest().await).await;
    let fragments = node.url("/v1/fragments");
    let release = node.url("/v1/release");

    // --- Delivery refusals (nothing stored).
    let unknown = delivery(U256::from(999), f.bb_account, &bundle);
    assert_refused(&post(&http, &fragments, &unknown).await, 404, "unknown_secret");
    let other = f.bundle(); // another key than the secret's
    assert_refused(
        &post(&http, &fragments, &delivery(secret_id, f.bb_account, &other)).await,
        409,
        "key_mismatch",
    );
    assert_refused(
        &post(&http, &fragments, &delivery(secret_id, stranger, &bundle)).await,
        403,
        "unknown_black_box",
    );
    let mut forged = bundle.clone();
    forged.signature = cifer_custody::sign_digest(&stranger_key, &bundle.digest()).unwrap();
    assert_refused(
        &post(&http, &fragments, &delivery(secret_id, f.bb_account, &forged)).await,
        403,
        "unknown_black_box",
    );
    let mut tampered = bundle.clone();
    let last = tampered.sealed[node::OUR_INDEX].len() - 1;
    tampered.sealed[node::OUR_INDEX][last] ^= 1;
    assert_refused(
        &post(&http, &fragments, &delivery(secret_id, f.bb_account, &tampered)).await,
        422,
        "invalid_bundle",
    );
    let mut short = bundle.clone();
    short.sealed.pop();
    assert_refused(
        &post(&http, &fragments, &delivery(secret_id, f.bb_account, &short)).await,
        422,
        "invalid_bundle",
    );
    let mut wrong_chain = delivery(secret_id, f.bb_account, &bundle);
    wrong_chain["chainId"] = json!(1);
    wrong_chain["bundle"]["chainId"] = json!(1);
    assert_refused(&post(&http, &fragments, &wrong_chain).await, 400, "unknown_chain");
    assert_eq!(metric(&http, &node, "cifer_fragments").await, 0);

    // Release before delivery: every check passes, and there is nothing to release.
    let head = f.latest().await;
    let early = Release::new(
        UserRequest::typed(&f, secret_id, owner, head),
        &owner_key,
        f.bb_account,
        &f.bb_key,
    );
    assert_refused(&post(&http, &release, &early.json()).await, 404, "no_fragment");

    let r = post(&http, &fragments, &delivery(secret_id, f.bb_account, &bundle)).await;
    assert_eq!(r.0, 201, "{}", r.1);
    node.wait_healthy(&http, f.latest().await).await;
    let head = f.latest().await;
    assert!(head > WINDOW + 1);
    let req = |block| UserRequest::typed(&f, secret_id, owner, block);
    let signed = |request| Release::new(request, &owner_key, f.bb_account, &f.bb_key);

    // 1. Shape and size.
    let raw = |body: &'static str| {
        let http = http.clone();
        let url = release.clone();
        async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    assert_refused(&raw("{not json").await, 400, "bad_request");
    assert_refused(&raw("{}").await, 400, "bad_request");
    assert_refused(&raw("[1,2,3]").await, 400, "bad_request");
    let big = "x".repeat(100_000);
    let r = http
        .post(&release)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(code(&r.json().await.unwrap()), "payload_too_large");
    let mut bad_key = signed(req(head)).json();
    bad_key["blackBox"]["responseKey"] = json!("0x1234");
    assert_refused(&post(&http, &release, &bad_key).await, 400, "bad_request");
    let mut bad_sig = signed(req(head)).json();
    bad_sig["signature"] = json!("0xzz");
    assert_refused(&post(&http, &release, &bad_sig).await, 400, "bad_request");

    // 2. Chain: an unserved chain id, another contract.
    let UserRequest::Typed(base) = req(head) else { unreachable!() };
    let other_chain = signed(UserRequest::Typed(cifer_auth::TypedRequest { chain_id: 1, ..base }));
    assert_refused(&post(&http, &release, &other_chain.json()).await, 400, "unknown_chain");
    let other_contract = signed(UserRequest::Typed(cifer_auth::TypedRequest {
        verifying_contract: [0x42; 20],
        ..base
    }));
    assert_refused(&post(&http, &release, &other_contract.json()).await, 400, "unknown_chain");

    // 3. Signatures: signed for another chain and replayed here, high-s twin, another key.
    let mut cross = signed(req(head));
    let UserRequest::Typed(ours) = cross.request.clone() else { unreachable!() };
    let theirs = cifer_auth::TypedRequest { chain_id: 1, ..ours };
    cross.signature = cifer_custody::sign_digest(&owner_key, &theirs.digest()).unwrap().to_vec();
    assert_refused(&post(&http, &release, &cross.json()).await, 401, "bad_signature");
    let mut high = signed(req(head));
    high.signature = high_s_twin(&high.signature);
    assert_refused(&post(&http, &release, &high.json()).await, 401, "bad_signature");
    let mut wrong_key = signed(req(head));
    wrong_key.signature =
        cifer_custody::sign_digest(&stranger_key, &wrong_key.request.digest()).unwrap().to_vec();
    assert_refused(&post(&http, &release, &wrong_key.json()).await, 401, "bad_signature");

    // 4. Freshness edges against the node's head (= the chain's: nothing is being mined).
    let health = node.wait_healthy(&http, head).await;
    assert_eq!(health["chains"][0]["head"], head);
    assert_refused(&post(&http, &release, &signed(req(head + 1)).json()).await, 422, "future");
    assert_refused(
        &post(&http, &release, &signed(req(head - WINDOW - 1)).json()).await,
        422,
        "stale",
    );
    let edge = signed(req(head - WINDOW));
    let r = post(&http, &release, &edge.json()).await;
    assert_eq!(r.0, 200, "head - W is fresh: {}", r.1);
    check_reply(&r.1, &edge, &bundle);

    // 5. Authorization.
    let as_stranger = Release::new(
        UserRequest::typed(&f, secret_id, stranger, head),
        &stranger_key,
        f.bb_account,
        &f.bb_key,
    );
    assert_refused(&post(&http, &release, &as_stranger.json()).await, 403, "not_authorized");

    // 6. Black box: not registered; registered but another key signed the response key.
    let unregistered = Release::new(req(head), &owner_key, stranger, &f.bb_key);
    assert_refused(&post(&http, &release, &unregistered.json()).await, 403, "unknown_black_box");
    let wrong_bb = Release::new(req(head), &owner_key, f.bb_account, &stranger_key);
    assert_refused(&post(&http, &release, &wrong_bb.json()).await, 403, "unknown_black_box");
    // The black box's signature binds the response key: swapping the key is refused.
    let mut swapped = signed(req(head));
    swapped.response_key =
        cifer_core::Seed::generate_os().unwrap().encapsulation_key().as_bytes().to_vec();
    assert_refused(&post(&http, &release, &swapped.json()).await, 403, "unknown_black_box");

    // 7. Two concurrent identical requests: exactly one is released.
    let twice = signed(req(head));
    let body = twice.json();
    let (a, b) = tokio::join!(post(&http, &release, &body), post(&http, &release, &body));
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{} / {}", a.1, b.1);
    let winner = if a.0 == 200 { &a } else { &b };
    check_reply(&winner.1, &twice, &bundle);
    assert_eq!(code(if a.0 == 409 { &a.1 } else { &b.1 }), "replayed");

    // 8. Rate limit: burst 4; three releases passed step 8 so far (the early one found no
    // fragment after it), one more, then refused.
    let r = post(&http, &release, &signed(req(head)).json()).await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_refused(&post(&http, &release, &signed(req(head)).json()).await, 429, "rate_limited");

    // EIP-1271: contract wallets as delegates. One returns the magic value for anything,
    // the other a zero word: the node asks the wallet (at its pinned head) whenever the
    // signature is not the signer's ECDSA signature.
    let accepting = alloy::primitives::Address::repeat_byte(0xa1);
    let rejecting = alloy::primitives::Address::repeat_byte(0xa2);
    let provider = &f.chain.provider;
    provider
        .anvil_set_code(accepting, hex::decode("631626ba7e60e01b60005260206000f3").unwrap().into())
        .await
        .unwrap();
    provider.anvil_set_code(rejecting, hex::decode("60206000f3").unwrap().into()).await.unwrap();
    for wallet in [accepting, rejecting] {
        mined(f.chain.controller.addDelegate(secret_id, wallet, 0).from(owner).send().await).await;
    }
    let head = f.latest().await;
    node.wait_healthy(&http, head).await;
    let by_wallet = |wallet, signature: Vec<u8>| {
        let mut r = Release::new(
            UserRequest::typed(&f, secret_id, wallet, head),
            &owner_key,
            f.bb_account,
            &f.bb_key,
        );
        r.signature = signature;
        r
    };
    let ok = by_wallet(accepting, vec![0x5a; 97]);
    let r = post(&http, &release, &ok.json()).await;
    assert_eq!(r.0, 200, "EIP-1271 wallet: {}", r.1);
    check_reply(&r.1, &ok, &bundle);
    let no = by_wallet(rejecting, vec![0x5a; 65]);
    assert_refused(&post(&http, &release, &no.json()).await, 401, "bad_signature");

    // Unknown route and the OpenAPI document.
    let r = http.get(node.url("/nope")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(code(&r.json().await.unwrap()), "not_found");
    let r = http.get(node.url("/v1/release")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["allow"].to_str().unwrap()), (405, "POST"));
    assert_eq!(code(&r.json().await.unwrap()), "method_not_allowed");
    let doc: serde_json::Value =
        http.get(node.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/v1/release"]["post"].is_object());
    assert!(doc["paths"]["/v1/releases"]["post"].is_object());
    assert!(doc["paths"]["/v1/fragments"]["post"].is_object());
    assert!(doc["paths"]["/v1/identity"]["get"].is_object());

    // The identity it serves is the key registered for it.
    let id: serde_json::Value =
        http.get(node.url("/v1/identity")).send().await.unwrap().json().await.unwrap();
    assert_eq!(id["nodeId"], f.chain.node_ids[OUR_INDEX]);
    assert_eq!(id["encapsulationKey"], hx(f.node_eks[OUR_INDEX].as_bytes()));
    assert_eq!(id["publicKeyHash"], hx(&f.node_eks[OUR_INDEX].keccak256()));

    // Shred: the fragment is deleted by the event, and releases are refused.
    mined(f.chain.controller.shred(secret_id).from(owner).send().await).await;
    let deadline = Instant::now() + DEADLINE;
    while metric(&http, &node, "cifer_shredded_total").await == 0 {
        assert!(Instant::now() < deadline, "shred event not handled; log:\n{}", node.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metric(&http, &node, "cifer_fragments").await, 0);
    let head = f.latest().await;
    node.wait_healthy(&http, head).await;
    let shredded = Release::new(
        UserRequest::typed(&f, secret_id, owner, head),
        &owner_key,
        f.bb_account,
        &f.bb_key,
    );
    assert_refused(&post(&http, &release, &shredded.json()).await, 403, "not_authorized");
    assert_refused(
        &post(&http, &fragments, &delivery(secret_id, f.bb_account, &bundle)).await,
        410,
        "secret_inactive",
    );

    // No log line holds the fragment or key material (hex of the reply, the keys).
    let log = node.log_text();
    assert!(!log.contains(&hex::encode(&twice.response_key[..32])));
    assert!(!log.contains(&hex::encode(f.bb_key.to_bytes())));
}

/// An RPC that never answers makes the node deny from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_rpc_denies() {
    let f = Fixture::new().await;
    let (owner, owner_key) = f.owner();
    let bundle = f.bundle();
    let secret_id = f.create_secret(owner, &bundle).await;
    let port = free_port();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let config = f.write_config("node.toml", port, &f.sqlite_url(), WINDOW, "", &[dead]);
    let mut node = NodeProcess::spawn(&config, port);
    let http = client();
    let (status, health) = node.wait_up(&http).await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["chains"][0]["healthy"], false);
    let head = f.latest().await;
    let r = Release::new(
        UserRequest::typed(&f, secret_id, owner, head),
        &owner_key,
        f.bb_account,
        &f.bb_key,
    );
    assert_refused(
        &post(&http, &node.url("/v1/release"), &r.json()).await,
        503,
        "chain_unavailable",
    );
    assert_refused(
        &post(&http, &node.url("/v1/fragments"), &delivery(secret_id, f.bb_account, &bundle)).await,
        503,
        "chain_unavailable",
    );
}

/// `keygen` writes both key files with mode 0600, never overwrites, and prints the key to
/// register.
#[test]
fn keygen() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("id");
    let sealing = dir.path().join("seal");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cifer-shard-node"))
            .args(["keygen", "--identity"])
            .arg(&identity)
            .arg("--sealing-key")
            .arg(&sealing)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let seed = cifer_shard_node::identity::load(&identity).unwrap();
    let ek = seed.encapsulation_key();
    assert_eq!(printed["encapsulationKey"], node::hx(ek.as_bytes()));
    assert_eq!(printed["publicKeyHash"], node::hx(&cifer_core::keccak256(ek.as_bytes())));
    SealingKey::load(&sealing).unwrap();
    for p in [&identity, &sealing] {
        assert_eq!(std::fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(&hex::encode(seed.as_bytes())), "the seed is never printed");
    let before = std::fs::read(&identity).unwrap();
    assert!(!run().status.success(), "existing files are not overwritten");
    assert_eq!(std::fs::read(&identity).unwrap(), before);
}

/// `(r, n − s)` with the other recovery id: the same signature's malleable twin.
fn high_s_twin(sig: &[u8]) -> Vec<u8> {
    let n = cifer_auth::ecdsa::SECP256K1_ORDER;
    let mut out = sig.to_vec();
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(n[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        out[32 + i] = u8::try_from(d.rem_euclid(256)).unwrap();
    }
    out[64] = if sig[64] == 27 { 28 } else { 27 };
    out
}
