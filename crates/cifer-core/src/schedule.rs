//! Key schedule, PROTOCOL.md §2.1.
//!
//! ```text
//! okm = HKDF-SHA256(salt = 32 zero bytes, ikm,
//!                   info = "CIFER/v1/stream" || header || encapsulation, L = 39)
//! key = okm[0..32], nonce_prefix = okm[32..39]
//! ```

use core::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};
use crate::header::EnvelopePrefix;

/// The HKDF `info` label of PROTOCOL.md §2.1.
pub const STREAM_INFO_LABEL: &[u8] = b"CIFER/v1/stream";
/// Length of the AES-256 key.
pub const KEY_LEN: usize = 32;
/// Length of the nonce prefix.
pub const NONCE_PREFIX_LEN: usize = 7;
/// `L = 39`: key and nonce prefix together; what the black box hands back to a requester.
pub const STREAM_KEY_LEN: usize = KEY_LEN + NONCE_PREFIX_LEN;

/// The per-envelope AES-256-GCM key and nonce prefix. Zeroized on drop; `Debug` prints
/// `<redacted>`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StreamKey {
    pub(crate) key: [u8; KEY_LEN],
    pub(crate) nonce_prefix: [u8; NONCE_PREFIX_LEN],
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamKey(<redacted>)")
    }
}

impl StreamKey {
    /// Derives the stream key from the suite's input keying material and the envelope
    /// prefix (header and encapsulation are bound into `info`).
    ///
    /// # Errors
    /// Never in practice: HKDF-SHA256 can always produce 39 bytes. Kept fallible so no
    /// panic path exists.
    pub fn derive(ikm: &[u8], prefix: &EnvelopePrefix) -> Result<Self> {
        let hk = Hkdf::<Sha256>::new(Some(&[0u8; 32]), ikm);
        let mut okm = [0u8; STREAM_KEY_LEN];
        hk.expand_multi_info(&[STREAM_INFO_LABEL, prefix.as_bytes()], &mut okm)
            .map_err(|_| Error::Authentication)?;
        let this = Self::from_bytes(&okm);
        okm.zeroize();
        Ok(this)
    }

    /// Rebuilds a stream key from its 39 bytes (`key || nonce_prefix`).
    #[must_use]
    pub fn from_bytes(bytes: &[u8; STREAM_KEY_LEN]) -> Self {
        let mut key = [0u8; KEY_LEN];
        let mut nonce_prefix = [0u8; NONCE_PREFIX_LEN];
        key.copy_from_slice(&bytes[..KEY_LEN]);
        nonce_prefix.copy_from_slice(&bytes[KEY_LEN..]);
        Self { key, nonce_prefix }
    }

    /// `key || nonce_prefix`, wiped when the returned value drops.
    #[must_use]
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; STREAM_KEY_LEN]> {
        let mut out = zeroize::Zeroizing::new([0u8; STREAM_KEY_LEN]);
        out[..KEY_LEN].copy_from_slice(&self.key);
        out[KEY_LEN..].copy_from_slice(&self.nonce_prefix);
        out
    }
}
