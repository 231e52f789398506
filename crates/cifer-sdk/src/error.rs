//! The SDK's one error type: each variant says what went wrong and what to do.

/// Errors of the SDK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration or endpoints file is missing or malformed.
    #[error("configuration: {0}")]
    Config(String),
    /// The wallet could not be loaded (wrong password, malformed key or phrase).
    #[error("wallet: {0}")]
    Wallet(String),
    /// The chain RPC could not be reached or answered nonsense. Check the RPC URL.
    #[error("chain RPC: {0}")]
    Rpc(String),
    /// A transaction reverted or was refused; `reason` names the contract error if known.
    #[error("transaction failed: {reason}")]
    Transaction {
        /// The decoded revert reason or the RPC's message.
        reason: String,
    },
    /// The black box refused, with its stable error code (see its OpenAPI document).
    #[error("black box refused ({code}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Stable code, e.g. `not_authorized`, `replayed`, `not_enough_fragments`.
        code: String,
        /// Its explanation.
        message: String,
    },
    /// The black box could not be reached. Check the URL and that it runs.
    #[error("black box unreachable: {0}")]
    Unreachable(String),
    /// The key the black box served does not hash to the key registered on chain: do not
    /// encrypt to it.
    #[error("the served public key does not match the on-chain hash of secret {0}")]
    KeyMismatch(String),
    /// No such secret on chain.
    #[error("secret {0} does not exist on this chain")]
    UnknownSecret(String),
    /// The envelope is malformed or does not authenticate (opaque on purpose).
    #[error(transparent)]
    Crypto(#[from] cifer_core::Error),
    /// A reply of the black box does not open with this request's key.
    #[error("the black box's reply does not open: {0}")]
    BadReply(String),
    /// Reading or writing data.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Waiting for the services to see a new block or secret took too long.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl Error {
    /// The black box's stable code, if this is a refusal.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}
