//! Inputs, outputs and key files: buffered stdin/stdout or files, atomic outputs, a
//! progress bar for large inputs.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, StdoutLock, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use tempfile::NamedTempFile;
use zeroize::Zeroizing;

use crate::fail::{EXIT_GENERIC, EXIT_IO, EXIT_MALFORMED, Failure, Result, quoted};

/// Buffer size for files, stdin and stdout. The envelope drivers read and write a whole
/// chunk (64 KiB by default) per call, and `BufReader`/`BufWriter` pass a request at least
/// as large as their buffer straight through: with 64 KiB buffers chunk I/O goes directly
/// between the kernel and the (cache-resident) chunk buffer, while small chunks and the
/// envelope prefix are still buffered.
pub(crate) const BUF_SIZE: usize = 64 << 10;
/// Inputs larger than this get a progress bar (when stderr is a terminal).
pub(crate) const PROGRESS_THRESHOLD: u64 = 64 << 20;
/// Key files are one short line; anything longer is read only this far, then rejected.
const KEY_FILE_LIMIT: u64 = 16 << 10;

/// `None` and `-` mean standard input / output.
pub(crate) fn is_std(path: Option<&Path>) -> bool {
    path.is_none_or(|p| p.as_os_str() == "-")
}

/// A buffered input, with the progress bar that tracks it (cleared on drop).
pub(crate) struct Input {
    reader: Box<dyn Read>,
    /// A regular file given by path, with its length at open: the envelope drivers can
    /// read it by offset from several threads (`envelope::*_positional`).
    regular: Option<(File, u64)>,
    name: String,
    progress: Option<ProgressBar>,
}

impl Input {
    /// Opens `path`, or standard input for `None` / `-`. Files over
    /// [`PROGRESS_THRESHOLD`] show a progress bar on stderr when stderr is a terminal.
    pub(crate) fn open(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path.filter(|_| !is_std(path)) else {
            let reader = Box::new(BufReader::with_capacity(BUF_SIZE, io::stdin().lock()));
            return Ok(Self {
                reader,
                regular: None,
                name: "standard input".into(),
                progress: None,
            });
        };
        let name = format!("input {}", quoted(path));
        let file = File::open(path).map_err(|e| Failure::io(&name, &e))?;
        let meta = file.metadata().map_err(|e| Failure::io(&name, &e))?;
        if meta.is_dir() {
            return Err(Failure::new(EXIT_IO, format!("{name}: is a directory")));
        }
        let len = meta.len();
        // A second handle on the same open file (not a second open of the path, which
        // could meet a different file); positional reads leave the shared offset alone.
        let regular = if meta.is_file() { file.try_clone().ok().map(|f| (f, len)) } else { None };
        if len > PROGRESS_THRESHOLD && io::stderr().is_terminal() {
            let bar = ProgressBar::new(len);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
            ) {
                bar.set_style(style);
            }
            let reader = Box::new(BufReader::with_capacity(BUF_SIZE, bar.wrap_read(file)));
            return Ok(Self { reader, regular, name, progress: Some(bar) });
        }
        Ok(Self {
            reader: Box::new(BufReader::with_capacity(BUF_SIZE, file)),
            regular,
            name,
            progress: None,
        })
    }

    /// How to name this input in messages.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The reader.
    pub(crate) fn reader(&mut self) -> &mut dyn Read {
        &mut self.reader
    }

    /// The input as a regular file and its length, for positional reads, if it is one
    /// and nothing has been read through [`Self::reader`].
    pub(crate) fn regular_file(&self) -> Option<(&File, u64)> {
        self.regular.as_ref().map(|(f, len)| (f, *len))
    }

    /// `output`, advancing the progress bar (if any) by the bytes written: the progress
    /// of the positional drivers, which do not read through [`Self::reader`].
    pub(crate) fn track_output<'a>(&self, output: &'a mut dyn Write) -> Box<dyn Write + 'a> {
        match &self.progress {
            Some(bar) => Box::new(bar.wrap_write(output)),
            None => Box::new(output),
        }
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        if let Some(bar) = self.progress.take() {
            bar.finish_and_clear();
        }
    }
}

