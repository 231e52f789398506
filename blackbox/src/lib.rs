//! # cifer-blackbox
//!
//! The orchestrator of PROTOCOL.md suite 0x01 (`docs/services.md`). This crate holds the
//! part that decides what the black box accepts: [`gather`] fans a release out to every
//! node of the cluster at once, accepts the first `t` fragments that verify against the
//! bundle's commitments, names every node that answered with something that does not,
//! and gives up with a typed error at a deadline; [`rebuild`] interpolates the seed and
//! refuses it unless its encapsulation key hashes to the key registered on chain — so a
//! coalition of lying nodes produces an error, never a wrong key. The HTTP service
//! around it is still to come.
//!
//! **Invariants:** the seed exists only inside [`rebuild`]'s caller-supplied closure and
//! is wiped when it returns; commitments are trusted only when the bundle signature over
//! them (and over the on-chain key hash) recovers to a registered black box.

pub mod gather;

pub use gather::{
    GatherError, Gathered, NodeFailure, NodeId, authenticate_commitments, gather, rebuild,
};
