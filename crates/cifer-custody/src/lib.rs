//! # cifer-custody
//!
//! The messages that move fragments between the black box and the shard nodes
//! (`docs/services.md`), as pure functions over `cifer-core` and `cifer-auth`:
//!
//! - [`create_bundle`]: the black box makes a fresh seed, splits it 3-of-5, seals fragment
//!   `i` to node `i`'s registered ML-KEM-768 key as a CIFER envelope, signs the bundle with
//!   its registered identity, and wipes the seed. The client registers `ek` on chain and
//!   delivers the bundle; nothing in it is readable by the client or a relay.
//! - [`open_delivery`]: a node opens its fragment, checks the black box signature, its own
//!   slot, and the fragment against the commitments.
//! - [`seal_release`] / [`open_release`]: a node's reply to a release request, sealed to
//!   the black box's per-request key; the black box checks it against the bundle
//!   commitments and the creating black box's signature.
//! - [`release_batch_digest`]: one black-box signature over several bindings (a batch).
//! - [`release_key_digest`] / [`sign_release_key`]: the black box binds its per-request
//!   response key to the user's signed request.
//!
//! **Invariant:** no function here returns or logs a fragment except inside a
//! [`Fragment`] (zeroized, redacted) and no seed outlives [`create_bundle`].

use cifer_core::fragment::{self, FRAGMENT_LEN};
use cifer_core::{
    Commitments, CommitmentsCache, DecapsulationKey, EncapsulationKey, Fragment, Header, Seed,
    Suite, envelope, keccak256,
};
use k256::ecdsa::SigningKey;
use zeroize::Zeroizing;

/// Domain tag of the bundle digest.
pub const BUNDLE_TAG: &[u8] = b"CIFER/v1/bundle";
/// Domain tag of the release-key digest.
pub const RELEASE_KEY_TAG: &[u8] = b"CIFER/v1/release-key";
/// Domain tag of the release-batch digest.
pub const RELEASE_BATCH_TAG: &[u8] = b"CIFER/v1/release-batch";
/// Format byte of a release reply's plaintext.
pub const RELEASE_FORMAT: u8 = 0x01;

/// Errors of the custody messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A protocol-level failure (envelope, fragment, commitments).
    #[error(transparent)]
    Core(#[from] cifer_core::Error),
    /// A signature failed to parse or recover.
    #[error(transparent)]
    Auth(#[from] cifer_auth::Error),
    /// The bundle is not signed by the expected black box signer.
    #[error("bundle is not signed by the expected black box")]
    WrongSigner,
    /// The bundle has the wrong number of sealed fragments for its cluster.
    #[error("bundle holds {got} sealed fragments, expected {expected}")]
    WrongShareCount {
        /// Expected (cluster size).
        expected: usize,
        /// Received.
        got: usize,
    },
    /// A fragment's index is not the node's slot in the cluster.
    #[error("fragment index {got} is not this node's slot {expected}")]
    WrongSlot {
        /// The node's slot (1-based).
        expected: u8,
        /// The fragment's index.
        got: u8,
    },
    /// A sealed message whose plaintext is not the expected format.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The black box signing key is invalid.
    #[error("invalid signing key")]
    SigningKey,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// A creation bundle: everything a client needs to register a secret and deliver its
/// fragments, none of it secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// Chain of the SecretsController that will hold the secret.
    pub chain_id: u64,
    /// Cluster (ClusterRegistry id) whose nodes hold the fragments.
    pub cluster_id: u32,
    /// The secret's ML-KEM-768 encapsulation key (to register on chain).
    pub encapsulation_key: Vec<u8>,
    /// The Pedersen commitments (`docs/protocol.md`).
    pub commitments: Vec<u8>,
    /// `sealed[i]`: fragment `i + 1` as a CIFER envelope to node slot `i + 1`'s key.
    pub sealed: Vec<Vec<u8>>,
    /// The creating black box's 65-byte signature over [`Bundle::digest`].
    pub signature: [u8; 65],
}

impl Bundle {
    /// `keccak256("CIFER/v1/bundle" || chainId BE64 || clusterId BE32 || keccak256(ek) ||
    /// keccak256(commitments))`.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        bundle_digest(
            self.chain_id,
            self.cluster_id,
            &keccak256(&self.encapsulation_key),
            &keccak256(&self.commitments),
        )
    }

    /// The address that signed the bundle.
    ///
    /// # Errors
    /// [`Error::Auth`] for a malformed or high-s signature.
    pub fn signer(&self) -> Result<[u8; 20]> {
        let sig = cifer_auth::ecdsa::Signature::from_bytes(&self.signature)?;
        Ok(sig.recover_address(&self.digest())?)
    }
}

