//! The 48-byte envelope header and the encapsulation that follows it, PROTOCOL.md §2.

use k256::elliptic_curve::group::GroupEncoding;

use crate::error::{Error, Result};
use crate::suite::{K256_POINT_LEN, MLKEM768_CIPHERTEXT_LEN, Suite};

/// `"CIFR"`.
pub const MAGIC: [u8; 4] = *b"CIFR";
/// The only envelope version this library reads and writes.
pub const VERSION: u8 = 0x01;
/// Length of the header in bytes.
pub const HEADER_LEN: usize = 48;
/// Smallest `chunk_log2` (1 KiB chunks).
pub const MIN_CHUNK_LOG2: u8 = 10;
/// Largest `chunk_log2` (64 MiB chunks).
pub const MAX_CHUNK_LOG2: u8 = 26;
/// Default `chunk_log2` (64 KiB chunks).
pub const DEFAULT_CHUNK_LOG2: u8 = 16;
/// Length of an AES-256-GCM tag.
pub const TAG_LEN: usize = 16;

/// The envelope header (PROTOCOL.md §2): which secret, on which chain, how chunked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The key-encapsulation suite.
    pub suite: Suite,
    /// Chunk size is `2^chunk_log2` bytes, `10..=26`.
    pub chunk_log2: u8,
    /// The EVM chain id of the SecretsController that owns the secret.
    pub chain_id: u64,
    /// The secret id, a `uint256` as 32 big-endian bytes.
    pub secret_id: [u8; 32],
}

impl Header {
    /// A header for `suite`, checking `chunk_log2`.
    ///
    /// # Errors
    /// [`Error::BadChunkSize`] if `chunk_log2` is outside `10..=26`.
    pub fn new(suite: Suite, chunk_log2: u8, chain_id: u64, secret_id: [u8; 32]) -> Result<Self> {
        check_chunk_log2(chunk_log2)?;
        Ok(Self { suite, chunk_log2, chain_id, secret_id })
    }

    /// The chunk size in bytes.
    #[must_use]
    pub const fn chunk_size(&self) -> usize {
        1usize << self.chunk_log2
    }

    /// The 48 header bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = VERSION;
        out[5] = self.suite as u8;
        out[6] = self.chunk_log2;
        out[7] = 0;
        out[8..16].copy_from_slice(&self.chain_id.to_be_bytes());
        out[16..48].copy_from_slice(&self.secret_id);
        out
    }

    /// Parses a header. Checks run in byte order, so the first problem is reported.
    ///
    /// # Errors
    /// [`Error::Truncated`] if fewer than 48 bytes are given; [`Error::BadMagic`],
    /// [`Error::UnknownVersion`], [`Error::UnknownSuite`], [`Error::BadChunkSize`],
    /// [`Error::NonZeroReserved`] for the matching defect.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let Some(bytes) = bytes.get(..HEADER_LEN) else {
            // A short prefix that is not even a CIFR prefix is reported as such.
            let n = bytes.len().min(4);
            if bytes[..n] != MAGIC[..n] {
                return Err(Error::BadMagic);
            }
            return Err(Error::Truncated);
        };
        if bytes[0..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        if bytes[4] != VERSION {
            return Err(Error::UnknownVersion(bytes[4]));
        }
        let suite = Suite::try_from(bytes[5])?;
        check_chunk_log2(bytes[6])?;
        if bytes[7] != 0 {
            return Err(Error::NonZeroReserved(bytes[7]));
        }
        let mut chain = [0u8; 8];
        chain.copy_from_slice(&bytes[8..16]);
        let mut secret_id = [0u8; 32];
        secret_id.copy_from_slice(&bytes[16..48]);
        Ok(Self { suite, chunk_log2: bytes[6], chain_id: u64::from_be_bytes(chain), secret_id })
    }
}

fn check_chunk_log2(chunk_log2: u8) -> Result<()> {
    if (MIN_CHUNK_LOG2..=MAX_CHUNK_LOG2).contains(&chunk_log2) {
        Ok(())
    } else {
        Err(Error::BadChunkSize(chunk_log2))
    }
}

