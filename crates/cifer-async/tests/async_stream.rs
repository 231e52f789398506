//! The async drivers agree byte for byte with the blocking ones and reject tampering.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::expect_used,
    missing_docs,
    reason = "tests"
)]

use cifer_core::{Backend, Error, Header, Seed, Suite, envelope, stream::ChunkSealer};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn header() -> Header {
    Header::new(Suite::MlKem768, 10, 1, [3u8; 32]).unwrap()
}

#[tokio::test]
async fn async_matches_blocking_and_round_trips() {
    let seed = Seed::generate(&mut ChaCha20Rng::seed_from_u64(1));
    let ek = seed.encapsulation_key();
    for len in [0usize, 1, 1024, 1025, 5000] {
        let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let (prefix, key) =
            envelope::begin_with_rng(&ek, header(), &mut ChaCha20Rng::seed_from_u64(2)).unwrap();
        let mut blocking = Vec::new();
        let s = ChunkSealer::new(&key, &prefix, Backend::fastest()).unwrap();
        cifer_core::stream::seal_stream(s, &mut &pt[..], &mut blocking).unwrap();
        let mut asynced = Vec::new();
        let s = ChunkSealer::new(&key, &prefix, Backend::fastest()).unwrap();
        cifer_async::seal_stream(s, &mut &pt[..], &mut asynced).await.unwrap();
        assert_eq!(blocking, asynced, "len {len}");

        let mut env = Vec::new();
        cifer_async::encrypt_with_rng(
            &ek,
            header(),
            &mut ChaCha20Rng::seed_from_u64(3),
            &mut &pt[..],
            &mut env,
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        cifer_async::decrypt(&seed, &mut &env[..], &mut out).await.unwrap();
        assert_eq!(out, pt);
        assert_eq!(envelope::open(&seed, &env).unwrap(), pt);
    }
}

#[tokio::test]
async fn async_rejects_tampering_and_truncation() {
    let seed = Seed::generate(&mut ChaCha20Rng::seed_from_u64(4));
    let env = envelope::seal_with_rng(
        &seed.encapsulation_key(),
        header(),
        &[9u8; 3000],
        &mut ChaCha20Rng::seed_from_u64(5),
    )
    .unwrap();
    let mut flipped = env.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let mut out = Vec::new();
    assert!(matches!(
        cifer_async::decrypt(&seed, &mut &flipped[..], &mut out).await,
        Err(Error::Authentication)
    ));
    let cut = &env[..env.len() - 1100];
    assert!(cifer_async::decrypt(&seed, &mut &cut[..], &mut Vec::new()).await.is_err());
    assert!(matches!(
        cifer_async::decrypt(&seed, &mut &env[..30], &mut Vec::new()).await,
        Err(Error::Truncated)
    ));
}

#[tokio::test]
async fn files_stream_through_tokio() {
    let dir = tempfile::tempdir().unwrap();
    let seed = Seed::generate(&mut ChaCha20Rng::seed_from_u64(6));
    let pt: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let (src, enc, dec) = (dir.path().join("p"), dir.path().join("e"), dir.path().join("d"));
    tokio::fs::write(&src, &pt).await.unwrap();
    let mut input = tokio::fs::File::open(&src).await.unwrap();
    let mut output = tokio::fs::File::create(&enc).await.unwrap();
    // The production path: OS randomness.
    cifer_async::encrypt(&seed.encapsulation_key(), header(), &mut input, &mut output)
        .await
        .unwrap();
    drop(output);
    let mut input = tokio::fs::File::open(&enc).await.unwrap();
    let mut output = tokio::fs::File::create(&dec).await.unwrap();
    cifer_async::decrypt(&seed, &mut input, &mut output).await.unwrap();
    drop(output);
    assert_eq!(tokio::fs::read(&dec).await.unwrap(), pt);
}
