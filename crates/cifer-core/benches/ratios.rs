//! Prints the speed goals as measured figures and ratios, in one run:
//! envelope seal throughput against the fastest raw AES-256-GCM on this machine, and the
//! cost of a 1 KiB encryption. `scripts/bench-core.sh` runs it with the CLI comparison.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    missing_docs,
    reason = "bench"
)]

use std::time::{Duration, Instant};

use cifer_core::aead::{all_backends, hazmat_seal};
use cifer_core::pipeline::{default_threads, seal_stream_parallel};
use cifer_core::stream::ChunkSealer;
use cifer_core::{Header, Seed, Suite, envelope};

fn best_of<F: FnMut()>(runs: usize, mut f: F) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let mut rng = cifer_core::os_rng();
    let seed = Seed::generate(&mut rng);
    let ek = seed.encapsulation_key();
    let size = 64usize << 20;
    let data = vec![0x5au8; size];
    let gbps = |d: Duration| size as f64 / d.as_secs_f64() / 1e9;

    // Raw AES-256-GCM, in place, no framing, over the same 64 MiB buffer in 64 KiB pieces
    // (the data volume the envelope handles) and, for reference, over one cache-resident
    // 64 KiB piece again and again.
    let mut raw_best = 0f64;
    let mut buf = data.clone();
    for backend in all_backends() {
        let d = best_of(5, || {
            for (i, piece) in buf.chunks_mut(64 << 10).enumerate() {
                let mut nonce = [0u8; 12];
                nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
                let n = piece.len() - 16;
                hazmat_seal(backend, &[1u8; 32], &nonce, &[], &mut piece[..n + 16]).unwrap();
            }
        });
        println!("raw_aes256gcm_64MiB_{backend:?}_GBps {:.2}", gbps(d));
        raw_best = raw_best.max(gbps(d));
        let mut hot = vec![0u8; (64 << 10) + 16];
        let d = best_of(5, || {
            for i in 0..(size >> 16) {
                let mut nonce = [0u8; 12];
                nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
                hazmat_seal(backend, &[1u8; 32], &nonce, &[], &mut hot).unwrap();
            }
        });
        println!("raw_aes256gcm_cache_resident_{backend:?}_GBps {:.2}", gbps(d));
    }
    // In-memory envelope (`envelope::seal`: framing, nonces, tags, output allocation).
    let header16 = Header::new(Suite::MlKem768, 16, 1, [0u8; 32]).unwrap();
    let mut sealed = Vec::new();
    let d = best_of(5, || {
        envelope::seal_into(&ek, header16, &data, &mut sealed).unwrap();
    });
    println!(
        "envelope_seal_in_memory_GBps {:.2} ratio_to_fastest_raw {:.2} (goal >= 0.80; threads {})",
        gbps(d),
        gbps(d) / raw_best,
        default_threads()
    );
    // Streaming drivers from an in-memory reader to an in-memory writer: one copy in,
    // one copy out on top of the sealing.
    let threads = default_threads();
    for log2 in [16u8, 20] {
        let header = Header::new(Suite::MlKem768, log2, 1, [0u8; 32]).unwrap();
        let (prefix, key) = envelope::begin(&ek, header).unwrap();
        let mut out = Vec::with_capacity(size + (size >> 10) + 4096);
        for (name, t) in [("sequential", 1), ("parallel", threads)] {
            let d = best_of(5, || {
                out.clear();
                let s = ChunkSealer::new(&key, &prefix, cifer_core::Backend::fastest()).unwrap();
                seal_stream_parallel(s, &mut &data[..], &mut out, t).unwrap();
            });
            println!(
                "envelope_stream_{name}_chunk_log2_{log2}_GBps {:.2} ratio_to_fastest_raw {:.2} (threads {t})",
                gbps(d),
                gbps(d) / raw_best
            );
        }
    }
    let kib = vec![1u8; 1024];
    let header = Header::new(Suite::MlKem768, 16, 1, [0u8; 32]).unwrap();
    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(envelope::seal(&ek, header, &kib).unwrap());
    }
    println!("encrypt_1KiB_us {:.1} (goal <= 100)", t.elapsed().as_secs_f64() * 1e6 / f64::from(n));
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(cifer_core::EncapsulationKey::from_bytes(ek.as_bytes()).unwrap());
    }
    println!("parse_and_validate_ek_us {:.1}", t.elapsed().as_secs_f64() * 1e6 / f64::from(n));
}
