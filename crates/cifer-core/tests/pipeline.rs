//! The parallel drivers produce exactly the sequential drivers' bytes and errors,
//! across batch boundaries (4 MiB of plaintext per batch).
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::expect_used,
    missing_docs,
    reason = "tests"
)]

use cifer_core::aead::all_backends;
use cifer_core::header::{HEADER_LEN, TAG_LEN};
use cifer_core::pipeline::{open_stream_parallel, seal_stream_parallel};
use cifer_core::stream::{ChunkOpener, ChunkSealer, open_stream};
use cifer_core::{Backend, EnvelopePrefix, Error, Header, Seed, StreamKey, Suite, envelope};
use common::{MIB, data, sequential, setup};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

mod common;

fn parallel_open(
    prefix: &EnvelopePrefix,
    key: &StreamKey,
    body: &[u8],
    threads: usize,
) -> Result<Vec<u8>, Error> {
    parallel_open_partial(prefix, key, body, threads).0
}

/// The result and whatever was written before it.
fn parallel_open_partial(
    prefix: &EnvelopePrefix,
    key: &StreamKey,
    body: &[u8],
    threads: usize,
) -> (Result<Vec<u8>, Error>, Vec<u8>) {
    let mut out = Vec::new();
    let opener = ChunkOpener::new(key, prefix, Backend::fastest()).unwrap();
    let res = open_stream_parallel(opener, &mut &body[..], &mut out, threads);
    (res.map(|_| out.clone()), out)
}

#[test]
fn parallel_matches_sequential_across_batch_boundaries() {
    for log2 in [10u8, 16] {
        let (prefix, key) = setup(log2);
        let cs = 1usize << log2;
        for len in [
            0,
            1,
            cs,
            cs + 1,
            4 * MIB - 1,
            4 * MIB,
            4 * MIB + 1,
            4 * MIB + cs,
            8 * MIB + 5,
            9 * MIB,
        ] {
            let pt = data(len);
            let expected = sequential(&prefix, &key, &pt);
            for threads in [2, 3] {
                let mut got = Vec::new();
                let sealer = ChunkSealer::new(&key, &prefix, Backend::fastest()).unwrap();
                let n = seal_stream_parallel(sealer, &mut &pt[..], &mut got, threads).unwrap();
                assert_eq!(n, len as u64);
                assert!(got == expected, "log2 {log2} len {len} threads {threads}");
                assert!(
                    parallel_open(&prefix, &key, &got, threads).unwrap() == pt,
                    "open log2 {log2} len {len}"
                );
            }
        }
    }
}

#[test]
fn parallel_open_rejects_what_sequential_rejects() {
    let (prefix, key) = setup(10);
    let pt = data(9 * MIB + 100);
    let body = sequential(&prefix, &key, &pt);
    let slot = 1024 + TAG_LEN;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("flip in second batch", {
            let mut b = body.clone();
            b[5 * MIB] ^= 1;
            b
        }),
        ("cut at a chunk boundary in a later batch", body[..slot * 5000].to_vec()),
        ("cut where the warm-up ends", body[..slot * 1024].to_vec()),
        ("cut at the first batch boundary", body[..slot * (1024 + 4096)].to_vec()),
        ("flip in the warm-up", {
            let mut b = body.clone();
            b[1000] ^= 1;
            b
        }),
        ("cut inside the final tag", body[..body.len() - 90].to_vec()),
        ("one extra byte", [body.clone(), vec![0]].concat()),
        ("two chunks swapped", {
            let mut b = body.clone();
            let (x, y) = b.split_at_mut(slot * 5121);
            x[slot * 5120..].swap_with_slice(&mut y[..slot]);
            b
        }),
        ("empty body", Vec::new()),
        ("body shorter than a tag", body[..10].to_vec()),
    ];
    for (name, bad) in cases {
        let mut seq_out = Vec::new();
        let opener = ChunkOpener::new(&key, &prefix, Backend::fastest()).unwrap();
        let seq = open_stream(opener, &mut &bad[..], &mut seq_out);
        let (par, par_out) = parallel_open_partial(&prefix, &key, &bad, 2);
        assert!(seq.is_err(), "{name}: sequential accepted");
        assert_eq!(format!("{:?}", seq.unwrap_err()), format!("{:?}", par.unwrap_err()), "{name}");
        // Both release exactly the chunks that authenticated before the failure.
        assert!(
            seq_out == par_out,
            "{name}: released {} vs {} bytes",
            seq_out.len(),
            par_out.len()
        );
    }
    let _ = HEADER_LEN;
}

#[test]
fn envelope_encrypt_uses_parallel_path_and_round_trips() {
    let seed = Seed::generate(&mut ChaCha20Rng::seed_from_u64(3));
    let pt = data(6 * MIB + 3);
    let header = Header::new(Suite::MlKem768, 16, 1, [0u8; 32]).unwrap();
    let mut env = Vec::new();
    envelope::encrypt_with_rng(
        &seed.encapsulation_key(),
        header,
        &mut ChaCha20Rng::seed_from_u64(4),
        &mut &pt[..],
        &mut env,
    )
    .unwrap();
    let mut out = Vec::new();
    envelope::decrypt(&seed, &mut &env[..], &mut out).unwrap();
    assert!(out == pt);
}

