//! ML-KEM-768 keys from the 64-byte seed (PROTOCOL.md §5, FIPS 203 §7.1
//! `ML-KEM.KeyGen_internal(d, z)`), and the local key files of PROTOCOL.md §5.
//!
//! Two implementations sit behind one interface ([`KemBackend`]): RustCrypto `ml-kem`,
//! always compiled, and with the `libcrux` feature Cryspen's formally verified
//! `libcrux-ml-kem` (AVX2 on x86-64, chosen at run time), about four times faster. Both are
//! run against the Wycheproof ML-KEM-768 vectors, and a differential test proves them
//! byte-identical (keys, ciphertexts, shared secrets, implicit rejection).

use core::fmt;

use ml_kem::kem::{Decapsulate, Encapsulate, KeyExport};
use ml_kem::ml_kem_768;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::suite::MLKEM768_CIPHERTEXT_LEN;

/// Length of the seed `d || z`.
pub const SEED_LEN: usize = 64;
/// Length of an ML-KEM-768 encapsulation key.
pub const EK_LEN: usize = 1184;
/// Prefix of an identity (seed) file line.
pub const IDENTITY_PREFIX: &str = "CIFER-MLKEM768-SEED-1:";
/// Prefix of a recipient (encapsulation key) file line.
pub const RECIPIENT_PREFIX: &str = "CIFER-MLKEM768-EK-1:";

/// Which ML-KEM-768 implementation derives keys and decapsulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KemBackend {
    /// RustCrypto `ml-kem`.
    RustCrypto,
    /// `libcrux-ml-kem` (feature `libcrux`).
    #[cfg(feature = "libcrux")]
    Libcrux,
}

impl KemBackend {
    /// The fastest backend compiled in.
    #[must_use]
    pub const fn fastest() -> Self {
        #[cfg(feature = "libcrux")]
        {
            Self::Libcrux
        }
        #[cfg(not(feature = "libcrux"))]
        {
            Self::RustCrypto
        }
    }

    /// Every backend compiled in (for differential tests and benchmarks).
    #[must_use]
    pub fn all() -> Vec<Self> {
        vec![
            Self::RustCrypto,
            #[cfg(feature = "libcrux")]
            Self::Libcrux,
        ]
    }
}

/// The 64-byte ML-KEM-768 seed `d || z`: the secret's private key, and the unit that is
/// split into fragments. Zeroized on drop; `Debug` prints `<redacted>`.
#[derive(Clone, ZeroizeOnDrop)]
pub struct Seed([u8; SEED_LEN]);

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

impl PartialEq for Seed {
    /// Constant time.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for Seed {}

impl Seed {
    /// A fresh seed from `rng` (use the OS RNG outside tests).
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut seed = [0u8; SEED_LEN];
        rng.fill_bytes(&mut seed);
        Self(seed)
    }

    /// A fresh seed from the operating system's RNG.
    ///
    /// # Errors
    /// [`Error::Rng`] if the OS RNG fails.
    pub fn generate_os() -> Result<Self> {
        let mut seed = [0u8; SEED_LEN];
        getrandom::fill(&mut seed).map_err(|_| Error::Rng)?;
        Ok(Self(seed))
    }

