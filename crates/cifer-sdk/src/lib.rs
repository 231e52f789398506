//! # cifer-sdk
//!
//! What the `cifer` CLI does for a person, for an application: create a secret, encrypt to
//! it, decrypt with a stream key fetched through the black box (the data never leaves the
//! process), delegate, revoke, transfer, shred, and read the black box's audit trail.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cifer_sdk::Error> {
//! use cifer_sdk::{Client, Endpoints, signer};
//!
//! let endpoints = Endpoints::from_devnet_file("devnet/endpoints.json".as_ref())?;
//! let wallet = signer::private_key("0xac09…")?;            // or keystore(), mnemonic()
//! let client = Client::connect(&endpoints, wallet).await?;
//! let secret = client.create_secret(1).await?;
//! let envelope = client.encrypt_bytes(secret, b"attack at dawn").await?;
//! let plain = client.decrypt_bytes(&envelope).await?;
//! assert_eq!(&plain[..], b"attack at dawn");
//! # Ok(()) }
//! ```
//!
//! **Trust:** the SDK checks what it can itself: a secret's public key against the hash
//! registered on chain (read through its own RPC), the black box's reply opens only with the
//! fresh response key the request was signed for, and the local decryption authenticates
//! every chunk. Signing uses any alloy signer (`Signer` + `TxSigner`): a private key, an
//! Ethereum keystore (JSON V3) with password, a mnemonic, or a hardware / remote signer.

mod client;
mod error;
pub mod signer;

pub use client::{
    AuditRecord, Client, Endpoints, NodeStatus, PreparedSecret, RequestForm, SecretId, SecretInfo,
    Status,
};
pub use error::Error;
pub use {alloy, cifer_core};
