//! An acknowledged write survives `kill -9`: a child process (this test binary, running
//! the ignored `child_writer`) stores fragments, claims replay keys and appends audit
//! entries on an SQLite file, printing `ACK <i>` after each `Ok`; the parent SIGKILLs it
//! mid-stream and checks that everything acknowledged is there and the audit chain is
//! whole.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use cifer_store::testing as harness;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use cifer_store::{AuditEntry, AuditKind, PutOutcome, SealingKey, Store};

const DB_ENV: &str = "CIFER_KILL9_DB";
const KEY_ENV: &str = "CIFER_KILL9_KEY";
const ACKS_BEFORE_KILL: u32 = 25;

fn replay_key(i: u32) -> [u8; 32] {
    let mut k = [0x42; 32];
    k[..4].copy_from_slice(&i.to_be_bytes());
    k
}

fn secret(i: u32) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[28..].copy_from_slice(&i.to_be_bytes());
    s
}

#[tokio::test]
#[ignore = "child process of acknowledged_writes_survive_kill_9"]
async fn child_writer() {
    let (Ok(db), Ok(key_hex)) = (std::env::var(DB_ENV), std::env::var(KEY_ENV)) else {
        return;
    };
    let mut key = [0u8; 32];
    hex::decode_to_slice(key_hex, &mut key).unwrap();
    let store = Store::open_sqlite(db, SealingKey::from_bytes(key)).await.unwrap();
    let (c, f) = harness::sharing();
    let mut out = std::io::stdout();
    for i in 0u32.. {
        let rec = harness::record(1, secret(i), &c, &f[0]);
        assert_eq!(store.put_fragment(&rec).await.unwrap(), PutOutcome::Stored);
        assert!(store.claim_replay(replay_key(i), 10).await.unwrap());
        store
            .append_audit(AuditEntry {
                kind: AuditKind::Store,
                chain_id: 1,
                secret_id: secret(i),
                actor: [1; 20],
                digest: [2; 32],
                code: "stored".into(),
            })
            .await
            .unwrap();
        writeln!(out, "ACK {i}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shard.db");
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--ignored", "--nocapture", "--test-threads=1"])
        .env(DB_ENV, &db)
        .env(KEY_ENV, hex::encode(key))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ACK ") {
            let n: u32 = n.parse().unwrap();
            acked = Some(n);
            if n + 1 >= ACKS_BEFORE_KILL {
                // SIGKILL, mid-stream: the child is already working on the next write.
                child.kill().unwrap();
                break;
            }
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed");
    let last = acked.expect("the child acknowledged writes");

    let store = Store::open_sqlite(&db, SealingKey::from_bytes(key)).await.unwrap();
    for i in 0..=last {
        let got = store.get_fragment(1, secret(i)).await.unwrap();
        let got = got.unwrap_or_else(|| panic!("acknowledged fragment {i} lost"));
        got.commitments.verify(&got.fragment).unwrap();
        assert!(!store.claim_replay(replay_key(i), 10).await.unwrap(), "replay key {i} lost");
    }
    let head = store.verify_audit().await.unwrap();
    assert!(head.seq > u64::from(last), "audit entries lost: head {}", head.seq);
    store.close().await;
}
