//! The whole-system benchmark (issues 5 and 6): run against a devnet started by
//! `scripts/bench-system.sh` (release binaries). Prints `name value` lines that can be
//! diffed between commits.
//!
//! ```text
//! cargo bench -p cifer-e2e --bench system -- --devnet DIR [--clients 32] [--seconds 20] [--samples 300]
//! ```
//!
//! - decrypt latency at low load: one client, `--samples` sequential requests, each the
//!   SDK's full path (head from its RPC, a fresh response key, EIP-712 signature, the black
//!   box's checks and fan-out to five nodes, the reply opened, the data decrypted);
//! - sustained decryptions/s with `--clients` concurrent clients (distinct delegates) for
//!   `--seconds`, errors counted, the services' RSS before, half-way and after (growth
//!   in the second half is what "flat under sustained load" is about: the first half
//!   includes warming caches and SQLite's page cache), and the CPU time
//!   per decryption of every process (black box, each node, anvil, this load generator)
//!   over that phase, from `/proc/<pid>/stat`;
//! - encrypt latency of 1 KiB, with the key in hand and through the SDK (key fetched and
//!   checked on chain).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "bench"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cifer_sdk::alloy::signers::local::PrivateKeySigner;
use cifer_sdk::{Client, Endpoints};
use serde_json::Value;

struct Args {
    devnet: PathBuf,
    clients: usize,
    seconds: u64,
    samples: usize,
}

fn args() -> Args {
    let mut a = Args { devnet: PathBuf::from(".devnet"), clients: 32, seconds: 20, samples: 300 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--devnet" => a.devnet = it.next().unwrap().into(),
            "--clients" => a.clients = it.next().unwrap().parse().unwrap(),
            "--seconds" => a.seconds = it.next().unwrap().parse().unwrap(),
            "--samples" => a.samples = it.next().unwrap().parse().unwrap(),
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// The devnet's processes as `(name, pid)`, from the `pids` file `devnet.sh` writes.
fn devnet_pids(devnet: &std::path::Path) -> Vec<(String, String)> {
    let pids = std::fs::read_to_string(devnet.join("pids")).unwrap_or_default();
    pids.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(name, pid)| (name.to_owned(), pid.trim().to_owned()))
        .collect()
}

fn rss_kib(devnet: &std::path::Path) -> Vec<(String, u64)> {
    devnet_pids(devnet)
        .into_iter()
        .filter(|(name, _)| name != "anvil")
        .map(|(name, pid)| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let kib = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
            (name, kib)
        })
        .collect()
}

/// CPU time (user + system) so far of every devnet process (anvil included) and of this
/// load generator, in clock ticks, by name.
fn cpu_ticks(devnet: &std::path::Path) -> Vec<(String, u64)> {
    let ticks = |pid: &str| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which is in parentheses and may hold spaces),
        // from the state on: utime and stime are the 12th and 13th (proc(5)).
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        field(11) + field(12)
    };
    let mut out: Vec<(String, u64)> =
        devnet_pids(devnet).into_iter().map(|(name, pid)| (name, ticks(&pid))).collect();
    out.push(("loadgen".to_owned(), ticks("self")));
    out
}

/// Clock ticks per second of `/proc/*/stat` (`getconf CLK_TCK`; 100 on Linux x86-64).
fn clock_ticks_per_s() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The black box's release-queue counters: batches sent, requests they carried, requests
/// withdrawn unsent.
async fn release_counters(black_box: &str) -> [f64; 3] {
    let text = reqwest::get(format!("{black_box}/metrics")).await.unwrap().text().await.unwrap();
    let read = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    [
        read("cifer_bb_release_batches_total"),
        read("cifer_bb_release_items_total"),
        read("cifer_bb_release_items_withdrawn_total"),
    ]
}

