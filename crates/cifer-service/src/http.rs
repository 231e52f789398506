//! Limits every service applies to its HTTP API: a deadline per request and a cap on
//! requests in flight. Past either, the answer is a 503 with a stable code (`timeout`,
//! `overloaded`) in the services' error shape, never a hung connection or an unbounded
//! queue.
//!
//! A request cut off by the deadline is dropped where it stands. Everything a service does
//! before answering is either without side effect or durable and idempotent from the
//! client's view (a replay claim that committed makes a retry of the *same* signed request
//! `replayed`; the client signs a new one), so cancellation never releases anything twice.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

/// The limits (TOML keys of both services).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Deadline of one request, in milliseconds.
    #[serde(default = "default_timeout")]
    pub request_timeout_ms: u64,
    /// Requests handled at once; more are refused with `overloaded`.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
}

const fn default_timeout() -> u64 {
    10_000
}
const fn default_in_flight() -> usize {
    1024
}

impl Default for Limits {
    fn default() -> Self {
        Self { request_timeout_ms: default_timeout(), max_in_flight: default_in_flight() }
    }
}

/// Why a request body was not accepted; each service maps it to its own error codes
/// (`payload_too_large`, `bad_request`). Messages never quote the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Larger than the router's body limit.
    #[error("request body is too large")]
    TooLarge,
    /// The body could not be read, or is not JSON of the expected shape.
    #[error("{0}")]
    Invalid(String),
}

/// Reads a request body (as extracted by axum, with its size limit) as JSON of type `T`.
///
/// # Errors
/// [`BodyError::TooLarge`], or [`BodyError::Invalid`] saying whether the JSON is
/// malformed or does not match the schema, and where.
pub fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, BodyError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            BodyError::TooLarge
        } else {
            BodyError::Invalid("cannot read the request body".into())
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => "malformed JSON",
            Category::Data => "JSON does not match the schema (missing, unknown or mistyped field)",
        };
        BodyError::Invalid(format!("{what} at line {} column {}", e.line(), e.column()))
    })
}

struct Guard {
    permits: Arc<Semaphore>,
    timeout: Duration,
}

/// `router` with the deadline and the in-flight cap applied to every route.
pub fn with_limits<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    limits: Limits,
) -> Router<S> {
    let guard = Arc::new(Guard {
        permits: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
        timeout: Duration::from_millis(limits.request_timeout_ms.max(1)),
    });
    router.layer(from_fn_with_state(guard, guard_request))
}

async fn guard_request(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let Ok(_permit) = Arc::clone(&guard.permits).try_acquire_owned() else {
        return refuse("overloaded", "too many requests in flight; retry later");
    };
    match tokio::time::timeout(guard.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => refuse("timeout", "the request did not complete within the deadline"),
    }
}

fn refuse(code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    async fn call(app: &Router, path: &str) -> (u16, serde_json::Value) {
        let response =
            app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    #[tokio::test]
    async fn deadline_and_in_flight_cap() {
        let slow = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }),
            )
            .route("/fast", get(|| async { "ok" }));
        let app = with_limits(slow, Limits { request_timeout_ms: 50, max_in_flight: 1 });
        let (status, body) = call(&app, "/slow").await;
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("timeout")));
        assert_eq!(call(&app, "/fast").await.0, 200);

        let app = with_limits(
            Router::new().route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    "done"
                }),
            ),
            Limits { request_timeout_ms: 5_000, max_in_flight: 1 },
        );
        let first = tokio::spawn({
            let app = app.clone();
            async move { call(&app, "/slow").await.0 }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (status, body) = call(&app, "/slow").await;
        assert_eq!((status, body["error"]["code"].as_str()), (503, Some("overloaded")));
        assert_eq!(first.await.unwrap(), 200);
    }
}
