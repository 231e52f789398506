//! # cifer-blackbox
//!
//! The orchestrator of PROTOCOL.md suite 0x01 (`docs/services.md`, issue 5): it creates
//! secrets (fresh seed, verifiable 3-of-5 split, fragments sealed to the nodes' registered
//! keys, seed wiped), and serves decryptions: it checks a wallet-signed request against its
//! own chain view exactly as every shard node does, asks the whole cluster at once with a
//! fresh response key it signs, accepts the first three fragments that verify against the
//! authenticated commitments (naming any node that lied), rebuilds the seed only long
//! enough to derive one envelope's stream key, and returns that key sealed to the
//! requester's response key. It never sees the data.
//!
//! - [`gather`]: fan-out, first-`t`-valid acceptance with blame, checked rebuild;
//! - [`api`]: the HTTP API; [`error`]: its one error type with stable codes;
//! - [`config`], [`server`], [`cache`] (key cache policy, off by default), [`nodes`]
//!   (the HTTP client of shard nodes), [`release`] (per-node queues batching release
//!   requests under one signature), [`metrics`].
//!
//! **Invariants:** the seed exists only inside [`rebuild`]'s closure (and, if the key
//! cache is enabled, in the cache, wiped on revocation, transfer or shred); commitments are
//! trusted only when the bundle signature over them (and over the on-chain key hash)
//! recovers to a trusted registered black box; a rebuilt key that does not hash to the
//! on-chain key hash is an integrity error, never an answer; replay set, rate counters and
//! audit log live in the shared database, so replicas act as one.

pub mod api;
pub mod cache;
pub mod config;
pub mod error;
pub mod gather;
pub mod metrics;
pub mod nodes;
pub mod release;
pub mod server;

pub use gather::{
    GatherError, Gathered, NodeFailure, NodeId, Rebuilt, authenticate_commitments, gather,
    gather_and_rebuild, gather_authenticated, rebuild,
};
