//! The sealing key file: created 0600 and never overwritten, refused when group or others
//! may read it, strict format, never printed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use cifer_store::testing as harness;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use cifer_store::{PutOutcome, SealingKey, Store, StoreError};

#[test]
fn generate_creates_0600_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealing.key");
    let _key = SealingKey::generate(&path).unwrap();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("CIFER-SEALING-KEY-1:"));
    assert_eq!(text.len(), "CIFER-SEALING-KEY-1:".len() + 64 + 1);
    match SealingKey::generate(&path) {
        Err(StoreError::KeyFileIo { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists);
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(fs::read_to_string(&path).unwrap(), text, "not overwritten");
}

#[test]
fn load_refuses_group_or_other_access() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealing.key");
    drop(SealingKey::generate(&path).unwrap());
    for mode in [0o640, 0o604, 0o644, 0o660, 0o601, 0o610, 0o777] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        match SealingKey::load(&path) {
            Err(StoreError::KeyFilePermissions { mode: got, path: p }) => {
                assert_eq!(got, mode);
                assert_eq!(p, path);
            }
            other => panic!("mode {mode:o}: expected KeyFilePermissions, got {other:?}"),
        }
        let msg = SealingKey::load(&path).unwrap_err().to_string();
        assert!(msg.contains("chmod 600"), "{msg}");
    }
    for mode in [0o600, 0o400] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        SealingKey::load(&path).unwrap();
    }
}

#[test]
fn load_refuses_malformed_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let good = format!("CIFER-SEALING-KEY-1:{}", "ab".repeat(32));
    let cases = [
        String::new(),
        "ab".repeat(32),
        format!("CIFER-SEALING-KEY-2:{}", "ab".repeat(32)),
        format!("CIFER-SEALING-KEY-1:{}", "AB".repeat(32)),
        format!("CIFER-SEALING-KEY-1:{}", "ab".repeat(31)),
        format!("CIFER-SEALING-KEY-1:{}", "ab".repeat(33)),
        format!("{good}\n\n"),
        format!("{good} "),
        format!("{good}\r\n"),
    ];
    for text in cases {
        let _ = fs::remove_file(&path);
        fs::write(&path, &text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            matches!(SealingKey::load(&path), Err(StoreError::KeyFileFormat { .. })),
            "{text:?}"
        );
    }
    for text in [good.clone(), format!("{good}\n")] {
        fs::write(&path, &text).unwrap();
        SealingKey::load(&path).unwrap();
    }
    // A directory is not a key file; a missing file is an I/O error.
    let sub = dir.path().join("d");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(SealingKey::load(&sub), Err(StoreError::KeyFileFormat { .. })));
    assert!(matches!(
        SealingKey::load(dir.path().join("missing")),
        Err(StoreError::KeyFileIo { .. })
    ));
}

#[test]
fn key_never_prints() {
    let key = SealingKey::from_bytes([0x5a; 32]);
    let dbg = format!("{key:?}");
    assert_eq!(dbg, "SealingKey(<redacted>)");
    assert!(!dbg.contains("5a"));
}

#[tokio::test]
async fn loaded_key_is_the_generated_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sealing.key");
    let generated = SealingKey::generate(&path).unwrap();
    let db = dir.path().join("shard.db");
    let (c, f) = harness::sharing();
    let rec = harness::record(1, harness::secret(1), &c, &f[0]);
    let store = Store::open_sqlite(&db, generated).await.unwrap();
    assert_eq!(store.put_fragment(&rec).await.unwrap(), PutOutcome::Stored);
    store.close().await;
    let store = Store::open_sqlite(&db, SealingKey::load(&path).unwrap()).await.unwrap();
    let got = store.get_fragment(1, harness::secret(1)).await.unwrap().unwrap();
    assert_eq!(*got.fragment.to_bytes(), *f[0].to_bytes());
    store.close().await;
}
