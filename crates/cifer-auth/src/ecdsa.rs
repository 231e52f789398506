//! Low-s ECDSA over secp256k1, the Ethereum way (PROTOCOL.md §4.3 step 1, EOA branch).
//!
//! A signature is the 65 bytes `r || s || v` that `personal_sign`/`eth_signTypedData`
//! return, with `v` either 27/28 or 0/1 (the y-parity of the nonce point). The range
//! checks come first and are explicit: `0 < r < n`, `0 < s < n`, and `s <= n/2` (EIP-2;
//! `(r, n - s)` with the other parity is the same signature's malleable twin). Then the
//! public key is recovered (libsecp256k1 with the default `libsecp256k1` feature, else
//! k256; a test holds them equal) and turned into an address (the last 20 bytes of the
//! keccak256 of the uncompressed point without its `0x04` prefix).
//!
//! [`verify_prehash`] is the same policy without recovery, for a known public key; the
//! Wycheproof vectors drive it (`tests/wycheproof.rs`).

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{RecoveryId, VerifyingKey};

use crate::{Address, B256, Error, Result, keccak256};

/// The order `n` of the secp256k1 group, big-endian.
pub const SECP256K1_ORDER: B256 = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// `floor(n / 2)`, the largest `s` accepted.
pub const SECP256K1_HALF_ORDER: B256 = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// A recoverable signature whose scalars passed the range and low-s checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    r: B256,
    s: B256,
    y_odd: bool,
}

impl Signature {
    /// Parses `r || s || v` (65 bytes; `v` in {27, 28, 0, 1}).
    ///
    /// # Errors
    /// [`Error::SignatureLength`], [`Error::InvalidRecoveryByte`], then as
    /// [`Signature::from_parts`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes: &[u8; 65] = bytes.try_into().map_err(|_| Error::SignatureLength(bytes.len()))?;
        let y_odd = match bytes[64] {
            0 | 27 => false,
            1 | 28 => true,
            v => return Err(Error::InvalidRecoveryByte(v)),
        };
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&bytes[..32]);
        s.copy_from_slice(&bytes[32..64]);
        Self::from_parts(r, s, y_odd)
    }

    /// A signature from its scalars and the y-parity of the nonce point.
    ///
    /// # Errors
    /// As [`check_scalars`].
    pub fn from_parts(r: B256, s: B256, y_odd: bool) -> Result<Self> {
        check_scalars(&r, &s)?;
        Ok(Signature { r, s, y_odd })
    }

    /// `r`, big-endian.
    #[must_use]
    pub fn r(&self) -> B256 {
        self.r
    }

    /// `s`, big-endian (at most `n/2`).
    #[must_use]
    pub fn s(&self) -> B256 {
        self.s
    }

    /// Whether the nonce point has odd y (`v = 28`).
    #[must_use]
    pub fn y_odd(&self) -> bool {
        self.y_odd
    }

    /// `r || s || v` with `v` = 27 or 28.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[..32].copy_from_slice(&self.r);
        out[32..64].copy_from_slice(&self.s);
        out[64] = 27 + u8::from(self.y_odd);
        out
    }

    /// The address whose key made this signature over `prehash`.
    ///
    /// `prehash` must be a hash output (keccak256 here): recovery over attacker-chosen
    /// "digests" can be steered to any key.
    ///
    /// # Errors
    /// [`Error::InvalidSignature`] when no key recovers (`r` is not the x of a curve point,
    /// or the result is the identity).
    pub fn recover_address(&self, prehash: &B256) -> Result<Address> {
        #[cfg(feature = "libsecp256k1")]
        {
            use secp256k1::ecdsa::{RecoverableSignature, RecoveryId as Id};
            // SEC 1 v2 §4.1.6 public-key recovery by libsecp256k1 (variable time, as all
            // inputs and the output are public). The range and low-s checks were made by
            // `from_parts`; `recover_matches_k256` checks the result against k256.
            static CONTEXT: std::sync::LazyLock<secp256k1::Secp256k1<secp256k1::VerifyOnly>> =
                std::sync::LazyLock::new(secp256k1::Secp256k1::verification_only);
            let mut compact = [0u8; 64];
            compact[..32].copy_from_slice(&self.r);
            compact[32..].copy_from_slice(&self.s);
            let id = if self.y_odd { Id::One } else { Id::Zero };
            let signature = RecoverableSignature::from_compact(&compact, id)
                .map_err(|_| Error::ScalarOutOfRange)?;
            let key = CONTEXT
                .recover_ecdsa(secp256k1::Message::from_digest(*prehash), &signature)
                .map_err(|_| Error::InvalidSignature)?;
            Ok(address_of_sec1(&key.serialize_uncompressed()))
        }
        #[cfg(not(feature = "libsecp256k1"))]
        {
            self.recover_address_reference(prehash)
        }
    }

    /// [`Self::recover_address`] through k256's `recover_from_prehash`: the reference the
    /// libsecp256k1 path is tested against, and the path without that feature.
    /// Ethereum's v carries only the y-parity; x-reduced nonces (r + n < p) are never
    /// produced by a wallet and not expressible in 27/28.
    ///
    /// # Errors
    /// As [`Self::recover_address`].
    pub fn recover_address_reference(&self, prehash: &B256) -> Result<Address> {
        let signature = self.k256_signature()?;
        let id = RecoveryId::new(self.y_odd, false);
        let key = VerifyingKey::recover_from_prehash(prehash, &signature, id)
            .map_err(|_| Error::InvalidSignature)?;
        Ok(address_of(&key))
    }

    fn k256_signature(&self) -> Result<k256::ecdsa::Signature> {
        k256::ecdsa::Signature::from_scalars(self.r, self.s).map_err(|_| Error::ScalarOutOfRange)
    }
}

