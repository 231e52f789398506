//! Creation bundle → node delivery → release reply → black box rebuild, with the
//! failure cases each step must catch.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, reason = "tests")]

use cifer_core::{Seed, fragment, keccak256};
use cifer_custody::{
    Error, ReleaseOpener, create_bundle, open_delivery, open_release, release_batch_digest,
    release_key_digest, seal_release, sign_digest,
};
use k256::ecdsa::SigningKey;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn nodes() -> Vec<Seed> {
    (0..5).map(|i| Seed::generate(&mut ChaCha20Rng::seed_from_u64(100 + i))).collect()
}

fn black_box_key(n: u8) -> SigningKey {
    SigningKey::from_slice(&[n; 32]).unwrap()
}

fn address(key: &SigningKey) -> [u8; 20] {
    cifer_auth::ecdsa::address_from_public_key(key.verifying_key().to_sec1_point(false).as_bytes())
        .unwrap()
}

#[test]
fn create_deliver_release_rebuild() {
    let nodes = nodes();
    let node_eks: Vec<_> = nodes.iter().map(Seed::encapsulation_key).collect();
    let bb = black_box_key(7);
    let bundle = create_bundle(31337, 1, 3, &node_eks, &bb).unwrap();
    assert_eq!(bundle.signer().unwrap(), address(&bb));
    assert_eq!(bundle.encapsulation_key.len(), 1184);
    assert_eq!(bundle.sealed.len(), 5);

    // Each node opens exactly its own slot.
    let delivered: Vec<_> = (1..=5u8)
        .map(|slot| open_delivery(&bundle, &nodes[usize::from(slot) - 1], slot, 5).unwrap())
        .collect();
    for (i, d) in delivered.iter().enumerate() {
        assert_eq!(usize::from(d.fragment.index()), i + 1);
        assert_eq!(d.ek_hash, keccak256(&bundle.encapsulation_key));
        assert_eq!(d.signer, address(&bb));
    }
    // A node cannot open another node's slot, and a wrong slot claim is refused.
    assert!(open_delivery(&bundle, &nodes[0], 2, 5).is_err());
    assert!(matches!(open_delivery(&bundle, &nodes[0], 9, 5), Err(Error::WrongSlot { .. })));
    assert!(matches!(open_delivery(&bundle, &nodes[0], 1, 4), Err(Error::WrongShareCount { .. })));

    // Release replies sealed to a per-request key; the black box opens them and rebuilds.
    let secret_id = {
        let mut s = [0u8; 32];
        s[31] = 42;
        s
    };
    let response = Seed::generate(&mut ChaCha20Rng::seed_from_u64(9));
    let replies: Vec<_> = delivered
        .iter()
        .map(|d| {
            seal_release(
                31337,
                secret_id,
                &d.fragment,
                &d.commitments,
                &bundle.signature,
                &response.encapsulation_key(),
            )
            .unwrap()
        })
        .collect();
    let released: Vec<_> = replies[1..4]
        .iter()
        .map(|r| open_release(r, &response, 31337, &secret_id).unwrap())
        .collect();
    for r in &released {
        assert_eq!(r.commitments.to_bytes(), bundle.commitments);
        assert_eq!(r.bundle_signature, bundle.signature);
    }
    let frags: Vec<_> = released.iter().map(|r| r.fragment.clone()).collect();
    let seed = fragment::combine(&released[0].commitments, &frags).unwrap();
    assert_eq!(seed.encapsulation_key().as_bytes()[..], bundle.encapsulation_key[..]);

    // A reply is bound to its secret and to the response key.
    assert!(open_release(&replies[0], &response, 31337, &[0u8; 32]).is_err());
    assert!(open_release(&replies[0], &nodes[0], 31337, &secret_id).is_err());
}

