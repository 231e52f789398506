//! Criterion benchmarks of the protocol primitives.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, missing_docs, reason = "bench")]

use std::hint::black_box;

use cifer_core::{
    Backend, Header, Seed, Suite,
    aead::all_backends,
    envelope, fragment,
    stream::{ChunkSealer, seal_stream},
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn header(log2: u8) -> Header {
    Header::new(Suite::MlKem768, log2, 1, [1u8; 32]).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut rng = cifer_core::os_rng();
    let seed = Seed::generate(&mut rng);
    let ek = seed.encapsulation_key();

    let mut g = c.benchmark_group("mlkem768");
    g.bench_function("keygen_from_seed", |b| b.iter(|| black_box(&seed).encapsulation_key()));
    g.bench_function("encapsulate", |b| b.iter(|| black_box(&ek).encapsulate(&mut rng)));
    let (ct, _) = ek.encapsulate(&mut rng);
    let dk = seed.decapsulation_key();
    g.bench_function("decapsulate", |b| b.iter(|| dk.decapsulate(black_box(&ct[..])).unwrap()));
    g.finish();

    let mut g = c.benchmark_group("envelope");
    let kib = vec![7u8; 1024];
    g.bench_function("encrypt_1KiB", |b| {
        b.iter(|| envelope::seal(&ek, header(16), black_box(&kib)).unwrap())
    });
    let sealed = envelope::seal_with_rng(&ek, header(16), &kib, &mut rng).unwrap();
    g.bench_function("decrypt_1KiB_with_seed", |b| {
        b.iter(|| envelope::open(&seed, black_box(&sealed)).unwrap())
    });
    let big = vec![0u8; 16 << 20];
    g.throughput(Throughput::Bytes(big.len() as u64));
    for backend in all_backends() {
        g.bench_function(format!("seal_16MiB_chunk64KiB_{backend:?}"), |b| {
            let (prefix, key) = envelope::begin_with_rng(&ek, header(16), &mut rng).unwrap();
            let mut out = Vec::with_capacity(big.len() + (big.len() >> 12) + 2048);
            b.iter(|| {
                out.clear();
                let s = ChunkSealer::new(&key, &prefix, backend).unwrap();
                seal_stream(s, &mut &big[..], &mut out).unwrap()
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("fragments");
    g.bench_function("split_3_of_5", |b| {
        b.iter(|| fragment::split(black_box(&seed), 3, 5, &mut rng).unwrap())
    });
    let (commitments, frags) = fragment::split(&seed, 3, 5, &mut rng).unwrap();
    g.bench_function("verify_one", |b| {
        b.iter(|| commitments.verify(black_box(&frags[0])).unwrap())
    });
    g.bench_function("combine_3", |b| {
        b.iter(|| fragment::combine(&commitments, black_box(&frags[..3])).unwrap())
    });
    g.finish();
    let _ = Backend::fastest();
}

criterion_group!(benches, bench);
criterion_main!(benches);
