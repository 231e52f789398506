//! The positional drivers (workers read their own chunks by offset) produce exactly the
//! sequential drivers' bytes, errors and released plaintext, across the warm-up
//! threshold (1 MiB) and batch boundaries (4 MiB), for memory and for real files.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::expect_used,
    missing_docs,
    reason = "tests"
)]

use std::io::Write;

use cifer_core::header::TAG_LEN;
use cifer_core::positional::{ReadAt, ReadFrom, open_positional, seal_positional};
use cifer_core::stream::{ChunkOpener, ChunkSealer, open_stream};
use cifer_core::{Backend, EnvelopePrefix, Error, Header, Seed, StreamKey, Suite, envelope};
use common::{MIB, data, sequential, setup};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

mod common;
/// Bytes placed before the body, so that offsets other than 0 are exercised.
const JUNK: &[u8] = b"bytes before the body";

fn sealer(prefix: &EnvelopePrefix, key: &StreamKey) -> ChunkSealer {
    ChunkSealer::new(key, prefix, Backend::fastest()).unwrap()
}

fn opener(prefix: &EnvelopePrefix, key: &StreamKey) -> ChunkOpener {
    ChunkOpener::new(key, prefix, Backend::fastest()).unwrap()
}

/// `open_positional` of `body` (placed after [`JUNK`]) with the given length: the result
/// and whatever was written.
fn open_pos(
    prefix: &EnvelopePrefix,
    key: &StreamKey,
    body: &[u8],
    len: u64,
    workers: usize,
) -> (Result<u64, Error>, Vec<u8>) {
    let src = [JUNK, body].concat();
    let mut out = Vec::new();
    let res =
        open_positional(opener(prefix, key), &src[..], JUNK.len() as u64, len, &mut out, workers);
    (res, out)
}

/// The sequential driver over the same bytes: the result and whatever was written.
fn open_seq(
    prefix: &EnvelopePrefix,
    key: &StreamKey,
    body: &[u8],
) -> (Result<u64, Error>, Vec<u8>) {
    let mut out = Vec::new();
    let res = open_stream(opener(prefix, key), &mut &body[..], &mut out);
    (res, out)
}

#[test]
fn seal_and_open_match_sequential_across_thresholds() {
    for log2 in [10u8, 16] {
        let (prefix, key) = setup(log2);
        let cs = 1usize << log2;
        for len in
            [0, 1, cs, MIB, MIB + 1, MIB + cs, 4 * MIB - 1, 4 * MIB, 4 * MIB + 1, 9 * MIB + 5]
        {
            let pt = data(len);
            let expected = sequential(&prefix, &key, &pt);
            let src = [JUNK, &pt].concat();
            for workers in [0, 1, 2, 3] {
                let mut got = Vec::new();
                let n = seal_positional(
                    sealer(&prefix, &key),
                    &src[..],
                    JUNK.len() as u64,
                    len as u64,
                    &mut got,
                    workers,
                )
                .unwrap();
                assert_eq!(n, len as u64);
                assert!(got == expected, "seal log2 {log2} len {len} workers {workers}");
                let (res, out) = open_pos(&prefix, &key, &got, got.len() as u64, workers);
                assert_eq!(res.unwrap(), len as u64, "open log2 {log2} len {len}");
                assert!(out == pt, "open log2 {log2} len {len} workers {workers}");
            }
        }
    }
}

#[test]
fn open_rejects_and_releases_exactly_what_sequential_does() {
    let (prefix, key) = setup(10);
    let pt = data(9 * MIB + 100);
    let body = sequential(&prefix, &key, &pt);
    let slot = 1024 + TAG_LEN;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("flip in the second batch", {
            let mut b = body.clone();
            b[5 * MIB] ^= 1;
            b
        }),
        ("flip in the first batch", {
            let mut b = body.clone();
            b[1000] ^= 1;
            b
        }),
        ("flip in the final tag", {
            let mut b = body.clone();
            let at = b.len() - 1;
            b[at] ^= 1;
            b
        }),
        ("cut at a chunk boundary in a later batch", body[..slot * 5000].to_vec()),
        ("cut at a batch boundary", body[..slot * 4096 * 2].to_vec()),
        ("cut inside the final tag", body[..body.len() - 90].to_vec()),
        ("cut inside a tag after whole chunks", body[..slot * 3000 + 7].to_vec()),
        ("one byte past a chunk boundary", body[..slot * 3000 + 1].to_vec()),
        ("one extra byte", [body.clone(), vec![0]].concat()),
        ("a whole extra chunk", [body.clone(), body[..slot].to_vec()].concat()),
        ("two chunks swapped across batches", {
            let mut b = body.clone();
            let (x, y) = b.split_at_mut(slot * 4096);
            x[slot * 4095..].swap_with_slice(&mut y[..slot]);
            b
        }),
    ];
    for (name, bad) in cases {
        let (seq, seq_out) = open_seq(&prefix, &key, &bad);
        assert!(seq.is_err(), "{name}: sequential accepted");
        for workers in [1, 2] {
            let (pos, pos_out) = open_pos(&prefix, &key, &bad, bad.len() as u64, workers);
            assert_eq!(
                format!("{:?}", seq.as_ref().unwrap_err()),
                format!("{:?}", pos.unwrap_err()),
                "{name}"
            );
            assert!(
                seq_out == pos_out,
                "{name}: released {} vs {} bytes",
                seq_out.len(),
                pos_out.len()
            );
        }
    }
}

