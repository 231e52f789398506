//! Byte-exact known-answer vectors of PROTOCOL.md v1 envelopes, made from fixed
//! randomness (the `hazmat` feature). `tests/vectors/envelope_v1.json` is the committed
//! snapshot; `CIFER_UPDATE_VECTORS=1` rewrites it (review the diff: a change here is a
//! wire-format change). `tests/interop/verify_vectors.py` re-derives every key and opens
//! every chunk with an independent implementation (Python `cryptography`).
#![cfg(feature = "hazmat")]
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "tests"
)]

use cifer_core::{Header, Seed, Suite, envelope, stream};
use serde_json::{Value, json};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/envelope_v1.json");

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 256) as u8).collect()
}

fn build() -> Value {
    let seed = Seed::from_bytes(core::array::from_fn(|i| i as u8));
    let ek = seed.encapsulation_key();
    let mut cases = Vec::new();
    for (name, chunk_log2, pt, m_byte) in [
        ("empty", 10u8, Vec::new(), 0x42u8),
        ("hello", 16, b"hello".to_vec(), 0x43),
        ("one-full-chunk", 10, pattern(1024), 0x44),
        ("three-chunks", 10, pattern(2500), 0x45),
    ] {
        let mut secret_id = [0u8; 32];
        secret_id[31] = 7;
        let header = Header::new(Suite::MlKem768, chunk_log2, 31337, secret_id).unwrap();
        let m = [m_byte; 32];
        let (ct, ss) = ek.encapsulate_deterministic(&m);
        let (prefix, key) = envelope::begin_deterministic(&ek, header, &m).unwrap();
        assert_eq!(prefix.encapsulation(), &ct[..]);
        let mut out = prefix.as_bytes().to_vec();
        let sealer =
            stream::ChunkSealer::new(&key, &prefix, cifer_core::Backend::RustCrypto).unwrap();
        stream::seal_stream(sealer, &mut &pt[..], &mut out).unwrap();
        assert_eq!(envelope::open(&seed, &out).unwrap(), pt);
        cases.push(json!({
            "name": name,
            "chain_id": 31337,
            "secret_id": hex::encode(secret_id),
            "chunk_log2": chunk_log2,
            "m": hex::encode(m),
            "header": hex::encode(prefix.header_bytes()),
            "shared_secret": hex::encode(ss.as_bytes()),
            "stream_key": hex::encode(&key.to_bytes()[..]),
            "envelope_hash": hex::encode(prefix.envelope_hash()),
            "plaintext": hex::encode(&pt),
            "envelope": hex::encode(&out),
        }));
    }
    json!({
        "description": "CIFER protocol v1 suite 0x01 envelopes from fixed randomness",
        "seed": hex::encode(seed.as_bytes()),
        "identity_file": &*seed.to_identity_file(),
        "recipient_file": ek.to_recipient_file(),
        "ek_keccak256": hex::encode(ek.keccak256()),
        "cases": cases,
    })
}

#[test]
fn envelopes_match_committed_vectors() {
    let built = build();
    if std::env::var_os("CIFER_UPDATE_VECTORS").is_some() {
        std::fs::write(PATH, serde_json::to_string_pretty(&built).unwrap() + "\n").unwrap();
    }
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    assert_eq!(built, committed, "envelope bytes changed: this is a wire-format change");
}

#[test]
fn committed_envelopes_decrypt() {
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    let seed = Seed::from_identity_file(committed["identity_file"].as_str().unwrap()).unwrap();
    for case in committed["cases"].as_array().unwrap() {
        let env = hex::decode(case["envelope"].as_str().unwrap()).unwrap();
        let pt = hex::decode(case["plaintext"].as_str().unwrap()).unwrap();
        assert_eq!(envelope::open(&seed, &env).unwrap(), pt, "{}", case["name"]);
    }
}