/// A buffered output: locked stdout, or a temporary file in the destination's directory
/// that replaces the destination only on [`Output::commit`] and is deleted otherwise.
pub(crate) enum Output {
    /// Standard output.
    Stdout(BufWriter<StdoutLock<'static>>),
    /// An existing destination that is not a regular file (`/dev/null`, a FIFO, a
    /// terminal): written in place, never replaced.
    Special(BufWriter<File>),
    /// A temporary file renamed to `dest` on success.
    File {
        /// The buffered temporary file.
        tmp: BufWriter<NamedTempFile>,
        /// The final path.
        dest: PathBuf,
    },
}

impl Output {
    /// Opens `path` (through a temporary file), or standard output for `None` / `-`.
    pub(crate) fn create(path: Option<&Path>) -> Result<Self> {
        let Some(dest) = path.filter(|_| !is_std(path)) else {
            return Ok(Self::Stdout(BufWriter::with_capacity(BUF_SIZE, io::stdout().lock())));
        };
        let name = output_name(dest);
        // Follow symlinks: the file they point to is replaced, the link is kept.
        let dest = match std::fs::metadata(dest) {
            Ok(meta) if meta.is_dir() => {
                return Err(Failure::new(EXIT_IO, format!("{name}: is a directory")));
            }
            Ok(meta) if !meta.is_file() => {
                // Renaming over a device node or FIFO would replace it with a regular file.
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(dest)
                    .map_err(|e| Failure::io(&name, &e))?;
                return Ok(Self::Special(BufWriter::with_capacity(BUF_SIZE, file)));
            }
            Ok(_) => std::fs::canonicalize(dest).map_err(|e| Failure::io(&name, &e))?,
            Err(_) => dest.to_path_buf(),
        };
        let tmp = temp_beside(&dest).map_err(|e| Failure::io(&name, &e))?;
        Ok(Self::File { tmp: BufWriter::with_capacity(BUF_SIZE, tmp), dest })
    }

    /// Whether this is standard output.
    pub(crate) const fn is_stdout(&self) -> bool {
        matches!(self, Self::Stdout(_))
    }

    /// The writer.
    pub(crate) fn writer(&mut self) -> &mut dyn Write {
        match self {
            Self::Stdout(w) => w,
            Self::Special(w) => w,
            Self::File { tmp, .. } => tmp,
        }
    }

    /// Flushes, and for a file moves the temporary into place.
    pub(crate) fn commit(self) -> Result<()> {
        match self {
            Self::Stdout(mut w) => w.flush().map_err(|e| Failure::io("standard output", &e)),
            Self::Special(mut w) => w.flush().map_err(|e| Failure::io("output", &e)),
            Self::File { tmp, dest } => {
                let name = output_name(&dest);
                let tmp = tmp.into_inner().map_err(|e| Failure::io(&name, e.error()))?;
                tmp.as_file().sync_all().map_err(|e| Failure::io(&name, &e))?;
                tmp.persist(&dest).map_err(|e| Failure::io(&name, &e.error))?;
                Ok(())
            }
        }
    }
}

fn output_name(path: &Path) -> String {
    format!("output {}", quoted(path))
}

/// A new temporary file (mode 0600 on Unix) in the directory of `dest`.
fn temp_beside(dest: &Path) -> io::Result<NamedTempFile> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::Builder::new().prefix(".cifer-").suffix(".tmp").tempfile_in(dir)
}

/// Reads a key file (at most a few KiB) into zeroized memory; `-` is standard input.
pub(crate) fn read_key_file(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let name = format!("{what} {}", quoted(path));
    let mut buf = Zeroizing::new(Vec::with_capacity(256));
    let res = if path.as_os_str() == "-" {
        io::stdin().lock().take(KEY_FILE_LIMIT).read_to_end(&mut buf)
    } else {
        File::open(path).and_then(|f| f.take(KEY_FILE_LIMIT).read_to_end(&mut buf))
    };
    res.map_err(|e| Failure::io(&name, &e))?;
    Ok(buf)
}

/// Parses the bytes of a key file with `parse`, mapping errors to one-line messages.
pub(crate) fn parse_key_file<T>(
    bytes: &[u8],
    name: &str,
    parse: impl FnOnce(&str) -> cifer_core::Result<T>,
) -> Result<T> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        Failure::new(EXIT_MALFORMED, format!("{name}: invalid key file: not UTF-8"))
    })?;
    parse(text).map_err(|e| Failure::core(name, &e))
}

/// Writes a small file atomically: a temporary file (mode `mode` on Unix) in the same
/// directory, renamed over `dest` if `force`, or only if `dest` does not exist.
pub(crate) fn write_new_file(dest: &Path, contents: &[u8], mode: u32, force: bool) -> Result<()> {
    let name = quoted(dest);
    let mut tmp = temp_beside(dest).map_err(|e| Failure::io(&name, &e))?;
    set_mode(tmp.as_file(), mode).map_err(|e| Failure::io(&name, &e))?;
    tmp.write_all(contents).map_err(|e| Failure::io(&name, &e))?;
    tmp.as_file().sync_all().map_err(|e| Failure::io(&name, &e))?;
    let persisted = if force { tmp.persist(dest) } else { tmp.persist_noclobber(dest) };
    match persisted {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Err(refuse_overwrite(dest)),
        Err(e) => Err(Failure::io(&name, &e.error)),
    }
}

/// The failure for an existing file that `--force` would overwrite.
pub(crate) fn refuse_overwrite(dest: &Path) -> Failure {
    Failure::new(
        EXIT_GENERIC,
        format!("{} already exists; refusing to overwrite it (use --force)", quoted(dest)),
    )
}

#[cfg(unix)]
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}
