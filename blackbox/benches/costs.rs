//! Per-step CPU cost of one decryption in the black box (no I/O), to see where the time of
//! `POST /v1/decrypt` goes. Prints `name microseconds` lines.
//!
//! ```text
//! cargo bench -p cifer-blackbox --bench costs
//! ```
#![allow(clippy::unwrap_used, missing_docs, clippy::cast_precision_loss, reason = "bench")]

use std::hint::black_box;
use std::time::Instant;

use cifer_core::{Header, Seed, Suite, envelope, fragment};
use k256::ecdsa::SigningKey;

fn time<T>(name: &str, n: u32, mut f: impl FnMut() -> T) {
    for _ in 0..3 {
        black_box(f());
    }
    let t = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    println!("{name} {:.1}", t.elapsed().as_secs_f64() * 1e6 / f64::from(n));
}

fn main() {
    let seed = Seed::generate_os().unwrap();
    let (commitments, fragments) = fragment::split(&seed, 3, 5, &mut cifer_core::os_rng()).unwrap();
    let bytes = commitments.to_bytes();
    let signer = SigningKey::from_slice(&[7u8; 32]).unwrap();
    let response = Seed::generate_os().unwrap();
    let response_ek = response.encapsulation_key();
    let header = Header::new(Suite::MlKem768, 16, 1, [1; 32]).unwrap();
    let data_env = envelope::seal(&seed.encapsulation_key(), header, b"x").unwrap();
    let prefix = envelope::read_prefix(&mut &data_env[..]).unwrap();
    let sig = cifer_custody::sign_digest(&signer, &[9; 32]).unwrap();
    let reply =
        cifer_custody::seal_release(1, [1; 32], &fragments[0], &commitments, &sig, &response_ek)
            .unwrap();

    time("response_keygen", 200, || Seed::generate_os().unwrap().encapsulation_key());
    time("sign_release_key", 200, || cifer_custody::sign_digest(&signer, &[3; 32]).unwrap());
    time("recover_signature", 200, || {
        cifer_auth::ecdsa::Signature::from_bytes(&sig).unwrap().recover_address(&[9; 32]).unwrap()
    });
    time("open_release", 200, || {
        cifer_custody::open_release(&reply, &response, 1, &[1; 32]).unwrap()
    });
    time("commitments_from_bytes", 200, || cifer_core::Commitments::from_bytes(&bytes).unwrap());
    time("verify_fragment", 200, || commitments.verify(&fragments[1]).unwrap());
    time("verify_all_3", 200, || commitments.verify_all(&fragments[..3]).unwrap());
    time("combine_3", 200, || fragment::combine(&commitments, &fragments[..3]).unwrap());
    time("ek_hash_from_seed", 200, || seed.encapsulation_key().keccak256());
    time("stream_key_decaps", 200, || seed.stream_key(&prefix).unwrap());
    time("seal_key_reply", 200, || {
        let key = seed.stream_key(&prefix).unwrap();
        cifer_custody::seal_key_reply(1, [1; 32], &key, &response_ek).unwrap()
    });
}
