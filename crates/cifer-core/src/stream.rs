//! The STREAM chunk layer, PROTOCOL.md §2.2, as a sans-I/O state machine
//! ([`ChunkSealer`], [`ChunkOpener`]) plus blocking drivers over `std::io::{Read, Write}`.
//!
//! Chunk `i` is sealed under `nonce = nonce_prefix || BE32(i) || flag`, `flag = 0x01` for
//! the last chunk only, so truncation, reordering, extension and splicing between
//! envelopes all fail authentication. Memory is one chunk buffer, whatever the length.

use std::io::{self, Read, Write};

use crate::aead::{Backend, Cipher, Nonce};
use crate::error::{Error, Result};
use crate::header::{EnvelopePrefix, TAG_LEN};
use crate::schedule::{NONCE_PREFIX_LEN, StreamKey};

/// At most 2^32 chunks per envelope.
const MAX_CHUNKS: u64 = 1 << 32;

struct ChunkCounter {
    nonce_prefix: [u8; NONCE_PREFIX_LEN],
    next: u64,
    finished: bool,
}

impl ChunkCounter {
    fn new(key: &StreamKey) -> Self {
        Self { nonce_prefix: key.nonce_prefix, next: 0, finished: false }
    }

    /// Hands out `count` consecutive chunk indices, the last of them final if `ends`.
    /// Every index is handed out once, so no (key, nonce) pair can repeat.
    fn reserve(&mut self, count: u64, ends: bool) -> Result<u64> {
        if self.finished {
            return Err(Error::Authentication);
        }
        let base = self.next;
        let end = base.checked_add(count).ok_or(Error::TooManyChunks)?;
        if end > MAX_CHUNKS {
            return Err(Error::TooManyChunks);
        }
        self.next = end;
        self.finished = ends;
        Ok(base)
    }

    fn next_nonce(&mut self, last: bool) -> Result<Nonce> {
        let index = self.reserve(1, last)?;
        Ok(nonce_for(&self.nonce_prefix, index, last))
    }
}

/// `nonce_prefix || BE32(index) || flag` (PROTOCOL.md §2.2). `index < 2^32` is checked by
/// [`ChunkCounter::reserve`] before any index reaches here.
fn nonce_for(prefix: &[u8; NONCE_PREFIX_LEN], index: u64, last: bool) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[..NONCE_PREFIX_LEN].copy_from_slice(prefix);
    #[allow(clippy::cast_possible_truncation, reason = "index < 2^32, see reserve")]
    nonce[NONCE_PREFIX_LEN..11].copy_from_slice(&(index as u32).to_be_bytes());
    nonce[11] = u8::from(last);
    nonce
}

/// Seals chunks in order. Sans-I/O: the caller owns the buffers.
pub struct ChunkSealer {
    cipher: Cipher,
    counter: ChunkCounter,
    chunk_size: usize,
}

impl ChunkSealer {
    /// A sealer for the envelope whose prefix is `prefix`, keyed by `key`.
    ///
    /// # Errors
    /// Only if the backend rejects the key, which cannot happen for 32-byte keys.
    pub fn new(key: &StreamKey, prefix: &EnvelopePrefix, backend: Backend) -> Result<Self> {
        Ok(Self {
            cipher: Cipher::new(backend, &key.key)?,
            counter: ChunkCounter::new(key),
            chunk_size: prefix.header().chunk_size(),
        })
    }

    /// The chunk size in bytes.
    #[must_use]
    pub const fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Seals `chunk[..len - 16]` in place and writes its tag to `chunk[len - 16..]`.
    /// Non-last chunks must be exactly `chunk_size` bytes of plaintext; the last one 0 to
    /// `chunk_size` bytes (0 only for an empty message).
    ///
    /// # Errors
    /// [`Error::TooManyChunks`] past 2^32 chunks; [`Error::Authentication`] for a chunk of
    /// the wrong size or a call after the last chunk.
    pub fn seal_chunk(&mut self, chunk: &mut [u8], last: bool) -> Result<()> {
        let pt_len = chunk.len().checked_sub(TAG_LEN).ok_or(Error::Truncated)?;
        if pt_len > self.chunk_size || (!last && pt_len != self.chunk_size) {
            return Err(Error::Authentication);
        }
        let nonce = self.counter.next_nonce(last)?;
        self.cipher.seal(&nonce, &[], chunk)
    }

