//! # cifer-core
//!
//! The CIFER protocol v1 (`docs/protocol.md`, normative source `PROTOCOL.md`) as a pure
//! library: envelope encoding, the key schedule, the STREAM chunk layer, ML-KEM-768 keys
//! and key files, and verifiable fragments of the seed.
//!
//! **Architecture invariant:** this crate does no I/O of its own and knows nothing of
//! HTTP, JSON, SQL or chains. It reads and writes only through the `Read`/`Write`/`ReadAt`
//! values it is handed. `cargo tree -p cifer-core -e normal | grep -E 'tokio|sqlx|axum|alloy'`
//! prints nothing.
//!
//! ```
//! use cifer_core::{Header, Seed, Suite, envelope};
//!
//! let seed = Seed::generate_os()?;
//! let ek = seed.encapsulation_key();
//! let header = Header::new(Suite::MlKem768, 16, 31337, [0u8; 32])?;
//! let sealed = envelope::seal(&ek, header, b"hello")?;
//! assert_eq!(sealed.len(), 5 + 1152);
//! assert_eq!(envelope::open(&seed, &sealed)?, b"hello");
//! # Ok::<(), cifer_core::Error>(())
//! ```
//!
//! Secrets ([`Seed`], [`StreamKey`], [`Fragment`], shared secrets) are zeroized on drop
//! and print `<redacted>`. Authentication failures are opaque ([`Error::Authentication`]);
//! fragment failures name the culprit ([`Error::culprits`]).

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod aead;
pub mod envelope;
pub mod error;
pub mod fragment;
pub mod header;
pub mod keys;
pub mod pipeline;
pub mod positional;
pub mod schedule;
pub mod stream;
pub mod suite;

pub use aead::Backend;
pub use error::{Error, Result};
pub use fragment::{Commitments, CommitmentsCache, Fragment};
pub use header::{EnvelopePrefix, Header};
pub use keys::{DecapsulationKey, EncapsulationKey, KemBackend, Seed, SharedSecret};
pub use schedule::StreamKey;
pub use suite::Suite;

/// `keccak256(data)`, the Ethereum hash (not SHA3-256).
#[must_use]
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    use sha3::Digest;
    sha3::Keccak256::digest(data).into()
}

/// A cryptographically secure RNG backed by the operating system; panics only if the OS
/// RNG fails, which the OS treats as fatal anyway.
#[must_use]
pub fn os_rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}
