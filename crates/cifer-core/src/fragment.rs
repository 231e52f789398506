//! Verifiable 3-of-5 fragments of the 64-byte seed: Pedersen VSS over secp256k1
//! (Pedersen, "Non-Interactive and Information-Theoretic Secure Verifiable Secret
//! Sharing", CRYPTO '91), through `vsss-rs`.
//!
//! Why Pedersen and not Feldman: Feldman publishes `s·G`, which gives the seed to anyone
//! who can take discrete logarithms (a quantum adversary). Pedersen publishes
//! `s·G + b·H` with a random blinder `b`: perfectly hiding, so the commitments reveal
//! nothing about the seed even to an unbounded adversary. Binding rests on discrete log
//! and on nobody knowing `log_G(H)`; `H` is hashed to the curve (RFC 9380) from a fixed
//! label, so nobody does.
//!
//! The seed does not fit one scalar, so it is cut into three big-endian limbs of 22, 21
//! and 21 bytes (each below 2^176, far below the group order) and each limb is shared
//! with its own secret and blinder polynomials of degree `t - 1`. Fragment `i` holds the
//! six evaluations at `x = i`. Any `t` fragments rebuild the seed; `t - 1` fragments are
//! independent of it; a fragment that does not satisfy the commitments is rejected and
//! its index is named. The byte formats are specified in `docs/protocol.md`.

use core::fmt;
use std::sync::{Arc, OnceLock};

use k256::elliptic_curve::ff::PrimeField;
use k256::elliptic_curve::group::GroupEncoding;
use k256::hash2curve::GroupDigest;
use k256::{ProjectivePoint, Scalar, Secp256k1};
use rand_core::CryptoRng;
use vsss_rs::{
    DefaultShare, IdentifierPrimeField, PedersenResult, PedersenVerifierSet, Share, ValueGroup,
    pedersen,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};
use crate::keys::{SEED_LEN, Seed};

type K256Share = DefaultShare<IdentifierPrimeField<Scalar>, IdentifierPrimeField<Scalar>>;
type Verifier = ValueGroup<ProjectivePoint>;

/// Threshold of the shipped design: any 3 fragments rebuild the seed.
pub const THRESHOLD: u8 = 3;
/// Number of fragments (one per shard node).
pub const SHARES: u8 = 5;
/// The byte ranges of the seed's three limbs.
pub const LIMBS: [(usize, usize); 3] = [(0, 22), (22, 43), (43, 64)];
/// Format byte of serialized fragments and commitments.
pub const FORMAT_V1: u8 = 0x01;
/// Length of a serialized fragment: format, index, then (share, blinder) per limb.
pub const FRAGMENT_LEN: usize = 2 + LIMBS.len() * 64;
/// Domain separation tag for hashing `H` to the curve (RFC 9380 §3.1).
pub const H_DST: &[u8] = b"CIFER-V1-PEDERSEN-H_secp256k1_XMD:SHA-256_SSWU_RO_";
/// The message hashed to `H`.
pub const H_MSG: &[u8] = b"CIFER/v1/pedersen/H";
const POINT_LEN: usize = 33;

/// The blinding generator `H = hash_to_curve(H_MSG)`.
#[must_use]
pub fn generator_h() -> ProjectivePoint {
    static H: OnceLock<ProjectivePoint> = OnceLock::new();
    *H.get_or_init(|| {
        Secp256k1::hash_from_bytes(&[H_MSG], &[H_DST])
            .unwrap_or_else(|_| unreachable!("the DST and message are fixed and valid"))
    })
}

/// One shard node's fragment. Zeroized on drop; `Debug` shows only the index.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Fragment {
    index: u8,
    shares: [[u8; 32]; 3],
    blinders: [[u8; 32]; 3],
}

impl fmt::Debug for Fragment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fragment {{ index: {}, <redacted> }}", self.index)
    }
}

impl Fragment {
    /// The fragment's index, `1..=n`.
    #[must_use]
    pub const fn index(&self) -> u8 {
        self.index
    }

