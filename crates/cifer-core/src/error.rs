//! The one error type of `cifer-core`.

use crate::suite::Suite;

/// Everything that can go wrong in `cifer-core`.
///
/// Decoding errors are structural and name what is wrong with the bytes; cryptographic
/// failures ([`Error::Authentication`], [`Error::InvalidFragment`] aside) are deliberately
/// opaque: they never say which chunk failed or why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The first four bytes are not `CIFR` (PROTOCOL.md §2).
    #[error("not a CIFER envelope: bad magic")]
    BadMagic,
    /// The version byte is not one this library implements.
    #[error("unsupported envelope version 0x{0:02x}")]
    UnknownVersion(u8),
    /// The suite byte is not one of the suites of PROTOCOL.md §1.
    #[error("unknown suite 0x{0:02x}")]
    UnknownSuite(u8),
    /// `chunk_log2` is outside `10..=26`.
    #[error("chunk_log2 {0} is outside 10..=26")]
    BadChunkSize(u8),
    /// The reserved header byte is not zero.
    #[error("reserved header byte is 0x{0:02x}, must be 0x00")]
    NonZeroReserved(u8),
    /// The envelope ends inside the header, the encapsulation or a tag.
    #[error("envelope is truncated")]
    Truncated,
    /// A suite 0x02/0x03 encapsulation carries a point that is not on secp256k1.
    #[error("encapsulation point is not on the curve")]
    InvalidPoint,
    /// A chunk failed to authenticate. Deliberately says nothing more.
    #[error("decryption failed")]
    Authentication,
    /// The envelope is well formed but this operation does not handle its suite yet.
    #[error("suite {0} is not supported by this operation")]
    UnsupportedSuite(Suite),
    /// The plaintext would need more than 2^32 chunks.
    #[error("message too long for one envelope (more than 2^32 chunks)")]
    TooManyChunks,
    /// An ML-KEM-768 encapsulation key that fails the FIPS 203 §7.2 input check,
    /// or has the wrong length.
    #[error("invalid ML-KEM-768 encapsulation key")]
    InvalidEncapsulationKey,
    /// An encapsulation key whose keccak256 is not the expected (on-chain) hash.
    #[error("encapsulation key does not match its expected keccak256 hash")]
    KeyHashMismatch,
    /// A key file (PROTOCOL.md §5) that does not parse.
    #[error("invalid key file: {0}")]
    KeyFile(&'static str),
    /// A fragment with index 0 or above the number of shares.
    #[error("fragment index {0} is out of range")]
    InvalidFragmentIndex(u8),
    /// Two fragments carry the same index.
    #[error("duplicate fragment index {0}")]
    DuplicateFragmentIndex(u8),
    /// A serialized fragment or commitment set of the wrong length or format.
    #[error("malformed {what}: expected {expected} bytes, got {got}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// The expected length.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// Commitments that do not decode to valid points, or whose threshold is unsupported.
    #[error("invalid fragment commitments")]
    InvalidCommitments,
    /// A fragment that does not verify against the public commitments.
    #[error("fragment {culprit} does not verify against the commitments")]
    InvalidFragment {
        /// The index (1-based) of the fragment that failed.
        culprit: u8,
    },
    /// Fewer valid fragments than the threshold.
    #[error("not enough valid fragments: need {needed}, have {got}")]
    NotEnoughFragments {
        /// The threshold.
        needed: usize,
        /// How many valid fragments were given.
        got: usize,
    },
    /// Fragments verified but the rebuilt seed is inconsistent (out-of-range limb or
    /// an encapsulation key that does not match its hash).
    #[error("rebuilt key is inconsistent with its commitments")]
    Reconstruction,
    /// The operating system's random number generator failed.
    #[error("random number generator failure")]
    Rng,
    /// An I/O error from the reader or writer of a stream.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The fragment indices this error blames, if any.
    ///
    /// Matches every variant so that a new variant forces a decision about blame.
    #[must_use]
    pub fn culprits(&self) -> Vec<u8> {
        match self {
            Error::InvalidFragment { culprit } => vec![*culprit],
            Error::InvalidFragmentIndex(i) | Error::DuplicateFragmentIndex(i) => vec![*i],
            Error::BadMagic
            | Error::UnknownVersion(_)
            | Error::UnknownSuite(_)
            | Error::BadChunkSize(_)
            | Error::NonZeroReserved(_)
            | Error::Truncated
            | Error::InvalidPoint
            | Error::Authentication
            | Error::UnsupportedSuite(_)
            | Error::TooManyChunks
            | Error::InvalidEncapsulationKey
            | Error::KeyHashMismatch
            | Error::KeyFile(_)
            | Error::Malformed { .. }
            | Error::InvalidCommitments
            | Error::NotEnoughFragments { .. }
            | Error::Reconstruction
            | Error::Rng
            | Error::Io(_) => Vec::new(),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
