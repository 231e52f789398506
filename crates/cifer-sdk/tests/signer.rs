//! Wallet loading: mnemonic derivation matches anvil's well-known dev accounts, malformed
//! inputs are typed errors that never echo the secret.
#![allow(clippy::unwrap_used, missing_docs, reason = "tests")]

use cifer_sdk::{Error, signer};

const PHRASE: &str = "test test test test test test test test test test test junk";

#[test]
fn mnemonic_derives_the_standard_path() {
    let a0 = signer::mnemonic(PHRASE, 0).unwrap();
    let a1 = signer::mnemonic(PHRASE, 1).unwrap();
    assert_eq!(a0.address().to_string(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    assert_eq!(a1.address().to_string(), "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    let from_key =
        signer::private_key("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
            .unwrap();
    assert_eq!(from_key.address(), a1.address());
}

#[test]
fn bad_wallets_are_typed_and_do_not_echo() {
    let e = signer::private_key("0xnot-a-key-hunter2").unwrap_err();
    assert!(matches!(e, Error::Wallet(_)) && !e.to_string().contains("hunter2"), "{e}");
    let e = signer::mnemonic("hunter2 is not a phrase", 0).unwrap_err();
    assert!(matches!(e, Error::Wallet(_)) && !e.to_string().contains("hunter2"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ks.json"), "{}").unwrap();
    let e = signer::keystore(&dir.path().join("ks.json"), "hunter2").unwrap_err();
    assert!(matches!(e, Error::Wallet(_)) && !e.to_string().contains("hunter2"), "{e}");
}