    /// Wraps raw seed bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; SEED_LEN]) -> Self {
        Self(bytes)
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8; SEED_LEN] {
        &mut self.0
    }

    /// The raw seed bytes. Handle with care.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; SEED_LEN] {
        &self.0
    }

    /// The decapsulation key (FIPS 203 `KeyGen_internal(d, z)`), by the fastest backend.
    #[must_use]
    pub fn decapsulation_key(&self) -> DecapsulationKey {
        self.decapsulation_key_with(KemBackend::fastest())
    }

    /// The decapsulation key derived by a chosen backend (all give the same key).
    #[must_use]
    pub fn decapsulation_key_with(&self, backend: KemBackend) -> DecapsulationKey {
        match backend {
            KemBackend::RustCrypto => {
                let seed = ml_kem::Seed::from(self.0);
                DecapsulationKey(Dk::RustCrypto(Box::new(ml_kem_768::DecapsulationKey::from_seed(
                    seed,
                ))))
            }
            #[cfg(feature = "libcrux")]
            KemBackend::Libcrux => {
                let (sk, pk) = libcrux_ml_kem::mlkem768::generate_key_pair(self.0).into_parts();
                DecapsulationKey(Dk::Libcrux(LibcruxDk {
                    sk: Box::new(sk),
                    ek: Box::new(pk.into()),
                }))
            }
        }
    }

    /// The encapsulation key this seed derives.
    #[must_use]
    pub fn encapsulation_key(&self) -> EncapsulationKey {
        self.decapsulation_key().encapsulation_key()
    }

    /// The identity file line of PROTOCOL.md §5, with its trailing newline.
    #[must_use]
    pub fn to_identity_file(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(IDENTITY_PREFIX.len() + 129));
        out.push_str(IDENTITY_PREFIX);
        let hex = Zeroizing::new(hex::encode(self.0));
        out.push_str(&hex);
        out.push('\n');
        out
    }

    /// Parses an identity file (PROTOCOL.md §5).
    ///
    /// # Errors
    /// [`Error::KeyFile`] for anything but the prefix, 128 lowercase hex digits and an
    /// optional trailing newline.
    pub fn from_identity_file(text: &str) -> Result<Self> {
        let body = parse_key_line(text, IDENTITY_PREFIX, SEED_LEN)?;
        let mut seed = [0u8; SEED_LEN];
        hex::decode_to_slice(body, &mut seed).map_err(|_| Error::KeyFile("not hex"))?;
        Ok(Self(seed))
    }
}

/// An ML-KEM-768 decapsulation key. Zeroized on drop (RustCrypto: ml-kem's `zeroize`
/// feature; libcrux: the expanded key bytes are wiped by [`LibcruxDk`]'s `Drop`);
/// `Debug` prints `<redacted>`.
pub struct DecapsulationKey(Dk);

enum Dk {
    RustCrypto(Box<ml_kem_768::DecapsulationKey>),
    #[cfg(feature = "libcrux")]
    Libcrux(LibcruxDk),
}

/// libcrux's expanded decapsulation key (FIPS 203 `dk`, 2,400 bytes), boxed so that it is
/// wiped where it lives, and the encapsulation key it carries.
#[cfg(feature = "libcrux")]
struct LibcruxDk {
    sk: Box<libcrux_ml_kem::mlkem768::MlKem768PrivateKey>,
    ek: Box<[u8; EK_LEN]>,
}

#[cfg(feature = "libcrux")]
impl Drop for LibcruxDk {
    fn drop(&mut self) {
        // libcrux's key types do not implement `Zeroize`; their bytes are reachable
        // mutably through `IndexMut<RangeFrom>`, and `zeroize` writes them volatilely.
        zeroize::Zeroize::zeroize(&mut self.sk[0..]);
    }
}

impl fmt::Debug for DecapsulationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DecapsulationKey(<redacted>)")
    }
}

impl DecapsulationKey {
    /// The matching encapsulation key.
    #[must_use]
    pub fn encapsulation_key(&self) -> EncapsulationKey {
        match &self.0 {
            Dk::RustCrypto(dk) => {
                let ek = dk.encapsulation_key().clone();
                let bytes = ek.to_bytes();
                let mut raw = Box::new([0u8; EK_LEN]);
                raw.copy_from_slice(&bytes);
                EncapsulationKey::from_parts(std::sync::OnceLock::from(ek), raw)
            }
            #[cfg(feature = "libcrux")]
            Dk::Libcrux(dk) => EncapsulationKey::from_bytes(&dk.ek[..]),
        }
        .unwrap_or_else(|_| unreachable!("a derived key is always valid"))
    }

    /// `keccak256` of the matching encapsulation key's bytes (the on-chain key hash),
    /// without building an [`EncapsulationKey`].
    #[must_use]
    pub fn encapsulation_key_keccak256(&self) -> [u8; 32] {
        match &self.0 {
            Dk::RustCrypto(dk) => crate::keccak256(&dk.encapsulation_key().to_bytes()),
            #[cfg(feature = "libcrux")]
            Dk::Libcrux(dk) => crate::keccak256(&dk.ek[..]),
        }
    }

