//! Verifiable 3-of-5 fragments: any 3 rebuild, 2 do not, a tweaked fragment is blamed.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "tests"
)]

use cifer_core::fragment::{self, FRAGMENT_LEN, SHARES, THRESHOLD};
use cifer_core::{Commitments, Error, Fragment, Seed};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn subsets(n: u8, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for mask in 0u32..(1 << n) {
        if mask.count_ones() as usize == k {
            out.push((0..usize::from(n)).filter(|i| mask & (1 << i) != 0).collect());
        }
    }
    out
}

fn tweak(f: &Fragment, byte: usize, bit: u8) -> Fragment {
    let mut bytes = f.to_bytes().to_vec();
    bytes[byte] ^= 1 << bit;
    // Keep the tweaked scalar canonical by touching a low-order byte of some scalar.
    Fragment::from_bytes(&bytes).unwrap()
}

#[test]
fn every_three_of_five_rebuilds_and_two_do_not() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let seed = Seed::generate(&mut rng);
    let (commitments, frags) = fragment::split(&seed, THRESHOLD, SHARES, &mut rng).unwrap();
    assert_eq!(frags.len(), 5);
    for f in &frags {
        commitments.verify(f).unwrap();
    }
    for subset in subsets(5, 3).into_iter().chain(subsets(5, 4)).chain(subsets(5, 5)) {
        let chosen: Vec<Fragment> = subset.iter().map(|i| frags[*i].clone()).collect();
        assert_eq!(fragment::combine(&commitments, &chosen).unwrap(), seed, "{subset:?}");
    }
    for subset in subsets(5, 2) {
        let chosen: Vec<Fragment> = subset.iter().map(|i| frags[*i].clone()).collect();
        assert!(matches!(
            fragment::combine(&commitments, &chosen),
            Err(Error::NotEnoughFragments { needed: 3, got: 2 })
        ));
    }
}

#[test]
fn a_liar_is_named_and_outvoted() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let seed = Seed::generate(&mut rng);
    let (c, frags) = fragment::split(&seed, 3, 5, &mut rng).unwrap();
    let liar = tweak(&frags[1], 40, 0);
    assert!(matches!(c.verify(&liar), Err(Error::InvalidFragment { culprit: 2 })));
    // With 4 or 5 answers one liar does not matter.
    let four = vec![frags[0].clone(), liar.clone(), frags[2].clone(), frags[3].clone()];
    assert_eq!(fragment::combine(&c, &four).unwrap(), seed);
    // With exactly 3 and one liar: a clean integrity error naming the liar, never a wrong key.
    let three = vec![frags[0].clone(), liar, frags[2].clone()];
    let err = fragment::combine(&c, &three).unwrap_err();
    assert_eq!(err.culprits(), vec![2]);
}

#[test]
fn fragments_from_another_sharing_are_blamed() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let seed = Seed::generate(&mut rng);
    let (c, frags) = fragment::split(&seed, 3, 5, &mut rng).unwrap();
    let (_, other) = fragment::split(&seed, 3, 5, &mut rng).unwrap();
    assert!(matches!(c.verify(&other[4]), Err(Error::InvalidFragment { culprit: 5 })));
    let mixed = vec![frags[0].clone(), frags[1].clone(), other[4].clone()];
    assert!(matches!(fragment::combine(&c, &mixed), Err(Error::InvalidFragment { culprit: 5 })));
}

#[test]
fn bad_indices_and_lengths_are_rejected() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let seed = Seed::generate(&mut rng);
    let (c, frags) = fragment::split(&seed, 3, 5, &mut rng).unwrap();
    let mut zero = frags[0].to_bytes().to_vec();
    zero[1] = 0;
    assert!(matches!(Fragment::from_bytes(&zero), Err(Error::InvalidFragmentIndex(0))));
    let dup = vec![frags[0].clone(), frags[1].clone(), frags[0].clone()];
    assert!(matches!(fragment::combine(&c, &dup), Err(Error::DuplicateFragmentIndex(1))));
    let bytes = frags[0].to_bytes();
    assert!(matches!(
        Fragment::from_bytes(&bytes[..FRAGMENT_LEN - 1]),
        Err(Error::Malformed { .. })
    ));
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(matches!(Fragment::from_bytes(&longer), Err(Error::Malformed { .. })));
    let mut version = bytes.to_vec();
    version[0] = 2;
    assert!(matches!(Fragment::from_bytes(&version), Err(Error::Malformed { .. })));
    // A non-canonical scalar (>= group order) is malformed, not silently reduced.
    let mut big = bytes.to_vec();
    big[2..34].copy_from_slice(&[0xff; 32]);
    assert!(matches!(Fragment::from_bytes(&big), Err(Error::Malformed { .. })));
    // An index above n verifies against nothing.
    let mut high = bytes.to_vec();
    high[1] = 6;
    let f6 = Fragment::from_bytes(&high).unwrap();
    assert!(matches!(c.verify(&f6), Err(Error::InvalidFragment { culprit: 6 })));
    assert!(fragment::split(&seed, 1, 5, &mut rng).is_err());
    assert!(fragment::split(&seed, 6, 5, &mut rng).is_err());
}

