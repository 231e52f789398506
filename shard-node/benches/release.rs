//! Release throughput of the real node process (issue 4, "Speed"): prints figures, asserts
//! nothing about time.
//!
//! ```sh
//! cargo bench -p cifer-shard-node --bench release -- --requests 4000 --concurrency 16
//! cargo bench -p cifer-shard-node --bench release -- --requests 4000 --concurrency 2 --batch 10
//! ```
//!
//! With `--batch B` (B > 1) the requests go `B` at a time to `POST /v1/releases`, as the
//! black box sends them under load, and latencies are per batch.
//!
//! Starts anvil with the contracts deployed (`cifer_bindings::test_utils`), the node binary
//! built with the bench (release) profile on an SQLite file in a temp dir, delivers one
//! fragment, pre-signs `requests` distinct typed release requests by the secret's owner
//! (random nonces, all at the current head, inside the freshness window; the rate limit
//! is raised so it does not bind), then posts them with `concurrency` HTTP clients and
//! prints throughput, latency percentiles, errors, the node's RSS and CPU time. The chain
//! state is warm: a short warm-up fills the node's per-head query cache first. Then it times
//! the per-release pieces in this process: signature recoveries, `seal_release`, and the
//! two durable SQLite writes a release makes (replay claim, audit append).
//!
//! The load generator, the node and anvil share the machine: `releases_per_node_cpu_s`
//! (releases divided by the node process's CPU time) is the per-core figure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    missing_docs,
    reason = "benchmark"
)]

#[path = "../tests/node/mod.rs"]
mod node;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cifer_bindings::test_utils::CHAIN_ID;
use cifer_custody::seal_release;
use cifer_store::{AuditEntry, AuditKind, FragmentRecord, SealingKey, Store};
use node::{Fixture, NodeProcess, Release, UserRequest, delivery, free_port, post};

struct Args {
    requests: usize,
    concurrency: usize,
    warmup: usize,
    batch: usize,
}

fn parse_args() -> Option<Args> {
    let mut args = Args { requests: 4000, concurrency: 16, warmup: 100, batch: 1 };
    let mut bench = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a positive integer"))
        };
        match a.as_str() {
            "--bench" => bench = true,
            "--requests" => args.requests = value("--requests").max(1),
            "--concurrency" => args.concurrency = value("--concurrency").max(1),
            "--batch" => args.batch = value("--batch").clamp(1, 32),
            "--warmup" => args.warmup = value("--warmup"),
            other => {
                panic!(
                    "unknown argument {other}; use --requests N --concurrency C [--warmup W] [--batch B]"
                )
            }
        }
    }
    // `cargo test --all-targets` runs bench targets without `--bench`: do nothing then.
    bench.then_some(args)
}