/// The bundle digest from its parts (see [`Bundle::digest`]); the black box recomputes it
/// with the on-chain key hash when it authenticates commitments.
#[must_use]
pub fn bundle_digest(
    chain_id: u64,
    cluster_id: u32,
    ek_hash: &[u8; 32],
    commitments_hash: &[u8; 32],
) -> [u8; 32] {
    let mut m = Vec::with_capacity(BUNDLE_TAG.len() + 8 + 4 + 64);
    m.extend_from_slice(BUNDLE_TAG);
    m.extend_from_slice(&chain_id.to_be_bytes());
    m.extend_from_slice(&cluster_id.to_be_bytes());
    m.extend_from_slice(ek_hash);
    m.extend_from_slice(commitments_hash);
    keccak256(&m)
}

/// Signs a 32-byte digest as `r || s || v` (v = 27/28, low-s), Ethereum style.
///
/// # Errors
/// [`Error::SigningKey`] if signing fails.
pub fn sign_digest(key: &SigningKey, digest: &[u8; 32]) -> Result<[u8; 65]> {
    cifer_auth::ecdsa::sign_prehash(key, digest).map_err(|_| Error::SigningKey)
}

/// The black box makes a new secret for `cluster_id`: fresh seed from the OS, 3-of-`n`
/// verifiable split, fragment `i` sealed to `node_keys[i]` (the cluster's members in
/// slot order), bundle signed with `signer`. The seed and fragments are wiped before
/// returning.
///
/// # Errors
/// [`Error::Core`] for an RNG failure or bad threshold.
pub fn create_bundle(
    chain_id: u64,
    cluster_id: u32,
    threshold: u8,
    node_keys: &[EncapsulationKey],
    signer: &SigningKey,
) -> Result<Bundle> {
    let seed = Seed::generate_os()?;
    let n = u8::try_from(node_keys.len()).map_err(|_| Error::Malformed("cluster size"))?;
    let (commitments, fragments) = fragment::split(&seed, threshold, n, &mut cifer_core::os_rng())?;
    let ek = seed.encapsulation_key();
    drop(seed);
    let header =
        Header::new(Suite::MlKem768, cifer_core::header::MIN_CHUNK_LOG2, chain_id, [0u8; 32])?;
    let sealed = fragments
        .iter()
        .zip(node_keys)
        .map(|(f, key)| envelope::seal(key, header, &f.to_bytes()))
        .collect::<cifer_core::Result<Vec<_>>>()?;
    drop(fragments);
    let mut bundle = Bundle {
        chain_id,
        cluster_id,
        encapsulation_key: ek.as_bytes().to_vec(),
        commitments: commitments.to_bytes(),
        sealed,
        signature: [0u8; 65],
    };
    bundle.signature = sign_digest(signer, &bundle.digest())?;
    Ok(bundle)
}

/// What a node keeps after accepting a delivery.
#[derive(Debug)]
pub struct Delivered {
    /// The node's fragment (index = its slot).
    pub fragment: Fragment,
    /// The commitments it verifies against.
    pub commitments: Commitments,
    /// `keccak256(ek)`, to compare with the on-chain record.
    pub ek_hash: [u8; 32],
    /// The black box that signed the bundle.
    pub signer: [u8; 20],
}