#[test]
fn commitments_round_trip_and_reject_garbage() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let seed = Seed::generate(&mut rng);
    let (c, frags) = fragment::split(&seed, 3, 5, &mut rng).unwrap();
    let bytes = c.to_bytes();
    assert_eq!(bytes.len(), 2 + 9 * 33);
    let back = Commitments::from_bytes(&bytes).unwrap();
    assert_eq!(back, c);
    back.verify(&frags[3]).unwrap();
    assert!(Commitments::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut bad_point = bytes.clone();
    bad_point[3..35].copy_from_slice(&[0u8; 32]); // x = 0 is not on secp256k1
    assert!(matches!(Commitments::from_bytes(&bad_point), Err(Error::InvalidCommitments)));
    let mut bad_t = bytes.clone();
    bad_t[1] = 1;
    assert!(Commitments::from_bytes(&bad_t).is_err());
    assert_eq!(format!("{:?}", frags[0]), "Fragment { index: 1, <redacted> }");
}

#[test]
fn commitments_are_blinded_not_feldman() {
    // The constant-term commitment must not be limb·G (which a discrete-log solver
    // would invert). It equals limb·G + b·H for the blinder b, never limb·G alone.
    use k256::elliptic_curve::ff::PrimeField;
    use k256::elliptic_curve::group::GroupEncoding;
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let seed = Seed::generate(&mut rng);
    let (c, _) = fragment::split(&seed, 3, 5, &mut rng).unwrap();
    let bytes = c.to_bytes();
    let mut limb = [0u8; 32];
    limb[10..].copy_from_slice(&seed.as_bytes()[0..22]);
    let s = k256::Scalar::from_repr(limb.into()).unwrap();
    let feldman = (k256::ProjectivePoint::GENERATOR * s).to_affine().to_bytes();
    assert_ne!(&bytes[2..35], &feldman[..]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: proptest::test_runner::RngSeed::Fixed(0xF7A6), ..ProptestConfig::default() })]

    #[test]
    fn random_seeds_rebuild_from_any_three(seed_bytes in proptest::array::uniform32(any::<u8>()), pick in 0usize..10, rng_seed in any::<u64>()) {
        let mut full = [0u8; 64];
        full[..32].copy_from_slice(&seed_bytes);
        full[32..].copy_from_slice(&seed_bytes.map(|b| !b));
        let seed = Seed::from_bytes(full);
        let mut rng = ChaCha20Rng::seed_from_u64(rng_seed);
        let (c, frags) = fragment::split(&seed, 3, 5, &mut rng).unwrap();
        let subset = &subsets(5, 3)[pick];
        let chosen: Vec<Fragment> = subset.iter().map(|i| frags[*i].clone()).collect();
        prop_assert_eq!(fragment::combine(&c, &chosen).unwrap(), seed);
    }

    #[test]
    fn any_tweak_is_blamed(victim in 0usize..5, byte in 2usize..FRAGMENT_LEN, bit in 0u8..8, rng_seed in any::<u64>()) {
        let mut rng = ChaCha20Rng::seed_from_u64(rng_seed);
        let seed = Seed::generate(&mut rng);
        let (c, frags) = fragment::split(&seed, 3, 5, &mut rng).unwrap();
        let mut bytes = frags[victim].to_bytes().to_vec();
        bytes[byte] ^= 1 << bit;
        // A flip may make a scalar non-canonical: then parsing already refuses it.
        if let Ok(bad) = Fragment::from_bytes(&bytes) {
            let expected = u8::try_from(victim + 1).unwrap();
            let blamed = c.verify(&bad).unwrap_err().culprits();
            prop_assert_eq!(blamed, vec![expected]);
        }
    }
}

