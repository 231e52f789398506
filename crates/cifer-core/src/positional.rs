//! Parallel STREAM drivers over input read by offset (PROTOCOL.md §2.2): the same bytes,
//! errors and released plaintext as [`seal_stream`] / [`open_stream`], for input that
//! several threads can read at once (a regular file, through `pread`).
//!
//! The drivers of [`crate::pipeline`] take any [`Read`](std::io::Read), so the calling
//! thread both reads the next batch and writes the previous one while the workers run
//! the AEAD. With a fast AEAD that thread's kernel time (copying the input in, the
//! output out) is what bounds them. Here each worker reads its own chunks at their
//! offsets, straight into their slots, and seals or opens each one while it is in
//! cache; the calling thread only writes. Two batch buffers of about 4 MiB alternate
//! (one being filled and processed, one being written), so memory stays near 8 MiB.
//!
//! The input's extent is fixed by the caller (`start`, `len`) when the call begins:
//! - sealing seals exactly `len` bytes; an input that ends sooner (a file truncated
//!   while it is read) fails with [`Error::Io`] (`UnexpectedEof`);
//! - opening reads the body as `len` bytes, then checks that nothing follows it, so an
//!   envelope with trailing bytes fails exactly as it does in [`open_stream`]; a body
//!   that ends sooner fails with [`Error::Truncated`].
//!
//! Chunk indices are reserved once for the whole message ([`ChunkSealer::reserve`]),
//! so no (key, nonce) pair repeats. Small inputs (at most 1 MiB), one thread, or chunks
//! over 4 MiB go through the sequential drivers.

use std::io::{self, IoSlice, Read, Write};

use crate::error::{Error, Result};
use crate::header::TAG_LEN;
use crate::pipeline::{BATCH_BYTES, WARM_UP_BYTES, crypto_alongside};
use crate::stream::{ChunkOpener, ChunkSealer, open_stream, read_full, seal_stream};

/// Bytes that can be read at any offset, by several threads at once.
pub trait ReadAt: Sync {
    /// Reads up to `buf.len()` bytes at `offset` and returns how many were read; `Ok(0)`
    /// at or past the end.
    ///
    /// # Errors
    /// As the underlying source.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let start = usize::try_from(offset).map_or(self.len(), |o| o.min(self.len()));
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// Positional reads (`pread`), which leave the file's offset alone.
#[cfg(unix)]
impl ReadAt for std::fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
}

/// A [`Read`] over a [`ReadAt`], from an offset on (for the envelope prefix and for the
/// sequential fallbacks).
pub struct ReadFrom<'a, R: ReadAt + ?Sized> {
    src: &'a R,
    pos: u64,
}

impl<'a, R: ReadAt + ?Sized> ReadFrom<'a, R> {
    /// Reads `src` from `offset` on.
    pub const fn new(src: &'a R, offset: u64) -> Self {
        Self { src, pos: offset }
    }

    /// The offset of the next byte to be read.
    #[must_use]
    pub const fn position(&self) -> u64 {
        self.pos
    }
}

impl<R: ReadAt + ?Sized> Read for ReadFrom<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Exactly `left` bytes of a [`ReadFrom`], then end of input; an earlier end is an
/// `UnexpectedEof` error (not a short input), so no chunk is sealed as the last one.
struct Exactly<'a, R: ReadAt + ?Sized> {
    src: ReadFrom<'a, R>,
    left: u64,
}

impl<R: ReadAt + ?Sized> Read for Exactly<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = at_most(self.left, buf.len());
        let n = self.src.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, SHRANK));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads until `buf` is full or the source ends; returns the bytes read.
fn read_full_at<R: ReadAt + ?Sized>(src: &R, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    read_full(&mut ReadFrom::new(src, offset), buf)
}