    /// Reserves `count` chunk indices for [`Self::seal_at`]; the last is final if `ends`.
    pub(crate) fn reserve(&mut self, count: u64, ends: bool) -> Result<u64> {
        self.counter.reserve(count, ends)
    }

    /// Seals a chunk at an index obtained from [`Self::reserve`] (for parallel drivers).
    pub(crate) fn seal_at(&self, index: u64, chunk: &mut [u8], last: bool) -> Result<()> {
        let nonce = nonce_for(&self.counter.nonce_prefix, index, last);
        self.cipher.seal(&nonce, &[], chunk)
    }
}

/// Opens chunks in order. Sans-I/O: the caller owns the buffers.
pub struct ChunkOpener {
    cipher: Cipher,
    counter: ChunkCounter,
    chunk_size: usize,
}

impl ChunkOpener {
    /// An opener for the envelope whose prefix is `prefix`, keyed by `key`.
    ///
    /// # Errors
    /// Only if the backend rejects the key, which cannot happen for 32-byte keys.
    pub fn new(key: &StreamKey, prefix: &EnvelopePrefix, backend: Backend) -> Result<Self> {
        Ok(Self {
            cipher: Cipher::new(backend, &key.key)?,
            counter: ChunkCounter::new(key),
            chunk_size: prefix.header().chunk_size(),
        })
    }

    /// The chunk size in bytes.
    #[must_use]
    pub const fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Whether the last chunk has been opened.
    #[must_use]
    pub const fn is_finished(&self) -> bool {
        self.counter.finished
    }

    /// Opens `ciphertext || tag` in place; returns the plaintext length.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the chunk is shorter than a tag; [`Error::Authentication`]
    /// for anything that does not authenticate, with no further detail.
    pub fn open_chunk(&mut self, chunk: &mut [u8], last: bool) -> Result<usize> {
        let pt_len = chunk.len().checked_sub(TAG_LEN).ok_or(Error::Truncated)?;
        if pt_len > self.chunk_size || (!last && pt_len != self.chunk_size) {
            return Err(Error::Authentication);
        }
        let nonce = self.counter.next_nonce(last)?;
        self.cipher.open(&nonce, &[], chunk)
    }

    /// Reserves `count` chunk indices for [`Self::open_at`]; the last is final if `ends`.
    pub(crate) fn reserve(&mut self, count: u64, ends: bool) -> Result<u64> {
        self.counter.reserve(count, ends)
    }

    /// Opens a chunk at an index obtained from [`Self::reserve`] (for parallel drivers).
    pub(crate) fn open_at(&self, index: u64, chunk: &mut [u8], last: bool) -> Result<usize> {
        let nonce = nonce_for(&self.counter.nonce_prefix, index, last);
        self.cipher.open(&nonce, &[], chunk)
    }

    /// Opens `ciphertext || tag` at a reserved index into `out` (`len - 16` bytes).
    pub(crate) fn open_at_into(
        &self,
        index: u64,
        sealed: &[u8],
        out: &mut [u8],
        last: bool,
    ) -> Result<()> {
        let nonce = nonce_for(&self.counter.nonce_prefix, index, last);
        self.cipher.open_into(&nonce, sealed, out)
    }
}