/// The fast verifier agrees with `vsss-rs`'s generic Pedersen check on valid fragments,
/// tweaked ones, fragments of other sharings and out-of-range indices.
#[cfg(feature = "hazmat")]
#[test]
fn fast_verify_agrees_with_vsss_reference() {
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    for round in 0..12u64 {
        let seed = Seed::generate(&mut rng);
        let (c, frags) = fragment::split(&seed, 3, 5, &mut rng).unwrap();
        let (_, other) = fragment::split(&seed, 3, 5, &mut rng).unwrap();
        let mut candidates: Vec<Fragment> = frags.clone();
        candidates.extend(other.iter().cloned());
        for f in &frags {
            let mut bytes = f.to_bytes().to_vec();
            bytes[40 + (round as usize % 100)] ^= 1;
            if let Ok(t) = Fragment::from_bytes(&bytes) {
                candidates.push(t);
            }
            let mut bytes = f.to_bytes().to_vec();
            bytes[1] = 6 + (round as u8);
            candidates.push(Fragment::from_bytes(&bytes).unwrap());
        }
        for f in &candidates {
            let fast = c.verify(f).map_err(|e| e.culprits());
            let reference = c.verify_reference(f).map_err(|e| e.culprits());
            assert_eq!(fast, reference, "round {round} fragment {}", f.index());
        }
        assert!(frags.iter().all(|f| c.verify(f).is_ok()));
    }
}

/// Batch verification agrees with one-by-one verification: every honest 3-subset passes
/// and rebuilds the seed through `combine`'s fast path, and a bit flipped anywhere in a
/// share or a blinder (the blinders and the `z` half of the seed are not bound by the
/// public key, so a key-hash check alone would miss some of these) is refused and blamed.
#[test]
fn batch_verification_catches_every_tweak() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let seed = Seed::generate(&mut rng);
    let (c, frags) = fragment::split(&seed, 3, 5, &mut rng).unwrap();
    for subset in subsets(5, 3) {
        let chosen: Vec<Fragment> = subset.iter().map(|i| frags[*i].clone()).collect();
        c.verify_all(&chosen).unwrap();
        assert_eq!(fragment::combine(&c, &chosen).unwrap(), seed, "{subset:?}");
        for (k, byte) in [(0usize, 20usize), (1, 50), (2, 80), (0, 110), (1, 150), (2, 180)] {
            let mut bad = chosen.clone();
            bad[k] = tweak(&bad[k], byte, 0);
            let culprit = bad[k].index();
            assert!(
                matches!(c.verify_all(&bad), Err(Error::InvalidFragment { culprit: x }) if x == culprit),
                "{subset:?}: fragment {k}, byte {byte}"
            );
            assert!(matches!(fragment::combine(&c, &bad), Err(Error::InvalidFragment { .. })));
        }
    }
    c.verify_all(&[]).unwrap();
}

/// The fast rebuild (batch verification, Lagrange coefficients computed once for the three
/// limbs) returns what `vsss-rs` returns limb by limb, for every 3-subset of random
/// sharings; and both refuse the same tweaked fragment.
#[cfg(feature = "hazmat")]
#[test]
fn fast_combine_agrees_with_vsss_reference() {
    let mut rng = ChaCha20Rng::seed_from_u64(78);
    for _ in 0..8 {
        let seed = Seed::generate(&mut rng);
        let (c, frags) = fragment::split(&seed, 3, 5, &mut rng).unwrap();
        for subset in subsets(5, 3) {
            let chosen: Vec<Fragment> = subset.iter().map(|i| frags[*i].clone()).collect();
            let fast = fragment::combine(&c, &chosen).unwrap();
            let reference = fragment::combine_reference(&c, &chosen).unwrap();
            assert_eq!(fast, reference);
            assert_eq!(fast, seed);
            let mut bytes = chosen[1].to_bytes().to_vec();
            bytes[5] ^= 1;
            let mut tweaked = chosen.clone();
            tweaked[1] = Fragment::from_bytes(&bytes).unwrap();
            assert!(fragment::combine(&c, &tweaked).is_err());
            assert!(fragment::combine_reference(&c, &tweaked).is_err());
        }
    }
}
