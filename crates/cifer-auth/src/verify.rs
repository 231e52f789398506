//! Who signed a request (PROTOCOL.md §4.3 step 1).
//!
//! An EOA's signature is checked here, completely: low-s ECDSA, recovery, and a
//! constant-time comparison of the recovered address with the claimed signer. A contract
//! signer (a multisig, a smart account) cannot be checked without the chain: [`verify`]
//! then returns [`Verification::NeedsEip1271`] with the digest and signature, and the
//! service calls `isValidSignature(digest, signature)` on the signer at the request's block
//! and hands the returned `bytes4` to [`Eip1271Check::confirm`]. A call that reverts, runs
//! out of gas or cannot be made is a denial: never call `confirm` then.
//!
//! A [`Verified`] can only be built by this module, so holding one means the signature was
//! checked for that request's digest.

use subtle::ConstantTimeEq;

use crate::ecdsa::Signature;
use crate::seed::{SeedPayload, SeedRequest};
use crate::typed::TypedRequest;
use crate::{Address, B256, Error, Result, replay_key};

/// `bytes4(keccak256("isValidSignature(bytes32,bytes)"))`, what an EIP-1271 signer returns
/// for a valid signature.
pub const EIP1271_MAGIC_VALUE: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];

mod sealed {
    pub trait Sealed {}
}

/// A request that names its signer and the digest it is signed over.
///
/// Sealed: only this crate's request types compute digests, so a [`Verified`] always
/// carries a digest of the protocol's encoding.
pub trait SignedRequest: sealed::Sealed {
    /// The address that claims to have signed.
    fn claimed_signer(&self) -> Address;
    /// The digest the signature is over.
    fn signing_digest(&self) -> B256;
}

impl sealed::Sealed for SeedPayload {}
impl SignedRequest for SeedPayload {
    fn claimed_signer(&self) -> Address {
        self.request().signer
    }
    fn signing_digest(&self) -> B256 {
        self.digest()
    }
}

/// The canonical (lower-case address) payload; use [`SeedPayload`] for received text.
impl sealed::Sealed for SeedRequest {}
impl SignedRequest for SeedRequest {
    fn claimed_signer(&self) -> Address {
        self.signer
    }
    fn signing_digest(&self) -> B256 {
        self.digest()
    }
}

impl sealed::Sealed for TypedRequest {}
impl SignedRequest for TypedRequest {
    fn claimed_signer(&self) -> Address {
        self.requester
    }
    fn signing_digest(&self) -> B256 {
        self.digest()
    }
}

/// Whether the claimed signer is an externally owned account or has code.
///
/// The service decides with `eth_getCode` at the request's block: empty code is
/// [`SignerKind::Eoa`]. (An EIP-7702 delegated EOA has code; whether to check it with
/// ECDSA or EIP-1271 is the service's policy: [`verify_eoa`] does the former.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignerKind {
    /// No code: the signature must be a low-s ECDSA signature by the signer's key.
    Eoa,
    /// Code: the signer's EIP-1271 `isValidSignature` decides.
    Contract,
}

/// A request whose signature was checked against its claimed signer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified<R> {
    request: R,
    signer: Address,
    digest: B256,
}

impl<R> Verified<R> {
    /// The request.
    pub fn request(&self) -> &R {
        &self.request
    }

    /// The signer, equal to the request's claimed signer.
    pub fn signer(&self) -> Address {
        self.signer
    }

    /// The digest that was signed.
    pub fn digest(&self) -> B256 {
        self.digest
    }

    /// The key under which to remember this request (PROTOCOL.md §4.3 step 5).
    pub fn replay_key(&self) -> B256 {
        replay_key(&self.signer, &self.digest)
    }

    /// The request, consuming the proof of verification.
    pub fn into_request(self) -> R {
        self.request
    }
}

/// What [`verify`] concludes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verification<R> {
    /// An EOA signature, checked.
    Verified(Verified<R>),
    /// A contract signer: the service must make the EIP-1271 call.
    NeedsEip1271(Eip1271Check<R>),
}

/// An EIP-1271 check the service must perform: call
/// `isValidSignature(digest(), signature())` on `signer()` at the request's block.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Eip1271Check<R> {
    request: R,
    signer: Address,
    digest: B256,
    signature: Vec<u8>,
}

impl<R> Eip1271Check<R> {
    /// The contract to call.
    pub fn signer(&self) -> Address {
        self.signer
    }

    /// The `hash` argument.
    pub fn digest(&self) -> B256 {
        self.digest
    }

    /// The `signature` argument, passed through unchanged.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The request.
    pub fn request(&self) -> &R {
        &self.request
    }

    /// Completes the check with the `bytes4` the call returned.
    ///
    /// # Errors
    /// [`Error::Eip1271Rejected`] unless it is [`EIP1271_MAGIC_VALUE`].
    pub fn confirm(self, returned: [u8; 4]) -> Result<Verified<R>> {
        if returned != EIP1271_MAGIC_VALUE {
            return Err(Error::Eip1271Rejected);
        }
        Ok(Verified { request: self.request, signer: self.signer, digest: self.digest })
    }
}

