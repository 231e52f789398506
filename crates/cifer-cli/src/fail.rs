//! The CLI's error type: a one-line message and an exit code.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;

use cifer_core::Error;

/// Generic failure: a refused operation (overwrite, binary to a terminal), RNG failure.
pub(crate) const EXIT_GENERIC: u8 = 1;
/// Command-line usage error (clap's own convention).
pub(crate) const EXIT_USAGE: u8 = 2;
/// A file or stream could not be opened, read or written.
pub(crate) const EXIT_IO: u8 = 3;
/// A malformed (or unsupported) envelope, identity or recipient file.
pub(crate) const EXIT_MALFORMED: u8 = 4;
/// Decryption failed: wrong identity, or a corrupted or tampered envelope.
pub(crate) const EXIT_DECRYPT: u8 = 5;

/// A failure to report as `cifer: error: <message>` with a distinct exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// A failure with an explicit code.
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// An I/O failure on `what` (e.g. `input "file.bin"`).
    pub(crate) fn io(what: impl fmt::Display, err: &std::io::Error) -> Self {
        Self::new(EXIT_IO, format!("{what}: {err}"))
    }

    /// A `cifer-core` error, with `what` naming the file or operation involved.
    pub(crate) fn core(what: impl fmt::Display, err: &Error) -> Self {
        let code = core_exit_code(err);
        let message = match err {
            Error::Authentication => format!(
                "{what}: decryption failed (wrong identity, or the envelope is corrupted or was \
                 tampered with)"
            ),
            other => format!("{what}: {other}"),
        };
        Self::new(code, message)
    }

    /// Appends a note to the message.
    pub(crate) fn with_note(mut self, note: &str) -> Self {
        self.message.push_str("; ");
        self.message.push_str(note);
        self
    }

    /// The exit code.
    pub(crate) const fn code(&self) -> u8 {
        self.code
    }

    /// Prints the one-line report on stderr and returns the exit code.
    pub(crate) fn report(&self) -> ExitCode {
        // Keep the report on one line whatever the message holds.
        let line: String =
            self.message.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        eprintln!("cifer: error: {line}");
        ExitCode::from(self.code)
    }
}

/// The exit code for a `cifer-core` error.
pub(crate) const fn core_exit_code(err: &Error) -> u8 {
    match err {
        Error::Authentication => EXIT_DECRYPT,
        Error::Io(_) => EXIT_IO,
        Error::BadMagic
        | Error::UnknownVersion(_)
        | Error::UnknownSuite(_)
        | Error::BadChunkSize(_)
        | Error::NonZeroReserved(_)
        | Error::Truncated
        | Error::InvalidPoint
        | Error::UnsupportedSuite(_)
        | Error::InvalidEncapsulationKey
        | Error::KeyHashMismatch
        | Error::KeyFile(_)
        | Error::Malformed { .. } => EXIT_MALFORMED,
        _ => EXIT_GENERIC,
    }
}

/// A path quoted on one line, for messages.
pub(crate) fn quoted(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// `Result` with [`Failure`].
pub(crate) type Result<T, E = Failure> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_mapped() {
        let codes = [0, EXIT_GENERIC, EXIT_USAGE, EXIT_IO, EXIT_MALFORMED, EXIT_DECRYPT];
        for (i, a) in codes.iter().enumerate() {
            for b in &codes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(core_exit_code(&Error::Authentication), EXIT_DECRYPT);
        assert_eq!(core_exit_code(&Error::BadMagic), EXIT_MALFORMED);
        assert_eq!(core_exit_code(&Error::Truncated), EXIT_MALFORMED);
        assert_eq!(core_exit_code(&Error::KeyFile("x")), EXIT_MALFORMED);
        assert_eq!(core_exit_code(&Error::Rng), EXIT_GENERIC);
        let io = Error::Io(std::io::Error::other("boom"));
        assert_eq!(core_exit_code(&io), EXIT_IO);
    }

    #[test]
    fn quoted_paths_stay_on_one_line() {
        assert_eq!(quoted(Path::new("a\nb")), "\"a\\nb\"");
    }
}