/// Reads until `buf` is full or the reader is exhausted; returns the bytes read.
pub(crate) fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The buffer side of sealing a stream, shared by the blocking and async drivers: one
/// buffer of `chunk_size + 16` bytes, whose byte after the chunk doubles as a look-ahead.
///
/// Each round the driver fills [`SealBuffer::read_region`] (up to `chunk_size + 1` bytes
/// with the carried byte; short only at end of input) and calls [`SealBuffer::seal`],
/// which seals the chunk in place and returns the bytes to write. A full region means
/// more input follows, so that chunk is not the last and its extra byte is carried over.
/// One read and one write per chunk, straight from and to this buffer.
pub struct SealBuffer {
    sealer: ChunkSealer,
    buf: Vec<u8>,
    carry: Option<u8>,
    start: usize,
}

impl SealBuffer {
    /// A buffer for `sealer`'s chunk size.
    #[must_use]
    pub fn new(sealer: ChunkSealer) -> Self {
        let cs = sealer.chunk_size();
        Self { sealer, buf: vec![0u8; cs + TAG_LEN], carry: None, start: 0 }
    }

    /// Where to read the next piece of plaintext into; fill it completely unless the
    /// input ends.
    pub fn read_region(&mut self) -> &mut [u8] {
        let cs = self.sealer.chunk_size();
        self.start = usize::from(self.carry.is_some());
        if let Some(b) = self.carry.take() {
            self.buf[0] = b;
        }
        &mut self.buf[self.start..=cs]
    }

    /// Seals what was read (`n` bytes into the region); returns the bytes to write, the
    /// plaintext length of the chunk, and whether it was the last.
    ///
    /// # Errors
    /// [`Error::TooManyChunks`] past 2^32 chunks; [`Error::Authentication`] if called
    /// again after the last chunk.
    pub fn seal(&mut self, n: usize) -> Result<(&[u8], usize, bool)> {
        let cs = self.sealer.chunk_size();
        let filled = self.start + n;
        let last = filled <= cs;
        let len = filled.min(cs);
        if !last {
            self.carry = Some(self.buf[cs]);
        }
        self.sealer.seal_chunk(&mut self.buf[..len + TAG_LEN], last)?;
        Ok((&self.buf[..len + TAG_LEN], len, last))
    }

    /// The sealer and the carried look-ahead byte, to continue with another driver.
    pub(crate) fn into_parts(self) -> (ChunkSealer, Option<u8>) {
        (self.sealer, self.carry)
    }
}

/// The buffer side of opening a stream, shared by the blocking and async drivers: one
/// buffer of `chunk_size + 16 + 1` bytes (chunk, tag, look-ahead).
pub struct OpenBuffer {
    opener: ChunkOpener,
    buf: Vec<u8>,
    carry: Option<u8>,
    start: usize,
}

impl OpenBuffer {
    /// A buffer for `opener`'s chunk size.
    #[must_use]
    pub fn new(opener: ChunkOpener) -> Self {
        let full = opener.chunk_size() + TAG_LEN;
        Self { opener, buf: vec![0u8; full + 1], carry: None, start: 0 }
    }

    /// Where to read the next piece of the body into; fill it completely unless the
    /// input ends.
    pub fn read_region(&mut self) -> &mut [u8] {
        let full = self.opener.chunk_size() + TAG_LEN;
        self.start = usize::from(self.carry.is_some());
        if let Some(b) = self.carry.take() {
            self.buf[0] = b;
        }
        &mut self.buf[self.start..=full]
    }

    /// Opens what was read (`n` bytes into the region); returns the authenticated
    /// plaintext and whether the chunk was the last.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the body ends inside a tag; [`Error::Authentication`] for
    /// anything that does not authenticate.
    pub fn open(&mut self, n: usize) -> Result<(&[u8], bool)> {
        let full = self.opener.chunk_size() + TAG_LEN;
        let filled = self.start + n;
        let last = filled <= full;
        if !last {
            self.carry = Some(self.buf[full]);
        }
        let len = self.opener.open_chunk(&mut self.buf[..filled.min(full)], last)?;
        Ok((&self.buf[..len], last))
    }