/// Checks `signature` (65 bytes `r || s || v`) as the claimed signer's ECDSA signature
/// over the request's digest.
///
/// # Errors
/// [`Error::SignatureLength`], [`Error::InvalidRecoveryByte`], [`Error::ScalarOutOfRange`],
/// [`Error::HighS`], [`Error::InvalidSignature`], [`Error::SignerMismatch`].
pub fn verify_eoa<R: SignedRequest>(request: R, signature: &[u8]) -> Result<Verified<R>> {
    let signature = Signature::from_bytes(signature)?;
    let digest = request.signing_digest();
    let claimed = request.claimed_signer();
    let recovered = signature.recover_address(&digest)?;
    if !bool::from(recovered.ct_eq(&claimed)) {
        return Err(Error::SignerMismatch);
    }
    Ok(Verified { request, signer: claimed, digest })
}

/// Checks a request's signature for a signer of the given kind: completely for an EOA,
/// and for a contract returns what the service must ask the chain.
///
/// # Errors
/// For [`SignerKind::Eoa`], as [`verify_eoa`]. Never for [`SignerKind::Contract`].
pub fn verify<R: SignedRequest>(
    request: R,
    signature: &[u8],
    kind: SignerKind,
) -> Result<Verification<R>> {
    match kind {
        SignerKind::Eoa => verify_eoa(request, signature).map(Verification::Verified),
        SignerKind::Contract => Ok(Verification::NeedsEip1271(Eip1271Check {
            signer: request.claimed_signer(),
            digest: request.signing_digest(),
            signature: signature.to_vec(),
            request,
        })),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use super::*;
    use k256::ecdsa::SigningKey;

    fn sign(key: &SigningKey, digest: &B256) -> [u8; 65] {
        let (sig, id) = key.sign_prehash_recoverable(digest);
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&sig.to_bytes());
        out[64] = 27 + u8::from(id.is_y_odd());
        out
    }

    fn setup() -> (SigningKey, TypedRequest) {
        let key = SigningKey::from_slice(&[0x11; 32]).unwrap();
        let sec1 = key.verifying_key().to_sec1_point(false);
        let requester = crate::ecdsa::address_from_public_key(sec1.as_bytes()).unwrap();
        let request = TypedRequest {
            chain_id: 31337,
            verifying_contract: [0xcc; 20],
            secret_id: [0; 32],
            requester,
            block_number: 1042,
            envelope_hash: [1; 32],
            response_key_hash: [2; 32],
            nonce: [3; 32],
        };
        (key, request)
    }

    #[test]
    fn eoa() {
        let (key, request) = setup();
        let sig = sign(&key, &request.digest());
        let verified = verify_eoa(request, &sig).unwrap();
        assert_eq!(verified.signer(), request.requester);
        assert_eq!(verified.digest(), request.digest());
        assert_eq!(*verified.request(), request);
        assert_eq!(verified.replay_key(), replay_key(&request.requester, &request.digest()));

        // v as 0/1 is accepted too.
        let mut sig01 = sig;
        sig01[64] -= 27;
        assert!(verify_eoa(request, &sig01).is_ok());

        // Another request with the same signature: recovers someone else.
        let other = TypedRequest { nonce: [4; 32], ..request };
        assert_eq!(verify_eoa(other, &sig), Err(Error::SignerMismatch));
    }

    #[test]
    fn contract_defers_to_eip1271() {
        let (_, request) = setup();
        let blob = vec![0xab; 200];
        let Verification::NeedsEip1271(check) =
            verify(request, &blob, SignerKind::Contract).unwrap()
        else {
            panic!("a contract signer is never verified locally");
        };
        assert_eq!(check.digest(), request.digest());
        assert_eq!(check.signature(), &blob[..]);
        assert_eq!(check.signer(), request.requester);
        assert_eq!(check.clone().confirm([0xff; 4]), Err(Error::Eip1271Rejected));
        assert_eq!(check.clone().confirm([0; 4]), Err(Error::Eip1271Rejected));
        let verified = check.confirm(EIP1271_MAGIC_VALUE).unwrap();
        assert_eq!(verified.signer(), request.requester);
        assert_eq!(verified.digest(), request.digest());
    }

    #[test]
    fn eoa_kind_goes_through_ecdsa() {
        let (key, request) = setup();
        let sig = sign(&key, &request.digest());
        assert!(matches!(verify(request, &sig, SignerKind::Eoa), Ok(Verification::Verified(_))));
        assert_eq!(verify(request, &[0u8; 64], SignerKind::Eoa), Err(Error::SignatureLength(64)));
    }

    #[test]
    fn magic_value_is_the_selector() {
        let hash = crate::keccak256(b"isValidSignature(bytes32,bytes)");
        assert_eq!(hash[..4], EIP1271_MAGIC_VALUE);
    }
}
