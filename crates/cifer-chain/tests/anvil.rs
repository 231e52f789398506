//! The chain view against real anvil processes with the real contracts deployed
//! (`cifer_bindings::test_utils`): agreement, authorization at the trusted head, events,
//! and every way the view must fail closed (unreachable or silent RPC, disagreeing RPCs,
//! wrong chain, lagging head, a head that steps back, a killed node, a dropped view).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, reason = "tests")]

use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use cifer_bindings::suite;
use cifer_bindings::test_utils::{CHAIN_ID, CLUSTER_ID, TestChain, anvil, mined, spawn_anvil};
use cifer_chain::{
    ChainConfig, ChainError, ChainEvent, ChainEventKind, ChainView, ClusterStatus, Health,
    NodeStatus, SecretState, Unavailable,
};
use tokio::sync::broadcast;

const POLL: Duration = Duration::from_millis(100);
const RPC_TIMEOUT: Duration = Duration::from_millis(500);
/// Generous: the machine is shared with other builds.
const DEADLINE: Duration = Duration::from_secs(15);

fn config(chain: &TestChain, rpc_urls: Vec<String>) -> ChainConfig {
    ChainConfig {
        chain_id: CHAIN_ID,
        rpc_urls,
        secrets_controller: *chain.controller.address(),
        cluster_registry: *chain.registry.address(),
        max_lag: Duration::from_secs(3600),
        poll_interval: POLL,
        rpc_timeout: RPC_TIMEOUT,
        start_block: chain.deploy_block,
    }
}

async fn view_of(chain: &TestChain) -> ChainView {
    ChainView::start(config(chain, vec![chain.endpoint()])).await.unwrap()
}