/// The node's chain queries so far: (sent to the RPC, answered from the cache).
async fn chain_queries(http: &reqwest::Client, node: &NodeProcess) -> (u64, u64) {
    let text = http.get(node.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let get = |source: &str| {
        let prefix =
            format!("cifer_chain_queries_total{{chain_id=\"{CHAIN_ID}\",source=\"{source}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("rpc"), get("cache"))
}

/// `VmRSS` of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User and system CPU time of `pid` in seconds (clock ticks of 100 Hz).
fn cpu_s(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) as f64;
    (tick(11) / 100.0, tick(12) / 100.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// Mean time of `f` over `n` runs, in µs.
fn time_us(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

async fn time_async_us<F: Future<Output = ()>>(n: u32, mut f: impl FnMut(u32) -> F) -> f64 {
    let t = Instant::now();
    for i in 0..n {
        f(i).await;
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let Some(args) = parse_args() else {
        eprintln!("release bench: run with `cargo bench -p cifer-shard-node --bench release`");
        return;
    };
    let f = Fixture::new().await;
    let port = free_port();
    let window = 4096;
    let extra = "[rate_limit]\nburst = 4000000000\nper_second = 1000000000.0\n";
    let config = f.write_config("node.toml", port, &f.sqlite_url(), window, extra, &[]);
    let mut node = NodeProcess::spawn(&config, port);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .unwrap();
    node.wait_healthy(&http, f.latest().await).await;

    let (owner, owner_key) = f.owner();
    let bundle = f.bundle();
    let secret_id = f.create_secret(owner, &bundle).await;
    let head = f.latest().await;
    node.wait_healthy(&http, head).await;
    let r =
        post(&http, &node.url("/v1/fragments"), &delivery(secret_id, f.bb_account, &bundle)).await;
    assert_eq!(r.0, 201, "delivery: {}", r.1);

    // Pre-signed, pre-serialized requests: distinct nonces, all at `head`; with `--batch`,
    // grouped into batches under one black-box signature each.
    let total = args.warmup + args.requests;
    let t = Instant::now();
    let releases: Vec<Release> = (0..total)
        .map(|_| {
            let request = UserRequest::typed(&f, secret_id, owner, head);
            Release::new(request, &owner_key, f.bb_account, &f.bb_key)
        })
        .collect();
    let group = |releases: &[Release]| -> Vec<(String, usize)> {
        if args.batch == 1 {
            return releases.iter().map(|r| (r.json().to_string(), 1)).collect();
        }
        releases
            .chunks(args.batch)
            .map(|c| {
                let items: Vec<&Release> = c.iter().collect();
                (node::batch(&items, f.bb_account, &f.bb_key).to_string(), c.len())
            })
            .collect()
    };
    let (warm, timed) = releases.split_at(args.warmup);
    let (warm, timed) = (group(warm), group(timed));
    drop(releases);
    eprintln!("signed {total} requests in {:.1} s", t.elapsed().as_secs_f64());

    let url = node.url(if args.batch == 1 { "/v1/release" } else { "/v1/releases" });
    // Each result: (latency of the exchange, requests released, requests sent).
    let fire = |bodies: Vec<(String, usize)>, concurrency: usize| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let bodies = Arc::new(bodies);
            let next = Arc::new(AtomicUsize::new(0));
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..concurrency {
                let (http, url, bodies, next) =
                    (http.clone(), url.clone(), Arc::clone(&bodies), Arc::clone(&next));
                tasks.spawn(async move {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((body, n)) = bodies.get(i) else { break };
                        let t = Instant::now();
                        let r = http
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        let released = match r {
                            Ok(r) if r.status().as_u16() == 200 => {
                                let bytes = r.bytes().await.unwrap_or_default();
                                if *n == 1 && !bytes.starts_with(b"{\"results\"") {
                                    1
                                } else {
                                    let v: serde_json::Value =
                                        serde_json::from_slice(&bytes).unwrap_or_default();
                                    v["results"].as_array().map_or(0, |a| {
                                        a.iter().filter(|r| r["status"] == 200).count()
                                    })
                                }
                            }
                            Ok(r) => {
                                let _ = r.bytes().await;
                                0
                            }
                            Err(_) => 0,
                        };
                        out.push((t.elapsed(), released, *n));
                    }
                    out
                });
            }
            let mut all = Vec::new();
            while let Some(r) = tasks.join_next().await {
                all.extend(r.unwrap());
            }
            all
        }
    };

    let warmed = fire(warm, args.concurrency.min(4)).await;
    let warm_errors: usize = warmed.iter().map(|(_, ok, n)| n - ok).sum();
    let pid = node.pid().unwrap();
    let queries_before = chain_queries(&http, &node).await;
    let rss_before = rss_kib(pid);
    let cpu_before = cpu_s(pid);
    let t = Instant::now();
    let results = fire(timed, args.concurrency).await;
    let wall = t.elapsed().as_secs_f64();
    let cpu_after = cpu_s(pid);
    let (user, sys) = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
    let cpu = user + sys;
    let rss_after = rss_kib(pid);
    let queries_after = chain_queries(&http, &node).await;

    let ok: usize = results.iter().map(|(_, ok, _)| ok).sum();
    let mut latencies: Vec<Duration> = results.iter().map(|(d, _, _)| *d).collect();
    latencies.sort();
    println!("== release over HTTP (real node, SQLite, warm chain state) ==");
    println!("requests              {}", args.requests);
    println!("concurrency           {}", args.concurrency);
    println!("batch                 {} (latencies are per exchange)", args.batch);
    println!("warmup                {} ({warm_errors} errors)", args.warmup);
    println!("wall_s                {wall:.3}");
    println!("releases_per_s        {:.0}", ok as f64 / wall);
    println!("p50_ms                {:.2}", percentile(&latencies, 0.50));
    println!("p90_ms                {:.2}", percentile(&latencies, 0.90));
    println!("p99_ms                {:.2}", percentile(&latencies, 0.99));
    println!("max_ms                {:.2}", percentile(&latencies, 1.0));
    println!("errors                {}", args.requests - ok);
    println!("node_cpu_s            {cpu:.2} (user {user:.2}, sys {sys:.2})");
    println!("releases_per_node_cpu_s {:.0}", if cpu > 0.0 { ok as f64 / cpu } else { f64::NAN });
    println!(
        "chain_queries         rpc {} cache {} (during the timed run)",
        queries_after.0 - queries_before.0,
        queries_after.1 - queries_before.1
    );
    println!("node_rss_before_kib   {rss_before}");
    println!("node_rss_after_kib    {rss_after}");
    node.terminate();

    pieces().await;
}

/// The per-release pieces, in this process.
async fn pieces() {
    println!("== per-release pieces, in process (mean µs/op) ==");
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).unwrap();
    key[0] = 1; // below the curve order
    let user = k256::ecdsa::SigningKey::from_slice(&key).unwrap();
    let request = cifer_auth::TypedRequest {
        chain_id: CHAIN_ID,
        verifying_contract: [7; 20],
        secret_id: [1; 32],
        requester: cifer_auth::ecdsa::address_from_public_key(
            user.verifying_key().to_sec1_point(false).as_bytes(),
        )
        .unwrap(),
        block_number: 1,
        envelope_hash: [0x11; 32],
        response_key_hash: [0x22; 32],
        nonce: [3; 32],
    };
    let signature = cifer_custody::sign_digest(&user, &request.digest()).unwrap();
    let us = time_us(2000, || {
        std::hint::black_box(cifer_auth::verify_eoa(request, &signature).unwrap());
    });
    println!("verify_eoa (EIP-712 digest + recovery)  {us:.1}");
    let digest = request.digest();
    let sig = cifer_auth::ecdsa::Signature::from_bytes(&signature).unwrap();
    let us = time_us(2000, || {
        std::hint::black_box(sig.recover_address(&digest).unwrap());
    });
    println!("ecdsa recover_address                   {us:.1}");

    let seed = cifer_core::Seed::generate_os().unwrap();
    let (commitments, fragments) =
        cifer_core::fragment::split(&seed, 3, 5, &mut cifer_core::os_rng()).unwrap();
    let response = cifer_core::Seed::generate_os().unwrap().encapsulation_key();
    let response_bytes = response.as_bytes().to_vec();
    let us = time_us(500, || {
        std::hint::black_box(
            seal_release(CHAIN_ID, [1; 32], &fragments[1], &commitments, &[9; 65], &response)
                .unwrap(),
        );
    });
    println!("seal_release (ML-KEM-768 + AES-GCM)     {us:.1}");
    let us = time_us(2000, || {
        std::hint::black_box(cifer_core::EncapsulationKey::from_bytes(&response_bytes).unwrap());
    });
    println!("parse response key                      {us:.1}");

    // The durable writes, on an SQLite file beside the node's (same filesystem).
    let dir = tempfile::tempdir().unwrap();
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).unwrap();
    let store =
        Store::open_sqlite(dir.path().join("bench.db"), SealingKey::from_bytes(k)).await.unwrap();
    let us = time_async_us(500, |i| {
        let store = store.clone();
        async move {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&i.to_be_bytes());
            assert!(store.claim_replay(key, 100).await.unwrap());
        }
    })
    .await;
    println!("claim_replay (1 fsynced commit)         {us:.1}");
    let us = time_async_us(500, |_| {
        let store = store.clone();
        async move {
            let entry = AuditEntry {
                kind: AuditKind::Release,
                chain_id: CHAIN_ID,
                secret_id: [1; 32],
                actor: [2; 20],
                digest: [3; 32],
                code: "released".into(),
            };
            store.append_audit(entry).await.unwrap();
        }
    })
    .await;
    println!("append_audit (1 fsynced commit)         {us:.1}");
    let us = time_async_us(500, |i| {
        let store = store.clone();
        async move {
            let mut key = [0xcc; 32];
            key[..4].copy_from_slice(&i.to_be_bytes());
            let entry = AuditEntry {
                kind: AuditKind::Release,
                chain_id: CHAIN_ID,
                secret_id: [1; 32],
                actor: [2; 20],
                digest: [3; 32],
                code: "released".into(),
            };
            assert!(
                store
                    .claim_replay_and_append_audit(key, 100, move || entry)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    })
    .await;
    println!("claim + audit (1 fsynced commit)        {us:.1}");
    // Sixteen tasks claiming at once: SQLite commits one writer at a time, each fsynced.
    let n = 2000u32;
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..16u32 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in (task..n).step_by(16) {
                let mut key = [0xee; 32];
                key[..4].copy_from_slice(&i.to_be_bytes());
                assert!(store.claim_replay(key, 100).await.unwrap());
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let per_s = f64::from(n) / t.elapsed().as_secs_f64();
    println!("claim_replay x16 concurrent             {per_s:.0} commits/s");
    let record = FragmentRecord {
        chain_id: CHAIN_ID,
        secret_id: [1; 32],
        ek_hash: [4; 32],
        commitments: commitments.clone(),
        fragment: fragments[1].clone(),
        bundle_signature: Some([9; 65]),
    };
    assert_eq!(store.put_fragment(&record).await.unwrap(), cifer_store::PutOutcome::Stored);
    let us = time_async_us(1000, |_| {
        let store = store.clone();
        async move {
            std::hint::black_box(store.get_fragment(CHAIN_ID, [1; 32]).await.unwrap().unwrap());
        }
    })
    .await;
    println!("get_fragment (read + unseal + decode)   {us:.1}");
    let wire = commitments.to_bytes();
    let us = time_us(1000, || {
        std::hint::black_box(cifer_core::Commitments::from_bytes(&wire).unwrap());
    });
    println!("  of which Commitments::from_bytes      {us:.1}");
    store.close().await;
}