/// A node opens its share of a bundle: signature by a black box (the caller then checks
/// that `signer` is registered), its own sealed fragment opened with its transport seed,
/// the fragment's index equal to its `slot`, and the fragment verified against the
/// commitments. The caller must also check on chain that the secret's public-key hash is
/// `ek_hash` before storing.
///
/// # Errors
/// [`Error::WrongShareCount`], [`Error::WrongSlot`], [`Error::Core`] for an envelope that
/// does not open or a fragment that does not verify, [`Error::Auth`] for a bad signature.
pub fn open_delivery(
    bundle: &Bundle,
    node_seed: &Seed,
    slot: u8,
    cluster_size: usize,
) -> Result<Delivered> {
    if bundle.sealed.len() != cluster_size {
        return Err(Error::WrongShareCount { expected: cluster_size, got: bundle.sealed.len() });
    }
    let signer = bundle.signer()?;
    let sealed = bundle
        .sealed
        .get(usize::from(slot).wrapping_sub(1))
        .ok_or(Error::WrongSlot { expected: slot, got: 0 })?;
    let prefix = envelope::read_prefix(&mut &sealed[..])?;
    if prefix.header().chain_id != bundle.chain_id {
        return Err(Error::Malformed("delivery envelope chain"));
    }
    let plain = Zeroizing::new(envelope::open(node_seed, sealed)?);
    let fragment = Fragment::from_bytes(&plain)?;
    if fragment.index() != slot {
        return Err(Error::WrongSlot { expected: slot, got: fragment.index() });
    }
    let commitments = Commitments::from_bytes(&bundle.commitments)?;
    commitments.verify(&fragment)?;
    Ok(Delivered { fragment, commitments, ek_hash: keccak256(&bundle.encapsulation_key), signer })
}

/// `keccak256("CIFER/v1/release-key" || chainId BE64 || secretId || requestDigest ||
/// keccak256(responseKey))`: what the black box signs to bind its per-request key to one
/// user request.
#[must_use]
pub fn release_key_digest(
    chain_id: u64,
    secret_id: &[u8; 32],
    request_digest: &[u8; 32],
    response_key: &[u8],
) -> [u8; 32] {
    let mut m = Vec::with_capacity(RELEASE_KEY_TAG.len() + 8 + 96);
    m.extend_from_slice(RELEASE_KEY_TAG);
    m.extend_from_slice(&chain_id.to_be_bytes());
    m.extend_from_slice(secret_id);
    m.extend_from_slice(request_digest);
    m.extend_from_slice(&keccak256(response_key));
    keccak256(&m)
}

/// `keccak256("CIFER/v1/release-batch" || n BE32 || bound_1 || … || bound_n)`, where each
/// `bound_i` is a [`release_key_digest`]: what the black box signs once for a batch of
/// releases sent to one node (`POST /v1/releases`). A node recomputes every `bound_i` from
/// the items it received, so the one signature binds each per-request key to its own
/// request exactly as a per-request signature would, and a batch cannot be extended,
/// shortened or reordered without a new signature. The tag differs from the single
/// binding's, so neither digest can be passed off as the other.
#[must_use]
pub fn release_batch_digest(bounds: &[[u8; 32]]) -> [u8; 32] {
    let mut m = Vec::with_capacity(RELEASE_BATCH_TAG.len() + 4 + 32 * bounds.len());
    m.extend_from_slice(RELEASE_BATCH_TAG);
    m.extend_from_slice(&u32::try_from(bounds.len()).unwrap_or(u32::MAX).to_be_bytes());
    for b in bounds {
        m.extend_from_slice(b);
    }
    keccak256(&m)
}

/// A node's reply to a release: `0x01 || fragment || bundle signature || commitments`
/// sealed to the black box's per-request `response_key`, header `(chain_id, secret_id)`.
///
/// # Errors
/// [`Error::Core`].
pub fn seal_release(
    chain_id: u64,
    secret_id: [u8; 32],
    fragment: &Fragment,
    commitments: &Commitments,
    bundle_signature: &[u8; 65],
    response_key: &EncapsulationKey,
) -> Result<Vec<u8>> {
    let mut plain = Zeroizing::new(Vec::with_capacity(1 + FRAGMENT_LEN + 65 + 300));
    plain.push(RELEASE_FORMAT);
    plain.extend_from_slice(&fragment.to_bytes());
    plain.extend_from_slice(bundle_signature);
    plain.extend_from_slice(&commitments.to_bytes());
    let header =
        Header::new(Suite::MlKem768, cifer_core::header::MIN_CHUNK_LOG2, chain_id, secret_id)?;
    Ok(envelope::seal(response_key, header, &plain)?)
}

