//! PROTOCOL.md §4.3 step 1: does the signature recover to the claimed signer?
//!
//! An ECDSA signature by the claimed signer (low-s only) is accepted as it is: nobody
//! holds a key for a contract address, and an EIP-7702 account's key is its owner's.
//! Otherwise, if the signer has code, its EIP-1271 `isValidSignature` decides, at the
//! head the check pinned; without code the request is refused.

use cifer_auth::{SignedRequest, SignerKind, Verification, verify, verify_eoa};
use cifer_chain::alloy::primitives::{Address, B256, Bytes};
use cifer_chain::{ChainError, ChainView, Pinned};

use crate::wire::UserRequest;

/// Why a signature was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature does not verify (malformed, high-s, another signer, the EIP-1271
    /// wallet said no).
    #[error("signature: {0}")]
    BadSignature(String),
    /// The chain view could not answer (the caller denies with its own code).
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// A verified signer.
#[derive(Debug)]
pub struct Verified {
    /// The signer.
    pub signer: [u8; 20],
    /// The digest it signed (the replay key is built from it).
    pub digest: [u8; 32],
    /// The head the EIP-1271 check (or the code lookup) ran at, if any: the caller's
    /// later checks should use the same head.
    pub pinned: Option<Pinned>,
}

/// Checks `signature` over `request`, consulting `view` only when the ECDSA check fails.
///
/// # Errors
/// [`VerifyError`].
pub async fn verify_user(
    request: &UserRequest,
    signature: &[u8],
    view: &ChainView,
) -> Result<Verified, VerifyError> {
    match request {
        UserRequest::Typed(r) => check(*r, signature, view).await,
        UserRequest::Seed(p) => check(p.clone(), signature, view).await,
    }
}

async fn check<R: SignedRequest + Clone>(
    request: R,
    signature: &[u8],
    view: &ChainView,
) -> Result<Verified, VerifyError> {
    let ecdsa_error = match verify_eoa(request.clone(), signature) {
        Ok(v) => return Ok(Verified { signer: v.signer(), digest: v.digest(), pinned: None }),
        Err(e) => e,
    };
    let at = view.pinned()?;
    let signer = Address::from(request.claimed_signer());
    if !at.has_code(signer).await? {
        return Err(VerifyError::BadSignature(ecdsa_error.to_string()));
    }
    let Ok(Verification::NeedsEip1271(check)) = verify(request, signature, SignerKind::Contract)
    else {
        return Err(VerifyError::BadSignature("EIP-1271 check unavailable".into()));
    };
    let valid = at
        .is_valid_signature_1271(
            signer,
            B256::from(check.digest()),
            Bytes::copy_from_slice(check.signature()),
        )
        .await?;
    if !valid {
        return Err(VerifyError::BadSignature("the EIP-1271 wallet rejected it".into()));
    }
    let verified = check
        .confirm(cifer_auth::EIP1271_MAGIC_VALUE)
        .map_err(|e| VerifyError::BadSignature(e.to_string()))?;
    Ok(Verified { signer: verified.signer(), digest: verified.digest(), pinned: Some(at) })
}