#[test]
fn bytes_past_the_given_length_fail_as_trailing_bytes_do() {
    // The input grew after its length was taken: what was opened as the final chunk is
    // followed by more, so the sequential driver would have failed on it.
    let (prefix, key) = setup(10);
    let body = sequential(&prefix, &key, &data(5 * MIB + 3));
    let grown = [body.clone(), vec![7u8; 100]].concat();
    let (seq, seq_out) = open_seq(&prefix, &key, &grown);
    let (pos, pos_out) = open_pos(&prefix, &key, &grown, body.len() as u64, 1);
    assert!(matches!(seq, Err(Error::Authentication)));
    assert!(matches!(pos, Err(Error::Authentication)));
    assert!(seq_out == pos_out);
    assert_eq!(pos_out.len(), 5 * MIB, "everything but the last chunk");
}

#[test]
fn input_shorter_than_its_length_is_an_error() {
    let (prefix, key) = setup(16);
    let pt = data(6 * MIB);
    let body = sequential(&prefix, &key, &pt);
    // Opening: the body was cut after its length was taken.
    let (pos, _) = open_pos(&prefix, &key, &body[..body.len() - 1000], body.len() as u64, 1);
    assert!(matches!(pos, Err(Error::Truncated)), "{pos:?}");
    // Sealing, on both paths (threaded and sequential).
    for (len, workers) in [(pt.len(), 1), (pt.len(), 0), (MIB, 1), (1, 0)] {
        let mut out = Vec::new();
        let res = seal_positional(
            sealer(&prefix, &key),
            &pt[..len - 1],
            0,
            len as u64,
            &mut out,
            workers,
        );
        assert!(
            matches!(&res, Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof),
            "len {len} workers {workers}: {res:?}"
        );
        // What was written before the failure holds no final chunk: it never opens as
        // a (shorter) message.
        let (opened, _) = open_seq(&prefix, &key, &out);
        assert!(opened.is_err(), "len {len} workers {workers}: the partial output opened");
    }
}

#[test]
fn slice_read_at_stops_at_the_end() {
    let src: &[u8] = b"0123456789";
    let mut buf = [0u8; 4];
    assert_eq!(src.read_at(&mut buf, 8).unwrap(), 2);
    assert_eq!(&buf[..2], b"89");
    assert_eq!(src.read_at(&mut buf, 10).unwrap(), 0);
    assert_eq!(src.read_at(&mut buf, u64::MAX).unwrap(), 0);
    let mut r = ReadFrom::new(src, 3);
    let mut s = String::new();
    std::io::Read::read_to_string(&mut r, &mut s).unwrap();
    assert_eq!(s, "3456789");
    assert_eq!(r.position(), 10);
}

#[cfg(unix)]
#[test]
fn envelope_positional_on_real_files_matches_the_stream_api() {
    let seed = Seed::generate(&mut ChaCha20Rng::seed_from_u64(3));
    let header = Header::new(Suite::MlKem768, 16, 1, [4u8; 32]).unwrap();
    let pt = data(7 * MIB + 11);
    let mut plain = tempfile::tempfile().unwrap();
    plain.write_all(&pt).unwrap();
    let mut env = Vec::new();
    let n = envelope::encrypt_positional(
        &seed.encapsulation_key(),
        header,
        &plain,
        0,
        pt.len() as u64,
        &mut env,
    )
    .unwrap();
    assert_eq!(n, pt.len() as u64);
    // The stream API opens what the positional one sealed...
    let mut out = Vec::new();
    envelope::decrypt(&seed, &mut &env[..], &mut out).unwrap();
    assert!(out == pt);
    // ...and the positional one opens it from a file, at an offset.
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(JUNK).unwrap();
    file.write_all(&env).unwrap();
    let end = (JUNK.len() + env.len()) as u64;
    let mut out = Vec::new();
    let got = envelope::decrypt_positional(&seed, &file, JUNK.len() as u64, end, &mut out).unwrap();
    assert_eq!(got, pt.len() as u64);
    assert!(out == pt);
    // A wrong identity fails opaquely, with nothing released.
    let other = Seed::generate(&mut ChaCha20Rng::seed_from_u64(4));
    let mut out = Vec::new();
    let res = envelope::decrypt_positional(&other, &file, JUNK.len() as u64, end, &mut out);
    assert!(matches!(res, Err(Error::Authentication)), "{res:?}");
    assert!(out.is_empty());
    // A file that ends inside the prefix is truncated.
    let res = envelope::decrypt_positional(&seed, &file, JUNK.len() as u64, 100, &mut Vec::new());
    assert!(matches!(res, Err(Error::Truncated)), "{res:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: proptest::test_runner::RngSeed::Fixed(0xF11E), ..ProptestConfig::default() })]

    /// Any cut of a body past the warm-up, opened positionally, fails or succeeds exactly
    /// as the stream driver does and releases the same bytes.
    #[test]
    fn any_cut_behaves_as_sequential(cut in (MIB + 1)..(5 * MIB + 2000), workers in 1usize..=2) {
        let (prefix, key) = setup(10);
        let body = sequential(&prefix, &key, &data(5 * MIB));
        let cut = cut.min(body.len());
        let bad = &body[..cut];
        let (seq, seq_out) = open_seq(&prefix, &key, bad);
        let (pos, pos_out) = open_pos(&prefix, &key, bad, cut as u64, workers);
        prop_assert_eq!(format!("{seq:?}"), format!("{pos:?}"));
        prop_assert!(seq_out == pos_out);
    }
}
