//! A devnet per test: `scripts/devnet.sh up` in a temporary directory on free ports,
//! with handles to kill, restart and stop its processes, and helpers to talk to them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_panics_doc,
    reason = "test harness"
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cifer_sdk::alloy::primitives::Address;
use cifer_sdk::alloy::signers::local::PrivateKeySigner;
use cifer_sdk::{Client, Endpoints};
use serde_json::Value;

/// The repository root.
#[must_use]
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Where the workspace binaries are (`CIFER_BIN_DIR`, else `target/debug`).
#[must_use]
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CIFER_BIN_DIR") {
        return PathBuf::from(d);
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let dir = target.join("debug");
    for b in ["cifer", "cifer-shard-node", "cifer-blackbox"] {
        assert!(
            dir.join(b).is_file(),
            "{} missing: run `cargo build --workspace --all-features --bins` first (make test does)",
            dir.join(b).display()
        );
    }
    dir
}

/// A block of `n` consecutive free loopback ports (checked by binding each), below the
/// kernel's ephemeral range: a port in that range, free when checked, can be taken as
/// the local port of any outgoing connection (another test's, or another service's)
/// before the service that was meant to listen on it binds it.
#[must_use]
pub fn free_ports(n: u16) -> u16 {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32_768);
    let (low, high) =
        if ephemeral_low > 12_000 + n { (10_000, ephemeral_low - n) } else { (50_000, 65_000 - n) };
    for _ in 0..200 {
        let mut seed = [0u8; 2];
        getrandom::fill(&mut seed).unwrap();
        let base = low + u16::from_be_bytes(seed) % (high - low);
        let all_free = (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no block of {n} free ports");
}

/// Options of a devnet.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Black-box replicas (default 1).
    pub replicas: u8,
    /// `BB_DATABASE_URL`.
    pub bb_database_url: Option<String>,
    /// `BB_EXTRA` TOML lines.
    pub bb_extra: String,
    /// `BB_RATE_LIMIT` / `BB_RATE_WINDOW_MS`: decryptions per signer and window.
    pub bb_rate_limit: Option<(u32, u64)>,
}

/// A running devnet; stopped (and its processes killed) on drop.
pub struct Devnet {
    /// Its state directory.
    pub dir: tempfile::TempDir,
    /// Anvil's port (nodes at +1..+5, black boxes at +10..).
    pub port: u16,
    /// What `endpoints.json` says.
    pub endpoints: Endpoints,
    /// The raw `endpoints.json`.
    pub endpoints_json: Value,
    /// Dev accounts: `(address, private key)` by index.
    pub accounts: Vec<(Address, String)>,
    env: HashMap<String, String>,
}

