//! One-line private key files (`PREFIX:hex`): created `0600` and never overwritten, refused
//! when readable by group or others. Contents are returned in [`Zeroizing`] buffers.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Errors of a key file. None carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Reading or writing failed (`AlreadyExists` when creating over a file).
    #[error("key file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file gives access to group or others.
    #[error("key file {} has mode {mode:o}; it must not be accessible to group or others (chmod 600)", path.display())]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a regular file, or not of the expected format.
    #[error("key file {} is malformed: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Reads the hex after `prefix` in the one-line file at `path` and decodes it to exactly
/// `N` bytes.
///
/// # Errors
/// [`KeyFileError`].
pub fn read<const N: usize>(path: &Path, prefix: &str) -> Result<Zeroizing<[u8; N]>, KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.to_path_buf(), source };
    let format = |reason| KeyFileError::Format { path: path.to_path_buf(), reason };
    let mut file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(format("not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions { path: path.to_path_buf(), mode });
    }
    let mut text = Zeroizing::new(String::new());
    Read::by_ref(&mut file).take(4096).read_to_string(&mut text).map_err(io)?;
    let line = text.strip_suffix('\n').unwrap_or(&text);
    let digits = line.strip_prefix(prefix).ok_or_else(|| format("wrong prefix"))?;
    let mut out = Zeroizing::new([0u8; N]);
    hex::decode_to_slice(digits, &mut out[..])
        .map_err(|_| format("expected hex of the key length"))?;
    Ok(out)
}

/// Creates `path` (mode 0600, failing if it exists) holding `prefix || hex(key) || "\n"`.
///
/// # Errors
/// [`KeyFileError::Io`].
pub fn create(path: &Path, prefix: &str, key: &[u8]) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.to_path_buf(), source };
    let mut file =
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
    let line = Zeroizing::new(format!("{prefix}{}\n", hex::encode(key)));
    file.write_all(line.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn round_trip_permissions_and_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        create(&p, "T-1:", &[0xab; 4]).unwrap();
        assert_eq!(*read::<4>(&p, "T-1:").unwrap(), [0xab; 4]);
        assert!(
            matches!(create(&p, "T-1:", &[0; 4]), Err(KeyFileError::Io { .. })),
            "no overwrite"
        );
        assert!(matches!(read::<4>(&p, "U-1:"), Err(KeyFileError::Format { .. })));
        assert!(matches!(read::<5>(&p, "T-1:"), Err(KeyFileError::Format { .. })));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(read::<4>(&p, "T-1:"), Err(KeyFileError::Permissions { .. })));
    }
}
