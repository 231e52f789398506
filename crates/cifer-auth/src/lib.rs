//! # cifer-auth
//!
//! The request side of CIFER decryption requests (PROTOCOL.md §4), shared by the shard
//! nodes and the black box: the EIP-191 seed payload (§4.1, [`SeedRequest`],
//! [`SeedPayload`]), the EIP-712 typed request (§4.2, [`TypedRequest`]), low-s ECDSA
//! recovery of the signer ([`verify()`], [`ecdsa`]), and the freshness and replay checks
//! (§4.3 steps 3 and 5, [`check_freshness`], [`replay_key`]).
//!
//! **Architecture invariant:** this crate is pure: no I/O, no chain, no JSON.
//! `cargo tree -p cifer-auth -e normal | grep -E 'tokio|sqlx|axum|alloy|serde_json'`
//! prints nothing. What needs the chain stays with the service: whether the signer has
//! code ([`SignerKind`]), the EIP-1271 `isValidSignature` call ([`Eip1271Check`]), the head
//! block, the authorization of the signer (§4.3 step 4) and the replay store.
//!
//! ```
//! use cifer_auth::{SeedPayload, SignerKind, Verification, check_freshness, verify};
//!
//! let payload = SeedPayload::parse("31337_7_0x70997970c51812dc3a010c7d01b50e0d17dc79c8_1042")?;
//! // `cast wallet sign` of that text with anvil's key 1 (a `personal_sign`).
//! let signature = hex::decode(
//!     "f0654e49d2f04db3fe7bb413fbf4543372a19a61290e4f03415b65373cf448ff\
//!      2545065ca2690a74cc84527e5e084267deac76734fe3e70a4df06207fa9121d01c",
//! )?;
//! // The service looked the signer up: no code, so an EOA.
//! let Verification::Verified(verified) = verify(payload, &signature, SignerKind::Eoa)? else {
//!     unreachable!("an EOA is verified locally");
//! };
//! assert_eq!(hex::encode(verified.signer()), "70997970c51812dc3a010c7d01b50e0d17dc79c8");
//! check_freshness(verified.request().request().block_number, 1050, 64)?;
//! let _remember_for_the_window = verified.replay_key();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The crate holds no secrets: wallets sign, this crate only checks. Errors are typed
//! ([`Error`]) and never echo the request's bytes.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod checks;
mod decimal;
pub mod ecdsa;
pub mod error;
pub mod seed;
pub mod typed;
pub mod verify;

pub use checks::{check_freshness, replay_key};
pub use error::{Error, Result};
pub use seed::{SeedPayload, SeedRequest, eip191_hash, format_address, parse_address};
pub use typed::{TypedRequest, domain_separator};
pub use verify::{
    EIP1271_MAGIC_VALUE, Eip1271Check, SignedRequest, SignerKind, Verification, Verified, verify,
    verify_eoa,
};

/// An Ethereum address.
pub type Address = [u8; 20];

/// A 32-byte word (a hash, a nonce).
pub type B256 = [u8; 32];

/// A `uint256` as 32 big-endian bytes.
pub type U256 = [u8; 32];

/// `keccak256(data)`, the Ethereum hash (not SHA3-256).
#[must_use]
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    use sha3::Digest;
    sha3::Keccak256::digest(data).into()
}