/// What the black box gets from one node's release reply.
#[derive(Debug)]
pub struct Released {
    /// The node's fragment.
    pub fragment: Fragment,
    /// The commitments the node holds.
    pub commitments: Commitments,
    /// The creating black box's signature over the bundle.
    pub bundle_signature: [u8; 65],
}

/// Opens a node's release reply with the black box's per-request seed, checking that it
/// is for `(chain_id, secret_id)`. Verification against the commitments is the caller's
/// (it compares commitments across nodes first).
///
/// # Errors
/// [`Error::Core`] if the envelope does not open, [`Error::Malformed`] otherwise.
pub fn open_release(
    reply: &[u8],
    response_seed: &Seed,
    chain_id: u64,
    secret_id: &[u8; 32],
) -> Result<Released> {
    ReleaseOpener::new(response_seed).open(reply, chain_id, secret_id)
}

/// Opens the release replies of one request: the per-request decapsulation key is derived
/// once, and commitments identical to ones already decoded (every honest node sends the
/// same) are not decoded again: within the request, or across requests when the openers
/// share a [`CommitmentsCache`]. Same results as [`open_release`] for each reply.
#[derive(Debug)]
pub struct ReleaseOpener {
    key: DecapsulationKey,
    decoded: std::sync::Arc<CommitmentsCache>,
}

/// Commitments one request's replies can carry that a [`ReleaseOpener::new`] keeps: the
/// honest nodes' (one set) and a few liars'.
const PER_REQUEST_COMMITMENTS: usize = 8;

impl ReleaseOpener {
    /// An opener for replies sealed to `response_seed`'s encapsulation key.
    #[must_use]
    pub fn new(response_seed: &Seed) -> Self {
        Self::with_cache(
            response_seed,
            std::sync::Arc::new(CommitmentsCache::new(PER_REQUEST_COMMITMENTS)),
        )
    }

    /// [`new`](Self::new) decoding commitments through `cache` (shared by a process's
    /// requests: commitments are public, and a hit is checked against the full bytes).
    #[must_use]
    pub fn with_cache(response_seed: &Seed, cache: std::sync::Arc<CommitmentsCache>) -> Self {
        Self { key: response_seed.decapsulation_key(), decoded: cache }
    }

    /// The encapsulation key the replies are sealed to.
    #[must_use]
    pub fn encapsulation_key(&self) -> EncapsulationKey {
        self.key.encapsulation_key()
    }

    /// As [`open_release`].
    ///
    /// # Errors
    /// As [`open_release`].
    pub fn open(&self, reply: &[u8], chain_id: u64, secret_id: &[u8; 32]) -> Result<Released> {
        let prefix = envelope::read_prefix(&mut &reply[..])?;
        if prefix.header().chain_id != chain_id || &prefix.header().secret_id != secret_id {
            return Err(Error::Malformed("reply for another secret"));
        }
        let plain = Zeroizing::new(envelope::open_with_key(&self.key, reply)?);
        if plain.len() < 1 + FRAGMENT_LEN + 65 || plain[0] != RELEASE_FORMAT {
            return Err(Error::Malformed("release reply"));
        }
        let fragment = Fragment::from_bytes(&plain[1..=FRAGMENT_LEN])?;
        let mut bundle_signature = [0u8; 65];
        bundle_signature.copy_from_slice(&plain[1 + FRAGMENT_LEN..1 + FRAGMENT_LEN + 65]);
        let commitments = self.decoded.decode(&plain[1 + FRAGMENT_LEN + 65..])?;
        Ok(Released { fragment, commitments, bundle_signature })
    }
}

/// Format byte of a key reply (a stream key for the requester).
pub const KEY_REPLY_FORMAT: u8 = 0x02;
/// Format byte of a thin-mode reply (plaintext for the requester).
pub const PLAINTEXT_REPLY_FORMAT: u8 = 0x03;

