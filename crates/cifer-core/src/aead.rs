//! AES-256-GCM backends behind one interface.
//!
//! The RustCrypto `aes-gcm` backend is always built. The `aws-lc` feature adds
//! aws-lc-rs (much faster on x86-64 with AES-NI/VAES) and makes it the default; the
//! `aead_backends_agree` differential test proves the two byte-compatible.

use crate::error::{Error, Result};
use crate::header::TAG_LEN;

/// The 12-byte AES-GCM nonce.
pub type Nonce = [u8; 12];

/// Which AES-256-GCM implementation seals and opens chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// RustCrypto `aes-gcm`.
    RustCrypto,
    /// `aws-lc-rs` (feature `aws-lc`).
    #[cfg(feature = "aws-lc")]
    AwsLc,
}

impl Backend {
    /// The fastest backend compiled in.
    #[must_use]
    pub const fn fastest() -> Self {
        #[cfg(feature = "aws-lc")]
        {
            Backend::AwsLc
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            Backend::RustCrypto
        }
    }
}

/// A keyed AES-256-GCM instance.
pub(crate) enum Cipher {
    RustCrypto(Box<aes_gcm::Aes256Gcm>),
    #[cfg(feature = "aws-lc")]
    AwsLc(aws_lc_rs::aead::LessSafeKey),
}

impl Cipher {
    pub(crate) fn new(backend: Backend, key: &[u8; 32]) -> Result<Self> {
        match backend {
            Backend::RustCrypto => {
                use aes_gcm::KeyInit;
                let c =
                    aes_gcm::Aes256Gcm::new_from_slice(key).map_err(|_| Error::Authentication)?;
                Ok(Cipher::RustCrypto(Box::new(c)))
            }
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => {
                let unbound = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, key)
                    .map_err(|_| Error::Authentication)?;
                Ok(Cipher::AwsLc(aws_lc_rs::aead::LessSafeKey::new(unbound)))
            }
        }
    }

    /// Encrypts `chunk[..chunk.len() - 16]` in place and writes the tag into the last 16
    /// bytes. Associated data is empty (PROTOCOL.md §2.2).
    pub(crate) fn seal(&self, nonce: &Nonce, aad: &[u8], chunk: &mut [u8]) -> Result<()> {
        let pt_len = chunk.len().checked_sub(TAG_LEN).ok_or(Error::Truncated)?;
        let (pt, tag_out) = chunk.split_at_mut(pt_len);
        match self {
            Cipher::RustCrypto(c) => {
                use aes_gcm::aead::AeadInOut;
                let tag = c
                    .encrypt_inout_detached(nonce.into(), aad, pt.into())
                    .map_err(|_| Error::Authentication)?;
                tag_out.copy_from_slice(&tag);
            }
            #[cfg(feature = "aws-lc")]
            Cipher::AwsLc(k) => {
                let tag = k
                    .seal_in_place_separate_tag(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key(*nonce),
                        aws_lc_rs::aead::Aad::from(aad),
                        pt,
                    )
                    .map_err(|_| Error::Authentication)?;
                tag_out.copy_from_slice(tag.as_ref());
            }
        }
        Ok(())
    }

    /// Opens `ciphertext || tag` in place after a constant-time tag check and returns the
    /// plaintext length. Opaque on failure.
    pub(crate) fn open(&self, nonce: &Nonce, aad: &[u8], chunk: &mut [u8]) -> Result<usize> {
        let pt_len = chunk.len().checked_sub(TAG_LEN).ok_or(Error::Truncated)?;
        match self {
            Cipher::RustCrypto(c) => {
                use aes_gcm::aead::AeadInOut;
                let (ct, tag) = chunk.split_at_mut(pt_len);
                let tag = aes_gcm::Tag::try_from(&*tag).map_err(|_| Error::Authentication)?;
                c.decrypt_inout_detached(nonce.into(), aad, ct.into(), &tag)
                    .map_err(|_| Error::Authentication)?;
            }
            #[cfg(feature = "aws-lc")]
            Cipher::AwsLc(k) => {
                k.open_in_place(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(*nonce),
                    aws_lc_rs::aead::Aad::from(aad),
                    chunk,
                )
                .map_err(|_| Error::Authentication)?;
            }
        }
        Ok(pt_len)
    }
}

impl Cipher {
    /// Opens `ciphertext || tag` into `out` (`len - 16` bytes), out of place, after a
    /// constant-time tag check. Opaque on failure.
    pub(crate) fn open_into(&self, nonce: &Nonce, sealed: &[u8], out: &mut [u8]) -> Result<()> {
        let pt_len = sealed.len().checked_sub(TAG_LEN).ok_or(Error::Truncated)?;
        if out.len() != pt_len {
            return Err(Error::Truncated);
        }
        let (ct, tag) = sealed.split_at(pt_len);
        match self {
            Cipher::RustCrypto(c) => {
                use aes_gcm::aead::AeadInOut;
                let tag = aes_gcm::Tag::try_from(tag).map_err(|_| Error::Authentication)?;
                let buf =
                    aes_gcm::aead::inout::InOutBuf::new(ct, out).map_err(|_| Error::Truncated)?;
                c.decrypt_inout_detached(nonce.into(), &[], buf, &tag)
                    .map_err(|_| Error::Authentication)
            }
            #[cfg(feature = "aws-lc")]
            Cipher::AwsLc(k) => k
                .open_separate_gather(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(*nonce),
                    aws_lc_rs::aead::Aad::empty(),
                    ct,
                    tag,
                    out,
                )
                .map_err(|_| Error::Authentication),
        }
    }
}

/// AES-256-GCM with a given backend, for known-answer tests and the differential test.
/// `chunk` is `plaintext || 16 spare bytes` and becomes `ciphertext || tag`.
///
/// # Errors
/// [`Error::Truncated`] if `chunk` is shorter than a tag.
#[cfg(feature = "hazmat")]
pub fn hazmat_seal(
    backend: Backend,
    key: &[u8; 32],
    nonce: &Nonce,
    aad: &[u8],
    chunk: &mut [u8],
) -> Result<()> {
    Cipher::new(backend, key)?.seal(nonce, aad, chunk)
}

/// The inverse of [`hazmat_seal`]; returns the plaintext length.
///
/// # Errors
/// [`Error::Authentication`] if the tag does not verify.
#[cfg(feature = "hazmat")]
pub fn hazmat_open(
    backend: Backend,
    key: &[u8; 32],
    nonce: &Nonce,
    aad: &[u8],
    chunk: &mut [u8],
) -> Result<usize> {
    Cipher::new(backend, key)?.open(nonce, aad, chunk)
}

/// Every backend compiled in.
#[must_use]
pub fn all_backends() -> Vec<Backend> {
    vec![
        Backend::RustCrypto,
        #[cfg(feature = "aws-lc")]
        Backend::AwsLc,
    ]
}