async fn client(endpoints: &Endpoints, key: PrivateKeySigner) -> Client {
    Client::connect(endpoints, key).await.unwrap()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a = args();
    let endpoints = Endpoints::from_devnet_file(&a.devnet.join("endpoints.json")).unwrap();
    let accounts: Value =
        serde_json::from_str(&std::fs::read_to_string(a.devnet.join("accounts.json")).unwrap())
            .unwrap();
    let owner_key: PrivateKeySigner =
        accounts["accounts"][1]["privateKey"].as_str().unwrap().parse().unwrap();
    let owner = client(&endpoints, owner_key).await;
    let id = owner.create_secret(endpoints.cluster_id).await.unwrap();
    let data = vec![0x5au8; 1024];
    let sealed = owner.encrypt_bytes(id, &data).await.unwrap();
    let prefix = cifer_core::envelope::read_prefix(&mut &sealed[..]).unwrap();

    // Warm up, then latency at low load.
    for _ in 0..20 {
        owner.decrypt_bytes(&sealed).await.unwrap();
    }
    let mut lat = Vec::with_capacity(a.samples);
    for _ in 0..a.samples {
        let t = Instant::now();
        let plain = owner.decrypt_bytes(&sealed).await.unwrap();
        lat.push(t.elapsed());
        assert_eq!(plain, data);
    }
    lat.sort_unstable();
    println!("decrypt_1kib_latency_p50_ms {:.2}", percentile(&lat, 0.5));
    println!("decrypt_1kib_latency_p99_ms {:.2}", percentile(&lat, 0.99));
    // The part of that latency which is the client asking its RPC for the head.
    let mut head = Vec::with_capacity(a.samples);
    for _ in 0..a.samples {
        let t = Instant::now();
        owner.block_number().await.unwrap();
        head.push(t.elapsed());
    }
    head.sort_unstable();
    println!("client_head_rpc_p50_ms {:.2}", percentile(&head, 0.5));

    // Encrypt latency.
    let key = owner.public_key(id).await.unwrap();
    let header = prefix.header();
    let mut enc = Vec::with_capacity(a.samples);
    for _ in 0..a.samples {
        let t = Instant::now();
        let _ = cifer_core::envelope::seal(&key, *header, &data).unwrap();
        enc.push(t.elapsed());
    }
    enc.sort_unstable();
    println!("encrypt_1kib_key_in_hand_p50_us {:.1}", percentile(&enc, 0.5) * 1e3);
    let mut enc_sdk = Vec::with_capacity(50);
    for _ in 0..50 {
        let t = Instant::now();
        let _ = owner.encrypt_bytes(id, &data).await.unwrap();
        enc_sdk.push(t.elapsed());
    }
    enc_sdk.sort_unstable();
    println!("encrypt_1kib_sdk_with_key_fetch_p50_ms {:.2}", percentile(&enc_sdk, 0.5));

    // Sustained load: distinct delegates, one client each.
    let mut clients = Vec::with_capacity(a.clients);
    for _ in 0..a.clients {
        let key = PrivateKeySigner::random();
        owner.add_delegate(id, key.address(), 0).await.unwrap();
        clients.push(client(&endpoints, key).await);
    }
    for c in &clients {
        c.decrypt_bytes(&sealed).await.unwrap();
    }
    let before = rss_kib(&a.devnet);
    let cpu_before = cpu_ticks(&a.devnet);
    let queues_before = release_counters(&endpoints.black_box_url).await;
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let started = Instant::now();
    let devnet = a.devnet.clone();
    let half = tokio::spawn(async move {
        tokio::time::sleep_until((started + (deadline - started) / 2).into()).await;
        rss_kib(&devnet)
    });
    let mut tasks = Vec::new();
    for c in clients {
        let (ok, errors, sealed) = (Arc::clone(&ok), Arc::clone(&errors), sealed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match c.decrypt_bytes(&sealed).await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("error: {e}");
                        }
                        0
                    }
                };
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu_after = cpu_ticks(&a.devnet);
    let after = rss_kib(&a.devnet);
    let queues_after = release_counters(&endpoints.black_box_url).await;
    let half = half.await.unwrap();
    println!("sustained_clients {}", a.clients);
    println!("sustained_decryptions_per_s {:.0}", ok.load(Ordering::Relaxed) as f64 / secs);
    println!("sustained_errors {}", errors.load(Ordering::Relaxed));
    // How the node queues batched: requests per `POST /v1/releases`, and the share of
    // queued requests withdrawn unsent (their decryption had its three fragments).
    let [batches, items, withdrawn] = [0, 1, 2].map(|i| queues_after[i] - queues_before[i]);
    println!("sustained_release_batch_mean {:.2}", items / batches.max(1.0));
    println!("sustained_release_withdrawn_share {:.3}", withdrawn / (items + withdrawn).max(1.0));
    for (((name, b), (_, h)), (_, af)) in before.iter().zip(&half).zip(&after) {
        println!("rss_kib_{name} before={b} half={h} after={af}");
    }
    // CPU per decryption over the sustained phase, by process: what bounds decryptions/s
    // when every process shares the machine.
    let done = ok.load(Ordering::Relaxed).max(1) as f64;
    let ms_per_tick = 1e3 / clock_ticks_per_s();
    let (mut nodes, mut services, mut loadgen, mut total) = (0.0, 0.0, 0.0, 0.0);
    for ((name, b), (_, af)) in cpu_before.iter().zip(&cpu_after) {
        let ms = af.saturating_sub(*b) as f64 * ms_per_tick / done;
        println!("cpu_ms_per_decryption_{name} {ms:.3}");
        let node = name.starts_with("node");
        if node {
            nodes += ms;
        }
        if node || name.starts_with("blackbox") {
            services += ms;
        }
        if name == "loadgen" {
            loadgen = ms;
        }
        total += ms;
    }
    println!("cpu_ms_per_decryption_nodes {nodes:.3}");
    println!("cpu_ms_per_decryption_total {total:.3}");
    // The services' CPU over the load generator's: the load generator's work per
    // decryption is the same from one commit to the next, so its CPU follows the VM's
    // speed, which varies by ±15 % between runs on a shared VM; the ratio varies less and
    // is what to compare between commits (docs/benchmarks.md, the sixth VM).
    if loadgen > 0.0 {
        println!("cpu_services_over_loadgen {:.2}", services / loadgen);
    }
}
