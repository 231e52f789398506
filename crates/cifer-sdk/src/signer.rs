//! Loading alloy wallets: a private key, an Ethereum keystore (JSON V3) with its password,
//! or a BIP-39 mnemonic with a derivation index. Any other signer implementing alloy's
//! `Signer` and `TxSigner` traits (hardware, remote) can be given to
//! [`Client::connect`](crate::Client::connect) directly.

use std::path::Path;

use alloy::signers::local::coins_bip39::English;
use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner};

use crate::Error;

/// A wallet from a `0x`-hex private key.
///
/// # Errors
/// [`Error::Wallet`].
pub fn private_key(hex_key: &str) -> Result<PrivateKeySigner, Error> {
    hex_key.trim().parse().map_err(|_| Error::Wallet("not a 32-byte hex private key".into()))
}

/// A wallet from a JSON V3 keystore file and its password.
///
/// # Errors
/// [`Error::Wallet`] (the message never includes the password).
pub fn keystore(path: &Path, password: &str) -> Result<PrivateKeySigner, Error> {
    PrivateKeySigner::decrypt_keystore(path, password)
        .map_err(|e| Error::Wallet(format!("keystore {}: {e}", path.display())))
}

/// A wallet from a BIP-39 phrase at `m/44'/60'/0'/0/{index}`.
///
/// # Errors
/// [`Error::Wallet`].
pub fn mnemonic(phrase: &str, index: u32) -> Result<PrivateKeySigner, Error> {
    MnemonicBuilder::<English>::default()
        .phrase(phrase.trim())
        .index(index)
        .map_err(|e| Error::Wallet(format!("derivation index: {e}")))?
        .build()
        .map_err(|_| Error::Wallet("not a valid BIP-39 phrase".into()))
}