    /// The wire form: `0x01 || index || (share_c || blinder_c) for c in 0..3`.
    #[must_use]
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(FRAGMENT_LEN));
        out.push(FORMAT_V1);
        out.push(self.index);
        for c in 0..LIMBS.len() {
            out.extend_from_slice(&self.shares[c]);
            out.extend_from_slice(&self.blinders[c]);
        }
        out
    }

    /// Parses the wire form. Scalars must be canonical (below the group order).
    ///
    /// # Errors
    /// [`Error::Malformed`] for a wrong length, format byte or non-canonical scalar;
    /// [`Error::InvalidFragmentIndex`] for index 0.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let malformed =
            Error::Malformed { what: "fragment", expected: FRAGMENT_LEN, got: bytes.len() };
        if bytes.len() != FRAGMENT_LEN || bytes[0] != FORMAT_V1 {
            return Err(malformed);
        }
        if bytes[1] == 0 {
            return Err(Error::InvalidFragmentIndex(0));
        }
        let mut this = Self { index: bytes[1], shares: [[0; 32]; 3], blinders: [[0; 32]; 3] };
        for c in 0..LIMBS.len() {
            let at = 2 + c * 64;
            this.shares[c].copy_from_slice(&bytes[at..at + 32]);
            this.blinders[c].copy_from_slice(&bytes[at + 32..at + 64]);
            if scalar(&this.shares[c]).is_none() || scalar(&this.blinders[c]).is_none() {
                return Err(malformed);
            }
        }
        Ok(this)
    }

    #[cfg(any(test, feature = "hazmat"))]
    fn share(&self, c: usize) -> Result<K256Share> {
        let id = Scalar::from(u64::from(self.index));
        let v = scalar(&self.shares[c]).ok_or(Error::InvalidFragment { culprit: self.index })?;
        Ok(K256Share::with_identifier_and_value(IdentifierPrimeField(id), IdentifierPrimeField(v)))
    }

    #[cfg(feature = "hazmat")]
    fn blinder(&self, c: usize) -> Result<K256Share> {
        let id = Scalar::from(u64::from(self.index));
        let v = scalar(&self.blinders[c]).ok_or(Error::InvalidFragment { culprit: self.index })?;
        Ok(K256Share::with_identifier_and_value(IdentifierPrimeField(id), IdentifierPrimeField(v)))
    }
}

/// The batch weight of fragment `k`, limb `c`: 128 bits of `keccak256(challenge || k || c)`.
fn weight(challenge: &[u8; 32], k: usize, c: usize) -> Scalar {
    let mut input = [0u8; 48];
    input[..32].copy_from_slice(challenge);
    input[32..40].copy_from_slice(&(k as u64).to_be_bytes());
    input[40..48].copy_from_slice(&(c as u64).to_be_bytes());
    let digest = crate::keccak256(&input);
    // 16 zero bytes on top: always below the group order.
    let mut repr = [0u8; 32];
    repr[16..].copy_from_slice(&digest[..16]);
    scalar(&repr).unwrap_or(Scalar::ONE)
}

fn scalar(bytes: &[u8; 32]) -> Option<Scalar> {
    Option::from(Scalar::from_repr((*bytes).into()))
}

/// The public Pedersen commitments of one sharing: `threshold` points per limb.
/// Cloning is cheap (shared, immutable parts).
#[derive(Clone, PartialEq, Eq)]
pub struct Commitments {
    threshold: u8,
    points: Arc<[ProjectivePoint]>,
    /// The wire form, kept: encoding a projective point costs a field inversion, and the
    /// services serialize and hash commitments on every release.
    bytes: Arc<[u8]>,
    /// `keccak256(bytes)`, computed once: the black box and the nodes use it several times
    /// per request (bundle authentication, memo keys, the stored row's pin).
    hash: [u8; 32],
}

impl fmt::Debug for Commitments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Commitments {{ threshold: {}, hash: 0x{} }}",
            self.threshold,
            hex::encode(self.hash())
        )
    }
}

impl Commitments {
    /// The threshold these commitments encode.
    #[must_use]
    pub const fn threshold(&self) -> u8 {
        self.threshold
    }

