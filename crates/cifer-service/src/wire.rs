//! The JSON form of a signed decryption request, and strict field parsers.
//!
//! ```json
//! { "kind": "typed", "chainId": 31337, "verifyingContract": "0x…", "secretId": "7",
//!   "requester": "0x…", "blockNumber": 1042, "envelopeHash": "0x…",
//!   "responseKeyHash": "0x…", "nonce": "0x…" }
//! { "kind": "seed", "payload": "31337_7_0x7099…79c8_1042" }
//! ```
//!
//! Parsers return [`FieldError`], whose message names the field and the rule and never
//! echoes the value (it may be long, or someone's secret pasted in the wrong place).

use cifer_auth::{SeedPayload, TypedRequest};
use cifer_chain::alloy::primitives::U256;
use serde::{Deserialize, Serialize};

/// A malformed field: the message names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldError(pub String);

/// A request as it travels in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", rename_all_fields = "camelCase")]
pub enum RequestJson {
    /// PROTOCOL.md §4.2.
    Typed {
        /// Domain chain id.
        chain_id: u64,
        /// Domain verifying contract (the SecretsController).
        verifying_contract: String,
        /// Decimal or `0x` hex `uint256`.
        secret_id: String,
        /// The signer.
        requester: String,
        /// The block the request was made at.
        block_number: u64,
        /// `keccak256(header || encapsulation)`.
        envelope_hash: String,
        /// `keccak256(ek_r)`.
        response_key_hash: String,
        /// 32 random bytes.
        nonce: String,
    },
    /// PROTOCOL.md §4.1.
    Seed {
        /// `{chainId}_{secretId}_{signerAddress}_{blockNumber}`.
        payload: String,
    },
}

impl RequestJson {
    /// The JSON form of a typed request.
    #[must_use]
    pub fn typed(r: &TypedRequest) -> Self {
        Self::Typed {
            chain_id: r.chain_id,
            verifying_contract: hex0x(&r.verifying_contract),
            secret_id: U256::from_be_bytes(r.secret_id).to_string(),
            requester: hex0x(&r.requester),
            block_number: r.block_number,
            envelope_hash: hex0x(&r.envelope_hash),
            response_key_hash: hex0x(&r.response_key_hash),
            nonce: hex0x(&r.nonce),
        }
    }

    /// The JSON form of a seed payload.
    #[must_use]
    pub fn seed(p: &SeedPayload) -> Self {
        Self::Seed { payload: p.text().to_owned() }
    }

    /// Parses every field.
    ///
    /// # Errors
    /// [`FieldError`] naming the first bad field (prefixed `request.`).
    pub fn parse(&self) -> Result<UserRequest, FieldError> {
        match self {
            Self::Typed {
                chain_id,
                verifying_contract,
                secret_id,
                requester,
                block_number,
                envelope_hash,
                response_key_hash,
                nonce,
            } => Ok(UserRequest::Typed(TypedRequest {
                chain_id: *chain_id,
                verifying_contract: address("request.verifyingContract", verifying_contract)?,
                secret_id: uint256("request.secretId", secret_id)?,
                requester: address("request.requester", requester)?,
                block_number: *block_number,
                envelope_hash: fixed::<32>("request.envelopeHash", envelope_hash)?,
                response_key_hash: fixed::<32>("request.responseKeyHash", response_key_hash)?,
                nonce: fixed::<32>("request.nonce", nonce)?,
            })),
            Self::Seed { payload } => SeedPayload::parse(payload)
                .map(UserRequest::Seed)
                .map_err(|e| FieldError(format!("request.payload: {e}"))),
        }
    }
}

/// A parsed request of either form.
#[derive(Debug, Clone)]
pub enum UserRequest {
    /// EIP-712.
    Typed(TypedRequest),
    /// EIP-191 seed payload.
    Seed(SeedPayload),
}

impl UserRequest {
    /// The chain it is for.
    #[must_use]
    pub fn chain_id(&self) -> u64 {
        match self {
            Self::Typed(r) => r.chain_id,
            Self::Seed(p) => p.request().chain_id,
        }
    }

    /// The secret it opens.
    #[must_use]
    pub fn secret_id(&self) -> [u8; 32] {
        match self {
            Self::Typed(r) => r.secret_id,
            Self::Seed(p) => p.request().secret_id,
        }
    }

    /// Who claims to have signed it.
    #[must_use]
    pub fn signer(&self) -> [u8; 20] {
        match self {
            Self::Typed(r) => r.requester,
            Self::Seed(p) => p.request().signer,
        }
    }

    /// Its block.
    #[must_use]
    pub fn block_number(&self) -> u64 {
        match self {
            Self::Typed(r) => r.block_number,
            Self::Seed(p) => p.request().block_number,
        }
    }

