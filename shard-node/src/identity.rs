//! The node's ML-KEM-768 transport identity: the `CIFER-MLKEM768-SEED-1:` file whose
//! encapsulation key is registered for the node in `ClusterRegistry`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cifer_core::Seed;
use zeroize::Zeroizing;

/// Errors of the identity file. None carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading or writing failed (`AlreadyExists` when generating over a file).
    #[error("identity file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file gives access to group or others.
    #[error("identity file {} has mode {mode:o}; it must not be accessible to group or others (chmod 600)", path.display())]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a regular file, or not an identity file.
    #[error("identity file {} is malformed: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// The OS RNG failed.
    #[error("the OS random number generator failed")]
    Rng,
}

/// Loads the identity at `path`, refusing a file readable by group or others.
///
/// # Errors
/// [`IdentityError`].
pub fn load(path: &Path) -> Result<Seed, IdentityError> {
    let io = |source| IdentityError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(IdentityError::Format {
            path: path.to_path_buf(),
            reason: "not a regular file",
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::Permissions { path: path.to_path_buf(), mode });
    }
    let mut text = Zeroizing::new(String::with_capacity(256));
    file.take(512).read_to_string(&mut text).map_err(io)?;
    Seed::from_identity_file(&text).map_err(|_| IdentityError::Format {
        path: path.to_path_buf(),
        reason: "expected CIFER-MLKEM768-SEED-1: and 128 lowercase hex digits",
    })
}

/// Creates a new identity at `path` (mode 0600, never overwriting), synced to disk.
///
/// # Errors
/// [`IdentityError`].
pub fn generate(path: &Path) -> Result<Seed, IdentityError> {
    let io = |source| IdentityError::Io { path: path.to_path_buf(), source };
    let seed = Seed::generate_os().map_err(|_| IdentityError::Rng)?;
    let mut file =
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    file.write_all(seed.to_identity_file().as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(seed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn generate_load_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.identity");
        let seed = generate(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load(&path).unwrap(), seed);
        assert!(matches!(generate(&path), Err(IdentityError::Io { .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(load(&path), Err(IdentityError::Permissions { mode: 0o640, .. })));
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "CIFER-MLKEM768-SEED-1:zz\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = load(&bad).unwrap_err();
        assert!(matches!(err, IdentityError::Format { .. }));
    }
}