/// One opener per request: the key is derived once and identical commitments decoded
/// once, with the same results as `open_release`; a reply carrying other commitments (a
/// lying node's, or another secret's) gets its own, never the cached ones.
#[test]
fn release_opener_matches_open_release() {
    let nodes = nodes();
    let node_eks: Vec<_> = nodes.iter().map(Seed::encapsulation_key).collect();
    let bb = black_box_key(7);
    let bundle = create_bundle(31337, 1, 3, &node_eks, &bb).unwrap();
    let other = create_bundle(31337, 1, 3, &node_eks, &bb).unwrap();
    let secret_id = [5u8; 32];
    let response = Seed::generate(&mut ChaCha20Rng::seed_from_u64(11));
    let opener = ReleaseOpener::new(&response);
    assert_eq!(opener.encapsulation_key(), response.encapsulation_key());
    let reply = |b: &cifer_custody::Bundle, slot: u8| {
        let d = open_delivery(b, &nodes[usize::from(slot) - 1], slot, 5).unwrap();
        seal_release(
            31337,
            secret_id,
            &d.fragment,
            &d.commitments,
            &b.signature,
            &opener.encapsulation_key(),
        )
        .unwrap()
    };
    for (b, slot) in [(&bundle, 1), (&bundle, 2), (&other, 3), (&bundle, 4), (&other, 5)] {
        let sealed = reply(b, slot);
        let via_opener = opener.open(&sealed, 31337, &secret_id).unwrap();
        let direct = open_release(&sealed, &response, 31337, &secret_id).unwrap();
        assert_eq!(via_opener.commitments, direct.commitments);
        assert_eq!(via_opener.commitments.to_bytes(), b.commitments);
        assert_eq!(via_opener.fragment.to_bytes(), direct.fragment.to_bytes());
        assert_eq!(via_opener.bundle_signature, direct.bundle_signature);
    }
    // Openers of two requests sharing one cache: the same results, each distinct set of
    // commitments decoded once for both.
    let cache = std::sync::Arc::new(cifer_core::CommitmentsCache::new(16));
    let second = Seed::generate(&mut ChaCha20Rng::seed_from_u64(12));
    for response_seed in [&response, &second] {
        let shared = ReleaseOpener::with_cache(response_seed, std::sync::Arc::clone(&cache));
        for (b, slot) in [(&bundle, 1), (&other, 3), (&bundle, 4)] {
            let d = open_delivery(b, &nodes[usize::from(slot) - 1], slot, 5).unwrap();
            let sealed = seal_release(
                31337,
                secret_id,
                &d.fragment,
                &d.commitments,
                &b.signature,
                &shared.encapsulation_key(),
            )
            .unwrap();
            let got = shared.open(&sealed, 31337, &secret_id).unwrap();
            assert_eq!(got.commitments.to_bytes(), b.commitments);
            assert_eq!(got.fragment.to_bytes(), d.fragment.to_bytes());
        }
    }
    assert_eq!(cache.len(), 2, "two distinct commitment sets, decoded once each");
    // Bound to its secret and to the response key, as open_release.
    let sealed = reply(&bundle, 1);
    assert!(opener.open(&sealed, 31337, &[0u8; 32]).is_err());
    assert!(ReleaseOpener::new(&nodes[0]).open(&sealed, 31337, &secret_id).is_err());
}

#[test]
fn tampered_bundles_are_refused() {
    let nodes = nodes();
    let node_eks: Vec<_> = nodes.iter().map(Seed::encapsulation_key).collect();
    let bb = black_box_key(7);
    let bundle = create_bundle(1, 1, 3, &node_eks, &bb).unwrap();

    // Another key registered on chain than the one signed: the signature no longer
    // recovers to the black box.
    let mut other_key = bundle.clone();
    other_key.encapsulation_key[0] ^= 1;
    assert_ne!(other_key.signer().unwrap(), address(&bb));

    // Commitments swapped for another sharing's: the fragment no longer verifies (and
    // the signature no longer matches).
    let second = create_bundle(1, 1, 3, &node_eks, &bb).unwrap();
    let mut swapped = bundle.clone();
    swapped.commitments.clone_from(&second.commitments);
    assert!(matches!(open_delivery(&swapped, &nodes[0], 1, 5), Err(Error::Core(_))));

    // A sealed fragment from another bundle in this one: fails against these commitments.
    let mut spliced = bundle.clone();
    spliced.sealed[2].clone_from(&second.sealed[2]);
    assert!(matches!(
        open_delivery(&spliced, &nodes[2], 3, 5),
        Err(Error::Core(cifer_core::Error::InvalidFragment { culprit: 3 }))
    ));

    // A flipped bit in a sealed fragment does not open.
    let mut flipped = bundle.clone();
    let last = flipped.sealed[4].len() - 1;
    flipped.sealed[4][last] ^= 1;
    assert!(matches!(
        open_delivery(&flipped, &nodes[4], 5, 5),
        Err(Error::Core(cifer_core::Error::Authentication))
    ));

    // A signature by someone else recovers to someone else.
    let mut forged = bundle.clone();
    forged.signature = sign_digest(&black_box_key(8), &bundle.digest()).unwrap();
    assert_eq!(forged.signer().unwrap(), address(&black_box_key(8)));
}

