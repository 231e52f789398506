//! The node sealing key and the at-rest format of fragments.
//!
//! A fragment row holds `nonce` (12 random bytes) and `sealed` = AES-256-GCM ciphertext of
//! the 194-byte fragment wire form followed by the 16-byte tag, with associated data
//!
//! ```text
//! "CIFER/v1/fragment-at-rest" || BE64(chain_id) || secret_id (32) || index (1)
//!     || commitments_hash (32) || ek_hash (32)
//! ```
//!
//! so a sealed value opens only in the row it was written for: copying it to another
//! secret, chain or index, or pairing it with other commitments or another key hash,
//! fails authentication. (`ek_hash` is appended to the associated data of the brief so
//! that the stored key hash, which the service compares with the chain, is bound too.)

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::error::{Result, StoreError};

/// Domain separation prefix of the associated data.
pub const AT_REST_LABEL: &[u8] = b"CIFER/v1/fragment-at-rest";
/// Value of the `seal_format` column for the format above.
pub const SEAL_FORMAT_V1: i16 = 1;
/// First line prefix of a sealing key file.
pub const KEY_FILE_PREFIX: &str = "CIFER-SEALING-KEY-1:";
/// AES-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// The node's 32-byte sealing key. Zeroized on drop; `Debug` prints `<redacted>`.
///
/// In dev mode the key comes from a file (`CIFER-SEALING-KEY-1:<64 hex>\n`, mode 0600);
/// in a TEE it would come from the enclave's sealing facility through
/// [`from_bytes`](Self::from_bytes).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SealingKey([u8; 32]);

impl core::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}

impl SealingKey {
    /// Wraps key bytes obtained elsewhere (a TEE sealing facility, a KMS).
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Loads the key file at `path`.
    ///
    /// # Errors
    /// [`StoreError::KeyFilePermissions`] if the file's mode gives any access to group or
    /// others; [`StoreError::KeyFileFormat`] if it is not a regular file or not in the
    /// key file format; [`StoreError::KeyFileIo`] if it cannot be read.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| StoreError::KeyFileIo { path: path.to_path_buf(), source };
        let format = |reason| StoreError::KeyFileFormat { path: path.to_path_buf(), reason };
        let file = File::open(path).map_err(io)?;
        // Checked on the open descriptor, so a swap between check and read is not possible.
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(format("not a regular file"));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(StoreError::KeyFilePermissions { path: path.to_path_buf(), mode });
        }
        let mut text = Zeroizing::new(Vec::with_capacity(128));
        file.take(256).read_to_end(&mut text).map_err(io)?;
        let body = text.strip_suffix(b"\n").unwrap_or(&text);
        let hex_part = body
            .strip_prefix(KEY_FILE_PREFIX.as_bytes())
            .ok_or_else(|| format("missing CIFER-SEALING-KEY-1: prefix"))?;
        if hex_part.len() != 64 || !hex_part.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(format("expected 64 lowercase hex digits"));
        }
        let mut key = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut key)
            .map_err(|_| format("expected 64 lowercase hex digits"))?;
        Ok(Self(key))
    }

    /// Creates a new random key and writes it to `path` with mode 0600. Never overwrites:
    /// the file must not exist. The file and its directory are synced before returning.
    ///
    /// # Errors
    /// [`StoreError::KeyFileIo`] (kind `AlreadyExists` if the file exists),
    /// [`StoreError::Rng`].
    pub fn generate(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| StoreError::KeyFileIo { path: path.to_path_buf(), source };
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| StoreError::Rng)?;
        let this = Self(key);
        key.zeroize();
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
        // The umask can only remove bits from 0600, but make the mode explicit anyway.
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        let mut text = Zeroizing::new(String::with_capacity(KEY_FILE_PREFIX.len() + 65));
        text.push_str(KEY_FILE_PREFIX);
        text.push_str(&hex::encode(this.0));
        text.push('\n');
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(this)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }
}

/// What binds a sealed fragment to its row.
pub(crate) struct RowBinding<'a> {
    pub(crate) chain_id: u64,
    pub(crate) secret_id: &'a [u8; 32],
    pub(crate) index: u8,
    pub(crate) commitments_hash: &'a [u8; 32],
    pub(crate) ek_hash: &'a [u8; 32],
}

impl RowBinding<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(AT_REST_LABEL.len() + 8 + 32 + 1 + 32 + 32);
        aad.extend_from_slice(AT_REST_LABEL);
        aad.extend_from_slice(&self.chain_id.to_be_bytes());
        aad.extend_from_slice(self.secret_id);
        aad.push(self.index);
        aad.extend_from_slice(self.commitments_hash);
        aad.extend_from_slice(self.ek_hash);
        aad
    }
}

/// Seals `plaintext` under a fresh random nonce; returns `(nonce, ciphertext || tag)`.
pub(crate) fn seal(
    key: &SealingKey,
    binding: &RowBinding<'_>,
    plaintext: &[u8],
) -> Result<([u8; NONCE_LEN], Vec<u8>)> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| StoreError::Rng)?;
    // Sized up front: a reallocation would leave a plaintext copy in freed memory.
    let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
    buf.extend_from_slice(plaintext);
    let tag = key
        .cipher()
        .encrypt_inout_detached(&nonce.into(), &binding.aad(), buf.as_mut_slice().into())
        .map_err(|_| StoreError::Seal)?;
    buf.extend_from_slice(&tag);
    Ok((nonce, buf))
}

/// Opens a sealed value; `None` on any authentication failure (opaque by design).
pub(crate) fn open(
    key: &SealingKey,
    binding: &RowBinding<'_>,
    nonce: &[u8],
    sealed: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    let ct_len = sealed.len().checked_sub(TAG_LEN)?;
    let (ct, tag) = sealed.split_at(ct_len);
    let tag = aes_gcm::Tag::try_from(tag).ok()?;
    let mut buf = Zeroizing::new(ct.to_vec());
    key.cipher()
        .decrypt_inout_detached(&nonce.into(), &binding.aad(), buf.as_mut_slice().into(), &tag)
        .ok()?;
    Some(buf)
}
