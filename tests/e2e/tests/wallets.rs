//! The CLI's wallet options against a devnet: an Ethereum keystore (made by `cast wallet
//! import`) with a password file, a mnemonic with an index, a private key; JSON output and
//! exit codes that mean something.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, reason = "tests")]

use cifer_e2e::{Devnet, Options};
use serde_json::Value;

const PHRASE: &str = "test test test test test test test test test test test junk";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keystore_mnemonic_json_and_exit_codes() {
    let devnet = Devnet::up(&Options::default());
    let dir = tempfile::tempdir().unwrap();
    let (owner, owner_key) = devnet.accounts[1].clone();
    let delegate = devnet.accounts[9].0;
    let keystores = dir.path().join("keystores");
    let _ = Devnet::cast(&[
        "wallet",
        "import",
        "owner",
        "--private-key",
        &owner_key,
        "--keystore-dir",
        keystores.to_str().unwrap(),
        "--unsafe-password",
        "correct horse",
    ]);
    let ks = keystores.join("owner");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    let (ks, pw) = (ks.to_str().unwrap(), pw.to_str().unwrap());
    let run = |args: &[&str]| devnet.cifer(args);

    // Create with the keystore: the owner is the keystore's account.
    let out = run(&["secret", "create", "--keystore", ks, "--password-file", pw, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["secretId"].as_str().unwrap().to_owned();
    assert_eq!(created["owner"].as_str().unwrap().to_lowercase(), owner.to_string().to_lowercase());
    let shown: Value =
        serde_json::from_slice(&run(&["secret", "show", &id, "--json"]).stdout).unwrap();
    assert_eq!(shown["active"], true);

    // Delegate with the mnemonic (index 1 is the owner), decrypt as the delegate (index 9).
    let out = run(&[
        "secret",
        "delegate",
        &id,
        &delegate.to_string(),
        "--mnemonic",
        PHRASE,
        "--mnemonic-index",
        "1",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plain = dir.path().join("plain");
    std::fs::write(&plain, b"keystores and phrases").unwrap();
    let sealed = dir.path().join("sealed.cifr");
    // `cifer encrypt --secret-id` of `input` into `out`.
    let encrypt = |out: &std::path::Path, input: &std::path::Path| {
        run(&["encrypt", "--secret-id", &id, "-o", out.to_str().unwrap(), input.to_str().unwrap()])
    };
    let out = encrypt(&sealed, &plain);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The delegate (mnemonic index 9) decrypts `envelope` into `out`.
    let decrypt_as_delegate = |out: &std::path::Path, envelope: &std::path::Path| {
        run(&[
            "decrypt",
            "--mnemonic",
            PHRASE,
            "--mnemonic-index",
            "9",
            "-o",
            out.to_str().unwrap(),
            envelope.to_str().unwrap(),
        ])
    };
    let back = dir.path().join("back");
    let out = decrypt_as_delegate(&back, &sealed);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&back).unwrap(), b"keystores and phrases");

    // A file past 1 MiB takes the positional drivers (workers read by offset) both ways.
    let big: Vec<u8> =
        (0..(3 << 20) + 5).map(|i: usize| (i * 31 + i / 977).to_le_bytes()[0]).collect();
    let big_plain = dir.path().join("big");
    std::fs::write(&big_plain, &big).unwrap();
    let big_sealed = dir.path().join("big.cifr");
    let out = encrypt(&big_sealed, &big_plain);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let big_back = dir.path().join("big.back");
    let out = decrypt_as_delegate(&big_back, &big_sealed);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(&big_back).unwrap() == big, "3 MiB round trip through the chain");
    let mut flipped = std::fs::read(&big_sealed).unwrap();
    flipped[2 << 20] ^= 1;
    let bad = dir.path().join("big.bad");
    std::fs::write(&bad, &flipped).unwrap();
    std::fs::remove_file(&big_back).unwrap();
    let out = decrypt_as_delegate(&big_back, &bad);
    assert!(!out.status.success(), "a flipped bit must not decrypt");
    assert!(!big_back.exists(), "no output is left behind");

    // Transfer (two steps), then shred — through the CLI.
    let (new_owner, new_owner_key) = devnet.accounts[11].clone();
    let out =
        run(&["secret", "transfer", &id, &new_owner.to_string(), "--private-key", &owner_key]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["secret", "accept", &id, "--private-key", &new_owner_key, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: Value =
        serde_json::from_slice(&run(&["secret", "show", &id, "--json"]).stdout).unwrap();
    assert_eq!(
        shown["owner"].as_str().unwrap().to_lowercase(),
        new_owner.to_string().to_lowercase()
    );
    let out = run(&[
        "decrypt",
        "--private-key",
        &new_owner_key,
        "-o",
        back.to_str().unwrap(),
        sealed.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "new owner: {}", String::from_utf8_lossy(&out.stderr));
    // The old owner is out, and so is its delegate (a transfer voids delegations).
    for key in [owner_key.as_str(), devnet.accounts[9].1.as_str()] {
        let out = run(&[
            "decrypt",
            "--private-key",
            key,
            "-o",
            back.to_str().unwrap(),
            sealed.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // Only the owner may shred; after it, nobody decrypts and the nodes drop the fragments.
    let out = run(&["secret", "shred", &id, "--private-key", &owner_key]);
    assert_eq!(
        out.status.code(),
        Some(8),
        "not the owner any more: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["secret", "shred", &id, "--private-key", &new_owner_key]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: Value =
        serde_json::from_slice(&run(&["secret", "show", &id, "--json"]).stdout).unwrap();
    assert_eq!(shown["active"], false);
    let out = run(&[
        "decrypt",
        "--private-key",
        &new_owner_key,
        "-o",
        back.to_str().unwrap(),
        sealed.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while cifer_e2e::metric(&devnet.node_url(1), "cifer_shredded_total").await < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "node 1 did not delete the shredded fragment"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // A new secret for the exit-code checks below.
    let out = run(&["secret", "create", "--private-key", &owner_key]);
    assert!(out.status.success());
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let out = run(&[
        "encrypt",
        "--secret-id",
        &id,
        "-o",
        sealed.to_str().unwrap(),
        plain.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let out = run(&["secret", "delegate", &id, &delegate.to_string(), "--private-key", &owner_key]);
    assert!(out.status.success());

    // Exit codes: wrong password (usage, 2, never echoed), a stranger (refused, 6), two
    // wallets at once (usage), the black box gone (unavailable, 7).
    let bad_pw = dir.path().join("bad");
    std::fs::write(&bad_pw, "hunter2").unwrap();
    let out = run(&[
        "secret",
        "revoke",
        &id,
        &delegate.to_string(),
        "--keystore",
        ks,
        "--password-file",
        bad_pw.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2"));
    let stranger_key = devnet.accounts[10].1.clone();
    let out = run(&[
        "decrypt",
        "--private-key",
        &stranger_key,
        "-o",
        back.to_str().unwrap(),
        sealed.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not_authorized"));
    let out = run(&["secret", "create", "--private-key", &owner_key, "--mnemonic", PHRASE]);
    assert_eq!(out.status.code(), Some(2));
    devnet.signal("blackbox1", "KILL");
    let out = run(&[
        "decrypt",
        "--private-key",
        &owner_key,
        "-o",
        back.to_str().unwrap(),
        sealed.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stderr));
}