#[test]
fn signatures_are_low_s_and_recover() {
    for n in 1..=20u8 {
        let key = black_box_key(n);
        let digest = keccak256(&[n]);
        let sig = sign_digest(&key, &digest).unwrap();
        let parsed = cifer_auth::ecdsa::Signature::from_bytes(&sig).unwrap();
        assert_eq!(parsed.recover_address(&digest).unwrap(), address(&key));
    }
    let d1 = release_key_digest(1, &[0u8; 32], &[1u8; 32], b"key");
    assert_ne!(d1, release_key_digest(2, &[0u8; 32], &[1u8; 32], b"key"));
    assert_ne!(d1, release_key_digest(1, &[0u8; 32], &[1u8; 32], b"kez"));
}

#[test]
fn batch_digests_bind_every_item_its_order_and_the_count() {
    let (a, b, c) = (keccak256(b"a"), keccak256(b"b"), keccak256(b"c"));
    let ab = release_batch_digest(&[a, b]);
    // The layout, spelled out: tag, count as big-endian u32, the bindings in order.
    let mut m = b"CIFER/v1/release-batch".to_vec();
    m.extend_from_slice(&2u32.to_be_bytes());
    m.extend_from_slice(&a);
    m.extend_from_slice(&b);
    assert_eq!(ab, keccak256(&m));
    assert_ne!(ab, release_batch_digest(&[b, a]), "order is bound");
    assert_ne!(ab, release_batch_digest(&[a, b, c]), "an extra item is refused");
    assert_ne!(ab, release_batch_digest(&[a]), "a missing item is refused");
    // A batch of one is not the single binding: neither signature stands for the other.
    assert_ne!(release_batch_digest(&[a]), a);
    assert_ne!(release_batch_digest(&[]), release_batch_digest(&[[0u8; 32]]));
}

#[test]
fn key_and_plaintext_replies_open_only_for_the_requester_and_secret() {
    let requester = Seed::generate_os().unwrap().decapsulation_key();
    let other = Seed::generate_os().unwrap().decapsulation_key();
    let ek = requester.encapsulation_key();
    let secret = [7u8; 32];
    // A stream key from a real envelope, so the reply carries something meaningful.
    let data_key = Seed::generate_os().unwrap();
    let header = cifer_core::Header::new(cifer_core::Suite::MlKem768, 16, 31337, secret).unwrap();
    let sealed =
        cifer_core::envelope::seal(&data_key.encapsulation_key(), header, b"hello").unwrap();
    let prefix = cifer_core::envelope::read_prefix(&mut &sealed[..]).unwrap();
    let key = data_key.stream_key(&prefix).unwrap();

    let reply = cifer_custody::seal_key_reply(31337, secret, &key, &ek).unwrap();
    let opened = cifer_custody::open_key_reply(&reply, &requester, 31337, &secret).unwrap();
    assert_eq!(*opened.to_bytes(), *key.to_bytes());
    let body = &sealed[prefix.as_bytes().len()..];
    assert_eq!(cifer_core::envelope::open_body(&opened, &prefix, body).unwrap(), b"hello");
    assert!(cifer_custody::open_key_reply(&reply, &other, 31337, &secret).is_err());
    assert!(cifer_custody::open_key_reply(&reply, &requester, 1, &secret).is_err());
    assert!(cifer_custody::open_key_reply(&reply, &requester, 31337, &[8; 32]).is_err());
    // A plaintext reply is not a key reply, and the other way round.
    let thin = cifer_custody::seal_plaintext_reply(31337, secret, b"pt", &ek).unwrap();
    assert_eq!(
        &cifer_custody::open_plaintext_reply(&thin, &requester, 31337, &secret).unwrap()[..],
        b"pt"
    );
    assert!(cifer_custody::open_key_reply(&thin, &requester, 31337, &secret).is_err());
    assert!(cifer_custody::open_plaintext_reply(&reply, &requester, 31337, &secret).is_err());
}