    /// The wire form: `0x01 || t || C[c][j]` for limb `c`, coefficient `j`, as SEC1
    /// compressed points.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.to_vec()
    }

    /// The wire form, borrowed.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `keccak256` of the wire form: what a node pins when it accepts a fragment.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// Commitments from points, encoding them once. The points are public, so they are
    /// normalized together in variable time (one field inversion for all of them).
    fn from_points(threshold: u8, points: Vec<ProjectivePoint>) -> Self {
        use k256::elliptic_curve::BatchNormalize;
        let affine: Vec<k256::AffinePoint> = <ProjectivePoint as BatchNormalize<
            [ProjectivePoint],
        >>::batch_normalize_vartime(&points);
        let mut bytes = Vec::with_capacity(2 + points.len() * POINT_LEN);
        bytes.push(FORMAT_V1);
        bytes.push(threshold);
        for p in &affine {
            bytes.extend_from_slice(&p.to_bytes());
        }
        let hash = crate::keccak256(&bytes);
        Self { threshold, points: points.into(), bytes: bytes.into(), hash }
    }

    /// Parses the wire form; every point must decode and none may be the identity.
    ///
    /// # Errors
    /// [`Error::Malformed`] for a wrong length, [`Error::InvalidCommitments`] for a bad
    /// threshold or point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < 2 || bytes[0] != FORMAT_V1 {
            return Err(Error::InvalidCommitments);
        }
        let t = bytes[1];
        if !(2..=16).contains(&t) {
            return Err(Error::InvalidCommitments);
        }
        let expected = 2 + LIMBS.len() * usize::from(t) * POINT_LEN;
        if bytes.len() != expected {
            return Err(Error::Malformed { what: "commitments", expected, got: bytes.len() });
        }
        let mut points = Vec::with_capacity(LIMBS.len() * usize::from(t));
        for raw in bytes[2..].chunks_exact(POINT_LEN) {
            let mut repr = <ProjectivePoint as GroupEncoding>::Repr::default();
            repr.copy_from_slice(raw);
            let p: Option<ProjectivePoint> = ProjectivePoint::from_bytes(&repr).into();
            match p {
                Some(p) if p != ProjectivePoint::IDENTITY => points.push(p),
                _ => return Err(Error::InvalidCommitments),
            }
        }
        // Decoding accepts only canonical encodings (x < p, tag 02/03), so the input is the
        // wire form re-encoding would give (`commitments_keep_their_canonical_bytes`).
        Ok(Self {
            threshold: t,
            points: points.into(),
            bytes: bytes.into(),
            hash: crate::keccak256(bytes),
        })
    }

    #[cfg(feature = "hazmat")]
    fn limb_set(&self, c: usize) -> Vec<Verifier> {
        let t = usize::from(self.threshold);
        let verifiers: Vec<Verifier> =
            self.points[c * t..(c + 1) * t].iter().map(|p| ValueGroup(*p)).collect();
        <Vec<Verifier> as PedersenVerifierSet<K256Share, Verifier>>::with_generators_and_verifiers(
            ValueGroup(ProjectivePoint::GENERATOR),
            ValueGroup(generator_h()),
            &verifiers,
        )
    }

    /// Checks one fragment against the commitments: for every limb `c`,
    /// `f_c(i)·G + r_c(i)·H == Σ_j C[c][j]·i^j`.
    ///
    /// The left side (secret scalars) is a constant-time two-point linear combination;
    /// the right side involves only public values (commitments and the index) and is
    /// evaluated by Horner's rule with small-integer multiples, so one verification costs
    /// three double-scalar multiplications instead of the fifteen full multiplications of
    /// the generic `vsss-rs` check ([`Commitments::verify_reference`], kept as the
    /// differential oracle in tests).
    ///
    /// # Errors
    /// [`Error::InvalidFragment`] naming the fragment's index.
    pub fn verify(&self, fragment: &Fragment) -> Result<()> {
        use k256::elliptic_curve::ops::LinearCombination;
        use subtle::ConstantTimeEq;
        let culprit = fragment.index;
        let t = usize::from(self.threshold);
        let h = generator_h();
        let mut ok = subtle::Choice::from(1u8);
        for c in 0..LIMBS.len() {
            let f = scalar(&fragment.shares[c]).ok_or(Error::InvalidFragment { culprit })?;
            let r = scalar(&fragment.blinders[c]).ok_or(Error::InvalidFragment { culprit })?;
            let lhs = ProjectivePoint::lincomb(&[(ProjectivePoint::GENERATOR, f), (h, r)]);
            let mut rhs = ProjectivePoint::IDENTITY;
            for p in self.points[c * t..(c + 1) * t].iter().rev() {
                rhs = mul_small(&rhs, culprit) + p;
            }
            ok &= lhs.ct_eq(&rhs);
        }
        if bool::from(ok) { Ok(()) } else { Err(Error::InvalidFragment { culprit }) }
    }

    /// Checks several fragments at once: one multi-scalar multiplication over the
    /// commitments, `G` and `H` with weights `ρ_{k,c}` derived from a hash of the
    /// commitments and every fragment (Fiat–Shamir, 128-bit), so that
    /// `Σ ρ_{k,c}·(f_{k,c}·G + r_{k,c}·H − Σ_j i_k^j·C_{c,j}) = 0` holds for a bad fragment
    /// only with probability about 2^-128. On failure, each fragment is checked alone to
    /// name the culprit.
    ///
    /// # Errors
    /// [`Error::InvalidFragment`] naming the first fragment that does not verify.
    pub fn verify_all(&self, fragments: &[Fragment]) -> Result<()> {
        use k256::elliptic_curve::ops::LinearCombination;
        if fragments.is_empty() {
            return Ok(());
        }
        let t = usize::from(self.threshold);
        let mut transcript = Vec::with_capacity(64 + fragments.len() * FRAGMENT_LEN);
        transcript.extend_from_slice(b"CIFER/v1/fragment-batch");
        transcript.extend_from_slice(&self.hash());
        for f in fragments {
            transcript.extend_from_slice(&f.to_bytes());
        }
        let challenge = crate::keccak256(&transcript);
        transcript.zeroize();
        let mut g = Scalar::ZERO;
        let mut h = Scalar::ZERO;
        let mut coefficients = vec![Scalar::ZERO; self.points.len()];
        for (k, f) in fragments.iter().enumerate() {
            let culprit = f.index;
            let index = Scalar::from(u64::from(f.index));
            for c in 0..LIMBS.len() {
                let share = scalar(&f.shares[c]).ok_or(Error::InvalidFragment { culprit })?;
                let blinder = scalar(&f.blinders[c]).ok_or(Error::InvalidFragment { culprit })?;
                let rho = weight(&challenge, k, c);
                g += rho * share;
                h += rho * blinder;
                let mut power = Scalar::ONE;
                for j in 0..t {
                    coefficients[c * t + j] -= rho * power;
                    power *= index;
                }
            }
        }
        // The `G`/`H` coefficients come from secret shares: constant time. The commitment
        // coefficients are public (weights and indices): variable time is fine and faster.
        let secret =
            ProjectivePoint::lincomb(&[(ProjectivePoint::GENERATOR, g), (generator_h(), h)]);
        let terms: Vec<(ProjectivePoint, Scalar)> =
            self.points.iter().copied().zip(coefficients).collect();
        let sum = secret + ProjectivePoint::lincomb_vartime(terms.as_slice());
        g.zeroize();
        h.zeroize();
        if bool::from(subtle::ConstantTimeEq::ct_eq(&sum, &ProjectivePoint::IDENTITY)) {
            return Ok(());
        }
        for f in fragments {
            self.verify(f)?;
        }
        // Unreachable unless the weights hit the 2^-128 event the other way round.
        Err(Error::InvalidFragment { culprit: fragments[0].index })
    }

    /// The same check through `vsss-rs`'s generic Pedersen verifier: the reference the
    /// fast [`Commitments::verify`] is tested against.
    ///
    /// # Errors
    /// [`Error::InvalidFragment`] naming the fragment's index.
    #[cfg(feature = "hazmat")]
    pub fn verify_reference(&self, fragment: &Fragment) -> Result<()> {
        let culprit = fragment.index;
        for c in 0..LIMBS.len() {
            let set = self.limb_set(c);
            let share = fragment.share(c)?;
            let blinder = fragment.blinder(c)?;
            PedersenVerifierSet::<K256Share, Verifier>::verify_share_and_blinder(
                &set, &share, &blinder,
            )
            .map_err(|_| Error::InvalidFragment { culprit })?;
        }
        Ok(())
    }
}

