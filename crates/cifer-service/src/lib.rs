//! # cifer-service
//!
//! What the shard node and the black box share, so that both check a request the same
//! way and read the same configuration:
//!
//! - [`wire`]: the JSON form of a signed decryption request (PROTOCOL.md §4: the EIP-191
//!   seed payload and the EIP-712 `DecryptRequest`) and strict field parsers whose errors
//!   name the field and the rule, never the value;
//! - [`verify`]: the user-signature check of §4.3 step 1 against a chain view (low-s ECDSA,
//!   or EIP-1271 at the pinned head for contract wallets);
//! - [`config`]: the `[[chains]]` TOML section, URL redaction and the config error type;
//! - [`http`]: the request deadline and in-flight cap of every API (`timeout`, `overloaded`);
//! - [`keyfile`]: one-line private key files, 0600, never overwritten;
//! - [`run`]: logging set-up and the SIGTERM / ctrl-c shutdown signal.
//!
//! **Invariant:** nothing here decides to release anything; it parses and verifies, and
//! every failure is typed so the caller can deny with a stable code.

pub mod config;
pub mod http;
pub mod keyfile;
pub mod run;
pub mod verify;
pub mod wire;
