//! The crate's one error type and the typed reasons the view is unavailable.

use std::time::Duration;

/// Why the view has no trusted head right now. Every reason means "deny".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// No poll has succeeded yet.
    #[error("no head yet: the first poll has not succeeded")]
    NotSynced,
    /// An RPC did not answer in time, failed, or returned no block.
    #[error("rpc {url} unreachable: {detail}")]
    Unreachable {
        /// The RPC, redacted to scheme, host and port (URLs often carry API keys).
        url: String,
        /// What went wrong (transport error or timeout).
        detail: String,
    },
    /// The RPCs report different blocks (hash, or timestamp under the same hash) at `number`,
    /// the lowest of their heads.
    #[error("rpcs disagree on block {number}")]
    Disagree {
        /// The block number they disagree on.
        number: u64,
    },
    /// The agreed head is older than `max_lag`.
    #[error("head is {age:?} old, more than the allowed lag")]
    Lagging {
        /// Age of the head's timestamp.
        age: Duration,
    },
    /// An RPC serves another chain than configured.
    #[error("rpc {url} serves chain {actual}, expected {expected}")]
    WrongChainId {
        /// The RPC, redacted.
        url: String,
        /// The configured chain id.
        expected: u64,
        /// The chain id it reported.
        actual: u64,
    },
    /// The agreed head fell below a head already trusted (a reorg to a shorter chain, or an
    /// RPC that restarted behind); answering there could undo a revocation already seen.
    #[error("agreed head {agreed} is behind the trusted head {trusted}")]
    Behind {
        /// The highest head trusted so far.
        trusted: u64,
        /// The head the RPCs agree on now.
        agreed: u64,
    },
    /// The last successful poll is older than `2 × poll_interval + rpc_timeout`.
    #[error("last successful poll was {since:?} ago")]
    Stale {
        /// Time since the last successful poll.
        since: Duration,
    },
    /// The background task has stopped (it panicked or the runtime is shutting down).
    #[error("the chain view's background task has stopped")]
    Stopped,
}

impl Unavailable {
    /// Whether waiting may make the view available again (everything but a wrong chain id
    /// and a stopped task).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::NotSynced
            | Self::Unreachable { .. }
            | Self::Disagree { .. }
            | Self::Lagging { .. }
            | Self::Behind { .. }
            | Self::Stale { .. } => true,
            Self::WrongChainId { .. } | Self::Stopped => false,
        }
    }
}

/// Errors of the chain view. A caller making a security decision denies on any of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The configuration is unusable.
    #[error("invalid chain config: {0}")]
    Config(String),
    /// The view has no trusted head (see the reason).
    #[error("chain view unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: Unavailable,
    },
    /// Every RPC failed to answer a query at the trusted head (transport error, timeout, or
    /// the block is no longer known).
    #[error("query failed on every rpc; last: {url}: {detail}")]
    Rpc {
        /// The last RPC tried, redacted.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// A contract call that never reverts did revert (wrong address or contract).
    #[error("call to {to} reverted")]
    Reverted {
        /// The called contract.
        to: alloy::primitives::Address,
    },
    /// A contract returned something the bindings cannot decode, or an out-of-range enum.
    #[error("cannot decode {what}: {detail}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Details.
        detail: String,
    },
}

impl ChainError {
    /// Whether retrying later may succeed (transient unavailability and RPC failures).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable { reason } => reason.is_transient(),
            Self::Rpc { .. } => true,
            Self::Config(_) | Self::Reverted { .. } | Self::Decode { .. } => false,
        }
    }
}

impl From<Unavailable> for ChainError {
    fn from(reason: Unavailable) -> Self {
        Self::Unavailable { reason }
    }
}

/// Result alias of this crate.
pub type Result<T, E = ChainError> = std::result::Result<T, E>;