/// `k·P` for a small public `k` (a fragment index), by double-and-add: variable time in
/// `k` only, which is public.
fn mul_small(p: &ProjectivePoint, k: u8) -> ProjectivePoint {
    let mut acc = ProjectivePoint::IDENTITY;
    for bit in (0..8).rev() {
        acc = acc.double();
        if (k >> bit) & 1 == 1 {
            acc += p;
        }
    }
    acc
}

/// Splits `seed` into `n` fragments, any `threshold` of which rebuild it.
///
/// # Errors
/// [`Error::NotEnoughFragments`] if `threshold < 2` or `threshold > n`, or `n > 255`.
pub fn split(
    seed: &Seed,
    threshold: u8,
    n: u8,
    rng: &mut impl CryptoRng,
) -> Result<(Commitments, Vec<Fragment>)> {
    if threshold < 2 || threshold > n || threshold > 16 {
        return Err(Error::NotEnoughFragments {
            needed: usize::from(threshold),
            got: usize::from(n),
        });
    }
    let t = usize::from(threshold);
    let mut fragments: Vec<Fragment> = (1..=n)
        .map(|index| Fragment { index, shares: [[0; 32]; 3], blinders: [[0; 32]; 3] })
        .collect();
    let mut points = Vec::with_capacity(LIMBS.len() * t);
    for (c, (lo, hi)) in LIMBS.iter().enumerate() {
        let mut limb = [0u8; 32];
        limb[32 - (hi - lo)..].copy_from_slice(&seed.as_bytes()[*lo..*hi]);
        let secret = IdentifierPrimeField(scalar(&limb).ok_or(Error::Reconstruction)?);
        limb.zeroize();
        let result = pedersen::split_secret::<K256Share, Verifier>(
            t,
            usize::from(n),
            &secret,
            None,
            Some(ValueGroup(ProjectivePoint::GENERATOR)),
            Some(ValueGroup(generator_h())),
            &mut *rng,
        )
        .map_err(|_| Error::Rng)?;
        // Only the Pedersen (blinded) commitments are kept. The Feldman set in the
        // result commits to `s·G` and must never leave this function.
        let set = result.pedersen_verifier_set();
        points.extend(
            PedersenVerifierSet::<K256Share, Verifier>::blind_verifiers(set).iter().map(|v| v.0),
        );
        for ((f, s), b) in
            fragments.iter_mut().zip(result.secret_shares()).zip(result.blinder_shares())
        {
            f.shares[c] = s.value().0.to_repr().into();
            f.blinders[c] = b.value().0.to_repr().into();
        }
    }
    Ok((Commitments::from_points(threshold, points), fragments))
}

