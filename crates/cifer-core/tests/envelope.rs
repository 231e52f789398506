//! Envelope behaviour: round trips around chunk boundaries, and every way of tampering
//! with an envelope (truncation, extension, reordering, splicing, bit flips) failing.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "tests"
)]

use std::io::Write;

use cifer_core::header::{HEADER_LEN, TAG_LEN};
use cifer_core::stream::{ChunkSealer, Encryptor, open_stream};
use cifer_core::{Backend, DecapsulationKey, EnvelopePrefix, Error, Header, Seed, Suite, envelope};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const PREFIX_LEN: usize = HEADER_LEN + 1088;

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn identity() -> Seed {
    Seed::generate(&mut rng(1))
}

fn header(chunk_log2: u8) -> Header {
    let mut sid = [0u8; 32];
    sid[31] = 7;
    Header::new(Suite::MlKem768, chunk_log2, 31337, sid).unwrap()
}

fn seal(seed: &Seed, pt: &[u8], chunk_log2: u8, r: u64) -> Vec<u8> {
    envelope::seal_with_rng(&seed.encapsulation_key(), header(chunk_log2), pt, &mut rng(r)).unwrap()
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Expected envelope length: prefix plus one tag per chunk (an empty message is one chunk).
fn expected_len(pt_len: usize, chunk_log2: u8) -> usize {
    let cs = 1usize << chunk_log2;
    let chunks = pt_len.div_ceil(cs).max(1);
    PREFIX_LEN + pt_len + chunks * TAG_LEN
}

#[test]
fn lengths_around_chunk_boundaries_round_trip() {
    let seed = identity();
    for len in [0, 1, 15, 16, 17, 1023, 1024, 1025, 2047, 2048, 2049, 3072, 5000] {
        let pt = plaintext(len);
        let sealed = seal(&seed, &pt, 10, len as u64);
        assert_eq!(sealed.len(), expected_len(len, 10), "len {len}");
        assert_eq!(envelope::open(&seed, &sealed).unwrap(), pt, "len {len}");
    }
}

#[test]
fn one_chunk_overhead_is_1152_bytes() {
    let sealed = seal(&identity(), b"x", 16, 2);
    assert_eq!(sealed.len() - 1, 1152);
}

#[test]
fn wrong_identity_is_opaque_authentication_failure() {
    let sealed = seal(&identity(), b"secret", 10, 3);
    let other = Seed::generate(&mut rng(99));
    assert!(matches!(envelope::open(&other, &sealed), Err(Error::Authentication)));
}

#[test]
fn header_defects_have_their_own_errors() {
    let sealed = seal(&identity(), b"abc", 10, 4);
    let seed = identity();
    let mut bad = sealed.clone();
    bad[0] = b'X';
    assert!(matches!(envelope::open(&seed, &bad), Err(Error::BadMagic)));
    let mut bad = sealed.clone();
    bad[4] = 2;
    assert!(matches!(envelope::open(&seed, &bad), Err(Error::UnknownVersion(2))));
    let mut bad = sealed.clone();
    bad[5] = 9;
    assert!(matches!(envelope::open(&seed, &bad), Err(Error::UnknownSuite(9))));
    for cl in [0u8, 9, 27, 255] {
        let mut bad = sealed.clone();
        bad[6] = cl;
        assert!(matches!(envelope::open(&seed, &bad), Err(Error::BadChunkSize(c)) if c == cl));
    }
    let mut bad = sealed.clone();
    bad[7] = 1;
    assert!(matches!(envelope::open(&seed, &bad), Err(Error::NonZeroReserved(1))));
    assert!(matches!(envelope::open(&seed, &sealed[..40]), Err(Error::Truncated)));
    assert!(matches!(envelope::open(&seed, &sealed[..PREFIX_LEN - 1]), Err(Error::Truncated)));
    assert!(matches!(envelope::open(&seed, &sealed[..PREFIX_LEN]), Err(Error::Truncated)));
    assert!(matches!(envelope::open(&seed, &sealed[..PREFIX_LEN + 15]), Err(Error::Truncated)));
    assert!(matches!(envelope::open(&seed, b""), Err(Error::Truncated)));
    // A well-formed header of a suite this operation does not decrypt yet.
    let mut other_suite = sealed[..HEADER_LEN].to_vec();
    other_suite[5] = 0x02;
    other_suite.extend_from_slice(&k256_generator_compressed());
    other_suite.extend_from_slice(&[0u8; 16]);
    assert!(matches!(
        envelope::open(&seed, &other_suite),
        Err(Error::UnsupportedSuite(Suite::K256Tecies))
    ));
}

fn k256_generator_compressed() -> [u8; 33] {
    let mut g = [0u8; 33];
    hex::decode_to_slice(
        "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
        &mut g,
    )
    .unwrap();
    g
}

#[test]
fn point_not_on_curve_is_rejected() {
    let h = header(10);
    let mut bytes = h.to_bytes().to_vec();
    bytes[5] = 0x02;
    let mut point = k256_generator_compressed();
    assert!(EnvelopePrefix::decode(&[bytes.clone(), point.to_vec()].concat()).is_ok());
    // x = 0 gives y^2 = 7, and 7 is not a square mod p: no such point on secp256k1.
    point = [0u8; 33];
    point[0] = 0x02;
    let res = EnvelopePrefix::decode(&[bytes.clone(), point.to_vec()].concat());
    assert!(matches!(res, Err(Error::InvalidPoint)));
    let mut not_compressed = k256_generator_compressed();
    not_compressed[0] = 0x04;
    assert!(matches!(
        EnvelopePrefix::decode(&[bytes, not_compressed.to_vec()].concat()),
        Err(Error::InvalidPoint)
    ));
}

#[test]
fn reordered_chunks_fail() {
    let seed = identity();
    let pt = plaintext(3000);
    let mut sealed = seal(&seed, &pt, 10, 5);
    let full = 1024 + TAG_LEN;
    let (a, b) = (PREFIX_LEN, PREFIX_LEN + full);
    let first: Vec<u8> = sealed[a..a + full].to_vec();
    let second: Vec<u8> = sealed[b..b + full].to_vec();
    sealed[a..a + full].copy_from_slice(&second);
    sealed[b..b + full].copy_from_slice(&first);
    assert!(matches!(envelope::open(&seed, &sealed), Err(Error::Authentication)));
}

#[test]
fn dropping_the_last_chunk_at_a_boundary_fails() {
    let seed = identity();
    let sealed = seal(&seed, &plaintext(2048 + 10), 10, 6);
    let cut = PREFIX_LEN + 2 * (1024 + TAG_LEN);
    assert!(matches!(envelope::open(&seed, &sealed[..cut]), Err(Error::Authentication)));
}

#[test]
fn chunks_spliced_between_envelopes_fail() {
    let seed = identity();
    let a = seal(&seed, &plaintext(2048), 10, 7);
    let b = seal(&seed, &plaintext(2048), 10, 8);
    let mut spliced = a.clone();
    let at = PREFIX_LEN;
    spliced[at..at + 1024 + TAG_LEN].copy_from_slice(&b[at..at + 1024 + TAG_LEN]);
    assert!(matches!(envelope::open(&seed, &spliced), Err(Error::Authentication)));
    // The prefix of one envelope with the body of the other.
    let mut swapped = b[..PREFIX_LEN].to_vec();
    swapped.extend_from_slice(&a[PREFIX_LEN..]);
    assert!(matches!(envelope::open(&seed, &swapped), Err(Error::Authentication)));
}

#[test]
fn encryptor_writer_matches_streaming_driver() {
    // Same stream key for both paths, so the bytes must be identical.
    let seed = identity();
    let ek = seed.encapsulation_key();
    for len in [0usize, 1, 1024, 1025, 4096, 5000] {
        let pt = plaintext(len);
        let (prefix, key) = envelope::begin_with_rng(&ek, header(10), &mut rng(10)).unwrap();
        let mut via_driver = prefix.as_bytes().to_vec();
        let sealer = ChunkSealer::new(&key, &prefix, Backend::RustCrypto).unwrap();
        cifer_core::stream::seal_stream(sealer, &mut &pt[..], &mut via_driver).unwrap();

        let sealer = ChunkSealer::new(&key, &prefix, Backend::fastest()).unwrap();
        let mut w = Encryptor::new(Vec::new(), &prefix, sealer).unwrap();
        for piece in pt.chunks(333) {
            w.write_all(piece).unwrap();
        }
        let via_writer = w.finish().unwrap();
        assert_eq!(via_driver, via_writer, "len {len}");
        assert_eq!(envelope::open(&seed, &via_writer).unwrap(), pt);
    }
}

#[test]
fn stream_key_from_black_box_opens_body() {
    let seed = identity();
    let sealed = seal(&seed, &plaintext(1500), 10, 11);
    let (prefix, used) = EnvelopePrefix::decode(&sealed).unwrap();
    let key = seed.stream_key(&prefix).unwrap();
    let key = cifer_core::StreamKey::from_bytes(&key.to_bytes());
    let mut out = Vec::new();
    let opener = cifer_core::stream::ChunkOpener::new(&key, &prefix, Backend::fastest()).unwrap();
    open_stream(opener, &mut &sealed[used..], &mut out).unwrap();
    assert_eq!(out, plaintext(1500));
    assert_eq!(format!("{key:?}"), "StreamKey(<redacted>)");
}

#[cfg(feature = "aws-lc")]
#[test]
fn aead_backends_agree() {
    // Differential: RustCrypto and aws-lc-rs produce identical envelopes from one key.
    let seed = identity();
    let ek = seed.encapsulation_key();
    for len in [0usize, 1, 1024, 3000, 70_000] {
        let pt = plaintext(len);
        let (prefix, key) = envelope::begin_with_rng(&ek, header(10), &mut rng(12)).unwrap();
        let outs: Vec<Vec<u8>> = cifer_core::aead::all_backends()
            .into_iter()
            .map(|b| {
                let mut out = Vec::new();
                let s = ChunkSealer::new(&key, &prefix, b).unwrap();
                cifer_core::stream::seal_stream(s, &mut &pt[..], &mut out).unwrap();
                out
            })
            .collect();
        assert!(outs.len() == 2 && outs[0] == outs[1], "len {len}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, rng_seed: proptest::test_runner::RngSeed::Fixed(0xC1FE), ..ProptestConfig::default() })]

    #[test]
    fn round_trip_any_length(len in 0usize..6000, log2 in 10u8..=11) {
        let seed = identity();
        let pt = plaintext(len);
        let sealed = seal(&seed, &pt, log2, len as u64);
        prop_assert_eq!(sealed.len(), expected_len(len, log2));
        prop_assert_eq!(envelope::open(&seed, &sealed).unwrap(), pt);
    }

    #[test]
    fn any_truncation_fails(len in 0usize..4000, cut_frac in 0.0f64..1.0) {
        let seed = identity();
        let sealed = seal(&seed, &plaintext(len), 10, 20);
        let cut = ((sealed.len() as f64) * cut_frac) as usize;
        prop_assume!(cut < sealed.len());
        prop_assert!(envelope::open(&seed, &sealed[..cut]).is_err());
    }

    #[test]
    fn any_extension_fails(len in 0usize..3000, extra in proptest::collection::vec(any::<u8>(), 1..40)) {
        let seed = identity();
        let mut sealed = seal(&seed, &plaintext(len), 10, 21);
        sealed.extend_from_slice(&extra);
        prop_assert!(envelope::open(&seed, &sealed).is_err());
    }

    #[test]
    fn any_bit_flip_fails(len in 0usize..3000, pos_frac in 0.0f64..1.0, bit in 0u8..8) {
        let seed = identity();
        let mut sealed = seal(&seed, &plaintext(len), 10, 22);
        let pos = (((sealed.len() as f64) * pos_frac) as usize).min(sealed.len() - 1);
        sealed[pos] ^= 1 << bit;
        let res = envelope::open(&seed, &sealed);
        prop_assert!(res.is_err());
        if pos >= HEADER_LEN {
            // Past the header, every defect is the one opaque authentication failure.
            prop_assert!(matches!(res, Err(Error::Authentication)));
        }
    }
}

#[test]
fn os_random_envelopes_round_trip_and_differ() {
    // The production path: OS randomness through the fastest ML-KEM backend.
    let seed = identity();
    let ek = seed.encapsulation_key();
    let a = envelope::seal(&ek, header(10), b"same").unwrap();
    let b = envelope::seal(&ek, header(10), b"same").unwrap();
    assert_ne!(a, b);
    assert_eq!(envelope::open(&seed, &a).unwrap(), b"same");
    assert_eq!(a.len(), envelope::sealed_len(&header(10), 4));
}

#[test]
fn mlkem_backends_agree() {
    // Whatever backend encapsulate_os uses, RustCrypto decapsulation recovers the same
    // shared secret (with `aws-lc`: AWS-LC encapsulates, RustCrypto decapsulates).
    for i in 0..64u64 {
        let seed = Seed::generate(&mut rng(1000 + i));
        let (ct, ss) = seed.encapsulation_key().encapsulate_os().unwrap();
        let back = seed.decapsulation_key().decapsulate(&ct[..]).unwrap();
        assert_eq!(back.as_bytes(), ss.as_bytes(), "key {i}");
    }
}

/// Differential test of the ML-KEM-768 backends: from the same seeds every backend derives
/// the same encapsulation key, and decapsulates honest ciphertexts and random (implicitly
/// rejected) ones to the same shared secret.
#[test]
fn mlkem_backends_are_byte_identical() {
    use cifer_core::keys::KemBackend;
    use rand_core::Rng;
    let backends = KemBackend::all();
    for i in 0..128u64 {
        let mut r = rng(5000 + i);
        let seed = Seed::generate(&mut r);
        let dks: Vec<_> = backends.iter().map(|b| seed.decapsulation_key_with(*b)).collect();
        let eks: Vec<_> = dks.iter().map(DecapsulationKey::encapsulation_key).collect();
        assert!(eks.windows(2).all(|w| w[0].as_bytes()[..] == w[1].as_bytes()[..]), "seed {i}");
        let (ct, ss) = eks[0].encapsulate(&mut r);
        let mut noise = [0u8; 1088];
        r.fill_bytes(&mut noise);
        let mut flipped = *ct;
        flipped[usize::try_from(i).unwrap() % 1088] ^= 1;
        for (b, dk) in backends.iter().zip(&dks) {
            assert_eq!(dk.decapsulate(&ct[..]).unwrap().as_bytes(), ss.as_bytes(), "{b:?} {i}");
        }
        for bad in [&noise, &flipped] {
            let outs: Vec<_> =
                dks.iter().map(|dk| *dk.decapsulate(&bad[..]).unwrap().as_bytes()).collect();
            assert!(outs.windows(2).all(|w| w[0] == w[1]), "implicit rejection differs, seed {i}");
            assert_ne!(&outs[0], ss.as_bytes());
        }
        for dk in &dks {
            assert!(dk.decapsulate(&ct[..1087]).is_err());
        }
    }
}

#[test]
fn seal_into_reuses_the_buffer_and_opens() {
    let seed = identity();
    let ek = seed.encapsulation_key();
    let mut buf = vec![0xEE; 10]; // stale content must be replaced
    // Growing, then shrinking after a large (multi-threaded) message left stale bytes.
    for len in [0usize, 1, 1024, 3000, 2 << 20, 5000, 0] {
        let pt = plaintext(len);
        envelope::seal_into(&ek, header(10), &pt, &mut buf).unwrap();
        assert_eq!(buf.len(), envelope::sealed_len(&header(10), len));
        assert_eq!(envelope::open(&seed, &buf).unwrap(), pt, "len {len}");
    }
}