/// `write_all` for several buffers: one `writev` per call where the writer supports it.
fn write_all_vectored(output: &mut dyn Write, mut bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match output.write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `min(x, cap)` as a `usize`.
fn at_most(x: u64, cap: usize) -> usize {
    usize::try_from(x).map_or(cap, |x| x.min(cap))
}

const SHRANK: &str = "input ended before its length";

fn shrank() -> Error {
    Error::Io(io::Error::new(io::ErrorKind::UnexpectedEof, SHRANK))
}

/// Seals exactly `len` bytes of `input`, from offset `start`, into `output` (the prefix
/// must already have been written), with `threads` worker threads (0: the sequential
/// driver on this thread). Same bytes as [`seal_stream`] over those bytes. Returns `len`.
///
/// # Errors
/// [`Error::Io`] from either side, [`Error::TooManyChunks`] past 2^32 chunks. An input
/// that ends before `len` bytes fails with `UnexpectedEof` before the last chunk is
/// sealed, so what was written never decrypts as a shorter message.
pub fn seal_positional<R: ReadAt + ?Sized>(
    mut sealer: ChunkSealer,
    input: &R,
    start: u64,
    len: u64,
    output: &mut impl Write,
    threads: usize,
) -> Result<u64> {
    let cs = sealer.chunk_size();
    if threads == 0 || cs > BATCH_BYTES || len <= WARM_UP_BYTES as u64 {
        let mut exactly = Exactly { src: ReadFrom::new(input, start), left: len };
        return seal_stream(sealer, &mut exactly, output);
    }
    let n = len.div_ceil(cs as u64);
    let base = sealer.reserve(n, true)?;
    let sealer = &sealer;
    let slot = cs + TAG_LEN;
    let k = BATCH_BYTES / cs;
    let (mut work, mut done) = (vec![0u8; k * slot], vec![0u8; k * slot]);
    let mut pending = 0usize;
    let mut first = 0u64;
    while first < n {
        let count = at_most(n - first, k);
        let (out, to_write) = (&mut *output, &done[..pending]);
        crypto_alongside(
            &mut work,
            slot,
            count,
            threads,
            |j, place| {
                let i = first + j as u64;
                let at = i * cs as u64;
                let pt_len = at_most(len - at, cs);
                if read_full_at(input, &mut place[..pt_len], start + at)? < pt_len {
                    return Err(shrank());
                }
                sealer.seal_at(base + i, &mut place[..pt_len + TAG_LEN], i + 1 == n)
            },
            || Ok(out.write_all(to_write)?),
        )?
        .map_err(|(_, e)| e)?;
        // Every chunk but the message's last is full, so the sealed slots are contiguous.
        pending = at_most(len - first * cs as u64, count * cs) + count * TAG_LEN;
        std::mem::swap(&mut work, &mut done);
        first += count as u64;
    }
    output.write_all(&done[..pending])?;
    output.flush()?;
    Ok(len)
}

/// Opens the envelope body held in `input` from offset `start`, `len` bytes long, into
/// `output`, with `threads` worker threads (0: the sequential driver on this thread).
/// Same result, errors and released plaintext as [`open_stream`] reading the
/// same bytes: plaintext of a batch is written only after every chunk of the batch
/// authenticated, and on failure the chunks before the failing one are written first.
/// Returns the plaintext length.
///
/// # Errors
/// As [`open_stream`]; [`Error::Truncated`] also if the input ends before `len` bytes.
pub fn open_positional<R: ReadAt + ?Sized>(
    mut opener: ChunkOpener,
    input: &R,
    start: u64,
    len: u64,
    output: &mut impl Write,
    threads: usize,
) -> Result<u64> {
    let cs = opener.chunk_size();
    if threads == 0 || cs > BATCH_BYTES || len <= WARM_UP_BYTES as u64 {
        // Read to the real end, so trailing bytes are seen as the stream driver sees them.
        return open_stream(opener, &mut ReadFrom::new(input, start), output);
    }
    let slot = cs + TAG_LEN;
    let (whole, rest) = (len / slot as u64, len % slot as u64);
    // A remainder shorter than a tag cannot be a chunk: the stream driver opens the
    // whole chunks before it (none of them final) and then reports truncation.
    let ends = rest == 0 || rest >= TAG_LEN as u64;
    let n = whole + u64::from(rest >= TAG_LEN as u64);
    let base = opener.reserve(n, ends)?;
    let opener = &opener;
    let k = BATCH_BYTES / cs;
    let (mut work, mut done) = (vec![0u8; k * slot], vec![0u8; k * slot]);
    // Plaintext lengths of the chunks of `done` still to be written.
    let mut pending: Vec<usize> = Vec::with_capacity(k);
    let mut next: Vec<usize> = Vec::with_capacity(k);
    let write = |out: &mut dyn Write, buf: &[u8], lens: &[usize]| -> io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = lens
            .iter()
            .enumerate()
            .map(|(j, l)| IoSlice::new(&buf[j * slot..j * slot + l]))
            .collect();
        write_all_vectored(out, &mut slices)
    };
    let mut total = 0u64;
    let mut first = 0u64;
    while first < n {
        let count = at_most(n - first, k);
        let is_final_batch = first + count as u64 == n;
        next.clear();
        next.extend(
            (first..first + count as u64).map(|i| at_most(len - i * slot as u64, slot) - TAG_LEN),
        );
        let (out, to_write, lens, plain) = (&mut *output, &done[..], &pending[..], &next[..]);
        let opened = crypto_alongside(
            &mut work,
            slot,
            count,
            threads,
            |j, place| {
                let i = first + j as u64;
                let c_len = plain[j] + TAG_LEN;
                if read_full_at(input, &mut place[..c_len], start + i * slot as u64)? < c_len {
                    return Err(Error::Truncated);
                }
                opener.open_at(base + i, &mut place[..c_len], ends && i + 1 == n).map(|_| ())
            },
            || Ok(write(out, to_write, lens)?),
        )?;
        if let Err((bad, e)) = opened {
            write(output, &work, &next[..bad])?;
            output.flush()?;
            return Err(e);
        }
        if is_final_batch && ends && read_full_at(input, &mut [0u8; 1], start + len)? != 0 {
            // More follows what was opened as the final chunk: the stream driver would
            // have opened that chunk as a non-final one, and it would have failed.
            write(output, &work, &next[..next.len() - 1])?;
            output.flush()?;
            return Err(Error::Authentication);
        }
        total += next.iter().map(|l| *l as u64).sum::<u64>();
        std::mem::swap(&mut work, &mut done);
        std::mem::swap(&mut pending, &mut next);
        first += count as u64;
    }
    write(output, &done, &pending)?;
    output.flush()?;
    if ends { Ok(total) } else { Err(Error::Truncated) }
}