#[test]
fn slice_paths_match_stream_paths() {
    use cifer_core::pipeline::{open_slice, seal_slice};
    for log2 in [10u8, 16] {
        let (prefix, key) = setup(log2);
        let cs = 1usize << log2;
        for len in [0, 1, cs - 1, cs, cs + 1, 3 * cs, 3 * cs + 7, MIB + 3] {
            let pt = data(len);
            let expected = sequential(&prefix, &key, &pt);
            for (threads, backend) in [1, 2, 3, 5]
                .into_iter()
                .flat_map(|t| all_backends().into_iter().map(move |b| (t, b)))
            {
                let mut got = Vec::new();
                seal_slice(
                    ChunkSealer::new(&key, &prefix, backend).unwrap(),
                    &pt,
                    &mut got,
                    threads,
                )
                .unwrap();
                assert!(
                    got == expected,
                    "seal log2 {log2} len {len} threads {threads} {backend:?}"
                );
                let opened =
                    open_slice(ChunkOpener::new(&key, &prefix, backend).unwrap(), &got, threads)
                        .unwrap();
                assert!(opened == pt, "open log2 {log2} len {len} threads {threads} {backend:?}");
            }
        }
    }
}

#[test]
fn slice_into_overwrites_a_stale_body_and_checks_its_length() {
    use cifer_core::pipeline::seal_slice_into;
    let (prefix, key) = setup(10);
    for len in [0usize, 1, 1024, 5 * 1024 + 9] {
        let pt = data(len);
        let expected = sequential(&prefix, &key, &pt);
        let body_len = expected.len();
        for threads in [1, 2, 3] {
            let mut body = vec![0xA5u8; body_len];
            let sealer = ChunkSealer::new(&key, &prefix, Backend::fastest()).unwrap();
            seal_slice_into(sealer, &pt, &mut body, threads).unwrap();
            assert!(body == expected, "len {len} threads {threads}");
            for wrong in [body_len - 1, body_len + 1] {
                let mut body = vec![0u8; wrong];
                let sealer = ChunkSealer::new(&key, &prefix, Backend::fastest()).unwrap();
                assert!(matches!(
                    seal_slice_into(sealer, &pt, &mut body, threads),
                    Err(Error::Malformed { .. })
                ));
            }
        }
    }
}

#[test]
fn slice_seal_that_fails_leaves_the_output_as_it_was() {
    use cifer_core::pipeline::seal_slice;
    let (prefix, key) = setup(10);
    let pt = data(5 * 1024 + 3);
    for threads in [1, 2, 3] {
        // A sealer that already sealed its final chunk refuses to seal more.
        let mut done = ChunkSealer::new(&key, &prefix, Backend::fastest()).unwrap();
        done.seal_chunk(&mut [0u8; TAG_LEN], true).unwrap();
        let mut out = b"prefix".to_vec();
        assert!(seal_slice(done, &pt, &mut out, threads).is_err(), "threads {threads}");
        assert_eq!(out, b"prefix", "threads {threads}");
    }
}

#[test]
fn slice_open_rejects_what_stream_open_rejects() {
    use cifer_core::pipeline::open_slice;
    let (prefix, key) = setup(10);
    let slot = 1024 + TAG_LEN;
    let body = sequential(&prefix, &key, &data(3 * 1024 + 100));
    let empty_msg = sequential(&prefix, &key, &[]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty body", Vec::new()),
        ("shorter than a tag", body[..15].to_vec()),
        ("cut at a chunk boundary", body[..2 * slot].to_vec()),
        ("cut inside the last tag", body[..body.len() - 3].to_vec()),
        ("extra byte", [body.clone(), vec![1]].concat()),
        ("flipped tag of an empty message", {
            let mut b = empty_msg.clone();
            b[3] ^= 1;
            b
        }),
        ("flip in the first chunk", {
            let mut b = body.clone();
            b[5] ^= 0x40;
            b
        }),
        ("chunks swapped", {
            let mut b = body.clone();
            let (x, y) = b.split_at_mut(slot);
            x.swap_with_slice(&mut y[..slot]);
            b
        }),
    ];
    for (name, bad) in cases {
        for (threads, backend) in
            [(1, Backend::RustCrypto), (2, Backend::fastest()), (3, Backend::RustCrypto)]
        {
            let opener = ChunkOpener::new(&key, &prefix, backend).unwrap();
            let slice = open_slice(opener, &bad, threads);
            let opener = ChunkOpener::new(&key, &prefix, Backend::fastest()).unwrap();
            let stream = open_stream(opener, &mut &bad[..], &mut Vec::new());
            assert!(slice.is_err(), "{name}: slice accepted (threads {threads})");
            assert_eq!(
                format!("{:?}", slice.unwrap_err()),
                format!("{:?}", stream.unwrap_err()),
                "{name}"
            );
        }
    }
    // The empty message itself opens to nothing.
    let opener = ChunkOpener::new(&key, &prefix, Backend::fastest()).unwrap();
    assert!(open_slice(opener, &empty_msg, 2).unwrap().is_empty());
}