/// Rebuilds the seed from fragments, verifying each against `commitments` first.
///
/// Every fragment is checked; the first `t` valid ones (in the order given) are used.
/// A caller with more than `t` answers therefore still succeeds when some lie, and learns
/// who lied from [`verify`](Commitments::verify).
///
/// # Errors
/// [`Error::InvalidFragmentIndex`] / [`Error::DuplicateFragmentIndex`] for bad indices,
/// [`Error::InvalidFragment`] naming the first bad fragment when fewer than `t` are valid,
/// [`Error::NotEnoughFragments`], [`Error::Reconstruction`] if a limb rebuilds out of range.
pub fn combine(commitments: &Commitments, fragments: &[Fragment]) -> Result<Seed> {
    let t = usize::from(commitments.threshold);
    // Fast path: exactly `t` distinct fragments that verify together (one multi-scalar
    // multiplication instead of one per fragment). Anything else takes the loop below,
    // which verifies one by one and names the first culprit.
    if batchable(commitments, fragments) && commitments.verify_all(fragments).is_ok() {
        return interpolate(&fragments.iter().collect::<Vec<_>>());
    }
    let mut seen = [false; 256];
    let mut valid: Vec<&Fragment> = Vec::with_capacity(t);
    let mut first_bad = None;
    for f in fragments {
        if f.index == 0 {
            return Err(Error::InvalidFragmentIndex(0));
        }
        if std::mem::replace(&mut seen[usize::from(f.index)], true) {
            return Err(Error::DuplicateFragmentIndex(f.index));
        }
        match commitments.verify(f) {
            Ok(()) if valid.len() < t => valid.push(f),
            Ok(()) => {}
            Err(e) => {
                first_bad.get_or_insert(e);
            }
        }
    }
    if valid.len() < t {
        return Err(first_bad.unwrap_or(Error::NotEnoughFragments { needed: t, got: valid.len() }));
    }
    interpolate(&valid)
}

/// A bounded, in-memory set of checks already passed, so that a process verifying the
/// same public facts again and again (the black box receives the same fragment from the
/// same node for every decryption of a secret) does the elliptic-curve work once.
///
/// An entry is `keccak256(tag ‖ salt ‖ parts…)`, each part length-prefixed, with a random
/// per-process `salt` (as Bitcoin Core's signature cache): it attests only that these exact
/// bytes passed the named check, which stays true for ever, so nothing needs invalidating.
/// A different fragment (a lie) has a different digest unless keccak256 collides, and is
/// verified in full. The set holds digests, never fragments: with fragments of 384 random
/// bits, a digest reveals nothing usable. When full it is emptied (checks are redone).
pub struct VerificationMemo {
    salt: [u8; 32],
    seen: Bounded<[u8; 32], ()>,
}

impl fmt::Debug for VerificationMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationMemo")
            .field("capacity", &self.seen.capacity)
            .finish_non_exhaustive()
    }
}

/// A map behind a mutex, emptied when it reaches `capacity` (a miss only costs redoing
/// work): the store of [`VerificationMemo`] (by digest) and [`CommitmentsCache`] (by the
/// commitments' bytes).
struct Bounded<K, V> {
    capacity: usize,
    map: std::sync::Mutex<std::collections::HashMap<K, V>>,
}

impl<K: Eq + std::hash::Hash, V> Bounded<K, V> {
    fn new(capacity: usize) -> Self {
        Self { capacity, map: std::sync::Mutex::new(std::collections::HashMap::new()) }
    }

    fn insert(&self, key: K, value: V) {
        let mut map = self.lock();
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(key, value);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<K, V>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl VerificationMemo {
    /// An empty memo of at most `capacity` entries, salted from `rng`.
    pub fn new<R: CryptoRng + ?Sized>(rng: &mut R, capacity: usize) -> Self {
        let mut salt = [0u8; 32];
        rng.fill_bytes(&mut salt);
        Self { salt, seen: Bounded::new(capacity) }
    }

    /// The digest of a check named `tag` over `parts`.
    #[must_use]
    pub fn digest(&self, tag: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        let mut input = Vec::with_capacity(64 + parts.iter().map(|p| p.len() + 8).sum::<usize>());
        input.extend_from_slice(b"CIFER/v1/memo/");
        input.extend_from_slice(tag);
        input.push(0);
        input.extend_from_slice(&self.salt);
        for part in parts {
            input.extend_from_slice(&(part.len() as u64).to_be_bytes());
            input.extend_from_slice(part);
        }
        let digest = crate::keccak256(&input);
        input.zeroize();
        digest
    }

    /// Whether `digest` passed before.
    #[must_use]
    pub fn contains(&self, digest: &[u8; 32]) -> bool {
        self.seen.lock().contains_key(digest)
    }

    /// Whether the check `digest` names passes: from the memo if it passed before, else
    /// by running `check` (and remembering a pass).
    pub fn passes(&self, digest: [u8; 32], check: impl FnOnce() -> bool) -> bool {
        if self.contains(&digest) {
            return true;
        }
        let passed = check();
        if passed {
            self.insert(digest);
        }
        passed
    }

    /// Records that `digest` passed.
    pub fn insert(&self, digest: [u8; 32]) {
        self.seen.insert(digest, ());
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether the memo is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn fragment_digest(&self, commitments_hash: &[u8; 32], fragment: &Fragment) -> [u8; 32] {
        let mut bytes = fragment.to_bytes();
        let digest = self.digest(b"fragment", &[commitments_hash, &bytes]);
        bytes.zeroize();
        digest
    }
}

/// Decoded [`Commitments`] kept by their exact wire bytes, so that the same commitments
/// (every honest node of a cluster sends the same, request after request) are decoded, at
/// one point decompression per coefficient, only once. Commitments are public. The map is
/// keyed by the bytes themselves (std's randomly keyed SipHash, then a full comparison),
/// which costs far less per lookup than a cryptographic hash and cannot confuse two sets.
/// When full it is emptied (entries are decoded again).
pub struct CommitmentsCache {
    decoded: Bounded<Arc<[u8]>, Commitments>,
}

impl fmt::Debug for CommitmentsCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommitmentsCache")
            .field("capacity", &self.decoded.capacity)
            .finish_non_exhaustive()
    }
}

impl CommitmentsCache {
    /// An empty cache of at most `capacity` entries.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { decoded: Bounded::new(capacity) }
    }