/// The range checks of every ECDSA signature here: `0 < r < n`, `0 < s < n`, `s <= n/2`.
///
/// # Errors
/// [`Error::ScalarOutOfRange`] for a zero or too-large scalar, [`Error::HighS`] for
/// `n/2 < s < n`.
pub fn check_scalars(r: &B256, s: &B256) -> Result<()> {
    // Signatures are public: plain comparisons of big-endian arrays are fine.
    for scalar in [r, s] {
        if *scalar == [0u8; 32] || *scalar >= SECP256K1_ORDER {
            return Err(Error::ScalarOutOfRange);
        }
    }
    if *s > SECP256K1_HALF_ORDER {
        return Err(Error::HighS);
    }
    Ok(())
}

/// Verifies `(r, s)` over `prehash` for a known SEC1-encoded public key, with the same
/// range and low-s policy as recovery.
///
/// # Errors
/// As [`check_scalars`]; [`Error::InvalidPublicKey`]; [`Error::InvalidSignature`].
pub fn verify_prehash(public_key: &[u8], prehash: &B256, r: &B256, s: &B256) -> Result<()> {
    check_scalars(r, s)?;
    let key = VerifyingKey::from_sec1_bytes(public_key).map_err(|_| Error::InvalidPublicKey)?;
    let signature =
        k256::ecdsa::Signature::from_scalars(*r, *s).map_err(|_| Error::ScalarOutOfRange)?;
    key.verify_prehash(prehash, &signature).map_err(|_| Error::InvalidSignature)
}

/// Signs a 32-byte `prehash` the Ethereum way: RFC 6979 deterministic nonce, low-s, and
/// `v = 27 + y-parity` (65 bytes, `r ‖ s ‖ v`). Through libsecp256k1 with the default
/// `libsecp256k1` feature (constant time, several times faster than k256's signing plus
/// the parity search below), else through [`sign_prehash_reference`]; both give the same
/// bytes (`sign_prehash_matches_k256`). The temporary copy of the secret is erased.
///
/// # Errors
/// [`Error::InvalidSignature`] if no signature could be made (not expected for a valid key).
pub fn sign_prehash(key: &k256::ecdsa::SigningKey, prehash: &B256) -> Result<[u8; 65]> {
    #[cfg(feature = "libsecp256k1")]
    {
        use zeroize::Zeroize;
        static CONTEXT: std::sync::LazyLock<secp256k1::Secp256k1<secp256k1::SignOnly>> =
            std::sync::LazyLock::new(secp256k1::Secp256k1::signing_only);
        let mut bytes: [u8; 32] = key.to_bytes().into();
        let secret = secp256k1::SecretKey::from_byte_array(bytes);
        bytes.zeroize();
        let mut secret = secret.map_err(|_| Error::InvalidSignature)?;
        let signature =
            CONTEXT.sign_ecdsa_recoverable(secp256k1::Message::from_digest(*prehash), &secret);
        secret.non_secure_erase();
        let (id, compact) = signature.serialize_compact();
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&compact);
        out[64] = if i32::from(id) & 1 == 1 { 28 } else { 27 };
        Ok(out)
    }
    #[cfg(not(feature = "libsecp256k1"))]
    {
        sign_prehash_reference(key, prehash)
    }
}