/// Header and encapsulation: everything before the first chunk, and everything a key
/// holder needs to derive the stream key (PROTOCOL.md §2.1). Large data never has to
/// travel to the black box: this prefix does.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvelopePrefix {
    header: Header,
    bytes: Vec<u8>,
}

impl core::fmt::Debug for EnvelopePrefix {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EnvelopePrefix")
            .field("header", &self.header)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl EnvelopePrefix {
    /// Builds a prefix from a header and its encapsulation.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the encapsulation has the wrong length for the suite,
    /// [`Error::InvalidPoint`] for a point not on secp256k1.
    pub fn new(header: Header, encapsulation: &[u8]) -> Result<Self> {
        let mut bytes = Vec::with_capacity(HEADER_LEN + encapsulation.len());
        bytes.extend_from_slice(&header.to_bytes());
        bytes.extend_from_slice(encapsulation);
        Self::decode(&bytes).map(|(p, _)| p)
    }

    /// Parses header and encapsulation from the start of `bytes`; returns the prefix and
    /// the number of bytes consumed.
    ///
    /// # Errors
    /// The header errors of [`Header::decode`], [`Error::Truncated`] if the
    /// encapsulation is cut short, [`Error::InvalidPoint`] for a point not on secp256k1.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize)> {
        let header = Header::decode(bytes)?;
        let len = HEADER_LEN + header.suite.encapsulation_len();
        let prefix = bytes.get(..len).ok_or(Error::Truncated)?;
        let this = Self { header, bytes: prefix.to_vec() };
        if let Some(point) = this.k256_point() {
            check_point(point)?;
        }
        Ok((this, len))
    }

    /// Total length of the prefix for a given header: `48 + encapsulation`.
    #[must_use]
    pub const fn len_for(header: &Header) -> usize {
        HEADER_LEN + header.suite.encapsulation_len()
    }

    /// The header.
    #[must_use]
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// The raw 48 header bytes.
    #[must_use]
    pub fn header_bytes(&self) -> &[u8] {
        &self.bytes[..HEADER_LEN]
    }

    /// The raw encapsulation bytes.
    #[must_use]
    pub fn encapsulation(&self) -> &[u8] {
        &self.bytes[HEADER_LEN..]
    }

    /// `header || encapsulation`.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The ML-KEM-768 ciphertext of suites 0x01 and 0x03.
    #[must_use]
    pub fn mlkem_ciphertext(&self) -> Option<&[u8]> {
        match self.header.suite {
            Suite::MlKem768 | Suite::Hybrid => {
                Some(&self.encapsulation()[..MLKEM768_CIPHERTEXT_LEN])
            }
            Suite::K256Tecies => None,
        }
    }

    /// The compressed point `K` of suites 0x02 and 0x03.
    #[must_use]
    pub fn k256_point(&self) -> Option<&[u8]> {
        let enc = self.encapsulation();
        match self.header.suite {
            Suite::K256Tecies => Some(enc),
            Suite::Hybrid => Some(&enc[MLKEM768_CIPHERTEXT_LEN..]),
            Suite::MlKem768 => None,
        }
    }

    /// `keccak256(header || encapsulation)`, the `envelopeHash` of PROTOCOL.md §4.2.
    #[must_use]
    pub fn envelope_hash(&self) -> [u8; 32] {
        crate::keccak256(&self.bytes)
    }
}

fn check_point(bytes: &[u8]) -> Result<()> {
    if bytes.len() != K256_POINT_LEN || !matches!(bytes[0], 0x02 | 0x03) {
        return Err(Error::InvalidPoint);
    }
    let mut repr = <k256::ProjectivePoint as GroupEncoding>::Repr::default();
    repr.copy_from_slice(bytes);
    Option::<k256::ProjectivePoint>::from(k256::ProjectivePoint::from_bytes(&repr))
        .map(|_| ())
        .ok_or(Error::InvalidPoint)
}