    /// [`Commitments::from_bytes`]`(bytes)`, from the cache when these exact bytes were
    /// decoded before.
    ///
    /// # Errors
    /// As [`Commitments::from_bytes`] (failures are not cached).
    pub fn decode(&self, bytes: &[u8]) -> Result<Commitments> {
        if let Some(c) = self.decoded.lock().get(bytes) {
            return Ok(c.clone());
        }
        let c = Commitments::from_bytes(bytes)?;
        self.decoded.insert(Arc::clone(&c.bytes), c.clone());
        Ok(c)
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.decoded.len()
    }

    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// [`combine`] remembering, in `memo`, the fragments that verified: when exactly `t`
/// distinct fragments all verified against these commitments before, the multi-scalar
/// multiplication is skipped; otherwise they are verified as in [`combine`] (and
/// remembered if they pass). The result is always the same as [`combine`]'s.
///
/// # Errors
/// As [`combine`].
pub fn combine_memoized(
    commitments: &Commitments,
    fragments: &[Fragment],
    memo: &VerificationMemo,
) -> Result<Seed> {
    if batchable(commitments, fragments) {
        let commitments_hash = commitments.hash();
        let digests: Vec<[u8; 32]> =
            fragments.iter().map(|f| memo.fragment_digest(&commitments_hash, f)).collect();
        let known = digests.iter().all(|d| memo.contains(d));
        if known || commitments.verify_all(fragments).is_ok() {
            for d in digests {
                memo.insert(d);
            }
            return interpolate(&fragments.iter().collect::<Vec<_>>());
        }
    }
    combine(commitments, fragments)
}

/// Whether `fragments` can take the batch path: exactly `t`, distinct, none at index 0.
fn batchable(commitments: &Commitments, fragments: &[Fragment]) -> bool {
    fragments.len() == usize::from(commitments.threshold)
        && fragments.iter().all(|f| f.index != 0)
        && distinct(fragments)
}

fn distinct(fragments: &[Fragment]) -> bool {
    let mut seen = [false; 256];
    fragments.iter().all(|f| !std::mem::replace(&mut seen[usize::from(f.index)], true))
}

/// The Lagrange coefficients at zero for the (distinct, non-zero) `indices`:
/// `λ_i = Π_{j≠i} x_j / (x_j − x_i)`. The indices are public, so the inversions may run in
/// variable time; `None` if two indices are equal or one is zero.
fn lagrange_at_zero(indices: &[u8]) -> Option<Vec<Scalar>> {
    indices
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            let xi = Scalar::from(u64::from(xi));
            let mut num = Scalar::ONE;
            let mut den = Scalar::ONE;
            for (j, &xj) in indices.iter().enumerate() {
                if i != j {
                    let xj = Scalar::from(u64::from(xj));
                    num *= xj;
                    den *= xj - xi;
                }
            }
            Option::<Scalar>::from(den.invert_vartime()).map(|inv| num * inv)
        })
        .collect::<Option<Vec<_>>>()
        .filter(|l| !l.iter().any(|c| bool::from(c.is_zero())))
}

/// Lagrange interpolation at zero of each limb over `valid` (already checked): the
/// coefficients are computed once for the fragments' indices and shared by the three limbs
/// (the shares are combined in constant time). Equal to `vsss-rs`'s `combine` per limb,
/// which the tests hold it to ([`interpolate_reference`]).
fn interpolate(valid: &[&Fragment]) -> Result<Seed> {
    let indices: Vec<u8> = valid.iter().map(|f| f.index).collect();
    let lambdas = lagrange_at_zero(&indices).ok_or(Error::Reconstruction)?;
    let mut seed = Seed::from_bytes([0u8; SEED_LEN]);
    for (c, (lo, hi)) in LIMBS.iter().enumerate() {
        let mut value = Scalar::ZERO;
        for (f, lambda) in valid.iter().zip(&lambdas) {
            let mut share =
                scalar(&f.shares[c]).ok_or(Error::InvalidFragment { culprit: f.index })?;
            value += share * lambda;
            share.zeroize();
        }
        let fits = write_limb(&mut seed, value, *lo, *hi);
        value.zeroize();
        if !fits {
            return Err(Error::Reconstruction);
        }
    }
    Ok(seed)
}