impl Devnet {
    /// Starts one (takes a few seconds: anvil, deploy script, six processes).
    pub fn up(options: &Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_ports(16);
        let mut env = HashMap::new();
        env.insert("DEVNET_DIR".to_owned(), dir.path().display().to_string());
        env.insert("DEVNET_PORT".to_owned(), port.to_string());
        env.insert("BIN_DIR".to_owned(), bin_dir().display().to_string());
        env.insert("BB_REPLICAS".to_owned(), options.replicas.max(1).to_string());
        env.insert("BB_EXTRA".to_owned(), options.bb_extra.clone());
        // The services log every decision (debug lines included), so the tests that read
        // the logs (no secret in them) see every line a deployment could be set to write.
        env.insert(
            "RUST_LOG".to_owned(),
            "info,cifer_blackbox=debug,cifer_shard_node=debug".to_owned(),
        );
        if let Some((limit, window_ms)) = options.bb_rate_limit {
            env.insert("BB_RATE_LIMIT".to_owned(), limit.to_string());
            env.insert("BB_RATE_WINDOW_MS".to_owned(), window_ms.to_string());
        }
        if let Some(url) = &options.bb_database_url {
            env.insert("BB_DATABASE_URL".to_owned(), url.clone());
        }
        let mut devnet = Self {
            dir,
            port,
            endpoints: Endpoints {
                chain_id: 0,
                rpc_url: String::new(),
                black_box_url: String::new(),
                secrets_controller: Address::ZERO,
                cluster_registry: Address::ZERO,
                cluster_id: 1,
            },
            endpoints_json: Value::Null,
            accounts: Vec::new(),
            env,
        };
        let out = devnet.script(&["up"]);
        assert!(
            out.status.success(),
            "devnet up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let read = |name: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(devnet.dir.path().join(name)).unwrap())
                .unwrap()
        };
        devnet.endpoints_json = read("endpoints.json");
        devnet.endpoints = serde_json::from_value(devnet.endpoints_json.clone()).unwrap();
        devnet.accounts = read("accounts.json")["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["address"].as_str().unwrap().parse().unwrap(),
                    a["privateKey"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        devnet
    }

    fn script(&self, args: &[&str]) -> std::process::Output {
        Command::new("bash")
            .arg(root().join("scripts/devnet.sh"))
            .args(args)
            .envs(&self.env)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The SDK client of dev account `i`.
    pub async fn client(&self, i: usize) -> Client {
        let key: PrivateKeySigner = self.accounts[i].1.parse().unwrap();
        Client::connect(&self.endpoints, key).await.unwrap()
    }

    /// The SDK client of dev account `i` against black-box replica `r` (1-based).
    pub async fn client_of_replica(&self, i: usize, r: u16) -> Client {
        let key: PrivateKeySigner = self.accounts[i].1.parse().unwrap();
        let mut e = self.endpoints.clone();
        e.black_box_url = self.black_box_url(r);
        Client::connect(&e, key).await.unwrap()
    }

    /// Black-box replica `r`'s base URL (1-based).
    #[must_use]
    pub fn black_box_url(&self, r: u16) -> String {
        format!("http://127.0.0.1:{}", self.port + 9 + r)
    }

    /// Node `i`'s base URL (1-based).
    #[must_use]
    pub fn node_url(&self, i: u16) -> String {
        format!("http://127.0.0.1:{}", self.port + i)
    }

    fn pids(&self) -> HashMap<String, u32> {
        std::fs::read_to_string(self.dir.path().join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.split_once(' ').map(|(n, p)| (n.to_owned(), p.trim().parse().unwrap()))
            })
            .collect()
    }

    /// Sends `signal` to the process `name` (`node3`, `blackbox1`, `anvil`) and waits
    /// until it took effect: gone (or a zombie) for `KILL`, `TERM` and `INT`, stopped for
    /// `STOP`; `CONT` and others return at once.
    pub fn signal(&self, name: &str, signal: &str) {
        let pid = self.pids()[name];
        let ok =
            Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
        assert!(ok.success(), "kill -{signal} {name}");
        let state = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()))
        };
        let done: fn(Option<char>) -> bool = match signal {
            "KILL" | "TERM" | "INT" => |s| matches!(s, None | Some('Z')),
            "STOP" => |s| matches!(s, None | Some('T')),
            _ => return,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(state()) {
            assert!(Instant::now() < deadline, "{name} did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Restarts node `i` with its config (and database), waiting until it is healthy.
    pub async fn restart_node(&self, i: u16) {
        let config = self.dir.path().join(format!("node{i}/node.toml"));
        let log = std::fs::File::options()
            .append(true)
            .create(true)
            .open(self.dir.path().join(format!("node{i}.log")))
            .unwrap();
        let child = Command::new(bin_dir().join("cifer-shard-node"))
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", &self.env["RUST_LOG"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut pids = std::fs::read_to_string(self.dir.path().join("pids")).unwrap();
        pids.push_str(&format!("node{i} {}\n", child.id()));
        std::fs::write(self.dir.path().join("pids"), pids).unwrap();
        std::mem::forget(child);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = http
                .get(format!("{}/health", self.node_url(i)))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node{i} did not come back:\n{}",
                self.log(&format!("node{i}"))
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A process's log.
    #[must_use]
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Runs the `cifer` CLI with this devnet's endpoints.
    #[must_use]
    pub fn cifer(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin_dir().join("cifer"))
            .args(args)
            .env("CIFER_ENDPOINTS", self.dir.path().join("endpoints.json"))
            .env_remove("CIFER_PRIVATE_KEY")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Runs `cast` (from node_modules) with `args`.
    #[must_use]
    pub fn cast(args: &[&str]) -> String {
        let out = Command::new(root().join("node_modules/.bin/cast")).args(args).output().unwrap();
        assert!(out.status.success(), "cast {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.script(&["down"]);
    }
}

/// `POST url` with a JSON body: `(status, body)`.
pub async fn post(url: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new().post(url).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `GET url`: `(status, body)`.
pub async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::Client::new().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The error code of a refusal body.
#[must_use]
pub fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// A Prometheus counter's value (sum over label sets matching `name` and `labels`).
pub async fn metric(url: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