/// The black box's answer to a decryption request: `0x02 || stream key (§2.1)` sealed to
/// the requester's ephemeral `response_key` (`ek_r`), header `(chain_id, secret_id)`.
/// Neither a relay nor a TLS terminator can read it.
///
/// # Errors
/// [`Error::Core`].
pub fn seal_key_reply(
    chain_id: u64,
    secret_id: [u8; 32],
    key: &cifer_core::StreamKey,
    response_key: &EncapsulationKey,
) -> Result<Vec<u8>> {
    let mut plain = Zeroizing::new(Vec::with_capacity(1 + cifer_core::schedule::STREAM_KEY_LEN));
    plain.push(KEY_REPLY_FORMAT);
    plain.extend_from_slice(&key.to_bytes()[..]);
    seal_reply(chain_id, secret_id, &plain, response_key)
}

/// Opens [`seal_key_reply`]'s output with the requester's response key (derive it once
/// from the response seed, and take the encapsulation key sent with the request from it:
/// [`DecapsulationKey::encapsulation_key`]).
///
/// # Errors
/// [`Error::Core`] if it does not open, [`Error::Malformed`] if it is for another secret
/// or not a key reply.
pub fn open_key_reply(
    reply: &[u8],
    response_key: &DecapsulationKey,
    chain_id: u64,
    secret_id: &[u8; 32],
) -> Result<cifer_core::StreamKey> {
    let plain = open_reply(reply, response_key, chain_id, secret_id)?;
    let key: &[u8; cifer_core::schedule::STREAM_KEY_LEN] = plain
        .get(1..)
        .filter(|_| plain[0] == KEY_REPLY_FORMAT)
        .and_then(|k| k.try_into().ok())
        .ok_or(Error::Malformed("key reply"))?;
    Ok(cifer_core::StreamKey::from_bytes(key))
}

/// Thin mode: `0x03 || plaintext` sealed to `response_key`, header `(chain_id, secret_id)`.
///
/// # Errors
/// [`Error::Core`].
pub fn seal_plaintext_reply(
    chain_id: u64,
    secret_id: [u8; 32],
    plaintext: &[u8],
    response_key: &EncapsulationKey,
) -> Result<Vec<u8>> {
    let mut plain = Zeroizing::new(Vec::with_capacity(1 + plaintext.len()));
    plain.push(PLAINTEXT_REPLY_FORMAT);
    plain.extend_from_slice(plaintext);
    seal_reply(chain_id, secret_id, &plain, response_key)
}

/// Opens [`seal_plaintext_reply`]'s output.
///
/// # Errors
/// As [`open_key_reply`].
pub fn open_plaintext_reply(
    reply: &[u8],
    response_key: &DecapsulationKey,
    chain_id: u64,
    secret_id: &[u8; 32],
) -> Result<Zeroizing<Vec<u8>>> {
    let plain = open_reply(reply, response_key, chain_id, secret_id)?;
    if plain.first() != Some(&PLAINTEXT_REPLY_FORMAT) {
        return Err(Error::Malformed("plaintext reply"));
    }
    Ok(Zeroizing::new(plain[1..].to_vec()))
}

fn seal_reply(
    chain_id: u64,
    secret_id: [u8; 32],
    plain: &[u8],
    response_key: &EncapsulationKey,
) -> Result<Vec<u8>> {
    let header =
        Header::new(Suite::MlKem768, cifer_core::header::MIN_CHUNK_LOG2, chain_id, secret_id)?;
    Ok(envelope::seal(response_key, header, plain)?)
}

fn open_reply(
    reply: &[u8],
    response_key: &DecapsulationKey,
    chain_id: u64,
    secret_id: &[u8; 32],
) -> Result<Zeroizing<Vec<u8>>> {
    let prefix = envelope::read_prefix(&mut &reply[..])?;
    if prefix.header().chain_id != chain_id || &prefix.header().secret_id != secret_id {
        return Err(Error::Malformed("reply for another secret"));
    }
    Ok(Zeroizing::new(envelope::open_with_key(response_key, reply)?))
}