/// Writes limb `value` to `seed[lo..hi]`; `false` (nothing written) if it does not fit.
fn write_limb(seed: &mut Seed, value: Scalar, lo: usize, hi: usize) -> bool {
    let mut bytes: [u8; 32] = value.to_repr().into();
    let width = hi - lo;
    let in_range = bytes[..32 - width].iter().all(|b| *b == 0);
    if in_range {
        seed.bytes_mut()[lo..hi].copy_from_slice(&bytes[32 - width..]);
    }
    bytes.zeroize();
    in_range
}

/// [`interpolate`] through `vsss-rs`'s generic `combine`, limb by limb: the reference the
/// direct interpolation is tested against.
#[cfg(any(test, feature = "hazmat"))]
fn interpolate_reference(valid: &[&Fragment]) -> Result<Seed> {
    use vsss_rs::ReadableShareSet;
    let mut seed = Seed::from_bytes([0u8; SEED_LEN]);
    for (c, (lo, hi)) in LIMBS.iter().enumerate() {
        let shares = valid.iter().map(|f| f.share(c)).collect::<Result<Vec<_>>>()?;
        let value = shares.combine().map_err(|_| Error::Reconstruction)?;
        if !write_limb(&mut seed, value.0, *lo, *hi) {
            return Err(Error::Reconstruction);
        }
    }
    Ok(seed)
}