    /// Decapsulates an ML-KEM-768 ciphertext to the 32-byte shared secret.
    ///
    /// ML-KEM rejects implicitly: a wrong ciphertext yields an unrelated secret, and the
    /// failure shows only as an authentication error on the first chunk.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the ciphertext is not 1,088 bytes.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<SharedSecret> {
        if ciphertext.len() != MLKEM768_CIPHERTEXT_LEN {
            return Err(Error::Truncated);
        }
        match &self.0 {
            Dk::RustCrypto(dk) => {
                let ss = dk.decapsulate_slice(ciphertext).map_err(|_| Error::Truncated)?;
                let mut out = [0u8; 32];
                out.copy_from_slice(&ss);
                Ok(SharedSecret(out))
            }
            #[cfg(feature = "libcrux")]
            Dk::Libcrux(dk) => {
                let ct: [u8; MLKEM768_CIPHERTEXT_LEN] =
                    ciphertext.try_into().map_err(|_| Error::Truncated)?;
                let ct = libcrux_ml_kem::mlkem768::MlKem768Ciphertext::from(ct);
                Ok(SharedSecret(libcrux_ml_kem::mlkem768::decapsulate(&dk.sk, &ct)))
            }
        }
    }
}

/// A 32-byte KEM shared secret. Zeroized on drop; `Debug` prints `<redacted>`.
#[derive(ZeroizeOnDrop)]
pub struct SharedSecret(pub(crate) [u8; 32]);

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(<redacted>)")
    }
}

impl SharedSecret {
    /// The raw bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A validated ML-KEM-768 encapsulation key (public).
///
/// Validation is the FIPS 203 §7.2 modulus check ([`modulus_check`]); with the `aws-lc`
/// feature the key is also loaded into AWS-LC, whose encapsulation [`Self::encapsulate_os`]
/// uses (and which repeats the check itself). RustCrypto's form of the key, which decodes
/// the key and hashes it with SHA3-256, is built on first use by [`Self::encapsulate`] or
/// [`Self::encapsulate_deterministic`] only: a service that parses a fresh response key
/// per request and encapsulates through AWS-LC never pays for it.
#[derive(Clone)]
pub struct EncapsulationKey {
    inner: std::sync::OnceLock<ml_kem_768::EncapsulationKey>,
    bytes: Box<[u8; EK_LEN]>,
    #[cfg(feature = "aws-lc")]
    fast: std::sync::Arc<aws_lc_rs::kem::EncapsulationKey>,
}

impl fmt::Debug for EncapsulationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncapsulationKey(keccak256=0x{})", hex::encode(self.keccak256()))
    }
}

impl PartialEq for EncapsulationKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes[..] == other.bytes[..]
    }
}
impl Eq for EncapsulationKey {}