    /// The opener and the carried look-ahead byte, to continue with another driver.
    pub(crate) fn into_parts(self) -> (ChunkOpener, Option<u8>) {
        (self.opener, self.carry)
    }
}

/// Seals everything `input` yields, as chunks, into `output` (the prefix must already
/// have been written). Returns the number of plaintext bytes. Memory: one chunk.
///
/// # Errors
/// [`Error::Io`] from either side, [`Error::TooManyChunks`] past 2^32 chunks.
pub fn seal_stream(
    sealer: ChunkSealer,
    input: &mut impl Read,
    output: &mut impl Write,
) -> Result<u64> {
    let mut buf = SealBuffer::new(sealer);
    let mut total = 0u64;
    loop {
        let n = read_full(input, buf.read_region())?;
        let (out, len, last) = buf.seal(n)?;
        output.write_all(out)?;
        total += len as u64;
        if last {
            output.flush()?;
            return Ok(total);
        }
    }
}

/// Opens the chunks `input` yields (positioned after the prefix) into `output`. Returns
/// the number of plaintext bytes. Memory: one chunk.
///
/// Plaintext is written a chunk at a time as each chunk authenticates; the message as a
/// whole is authentic only when this returns `Ok`. Callers writing to a file should write
/// to a temporary and rename on success (the CLI does).
///
/// # Errors
/// [`Error::Truncated`] if the body ends inside a tag, [`Error::Authentication`] for any
/// chunk that fails (truncation at a chunk boundary, reordering, splicing, bit flips,
/// trailing bytes), [`Error::Io`] from either side.
pub fn open_stream(
    opener: ChunkOpener,
    input: &mut impl Read,
    output: &mut impl Write,
) -> Result<u64> {
    let mut buf = OpenBuffer::new(opener);
    let mut total = 0u64;
    loop {
        let n = read_full(input, buf.read_region())?;
        let (out, last) = buf.open(n)?;
        output.write_all(out)?;
        total += out.len() as u64;
        if last {
            output.flush()?;
            return Ok(total);
        }
    }
}

/// A `Write` adapter that seals what is written into an envelope body. Call
/// [`Encryptor::finish`] to seal the last chunk; dropping without it leaves a truncated
/// envelope that will not decrypt.
pub struct Encryptor<W: Write> {
    out: W,
    sealer: ChunkSealer,
    buf: Vec<u8>,
    pending: usize,
}

impl<W: Write> Encryptor<W> {
    /// Writes `prefix` to `out` and returns a writer for the body.
    ///
    /// # Errors
    /// [`Error::Io`] if writing the prefix fails.
    pub fn new(mut out: W, prefix: &EnvelopePrefix, sealer: ChunkSealer) -> Result<Self> {
        out.write_all(prefix.as_bytes())?;
        let cs = sealer.chunk_size();
        Ok(Self { out, sealer, buf: vec![0u8; cs + TAG_LEN], pending: 0 })
    }

    fn seal_pending(&mut self, last: bool) -> Result<()> {
        let n = self.pending + TAG_LEN;
        self.sealer.seal_chunk(&mut self.buf[..n], last)?;
        self.out.write_all(&self.buf[..n])?;
        self.pending = 0;
        Ok(())
    }

    /// Seals the last chunk, flushes, and returns the inner writer.
    ///
    /// # Errors
    /// [`Error::Io`] from the writer.
    pub fn finish(mut self) -> Result<W> {
        self.seal_pending(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        let cs = self.sealer.chunk_size();
        if self.pending == cs {
            // More data follows, so the buffered full chunk is not the last.
            self.seal_pending(false).map_err(into_io)?;
        }
        let n = data.len().min(cs - self.pending);
        self.buf[self.pending..self.pending + n].copy_from_slice(&data[..n]);
        self.pending += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn into_io(e: Error) -> io::Error {
    match e {
        Error::Io(e) => e,
        other => io::Error::other(other),
    }
}