/// [`combine`] with the interpolation done by `vsss-rs` (fragments verified one by one):
/// the reference for differential tests of the fast path.
///
/// # Errors
/// As [`combine`].
#[cfg(feature = "hazmat")]
pub fn combine_reference(commitments: &Commitments, fragments: &[Fragment]) -> Result<Seed> {
    let t = usize::from(commitments.threshold);
    if fragments.len() < t || !distinct(fragments) || fragments.iter().any(|f| f.index == 0) {
        return Err(Error::NotEnoughFragments { needed: t, got: fragments.len() });
    }
    for f in fragments {
        commitments.verify_reference(f)?;
    }
    interpolate_reference(&fragments.iter().take(t).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn direct_interpolation_equals_vsss_rs() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        for _ in 0..16 {
            let seed = Seed::generate(&mut rng);
            let (_, fragments) = split(&seed, 3, 5, &mut rng).unwrap();
            for a in 0..5 {
                for b in 0..5 {
                    for c in 0..5 {
                        if a == b || b == c || a == c {
                            continue;
                        }
                        let pick = [&fragments[a], &fragments[b], &fragments[c]];
                        let fast = interpolate(&pick).unwrap();
                        let reference = interpolate_reference(&pick).unwrap();
                        assert_eq!(fast.as_bytes(), reference.as_bytes());
                        assert_eq!(fast.as_bytes(), seed.as_bytes());
                    }
                }
            }
            // Four and five fragments of a degree-2 polynomial interpolate to it too.
            let all: Vec<&Fragment> = fragments.iter().collect();
            assert_eq!(interpolate(&all).unwrap().as_bytes(), seed.as_bytes());
            assert_eq!(interpolate(&all[1..]).unwrap().as_bytes(), seed.as_bytes());
        }
    }

    #[test]
    fn commitments_cache_decodes_each_wire_form_once() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(13);
        let seed = Seed::generate(&mut rng);
        let (a, _) = split(&seed, 3, 5, &mut rng).unwrap();
        let (b, _) = split(&seed, 3, 5, &mut rng).unwrap();
        let cache = CommitmentsCache::new(2);
        assert_eq!(cache.decode(a.as_bytes()).unwrap(), a);
        assert_eq!(cache.decode(a.as_bytes()).unwrap(), a);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.decode(b.as_bytes()).unwrap(), b);
        assert_eq!(cache.len(), 2);
        // Bad bytes are refused as by from_bytes, and not kept.
        let mut bad = a.to_bytes();
        bad[5] ^= 0xff;
        assert_eq!(
            cache.decode(&bad).is_err(),
            Commitments::from_bytes(&bad).is_err(),
            "same verdict as from_bytes"
        );
        assert!(cache.decode(&a.as_bytes()[..40]).is_err());
        assert_eq!(cache.len(), 2);
        // Full: emptied, then the new entry kept; results unchanged.
        let (c, _) = split(&seed, 3, 5, &mut rng).unwrap();
        assert_eq!(cache.decode(c.as_bytes()).unwrap(), c);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.decode(a.as_bytes()).unwrap(), a);
    }

    #[test]
    fn memoized_combine_is_combine() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(12);
        let memo = VerificationMemo::new(&mut rng, 64);
        let seed = Seed::generate(&mut rng);
        let (c, fragments) = split(&seed, 3, 5, &mut rng).unwrap();
        let (c_other, _) = split(&seed, 3, 5, &mut rng).unwrap();
        let three = &fragments[..3];
        // First time verified and remembered; second time from the memo; same seed.
        assert_eq!(combine_memoized(&c, three, &memo).unwrap().as_bytes(), seed.as_bytes());
        assert_eq!(memo.len(), 3);
        assert_eq!(combine_memoized(&c, three, &memo).unwrap().as_bytes(), seed.as_bytes());
        assert_eq!(memo.len(), 3);
        // The same fragments against other commitments: not remembered, and refused.
        assert!(combine_memoized(&c_other, three, &memo).is_err());
        // A tweaked fragment (a lie) is not in the memo: verified, refused, culprit named.
        let mut bytes = three[2].to_bytes().to_vec();
        bytes[40] ^= 1;
        let mut lied = three.to_vec();
        lied[2] = Fragment::from_bytes(&bytes).unwrap();
        assert!(matches!(
            combine_memoized(&c, &lied, &memo).unwrap_err(),
            Error::InvalidFragment { culprit: 3 }
        ));
        assert_eq!(memo.len(), 3);
        // Another process's memo (another salt) knows nothing of these.
        let fresh = VerificationMemo::new(&mut rng, 64);
        assert!(!fresh.contains(&memo.fragment_digest(&c.hash(), &three[0])));
        // `passes`: a known digest without running the check; an unknown one runs it and
        // is remembered only if it passed.
        let known = memo.fragment_digest(&c.hash(), &three[0]);
        assert!(memo.passes(known, || unreachable!("known")));
        let unknown = memo.digest(b"other", &[b"x"]);
        assert!(!memo.passes(unknown, || false));
        assert!(!memo.contains(&unknown));
        assert!(memo.passes(unknown, || true));
        assert!(memo.contains(&unknown));
        // Bounded: emptied when full.
        let small = VerificationMemo::new(&mut rng, 2);
        combine_memoized(&c, three, &small).unwrap();
        assert!(small.len() <= 2);
    }

    #[test]
    fn lagrange_refuses_zero_and_repeated_indices() {
        assert!(lagrange_at_zero(&[1, 2, 3]).is_some());
        assert!(lagrange_at_zero(&[0, 2, 3]).is_none());
        assert!(lagrange_at_zero(&[2, 2, 3]).is_none());
        // λ for {1, 2, 3} at zero: 3, −3, 1.
        let l = lagrange_at_zero(&[1, 2, 3]).unwrap();
        assert_eq!(l, vec![Scalar::from(3u64), -Scalar::from(3u64), Scalar::ONE]);
    }

    #[test]
    fn commitments_keep_their_canonical_bytes() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for _ in 0..8 {
            let seed = Seed::generate(&mut rng);
            let (c, _) = split(&seed, 3, 5, &mut rng).unwrap();
            // The kept bytes are the point-by-point constant-time encoding.
            let mut expected = vec![FORMAT_V1, 3];
            for p in c.points.iter() {
                expected.extend_from_slice(&p.to_affine().to_bytes());
            }
            assert_eq!(c.as_bytes(), &expected[..]);
            let back = Commitments::from_bytes(c.as_bytes()).unwrap();
            assert_eq!(back, c);
            // The hash is computed once, at construction, on either path.
            assert_eq!(back.hash(), crate::keccak256(&expected));
            assert_eq!(c.hash(), crate::keccak256(&expected));
            assert_eq!(CommitmentsCache::new(4).decode(&expected).unwrap().hash(), c.hash());
        }
    }

    #[test]
    fn non_canonical_point_encodings_are_refused() {
        // p = 2^256 - 2^32 - 977. For a small valid x, the 32-byte value x + p is the same
        // field element but not its canonical encoding: it must not decode.
        let p = {
            // 2^256 - 2^32 - 977, big-endian.
            let mut b = [0xffu8; 32];
            b[27] = 0xfe;
            b[28] = 0xff;
            b[29] = 0xff;
            b[30] = 0xfc;
            b[31] = 0x2f;
            b
        };
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let (c, _) = split(&Seed::generate(&mut rng), 3, 5, &mut rng).unwrap();
        let mut tested = 0;
        for x in 1u8..=64 {
            let mut canonical = [0u8; 33];
            canonical[0] = 0x02;
            canonical[32] = x;
            let mut repr = <ProjectivePoint as GroupEncoding>::Repr::default();
            repr.copy_from_slice(&canonical);
            if ProjectivePoint::from_bytes(&repr).is_none().into() {
                continue;
            }
            // x + p, which fits in 32 bytes for x < 2^32 + 977.
            let mut big = p;
            let (sum, carry) = big[31].overflowing_add(x);
            big[31] = sum;
            let mut i = 30;
            let mut carry = carry;
            while carry {
                let (s2, c2) = big[i].overflowing_add(1);
                big[i] = s2;
                carry = c2;
                i -= 1;
            }
            let mut bytes = c.to_bytes();
            bytes[2] = 0x02;
            bytes[3..35].copy_from_slice(&big);
            assert!(Commitments::from_bytes(&bytes).is_err(), "x = {x} + p decoded");
            bytes[3..35].copy_from_slice(&canonical[1..]);
            assert!(Commitments::from_bytes(&bytes).is_ok(), "x = {x} refused");
            tested += 1;
        }
        assert!(tested > 5);
    }
}