/// [`sign_prehash`] through k256: RFC 6979 signing, s normalised to the low half, and the
/// parity found by recovering (k256's id is for the signature before normalisation).
///
/// # Errors
/// [`Error::InvalidSignature`] if neither parity recovers the key (not expected).
pub fn sign_prehash_reference(key: &k256::ecdsa::SigningKey, prehash: &B256) -> Result<[u8; 65]> {
    let (sig, _) = key.sign_prehash_recoverable(prehash);
    let sig = sig.normalize_s();
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_bytes());
    let expected = address_of(key.verifying_key());
    for v in [27u8, 28] {
        out[64] = v;
        if Signature::from_bytes(&out)
            .and_then(|s| s.recover_address_reference(prehash))
            .is_ok_and(|a| a == expected)
        {
            return Ok(out);
        }
    }
    Err(Error::InvalidSignature)
}

/// The Ethereum address of a SEC1-encoded (compressed or not) secp256k1 public key.
///
/// # Errors
/// [`Error::InvalidPublicKey`].
pub fn address_from_public_key(public_key: &[u8]) -> Result<Address> {
    let key = VerifyingKey::from_sec1_bytes(public_key).map_err(|_| Error::InvalidPublicKey)?;
    Ok(address_of(&key))
}

fn address_of(key: &VerifyingKey) -> Address {
    address_of_sec1(key.to_sec1_point(false).as_bytes())
}

