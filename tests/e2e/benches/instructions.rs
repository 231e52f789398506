//! The load of `scripts/bench-instructions.sh`: against a running devnet, creates a secret,
//! seals 1 KiB to it, opens it once, then decrypts it `--decryptions N` times in a row
//! through the SDK (EIP-712 form, the system bench's path). Prints `decryptions N`.
//!
//! ```text
//! cargo bench -p cifer-e2e --bench instructions -- --devnet DIR --decryptions N [--settle-ms MS]
//! ```
//!
//! `--settle-ms`: a pause after the set-up (which mines blocks), so that the services'
//! chain views reach the head before the first request and none is answered `future`.
//!
//! The script runs it in three pairs (N1 and N2 decryptions) with the black box, one shard
//! node and this process under callgrind, divides each pair's difference of the instruction
//! counts by `N2 - N1` (what each process executes per decryption, with set-up and start-up
//! cancelled out) and prints the median. Unlike CPU time on a shared VM, that count is
//! nearly the same from one run to the next.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, reason = "bench")]

use std::path::PathBuf;

use cifer_sdk::alloy::signers::local::PrivateKeySigner;
use cifer_sdk::{Client, Endpoints};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut devnet = PathBuf::from(".devnet");
    let mut n: usize = 50;
    let mut settle_ms: u64 = 0;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--devnet" => devnet = it.next().unwrap().into(),
            "--decryptions" => n = it.next().unwrap().parse().unwrap(),
            "--settle-ms" => settle_ms = it.next().unwrap().parse().unwrap(),
            _ => {} // cargo bench passes --bench
        }
    }
    let endpoints = Endpoints::from_devnet_file(&devnet.join("endpoints.json")).unwrap();
    let accounts: Value =
        serde_json::from_str(&std::fs::read_to_string(devnet.join("accounts.json")).unwrap())
            .unwrap();
    let key: PrivateKeySigner =
        accounts["accounts"][1]["privateKey"].as_str().unwrap().parse().unwrap();
    let owner = Client::connect(&endpoints, key).await.unwrap();
    let id = owner.create_secret(endpoints.cluster_id).await.unwrap();
    let data = vec![0x5au8; 1024];
    let sealed = owner.encrypt_bytes(id, &data).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(settle_ms)).await;
    // The first decryption of a secret verifies its commitments in full; later ones hit the
    // black box's memo, as every decryption of the system bench does.
    assert_eq!(owner.decrypt_bytes(&sealed).await.unwrap(), data);
    for _ in 0..n {
        assert_eq!(owner.decrypt_bytes(&sealed).await.unwrap(), data);
    }
    println!("decryptions {n}");
}