/// Polls the view's health until `ok` holds, panicking with the last health at the deadline.
async fn wait_health(view: &ChainView, what: &str, ok: impl Fn(&Health) -> bool) -> Health {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let health = view.health();
        if ok(&health) {
            return health;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; health: {health:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the trusted head is at least `number`.
async fn wait_head(view: &ChainView, number: u64) {
    wait_health(
        view,
        &format!("head >= {number}"),
        |h| matches!(h, Health::Healthy(head) if head.number >= number),
    )
    .await;
}

async fn wait_unavailable(view: &ChainView, what: &str, ok: impl Fn(&Unavailable) -> bool) {
    wait_health(view, what, |h| matches!(h, Health::Unavailable(r) if ok(r))).await;
}

async fn latest(chain: &TestChain) -> u64 {
    chain.provider.get_block_number().await.unwrap()
}

/// A localhost port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn assert_unavailable<T: std::fmt::Debug>(
    result: cifer_chain::Result<T>,
    ok: impl Fn(&Unavailable) -> bool,
) {
    match result {
        Err(ChainError::Unavailable { reason }) if ok(&reason) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_view_answers_at_the_agreed_head() {
    let chain = TestChain::start().await;
    let [_, owner, delegate, _, stranger, ..] = chain.accounts[..] else { unreachable!() };
    // Two RPC URLs (one node under two names): the agreement path with several RPCs.
    let port = chain.anvil.port();
    let urls = vec![chain.endpoint(), format!("http://127.0.0.1:{port}")];
    let view = ChainView::start(config(&chain, urls)).await.unwrap();

    let (id, key) = chain.create_secret(owner, b"secret-1").await;
    wait_head(&view, latest(&chain).await).await;
    let head = view.head().unwrap();
    let block = chain.provider.get_block_by_number(head.number.into()).await.unwrap().unwrap();
    assert_eq!((head.hash, head.timestamp), (block.header.hash, block.header.timestamp));

    assert!(view.is_authorized(id, owner).await.unwrap());
    assert!(!view.is_authorized(id, stranger).await.unwrap());
    assert!(!view.is_authorized(U256::from(99), owner).await.unwrap(), "unknown secret");

    let secret = view.secret(id).await.unwrap().expect("secret exists");
    assert_eq!(secret.owner, owner);
    assert_eq!(secret.cluster_id, CLUSTER_ID);
    assert_eq!(secret.state, SecretState::Active);
    assert_eq!(secret.suite, suite::ML_KEM_768);
    assert_eq!(secret.public_key_hash, keccak256(&key));
    assert_eq!(secret.pending_owner, Address::ZERO);
    assert_eq!(view.secret(U256::from(99)).await.unwrap(), None);

    let bb = view.black_box(chain.accounts[7]).await.unwrap().expect("registered");
    assert_eq!(bb.signer, chain.accounts[8]);
    assert_eq!(view.black_box(stranger).await.unwrap(), None);

    let node = view.node(chain.node_ids[0]).await.unwrap().expect("registered");
    assert_eq!(node.operator, chain.accounts[5]);
    assert_eq!(node.status, NodeStatus::Active);
    assert_eq!(node.cluster_id, CLUSTER_ID);
    assert_eq!(node.public_key_hash, keccak256(&chain.node_keys[0]));
    assert_eq!(node.endpoint, "https://node1.cifer.test");
    assert_eq!(view.node(99).await.unwrap(), None);

    let cluster = view.cluster(CLUSTER_ID).await.unwrap().expect("created");
    assert_eq!(cluster.status, ClusterStatus::Active);
    assert_eq!((cluster.threshold, cluster.size, cluster.active_members), (3, 5, 5));
    assert_eq!(cluster.members, chain.node_ids);
    assert!(cluster.is_active());
    assert!(view.is_cluster_active(CLUSTER_ID).await.unwrap());
    assert!(!view.is_cluster_active(2).await.unwrap());
    assert_eq!(view.cluster(2).await.unwrap(), None);

    assert!(view.has_code(*chain.controller.address()).await.unwrap());
    assert!(!view.has_code(owner).await.unwrap());

    // A pinned handle keeps answering at its own head; the next head sees the delegation.
    let before = view.pinned().unwrap();
    let receipt =
        mined(chain.controller.addDelegate(id, delegate, 0).from(owner).send().await).await;
    let added_in = receipt.block_number.unwrap();
    wait_head(&view, added_in).await;
    assert!(!before.is_authorized(id, delegate).await.unwrap(), "pinned before the delegation");
    assert!(view.is_authorized(id, delegate).await.unwrap());

    // revokeDelegate mined: the next trusted head answers false.
    let receipt =
        mined(chain.controller.revokeDelegate(id, delegate).from(owner).send().await).await;
    let revoked_in = receipt.block_number.unwrap();
    let at_add = view.pinned().unwrap();
    wait_head(&view, revoked_in).await;
    let now = view.pinned().unwrap();
    assert!(now.head().number >= revoked_in);
    assert!(!now.is_authorized(id, delegate).await.unwrap(), "revoked at the trusted head");
    if at_add.head().number < revoked_in {
        assert!(at_add.is_authorized(id, delegate).await.unwrap(), "history is pinned");
    }
    assert!(now.is_authorized(id, owner).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_block_order() {
    let chain = TestChain::start().await;
    let [governance, owner, delegate, new_owner, ..] = chain.accounts[..] else { unreachable!() };
    let view = view_of(&chain).await;
    let mut events = view.subscribe();

    let c = &chain.controller;
    let (id, key) = chain.create_secret(owner, b"events-1").await;
    mined(c.addDelegate(id, delegate, 0).from(owner).send().await).await;
    mined(c.revokeDelegate(id, delegate).from(owner).send().await).await;
    mined(c.transferSecretOwnership(id, new_owner).from(owner).send().await).await;
    mined(c.acceptSecretOwnership(id).from(new_owner).send().await).await;
    mined(c.shred(id).from(new_owner).send().await).await;
    let (id2, _) = chain.create_secret(owner, b"events-2").await;
    wait_head(&view, latest(&chain).await).await;
    assert!(view.is_authorized(id2, owner).await.unwrap());
    let r = &chain.registry;
    mined(r.removeNode(chain.node_ids[0]).from(governance).send().await).await;
    mined(r.leave(chain.node_ids[1]).from(chain.accounts[6]).send().await).await;
    mined(r.removeBlackBox(chain.accounts[7]).from(governance).send().await).await;
    let last = latest(&chain).await;

    let bb = (chain.accounts[7], chain.accounts[8]);
    let mut expected: Vec<ChainEventKind> = chain
        .node_ids
        .iter()
        .enumerate()
        .map(|(i, &node_id)| ChainEventKind::NodeRegistered {
            node_id,
            operator: chain.accounts[5 + i],
            public_key_hash: keccak256(&chain.node_keys[i]),
        })
        .collect();
    expected.extend([
        ChainEventKind::ClusterCreated {
            cluster_id: CLUSTER_ID,
            threshold: 3,
            members: chain.node_ids.clone(),
        },
        ChainEventKind::BlackBoxRegistered { black_box: bb.0, signer: bb.1 },
        ChainEventKind::SecretCreated {
            secret_id: id,
            owner,
            cluster_id: CLUSTER_ID,
            suite: suite::ML_KEM_768,
            public_key_hash: keccak256(&key),
            public_key: key.clone(),
        },
        ChainEventKind::DelegateAdded { secret_id: id, delegate, expires_at: 0 },
        ChainEventKind::DelegateRevoked { secret_id: id, delegate },
        ChainEventKind::SecretOwnershipTransferred {
            secret_id: id,
            previous_owner: owner,
            new_owner,
        },
        ChainEventKind::SecretShredded { secret_id: id, owner: new_owner },
    ]);
    expected.push(ChainEventKind::SecretCreated {
        secret_id: id2,
        owner,
        cluster_id: CLUSTER_ID,
        suite: suite::ML_KEM_768,
        public_key_hash: keccak256(cifer_bindings::test_utils::test_bytes(
            b"events-2",
            cifer_bindings::test_utils::EK_LEN,
        )),
        public_key: cifer_bindings::test_utils::test_bytes(
            b"events-2",
            cifer_bindings::test_utils::EK_LEN,
        )
        .into(),
    });
    let (n1, n2) = (chain.node_ids[0], chain.node_ids[1]);
    expected.extend([
        // The registry emits the cluster's events before the node's.
        ChainEventKind::ClusterMemberRetired {
            cluster_id: CLUSTER_ID,
            node_id: n1,
            active_members: 4,
        },
        ChainEventKind::ClusterDeactivated { cluster_id: CLUSTER_ID },
        ChainEventKind::NodeRemoved { node_id: n1, operator: chain.accounts[5] },
        ChainEventKind::ClusterMemberRetired {
            cluster_id: CLUSTER_ID,
            node_id: n2,
            active_members: 3,
        },
        ChainEventKind::NodeLeft { node_id: n2, operator: chain.accounts[6] },
        ChainEventKind::BlackBoxRemoved { black_box: bb.0 },
    ]);

    let got = recv_n(&mut events, expected.len()).await;
    let kinds: Vec<_> = got.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(kinds, expected);
    for pair in got.windows(2) {
        assert!(
            (pair[0].block_number, pair[0].log_index) < (pair[1].block_number, pair[1].log_index),
            "out of order: {pair:?}"
        );
    }
    assert!(got.iter().all(|e| e.block_number >= chain.deploy_block && e.block_number <= last));
    // Each event names its block by hash.
    let shred = got.iter().find(|e| matches!(e.kind, ChainEventKind::SecretShredded { .. }));
    let shred = shred.unwrap();
    let block =
        chain.provider.get_block_by_number(shred.block_number.into()).await.unwrap().unwrap();
    assert_eq!(shred.block_hash, block.header.hash);

    // The chain's answers follow: the cluster is down, so nobody is authorized, and the
    // black box is gone.
    wait_head(&view, last).await;
    assert!(!view.is_cluster_active(CLUSTER_ID).await.unwrap());
    assert!(!view.is_authorized(id2, owner).await.unwrap(), "cluster deactivated");
    assert_eq!(view.secret(id).await.unwrap().unwrap().state, SecretState::Shredded);
    assert_eq!(view.node(n2).await.unwrap().unwrap().status, NodeStatus::Retired);
    assert_eq!(view.black_box(bb.0).await.unwrap(), None);
    assert!(view.events_cursor() > last);
    assert!(events.try_recv().is_err(), "no further events");
}

async fn recv_n(rx: &mut broadcast::Receiver<ChainEvent>, n: usize) -> Vec<ChainEvent> {
    let mut got = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while got.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(ev)) => got.push(ev),
            Ok(Err(e)) => panic!("receiver failed: {e}"),
            Err(_) => panic!("timed out after {} of {n} events: {got:#?}", got.len()),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_subscriber_gets_events_from_the_start_block() {
    let chain = TestChain::start().await;
    let owner = chain.accounts[1];
    let (id, _) = chain.create_secret(owner, b"late").await;
    let mut cfg = config(&chain, vec![chain.endpoint()]);
    cfg.start_block = latest(&chain).await;
    let view = ChainView::start(cfg.clone()).await.unwrap();
    wait_head(&view, cfg.start_block).await;
    // Nobody listens yet: nothing is consumed.
    tokio::time::sleep(POLL * 3).await;
    assert_eq!(view.events_cursor(), cfg.start_block);
    let mut events = view.subscribe();
    let got = recv_n(&mut events, 1).await;
    assert!(
        matches!(got[0].kind, ChainEventKind::SecretCreated { secret_id, .. } if secret_id == id)
    );
    assert_eq!(got[0].block_number, cfg.start_block);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_or_silent_rpc_denies() {
    let chain = TestChain::start().await;
    let owner = chain.accounts[1];
    let (id, _) = chain.create_secret(owner, b"secret").await;

    // A closed port, with an API key in the path that must not leak.
    let port = closed_port();
    let urls = vec![chain.endpoint(), format!("http://127.0.0.1:{port}/v2/SECRETKEY")];
    let view = ChainView::start(config(&chain, urls)).await.unwrap();
    let expected_url = format!("http://127.0.0.1:{port}");
    let Health::Unavailable(reason) = view.health() else { panic!("healthy with a dead rpc") };
    match &reason {
        Unavailable::Unreachable { url, detail } => {
            assert_eq!(url, &expected_url);
            assert!(!detail.contains("SECRETKEY"), "{detail}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(!format!("{reason} {view:?}").contains("SECRETKEY"));
    let err = view.is_authorized(id, owner).await.unwrap_err();
    assert!(err.is_retryable());
    assert_unavailable(Err::<(), _>(err), |r| matches!(r, Unavailable::Unreachable { .. }));
    assert_unavailable(view.head(), |r| matches!(r, Unavailable::Unreachable { .. }));
    assert_unavailable(view.pinned(), |r| matches!(r, Unavailable::Unreachable { .. }));
    // It stays so on later polls.
    tokio::time::sleep(POLL * 3).await;
    assert_unavailable(view.secret(id).await, |r| matches!(r, Unavailable::Unreachable { .. }));

    // An RPC that accepts connections and never answers: unreachable after rpc_timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let started = Instant::now();
    let view =
        ChainView::start(config(&chain, vec![chain.endpoint(), silent_url.clone()])).await.unwrap();
    assert!(started.elapsed() >= RPC_TIMEOUT);
    match view.health() {
        Health::Unavailable(Unavailable::Unreachable { url, detail }) => {
            assert_eq!(url, silent_url);
            assert!(detail.contains("no answer within"), "{detail}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_unavailable(view.is_authorized(id, owner).await, |_| true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disagreeing_rpcs_deny() {
    let chain = TestChain::start().await;
    let owner = chain.accounts[1];
    let (id, _) = chain.create_secret(owner, b"secret").await;
    // Another chain with the same id: block 1 is an empty block here, a deployment there.
    let other = spawn_anvil(anvil(CHAIN_ID));
    let other_url = other.endpoint();
    let other_provider =
        alloy::providers::ProviderBuilder::new().connect_http(other.endpoint_url());
    other_provider.evm_mine(None).await.unwrap();
    assert_eq!(other_provider.get_block_number().await.unwrap(), 1);

    // Each alone is healthy ...
    let alone = ChainView::start(config(&chain, vec![other_url.clone()])).await.unwrap();
    assert!(alone.health().is_healthy(), "{:?}", alone.health());
    let view = view_of(&chain).await;
    assert!(view.is_authorized(id, owner).await.unwrap());

    // ... together they disagree at the lower head, block 1.
    let both = ChainView::start(config(&chain, vec![chain.endpoint(), other_url])).await.unwrap();
    assert_eq!(both.health(), Health::Unavailable(Unavailable::Disagree { number: 1 }));
    assert_unavailable(both.is_authorized(id, owner).await, |r| {
        matches!(r, Unavailable::Disagree { number: 1 })
    });
    tokio::time::sleep(POLL * 3).await;
    assert_unavailable(both.head(), |r| matches!(r, Unavailable::Disagree { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_chain_id_is_refused_at_start() {
    let chain = TestChain::start().await;
    let other = spawn_anvil(anvil(31_337));
    let err = ChainView::start(config(&chain, vec![chain.endpoint(), other.endpoint()]))
        .await
        .unwrap_err();
    match &err {
        ChainError::Unavailable {
            reason: Unavailable::WrongChainId { url, expected: CHAIN_ID, actual: 31_337 },
        } => assert_eq!(url, &format!("http://localhost:{}", other.port())),
        other => panic!("expected WrongChainId, got {other:?}"),
    }
    assert!(!err.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_head_denies_until_a_fresh_block() {
    // Genesis an hour ago: anvil's blocks keep that offset until told otherwise.
    let hour_ago = unix_now() - 3600;
    let chain = TestChain::deploy(spawn_anvil(
        anvil(CHAIN_ID).arg("--timestamp").arg(hour_ago.to_string()),
    ))
    .await;
    let owner = chain.accounts[1];
    let (id, _) = chain.create_secret(owner, b"secret").await;
    let mut cfg = config(&chain, vec![chain.endpoint()]);
    cfg.max_lag = Duration::from_secs(60);
    let view = ChainView::start(cfg).await.unwrap();
    match view.health() {
        Health::Unavailable(Unavailable::Lagging { age }) => {
            assert!(age >= Duration::from_secs(3500), "{age:?}");
        }
        other => panic!("expected Lagging, got {other:?}"),
    }
    assert_unavailable(view.is_authorized(id, owner).await, |r| {
        matches!(r, Unavailable::Lagging { .. })
    });

    // A block stamped now makes the head fresh again.
    chain.provider.anvil_set_next_block_timestamp(unix_now()).await.unwrap();
    chain.mine().await;
    wait_head(&view, latest(&chain).await).await;
    assert!(view.is_authorized(id, owner).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_max_lag_without_new_blocks_denies() {
    let chain = TestChain::start().await;
    let mut cfg = config(&chain, vec![chain.endpoint()]);
    cfg.max_lag = Duration::from_secs(1);
    chain.mine().await;
    let view = ChainView::start(cfg).await.unwrap();
    // Block timestamps have one-second resolution: the head is stale within about 2 s.
    wait_unavailable(&view, "Lagging", |r| matches!(r, Unavailable::Lagging { .. })).await;
    assert_unavailable(view.is_cluster_active(CLUSTER_ID).await, |_| true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_stepping_back_denies_until_it_catches_up() {
    let chain = TestChain::start().await;
    let owner = chain.accounts[1];
    let (id, _) = chain.create_secret(owner, b"secret").await;
    let view = view_of(&chain).await;
    let snapshot = chain.provider.anvil_snapshot().await.unwrap();
    let base = latest(&chain).await;
    chain.provider.anvil_mine(Some(3), None).await.unwrap();
    wait_head(&view, base + 3).await;

    assert!(chain.provider.anvil_revert(snapshot).await.unwrap());
    assert_eq!(latest(&chain).await, base);
    wait_unavailable(&view, "Behind", |r| {
        matches!(r, Unavailable::Behind { trusted, agreed } if *trusted == base + 3 && *agreed == base)
    })
    .await;
    assert_unavailable(view.is_authorized(id, owner).await, |_| true);

    chain.provider.anvil_mine(Some(3), None).await.unwrap();
    wait_head(&view, base + 3).await;
    assert!(view.is_authorized(id, owner).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_rpc_flips_the_view_within_the_bound() {
    let mut chain = TestChain::start().await;
    let owner = chain.accounts[1];
    let (id, _) = chain.create_secret(owner, b"secret").await;
    let view = view_of(&chain).await;
    wait_head(&view, latest(&chain).await).await;
    let pinned = view.pinned().unwrap();
    assert!(pinned.is_authorized(id, owner).await.unwrap());

    chain.anvil.child_mut().kill().unwrap();
    chain.anvil.child_mut().wait().unwrap();
    let killed = Instant::now();
    wait_health(&view, "unavailable", |h| !h.is_healthy()).await;
    let took = killed.elapsed();
    let bound = view.config().staleness_bound();
    // The bound plus scheduling slack on a shared machine.
    assert!(took <= bound + Duration::from_millis(500), "took {took:?}, bound {bound:?}");
    assert_unavailable(view.is_authorized(id, owner).await, |r| {
        matches!(r, Unavailable::Unreachable { .. } | Unavailable::Stale { .. })
    });
    assert_unavailable(pinned.is_authorized(id, owner).await, |_| true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_view_stops_pinned_handles() {
    let chain = TestChain::start().await;
    let owner = chain.accounts[1];
    let (id, _) = chain.create_secret(owner, b"secret").await;
    let view = view_of(&chain).await;
    let pinned = view.pinned().unwrap();
    let clone = view.clone();
    drop(view);
    assert!(clone.is_authorized(id, owner).await.unwrap(), "a clone keeps the poller");
    drop(clone);
    let deadline = Instant::now() + DEADLINE;
    loop {
        match pinned.is_authorized(id, owner).await {
            Err(ChainError::Unavailable { reason: Unavailable::Stopped }) => break,
            other => assert!(Instant::now() < deadline, "still answering: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eip1271_calls_compare_the_magic_word() {
    let chain = TestChain::start().await;
    let view = view_of(&chain).await;
    // Minimal wallets installed with anvil_setCode, each ignoring its input.
    // magic: mstore(0, shl(224, 0x1626ba7e)); return(0, 32)
    let magic = "631626ba7e60e01b60005260206000f3";
    // the magic value in only 4 returned bytes
    let short = "631626ba7e60e01b60005260046000f3";
    // 32 zero bytes
    let zero = "60206000f3";
    // revert(0, 0)
    let revert = "60006000fd";
    // the magic value with a dirty low byte: mstore(0, or(shl(224, magic), 1))
    let dirty = "631626ba7e60e01b60011760005260206000f3";
    let mut wallets = Vec::new();
    for (i, code) in [magic, short, zero, revert, dirty].into_iter().enumerate() {
        let address = Address::with_last_byte(0xa0 + u8::try_from(i).unwrap());
        let code = Bytes::from(alloy::hex::decode(code).unwrap());
        chain.provider.anvil_set_code(address, code).await.unwrap();
        wallets.push(address);
    }
    chain.mine().await;
    wait_head(&view, latest(&chain).await).await;

    let digest = B256::repeat_byte(7);
    let sig = Bytes::from(vec![1u8; 65]);
    let at = view.pinned().unwrap();
    let answers = [
        at.is_valid_signature_1271(wallets[0], digest, sig.clone()).await.unwrap(),
        at.is_valid_signature_1271(wallets[1], digest, sig.clone()).await.unwrap(),
        at.is_valid_signature_1271(wallets[2], digest, sig.clone()).await.unwrap(),
        at.is_valid_signature_1271(wallets[3], digest, sig.clone()).await.unwrap(),
        at.is_valid_signature_1271(wallets[4], digest, sig.clone()).await.unwrap(),
    ];
    assert_eq!(answers, [true, false, false, false, false]);
    for w in &wallets {
        assert!(at.has_code(*w).await.unwrap());
    }
    // An EOA (no code) never validates; nor does our controller (no such function: revert).
    let owner = chain.accounts[1];
    assert!(!at.is_valid_signature_1271(owner, digest, sig.clone()).await.unwrap());
    let controller = *chain.controller.address();
    assert!(!at.is_valid_signature_1271(controller, digest, sig).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_cached_per_trusted_head() {
    let mut chain = TestChain::start().await;
    let [_, owner, delegate, ..] = chain.accounts[..] else { unreachable!() };
    let (id, _) = chain.create_secret(owner, b"cached").await;
    mined(chain.controller.addDelegate(id, delegate, 0).from(owner).send().await).await;
    let view = view_of(&chain).await;
    wait_head(&view, latest(&chain).await).await;
    let bb = chain.accounts[7];
    let node_id = chain.node_ids[0];
    let controller = *chain.controller.address();

    // The first query at a head goes to the RPC, the second (even through another pinned
    // handle at the same head) does not.
    let at = view.pinned().unwrap();
    let before = view.query_stats();
    assert!(at.is_authorized(id, delegate).await.unwrap());
    assert_eq!(view.query_stats().rpc, before.rpc + 1);
    assert!(at.is_authorized(id, delegate).await.unwrap());
    assert!(view.is_authorized(id, delegate).await.unwrap());
    assert!(!view.is_authorized(id, chain.accounts[4]).await.unwrap());
    let after = view.query_stats();
    assert_eq!(after.rpc, before.rpc + 2, "only the new question went to the RPC");
    assert_eq!(after.cached, before.cached + 2);
    assert_eq!(view.head().unwrap(), at.head(), "no new block in between");

    // Every cached kind of query: one RPC call each, then none.
    let first = (
        view.secret(id).await.unwrap(),
        view.black_box(bb).await.unwrap(),
        view.node(node_id).await.unwrap(),
        view.cluster(CLUSTER_ID).await.unwrap(),
        view.cluster(2).await.unwrap(),
        view.is_cluster_active(CLUSTER_ID).await.unwrap(),
        view.has_code(controller).await.unwrap(),
        view.has_code(owner).await.unwrap(),
    );
    let mid = view.query_stats();
    assert_eq!(mid.rpc, after.rpc + 8);
    let second = (
        view.secret(id).await.unwrap(),
        view.black_box(bb).await.unwrap(),
        view.node(node_id).await.unwrap(),
        view.cluster(CLUSTER_ID).await.unwrap(),
        view.cluster(2).await.unwrap(),
        view.is_cluster_active(CLUSTER_ID).await.unwrap(),
        view.has_code(controller).await.unwrap(),
        view.has_code(owner).await.unwrap(),
    );
    assert_eq!(first, second);
    assert!(first.1.is_some() && first.4.is_none() && first.6 && !first.7);
    let end = view.query_stats();
    assert_eq!(end.rpc, mid.rpc, "all answered from the cache");
    assert_eq!(end.cached, mid.cached + 8);

    // revokeDelegate mined: the next trusted head asks the chain again and answers false.
    let receipt =
        mined(chain.controller.revokeDelegate(id, delegate).from(owner).send().await).await;
    wait_head(&view, receipt.block_number.unwrap()).await;
    let s = view.query_stats();
    assert!(!view.is_authorized(id, delegate).await.unwrap(), "revoked at the new head");
    assert_eq!(view.query_stats().rpc, s.rpc + 1, "a new head is a cold cache");
    // A handle pinned to the old head is no longer served from the cache: it asks the
    // chain at its own block.
    assert!(at.is_authorized(id, delegate).await.unwrap(), "history is pinned");
    assert_eq!(view.query_stats().rpc, s.rpc + 2);
    assert!(!view.is_authorized(id, delegate).await.unwrap());
    assert_eq!(view.query_stats().rpc, s.rpc + 2, "cached at the new head");

    // An unhealthy view serves nothing, not even an answer cached at the same head.
    let held = view.pinned().unwrap();
    assert!(held.is_authorized(id, owner).await.unwrap());
    assert!(held.is_authorized(id, owner).await.unwrap());
    let hits = view.query_stats().cached;
    chain.anvil.child_mut().kill().unwrap();
    chain.anvil.child_mut().wait().unwrap();
    wait_health(&view, "unavailable", |h| !h.is_healthy()).await;
    assert_unavailable(held.is_authorized(id, owner).await, |_| true);
    assert_unavailable(view.is_authorized(id, owner).await, |_| true);
    assert_unavailable(held.black_box(bb).await, |_| true);
    assert_eq!(view.query_stats().cached, hits, "no cached answer served");
}
