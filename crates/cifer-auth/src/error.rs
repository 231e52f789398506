//! The one error type of `cifer-auth`.

/// Everything that can go wrong while checking a decryption request.
///
/// Errors never echo attacker-controlled bytes (a malformed payload names the field and the
/// rule it breaks, not its text), and a signature that does not match says only that: it
/// does not report the address it happened to recover to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A seed payload (PROTOCOL.md §4.1) that is not
    /// `{chainId}_{secretId}_{signerAddress}_{blockNumber}` in canonical form.
    #[error("malformed seed payload: {field}: {reason}")]
    MalformedSeedPayload {
        /// The field at fault (`payload` when the shape itself is wrong).
        field: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A signature that is not the 65 bytes `r || s || v` (EOA signatures only).
    #[error("ECDSA signature must be 65 bytes, got {0}")]
    SignatureLength(usize),
    /// A `v` byte other than 27, 28, 0 or 1.
    #[error("invalid signature recovery byte v = {0}")]
    InvalidRecoveryByte(u8),
    /// `r` or `s` is zero or not below the group order `n`.
    #[error("signature scalar out of range")]
    ScalarOutOfRange,
    /// `s > n/2`: the malleable twin of a valid signature; only low-s is accepted (EIP-2).
    #[error("signature has high s (s > n/2)")]
    HighS,
    /// The signature does not verify, or no public key can be recovered from it.
    #[error("invalid signature")]
    InvalidSignature,
    /// The signature is valid but for another key than the claimed signer.
    #[error("signature does not match the claimed signer")]
    SignerMismatch,
    /// A public key that is not a valid SEC1 encoding of a secp256k1 point.
    #[error("invalid secp256k1 public key")]
    InvalidPublicKey,
    /// The contract signer's `isValidSignature` did not return the EIP-1271 magic value.
    #[error("EIP-1271 signer rejected the signature")]
    Eip1271Rejected,
    /// The request's block is older than `head - window` (PROTOCOL.md §4.3 step 3).
    #[error("request block {block} is stale (head {head}, window {window})")]
    Stale {
        /// The block named in the request.
        block: u64,
        /// The verifier's chain head.
        head: u64,
        /// The freshness window `W`, in blocks.
        window: u64,
    },
    /// The request's block is above the verifier's chain head (PROTOCOL.md §4.3 step 3).
    #[error("request block {block} is ahead of the head {head}")]
    FromTheFuture {
        /// The block named in the request.
        block: u64,
        /// The verifier's chain head.
        head: u64,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
