//! The API's one error type: a stable code, an HTTP status and a message that never holds a
//! secret.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Stable error codes of the HTTP API (`docs/services.md`, `openapi.json`). The string
/// form never changes once released; clients match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Malformed JSON, a missing field, a wrong length or encoding.
    BadRequest,
    /// The body is larger than `max_body_bytes`.
    PayloadTooLarge,
    /// The chain is not served, or the request names another contract.
    UnknownChain,
    /// The user signature does not verify (malformed, high-s, wrong signer, EIP-1271
    /// rejection).
    BadSignature,
    /// The request's block is older than `head − W`.
    Stale,
    /// The request's block is above the node's head.
    Future,
    /// The node's chain view has no trusted head (unreachable, lagging or disagreeing RPCs)
    /// or a chain query failed.
    ChainUnavailable,
    /// The signer is not the owner or a current delegate of the secret.
    NotAuthorized,
    /// The black box is not registered, or its signer did not sign this request's response
    /// key (or the bundle).
    UnknownBlackBox,
    /// This request was already accepted once.
    Replayed,
    /// The signer exceeded its rate limit.
    RateLimited,
    /// No such secret on chain.
    UnknownSecret,
    /// The secret is shredded.
    SecretInactive,
    /// The secret's public-key suite is not ML-KEM-768 (suite 1).
    UnsupportedSuite,
    /// The bundle's key hash is not the secret's on-chain public-key hash.
    KeyMismatch,
    /// The bundle's cluster is not the secret's, or the node is not a member.
    ClusterMismatch,
    /// This node's registered key is not the key it holds (misconfiguration).
    NodeKeyMismatch,
    /// The bundle does not open, or its fragment does not verify or is not this node's.
    InvalidBundle,
    /// A different fragment is already stored for this secret.
    Conflict,
    /// No fragment is stored for this secret.
    NoFragment,
    /// No such route.
    NotFound,
    /// The route exists but not with this method (the `Allow` header lists the ones it has).
    MethodNotAllowed,
    /// Anything else; details are only in the node's log.
    Internal,
}

impl ErrorCode {
    /// Every code, in a fixed order (metrics).
    pub const ALL: [Self; 23] = [
        Self::BadRequest,
        Self::PayloadTooLarge,
        Self::UnknownChain,
        Self::BadSignature,
        Self::Stale,
        Self::Future,
        Self::ChainUnavailable,
        Self::NotAuthorized,
        Self::UnknownBlackBox,
        Self::Replayed,
        Self::RateLimited,
        Self::UnknownSecret,
        Self::SecretInactive,
        Self::UnsupportedSuite,
        Self::KeyMismatch,
        Self::ClusterMismatch,
        Self::NodeKeyMismatch,
        Self::InvalidBundle,
        Self::Conflict,
        Self::NoFragment,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Internal,
    ];

    /// The stable string.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnknownChain => "unknown_chain",
            Self::BadSignature => "bad_signature",
            Self::Stale => "stale",
            Self::Future => "future",
            Self::ChainUnavailable => "chain_unavailable",
            Self::NotAuthorized => "not_authorized",
            Self::UnknownBlackBox => "unknown_black_box",
            Self::Replayed => "replayed",
            Self::RateLimited => "rate_limited",
            Self::UnknownSecret => "unknown_secret",
            Self::SecretInactive => "secret_inactive",
            Self::UnsupportedSuite => "unsupported_suite",
            Self::KeyMismatch => "key_mismatch",
            Self::ClusterMismatch => "cluster_mismatch",
            Self::NodeKeyMismatch => "node_key_mismatch",
            Self::InvalidBundle => "invalid_bundle",
            Self::Conflict => "conflict",
            Self::NoFragment => "no_fragment",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status answered with this code.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::BadRequest | Self::UnknownChain => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadSignature => StatusCode::UNAUTHORIZED,
            Self::NotAuthorized | Self::UnknownBlackBox => StatusCode::FORBIDDEN,
            Self::UnknownSecret | Self::NoFragment | Self::NotFound => StatusCode::NOT_FOUND,
            Self::Replayed | Self::Conflict | Self::KeyMismatch | Self::ClusterMismatch => {
                StatusCode::CONFLICT
            }
            Self::SecretInactive => StatusCode::GONE,
            Self::Stale | Self::Future | Self::UnsupportedSuite | Self::InvalidBundle => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::ChainUnavailable | Self::NodeKeyMismatch => StatusCode::SERVICE_UNAVAILABLE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Position in [`ALL`](Self::ALL).
    #[must_use]
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|c| *c == self).unwrap_or(Self::ALL.len() - 1)
    }
}

/// An error answered as `{ "error": { "code": "...", "message": "..." } }`.
///
/// The message is written by this crate and never contains request bytes, key material,
/// fragments or URLs with credentials. [`ApiError::internal`] logs its detail and answers a
/// generic message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The stable code.
    pub code: ErrorCode,
    /// A human-readable explanation, safe to show.
    pub message: String,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// `bad_request` with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// An internal error: `detail` goes to the log (it must hold no secret: store and chain
    /// errors qualify), the client gets a generic 500.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<cifer_service::http::BodyError> for ApiError {
    fn from(e: cifer_service::http::BodyError) -> Self {
        match e {
            cifer_service::http::BodyError::TooLarge => {
                Self::new(ErrorCode::PayloadTooLarge, e.to_string())
            }
            cifer_service::http::BodyError::Invalid(message) => Self::bad_request(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code.as_str(), "message": self.message }
        });
        (self.code.status(), Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_indexed() {
        let mut seen = std::collections::HashSet::new();
        for (i, c) in ErrorCode::ALL.iter().enumerate() {
            assert!(seen.insert(c.as_str()));
            assert_eq!(c.index(), i);
        }
        assert_eq!(ErrorCode::Replayed.status(), StatusCode::CONFLICT);
        assert_eq!(ErrorCode::ChainUnavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
