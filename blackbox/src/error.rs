//! The API's one error type: a stable code, an HTTP status and a message that never holds a
//! secret.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Stable error codes of the black box API (`blackbox/openapi.json`). The string form never
/// changes once released; clients match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Malformed JSON, a missing field, a wrong length or encoding.
    BadRequest,
    /// The body is larger than allowed.
    PayloadTooLarge,
    /// The chain is not served, or the request names another contract.
    UnknownChain,
    /// The user signature does not verify.
    BadSignature,
    /// The request's block is older than `head − W`.
    Stale,
    /// The request's block is above the head.
    Future,
    /// No trusted chain head (unreachable, lagging or disagreeing RPCs) or a query failed.
    ChainUnavailable,
    /// The signer is not the owner or a current delegate.
    NotAuthorized,
    /// This request was already accepted once (by any replica).
    Replayed,
    /// The signer exceeded its rate limit.
    RateLimited,
    /// No such secret on chain (or its key is not known yet).
    UnknownSecret,
    /// The secret is shredded.
    SecretInactive,
    /// The secret's or envelope's suite is not ML-KEM-768.
    UnsupportedSuite,
    /// The cluster is unknown or not active.
    ClusterInactive,
    /// The envelope prefix or response key is not the one the request names.
    EnvelopeMismatch,
    /// A node's served key is not the one registered for it.
    NodeKeyMismatch,
    /// Fewer than the threshold of nodes gave a valid fragment in time; the message names
    /// the nodes that lied and those that did not answer.
    NotEnoughFragments,
    /// Too few valid fragments because some node(s) lied (named in `nodes.liars`), the
    /// fragments combined to a key other than the registered one, or the commitments are
    /// not authentic: never a wrong key, always this error.
    Integrity,
    /// Fewer than the threshold of nodes stored their fragment.
    DeliveryIncomplete,
    /// Thin mode is not enabled on this black box.
    ThinModeDisabled,
    /// No such route.
    NotFound,
    /// The route exists but not with this method (the `Allow` header lists the ones it has).
    MethodNotAllowed,
    /// Anything else; details are only in the log.
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
        Self::Replayed,
        Self::RateLimited,
        Self::UnknownSecret,
        Self::SecretInactive,
        Self::UnsupportedSuite,
        Self::ClusterInactive,
        Self::EnvelopeMismatch,
        Self::NodeKeyMismatch,
        Self::NotEnoughFragments,
        Self::Integrity,
        Self::DeliveryIncomplete,
        Self::ThinModeDisabled,
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
            Self::Replayed => "replayed",
            Self::RateLimited => "rate_limited",
            Self::UnknownSecret => "unknown_secret",
            Self::SecretInactive => "secret_inactive",
            Self::UnsupportedSuite => "unsupported_suite",
            Self::ClusterInactive => "cluster_inactive",
            Self::EnvelopeMismatch => "envelope_mismatch",
            Self::NodeKeyMismatch => "node_key_mismatch",
            Self::NotEnoughFragments => "not_enough_fragments",
            Self::Integrity => "integrity",
            Self::DeliveryIncomplete => "delivery_incomplete",
            Self::ThinModeDisabled => "thin_mode_disabled",
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
            Self::NotAuthorized | Self::ThinModeDisabled => StatusCode::FORBIDDEN,
            Self::UnknownSecret | Self::NotFound => StatusCode::NOT_FOUND,
            Self::Replayed | Self::ClusterInactive => StatusCode::CONFLICT,
            Self::SecretInactive => StatusCode::GONE,
            Self::Stale | Self::Future | Self::UnsupportedSuite | Self::EnvelopeMismatch => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::NodeKeyMismatch | Self::Integrity | Self::DeliveryIncomplete => {
                StatusCode::BAD_GATEWAY
            }
            Self::ChainUnavailable | Self::NotEnoughFragments => StatusCode::SERVICE_UNAVAILABLE,
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

/// An error answered as `{ "error": { "code", "message" } }`, plus `nodes` naming
/// culprits when fragments were missing or bad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The stable code.
    pub code: ErrorCode,
    /// A human-readable explanation, safe to show.
    pub message: String,
    /// `{ "liars": [ids], "unavailable": [ids] }` for threshold failures.
    pub nodes: Option<serde_json::Value>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), nodes: None }
    }

    /// `bad_request` with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// An internal error: `detail` goes to the log (it must hold no secret), the client
    /// gets a generic 500.
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
        let mut error = serde_json::json!({ "code": self.code.as_str(), "message": self.message });
        if let Some(nodes) = self.nodes {
            error["nodes"] = nodes;
        }
        (self.code.status(), Json(serde_json::json!({ "error": error }))).into_response()
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
        assert_eq!(ErrorCode::NotEnoughFragments.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ErrorCode::Integrity.status(), StatusCode::BAD_GATEWAY);
    }
}