impl EncapsulationKey {
    /// Parses and validates (FIPS 203 §7.2 modulus check) 1,184 key bytes.
    ///
    /// # Errors
    /// [`Error::InvalidEncapsulationKey`] for a wrong length or a failed check.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let raw: [u8; EK_LEN] = bytes.try_into().map_err(|_| Error::InvalidEncapsulationKey)?;
        if !modulus_check(&raw) {
            return Err(Error::InvalidEncapsulationKey);
        }
        Self::from_parts(std::sync::OnceLock::new(), Box::new(raw))
    }

    fn from_parts(
        inner: std::sync::OnceLock<ml_kem_768::EncapsulationKey>,
        bytes: Box<[u8; EK_LEN]>,
    ) -> Result<Self> {
        Ok(Self {
            #[cfg(feature = "aws-lc")]
            fast: std::sync::Arc::new(
                aws_lc_rs::kem::EncapsulationKey::new(&aws_lc_rs::kem::ML_KEM_768, &bytes[..])
                    .map_err(|_| Error::InvalidEncapsulationKey)?,
            ),
            inner,
            bytes,
        })
    }

    /// RustCrypto's form of the key, decoded on first use.
    fn rustcrypto(&self) -> &ml_kem_768::EncapsulationKey {
        self.inner.get_or_init(|| {
            let key = ml_kem::Key::<ml_kem_768::EncapsulationKey>::from(*self.bytes);
            // RustCrypto's only validation is the modulus check, which `from_bytes` made
            // (the `modulus_check_agrees_with_rustcrypto` test holds the two together).
            ml_kem_768::EncapsulationKey::new(&key)
                .unwrap_or_else(|_| unreachable!("a modulus-checked key is valid"))
        })
    }

    /// Encapsulates a fresh shared secret with OS randomness, through the fastest
    /// backend compiled in (AWS-LC with the `aws-lc` feature, whose DRBG is seeded by the
    /// OS; else libcrux with `libcrux`; otherwise RustCrypto; the last two with
    /// `getrandom`). The `mlkem_backends_agree` test
    /// proves AWS-LC's ciphertexts decapsulate to the same secret with RustCrypto.
    ///
    /// # Errors
    /// [`Error::Rng`] if the backend's randomness fails.
    pub fn encapsulate_os(&self) -> Result<(Box<[u8; MLKEM768_CIPHERTEXT_LEN]>, SharedSecret)> {
        #[cfg(feature = "aws-lc")]
        {
            let (ct, ss) = self.fast.encapsulate().map_err(|_| Error::Rng)?;
            let mut out = Box::new([0u8; MLKEM768_CIPHERTEXT_LEN]);
            let mut secret = [0u8; 32];
            if ct.as_ref().len() != MLKEM768_CIPHERTEXT_LEN || ss.as_ref().len() != 32 {
                return Err(Error::Rng);
            }
            out.copy_from_slice(ct.as_ref());
            secret.copy_from_slice(ss.as_ref());
            Ok((out, SharedSecret(secret)))
        }
        #[cfg(all(not(feature = "aws-lc"), feature = "libcrux"))]
        {
            let mut m = Zeroizing::new([0u8; 32]);
            getrandom::fill(&mut m[..]).map_err(|_| Error::Rng)?;
            let pk = libcrux_ml_kem::mlkem768::MlKem768PublicKey::from(&*self.bytes);
            let (ct, ss) = libcrux_ml_kem::mlkem768::encapsulate(&pk, *m);
            Ok((Box::new(ct.into()), SharedSecret(ss)))
        }
        #[cfg(not(any(feature = "aws-lc", feature = "libcrux")))]
        {
            Ok(self.encapsulate(&mut crate::os_rng()))
        }
    }

    /// Parses key bytes and checks them against the on-chain `keccak256(ek)`
    /// (PROTOCOL.md §3). Whoever served the key is untrusted; this check is what makes
    /// it safe to use.
    ///
    /// # Errors
    /// [`Error::KeyHashMismatch`] if the hash differs, and those of [`Self::from_bytes`].
    pub fn from_bytes_checked(bytes: &[u8], expected_keccak256: &[u8; 32]) -> Result<Self> {
        if !bool::from(crate::keccak256(bytes).ct_eq(expected_keccak256)) {
            return Err(Error::KeyHashMismatch);
        }
        Self::from_bytes(bytes)
    }

    /// The 1,184 key bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; EK_LEN] {
        &self.bytes
    }

    /// `keccak256(ek)`, the value the SecretsController records.
    #[must_use]
    pub fn keccak256(&self) -> [u8; 32] {
        crate::keccak256(&self.bytes[..])
    }

    /// Encapsulates a fresh shared secret: `(ciphertext, shared secret)`.
    pub fn encapsulate(
        &self,
        rng: &mut impl CryptoRng,
    ) -> (Box<[u8; MLKEM768_CIPHERTEXT_LEN]>, SharedSecret) {
        let (ct, ss) = self.rustcrypto().encapsulate_with_rng(rng);
        let mut out = Box::new([0u8; MLKEM768_CIPHERTEXT_LEN]);
        out.copy_from_slice(&ct);
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&ss);
        (out, SharedSecret(secret))
    }

    /// Deterministic encapsulation with randomness `m`: known-answer vectors only.
    #[cfg(feature = "hazmat")]
    #[must_use]
    pub fn encapsulate_deterministic(
        &self,
        m: &[u8; 32],
    ) -> (Box<[u8; MLKEM768_CIPHERTEXT_LEN]>, SharedSecret) {
        let (ct, ss) = self.rustcrypto().encapsulate_deterministic(&ml_kem::B32::from(*m));
        let mut out = Box::new([0u8; MLKEM768_CIPHERTEXT_LEN]);
        out.copy_from_slice(&ct);
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&ss);
        (out, SharedSecret(secret))
    }

    /// The recipient file line of PROTOCOL.md §5, with its trailing newline.
    #[must_use]
    pub fn to_recipient_file(&self) -> String {
        format!("{RECIPIENT_PREFIX}{}\n", hex::encode(&self.bytes[..]))
    }

    /// Parses a recipient file (PROTOCOL.md §5) and validates the key.
    ///
    /// # Errors
    /// [`Error::KeyFile`] for a malformed line, [`Error::InvalidEncapsulationKey`] for a
    /// key that fails validation.
    pub fn from_recipient_file(text: &str) -> Result<Self> {
        let body = parse_key_line(text, RECIPIENT_PREFIX, EK_LEN)?;
        let bytes = hex::decode(body).map_err(|_| Error::KeyFile("not hex"))?;
        Self::from_bytes(&bytes)
    }
}