fn address_of_sec1(uncompressed: &[u8]) -> Address {
    // 0x04 || x || y; the address hashes x || y.
    let hash = keccak256(&uncompressed[1..]);
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash[12..]);
    address
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use k256::elliptic_curve::PrimeField;
    use k256::elliptic_curve::scalar::IsHigh;

    #[test]
    fn order_constants_match_k256() {
        // n - 1 is the largest scalar k256 accepts; n itself is rejected.
        let mut n_minus_1 = SECP256K1_ORDER;
        n_minus_1[31] -= 1;
        assert!(bool::from(k256::Scalar::from_repr(n_minus_1.into()).is_some()));
        assert!(bool::from(k256::Scalar::from_repr(SECP256K1_ORDER.into()).is_none()));
        // floor(n/2) is low, floor(n/2) + 1 is high.
        let half = k256::Scalar::from_repr(SECP256K1_HALF_ORDER.into()).unwrap();
        assert!(!bool::from(half.is_high()));
        assert!(bool::from((half + k256::Scalar::ONE).is_high()));
    }

    #[test]
    fn range_checks() {
        let one = {
            let mut b = [0u8; 32];
            b[31] = 1;
            b
        };
        let mut above_half = SECP256K1_HALF_ORDER;
        above_half[31] += 1;
        let mut n_minus_1 = SECP256K1_ORDER;
        n_minus_1[31] -= 1;

        assert_eq!(check_scalars(&one, &one), Ok(()));
        assert_eq!(check_scalars(&n_minus_1, &SECP256K1_HALF_ORDER), Ok(()));
        assert_eq!(check_scalars(&[0; 32], &one), Err(Error::ScalarOutOfRange));
        assert_eq!(check_scalars(&one, &[0; 32]), Err(Error::ScalarOutOfRange));
        assert_eq!(check_scalars(&SECP256K1_ORDER, &one), Err(Error::ScalarOutOfRange));
        assert_eq!(check_scalars(&one, &SECP256K1_ORDER), Err(Error::ScalarOutOfRange));
        assert_eq!(check_scalars(&[0xff; 32], &one), Err(Error::ScalarOutOfRange));
        assert_eq!(check_scalars(&one, &[0xff; 32]), Err(Error::ScalarOutOfRange));
        assert_eq!(check_scalars(&one, &above_half), Err(Error::HighS));
        assert_eq!(check_scalars(&one, &n_minus_1), Err(Error::HighS));
    }

    #[test]
    fn recovery_byte_and_length() {
        let mut bytes = [0u8; 65];
        bytes[31] = 1;
        bytes[63] = 1;
        for (v, odd) in [(27, false), (28, true), (0, false), (1, true)] {
            bytes[64] = v;
            let sig = Signature::from_bytes(&bytes).unwrap();
            assert_eq!(sig.y_odd(), odd);
            assert_eq!(sig.to_bytes()[64], 27 + u8::from(odd));
        }
        for v in [2, 3, 26, 29, 35, 36, 255] {
            bytes[64] = v;
            assert_eq!(Signature::from_bytes(&bytes), Err(Error::InvalidRecoveryByte(v)));
        }
        assert_eq!(Signature::from_bytes(&bytes[..64]), Err(Error::SignatureLength(64)));
        assert_eq!(Signature::from_bytes(&[0u8; 66]), Err(Error::SignatureLength(66)));
        assert_eq!(Signature::from_bytes(&[]), Err(Error::SignatureLength(0)));
    }

    #[test]
    fn anvil_key_address() {
        // The well-known anvil dev key 0: its public key, compressed and not, gives its address.
        let secret =
            hex::decode("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
                .unwrap();
        let key = k256::ecdsa::SigningKey::from_slice(&secret).unwrap();
        let expected = hex::decode("f39fd6e51aad88f6f4ce6ab8827279cfffb92266").unwrap();
        for compressed in [false, true] {
            let sec1 = key.verifying_key().to_sec1_point(compressed);
            assert_eq!(address_from_public_key(sec1.as_bytes()).unwrap()[..], expected[..]);
        }
        assert_eq!(address_from_public_key(&[4u8; 65]), Err(Error::InvalidPublicKey));
    }

    #[test]
    fn sign_prehash_matches_k256() {
        // Both are RFC 6979 with low-s: the same 65 bytes for every key and digest, and
        // the signature recovers to the key's address.
        for i in 0u32..300 {
            let seed = keccak256(&(i + 1_000).to_be_bytes());
            let key = k256::ecdsa::SigningKey::from_slice(&seed).unwrap();
            let prehash = keccak256(&i.to_le_bytes());
            let fast = sign_prehash(&key, &prehash).unwrap();
            assert_eq!(fast, sign_prehash_reference(&key, &prehash).unwrap(), "key {i}");
            let sig = Signature::from_bytes(&fast).unwrap();
            assert_eq!(sig.recover_address(&prehash).unwrap(), address_of(key.verifying_key()));
        }
    }

    #[test]
    fn recover_matches_k256() {
        // Real signatures by many keys, and arbitrary (r, s, parity, digest) tuples (about
        // half of all r are no curve point's x): libsecp256k1 and k256 agree
        // on every address and every failure. Low-s is enforced by `from_parts` first.
        let (mut recovered, mut failed) = (0, 0);
        for i in 0u32..400 {
            let seed = keccak256(&i.to_be_bytes());
            let prehash = keccak256(&seed);
            let (r, s, y_odd) = if i % 2 == 0 {
                let key = k256::ecdsa::SigningKey::from_slice(&seed).unwrap();
                let (sig, id) = key.sign_prehash_recoverable(&prehash);
                let low = sig.normalize_s();
                let (r, s) = low.split_bytes();
                (r.into(), s.into(), id.is_y_odd() ^ (low != sig))
            } else {
                let mut s = keccak256(&prehash);
                s[0] &= 0x7f;
                (keccak256(&s), s, i % 4 == 1)
            };
            let Ok(sig) = Signature::from_parts(r, s, y_odd) else { continue };
            match sig.recover_address(&prehash) {
                Ok(_) => recovered += 1,
                Err(_) => failed += 1,
            }
            assert_eq!(
                sig.recover_address(&prehash),
                sig.recover_address_reference(&prehash),
                "case {i}"
            );
        }
        assert!(recovered > 250 && failed > 20, "{recovered} recovered, {failed} failed");
    }

    #[test]
    fn recover_and_verify_agree() {
        let key = k256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let public = key.verifying_key().to_sec1_point(false);
        let address = address_from_public_key(public.as_bytes()).unwrap();
        for i in 0u8..16 {
            let prehash = keccak256(&[i]);
            let (sig, id) = key.sign_prehash_recoverable(&prehash);
            let (r, s) = sig.split_bytes();
            let (r, s): (B256, B256) = (r.into(), s.into());
            let ours = Signature::from_parts(r, s, id.is_y_odd()).unwrap();
            assert_eq!(ours.recover_address(&prehash).unwrap(), address);
            assert_eq!(verify_prehash(public.as_bytes(), &prehash, &r, &s), Ok(()));
            // Wrong parity recovers another key; a wrong digest fails verification.
            let flipped = Signature::from_parts(r, s, !id.is_y_odd()).unwrap();
            assert_ne!(flipped.recover_address(&prehash).ok(), Some(address));
            let other = keccak256(b"other");
            assert_eq!(
                verify_prehash(public.as_bytes(), &other, &r, &s),
                Err(Error::InvalidSignature)
            );
        }
    }
}