    /// The digest the wallet signed (EIP-712 or EIP-191): the one
    /// [`crate::verify::verify_user`] reports once the signature checks out, computed
    /// without checking it.
    #[must_use]
    pub fn signing_digest(&self) -> [u8; 32] {
        use cifer_auth::SignedRequest as _;
        match self {
            Self::Typed(r) => r.signing_digest(),
            Self::Seed(p) => p.signing_digest(),
        }
    }

    /// The contract a typed request names; `None` for a seed payload.
    #[must_use]
    pub fn verifying_contract(&self) -> Option<[u8; 20]> {
        match self {
            Self::Typed(r) => Some(r.verifying_contract),
            Self::Seed(_) => None,
        }
    }
}

/// `0x` and lower-case hex.
#[must_use]
pub fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// `0x`-prefixed (or bare) hex of exactly `len` bytes when given, at most `max` bytes.
///
/// # Errors
/// [`FieldError`].
pub fn hex_bytes(
    name: &str,
    text: &str,
    len: Option<usize>,
    max: usize,
) -> Result<Vec<u8>, FieldError> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.len() > max.saturating_mul(2) {
        return Err(FieldError(format!("{name}: longer than {max} bytes")));
    }
    let bytes =
        hex::decode(digits).map_err(|_| FieldError(format!("{name}: expected 0x-prefixed hex")))?;
    match len {
        Some(n) if bytes.len() != n => {
            Err(FieldError(format!("{name}: expected {n} bytes, got {}", bytes.len())))
        }
        _ => Ok(bytes),
    }
}

/// Exactly `N` bytes of hex.
///
/// # Errors
/// [`FieldError`].
pub fn fixed<const N: usize>(name: &str, text: &str) -> Result<[u8; N], FieldError> {
    let v = hex_bytes(name, text, Some(N), N)?;
    let mut out = [0u8; N];
    out.copy_from_slice(&v);
    Ok(out)
}

/// `0x` and 40 hex digits.
///
/// # Errors
/// [`FieldError`].
pub fn address(name: &str, text: &str) -> Result<[u8; 20], FieldError> {
    cifer_auth::parse_address(text)
        .ok_or_else(|| FieldError(format!("{name}: expected 0x and 40 hex digits")))
}

/// A decimal or `0x` hex `uint256`, as 32 big-endian bytes.
///
/// # Errors
/// [`FieldError`].
pub fn uint256(name: &str, text: &str) -> Result<[u8; 32], FieldError> {
    if text.is_empty() || text.len() > 80 {
        return Err(FieldError(format!("{name}: expected a uint256")));
    }
    text.parse::<U256>()
        .map(|v| v.to_be_bytes::<32>())
        .map_err(|_| FieldError(format!("{name}: expected a decimal or 0x-hex uint256")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use super::*;

    #[test]
    fn typed_round_trip_and_field_errors() {
        let r = TypedRequest {
            chain_id: 31337,
            verifying_contract: [0x11; 20],
            secret_id: U256::from(7u64).to_be_bytes::<32>(),
            requester: [0x22; 20],
            block_number: 1042,
            envelope_hash: [0x33; 32],
            response_key_hash: [0x44; 32],
            nonce: [0x55; 32],
        };
        let json = serde_json::to_value(RequestJson::typed(&r)).unwrap();
        assert_eq!(json["kind"], "typed");
        assert_eq!(json["secretId"], "7");
        let back: RequestJson = serde_json::from_value(json.clone()).unwrap();
        let UserRequest::Typed(parsed) = back.parse().unwrap() else { panic!("typed") };
        assert_eq!(parsed, r);

        let mut bad = json;
        bad["nonce"] = "0x1234".into();
        let err = serde_json::from_value::<RequestJson>(bad).unwrap().parse().unwrap_err();
        assert_eq!(err.0, "request.nonce: expected 32 bytes, got 2");
    }

    #[test]
    fn seed_parses_and_errors_do_not_echo() {
        let payload = "31337_7_0x70997970c51812dc3a010c7d01b50e0d17dc79c8_1042";
        let j = RequestJson::Seed { payload: payload.into() };
        let u = j.parse().unwrap();
        assert_eq!((u.chain_id(), u.block_number()), (31337, 1042));
        assert_eq!(u.verifying_contract(), None);
        let err = RequestJson::Seed { payload: "hunter2-secret".into() }.parse().unwrap_err();
        assert!(err.0.starts_with("request.payload:") && !err.0.contains("hunter2"), "{err}");
        assert!(uint256("x", "").is_err() && uint256("x", "0x10").unwrap()[31] == 16);
        assert!(hex_bytes("x", &"ab".repeat(9), None, 8).unwrap_err().0.contains("longer"));
    }
}