/// The encapsulation key check of FIPS 203 §7.2 (the "modulus check"): the first
/// `384·k` bytes, read as `ByteDecode₁₂`, hold only coefficients below `q = 3329`, which is
/// what `ByteEncode₁₂(ByteDecode₁₂(ek)) == ek` tests. The key is public: no need for
/// constant time. The length check is the type's.
#[must_use]
pub fn modulus_check(ek: &[u8; EK_LEN]) -> bool {
    const Q: u16 = 3329;
    // k = 3 polynomials of 256 coefficients, 12 bits each; then the 32-byte seed ρ.
    ek[..EK_LEN - 32].chunks_exact(3).all(|b| {
        let c0 = u16::from(b[0]) | (u16::from(b[1] & 0x0f) << 8);
        let c1 = u16::from(b[1] >> 4) | (u16::from(b[2]) << 4);
        c0 < Q && c1 < Q
    })
}

/// Checks one key-file line: `prefix || lowercase hex(len bytes)`, then at most one
/// trailing `"\n"`. Returns the hex body.
fn parse_key_line<'a>(text: &'a str, prefix: &str, len: usize) -> Result<&'a str> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    let body = line.strip_prefix(prefix).ok_or(Error::KeyFile("wrong prefix"))?;
    if body.len() != 2 * len {
        return Err(Error::KeyFile("wrong length"));
    }
    if !body.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(Error::KeyFile("not lowercase hex"));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn key_files_round_trip_and_reject_noise() {
        // Hex letters in the seed, so that upper-casing changes the line.
        let seed = Seed::from_bytes([0xab; 64]);
        let id = seed.to_identity_file();
        assert_eq!(Seed::from_identity_file(&id).unwrap(), seed);
        assert_eq!(Seed::from_identity_file(id.trim_end()).unwrap(), seed);
        assert!(Seed::from_identity_file(&format!("{}\n", &*id)).is_err());
        assert!(Seed::from_identity_file(&id.to_uppercase()).is_err());
        assert!(Seed::from_identity_file(&id.replace('\n', "\r\n")).is_err());
        assert!(Seed::from_identity_file(&format!(" {}", &*id)).is_err());
        let ek = seed.encapsulation_key();
        let rec = ek.to_recipient_file();
        assert_eq!(EncapsulationKey::from_recipient_file(&rec).unwrap(), ek);
        assert!(EncapsulationKey::from_recipient_file(&id).is_err());
        assert_eq!(format!("{seed:?}"), "Seed(<redacted>)");
    }

    #[test]
    fn hash_check_rejects_other_key() {
        let a = Seed::from_bytes([1u8; 64]).encapsulation_key();
        let b = Seed::from_bytes([2u8; 64]).encapsulation_key();
        assert!(EncapsulationKey::from_bytes_checked(a.as_bytes(), &a.keccak256()).is_ok());
        assert!(matches!(
            EncapsulationKey::from_bytes_checked(a.as_bytes(), &b.keccak256()),
            Err(Error::KeyHashMismatch)
        ));
    }

    /// 12-bit coefficients packed as `ByteEncode₁₂` does (two per three bytes), then ρ.
    fn packed(coeffs: &[u16], rho: u8) -> [u8; EK_LEN] {
        let mut ek = [rho; EK_LEN];
        for (i, pair) in coeffs.chunks_exact(2).enumerate() {
            let (c0, c1) = (pair[0], pair[1]);
            let [c0_lo, c0_hi] = c0.to_le_bytes();
            let [c1_lo, c1_hi] = (c1 << 4).to_le_bytes();
            ek[3 * i] = c0_lo;
            ek[3 * i + 1] = (c0_hi & 0x0f) | c1_lo;
            ek[3 * i + 2] = c1_hi;
        }
        ek
    }

    /// RustCrypto's own validation of an encapsulation key.
    fn rustcrypto(ek: &[u8; EK_LEN]) -> bool {
        ml_kem_768::EncapsulationKey::new(&ml_kem::Key::<ml_kem_768::EncapsulationKey>::from(*ek))
            .is_ok()
    }

    /// `modulus_check` against RustCrypto's own validation (which `EncapsulationKey` no
    /// longer runs at parse time): a real key, keys with coefficients near and at `q` in
    /// every position class, and the largest 12-bit values.
    #[test]
    fn modulus_check_agrees_with_rustcrypto() {
        let real = *Seed::from_bytes([7u8; 64]).encapsulation_key().as_bytes();
        assert!(modulus_check(&real) && rustcrypto(&real));
        for bad in [3328u16, 3329, 3330, 4095] {
            for pos in [0usize, 1, 255, 256, 511, 767] {
                let mut coeffs = vec![1u16; 768];
                coeffs[pos] = bad;
                let ek = packed(&coeffs, 0xff);
                assert_eq!(modulus_check(&ek), bad < 3329, "coefficient {bad} at {pos}");
                assert_eq!(modulus_check(&ek), rustcrypto(&ek), "coefficient {bad} at {pos}");
                assert_eq!(EncapsulationKey::from_bytes(&ek).is_ok(), bad < 3329);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Random valid coefficients, and in most cases one coefficient set to a value
        /// around `q` (or the largest 12-bit value) at a random position: both checks agree.
        #[test]
        fn modulus_check_agrees_on_random_keys(
            mut coeffs in proptest::collection::vec(0u16..3329, 768),
            tweak in proptest::option::weighted(0.8, (0usize..768, proptest::prop_oneof![
                3326u16..3333, proptest::strategy::Just(4095u16)])),
            rho in proptest::prelude::any::<u8>(),
        ) {
            if let Some((pos, value)) = tweak {
                coeffs[pos] = value;
            }
            let ek = packed(&coeffs, rho);
            let valid = coeffs.iter().all(|&c| c < 3329);
            proptest::prop_assert_eq!(modulus_check(&ek), valid);
            proptest::prop_assert_eq!(rustcrypto(&ek), valid);
        }
    }

    /// A key parsed from bytes encapsulates through RustCrypto (built on first use) to
    /// what its seed's key decapsulates.
    #[test]
    fn parsed_key_encapsulates_with_rustcrypto() {
        let seed = Seed::from_bytes([9u8; 64]);
        let ek = EncapsulationKey::from_bytes(seed.encapsulation_key().as_bytes()).unwrap();
        let mut rng = crate::os_rng();
        for _ in 0..2 {
            let (ct, ss) = ek.encapsulate(&mut rng);
            let back = seed.decapsulation_key().decapsulate(&ct[..]).unwrap();
            assert_eq!(back.as_bytes(), ss.as_bytes());
        }
    }
}
