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

    fn next_nonce(&mut self, last: bool) -> Result<Nonce> {
        if self.finished {
            return Err(Error::Authentication);
        }
        if self.next >= MAX_CHUNKS {
            return Err(Error::TooManyChunks);
        }
        let mut nonce = [0u8; 12];
        nonce[..NONCE_PREFIX_LEN].copy_from_slice(&self.nonce_prefix);
        #[allow(clippy::cast_possible_truncation, reason = "checked against MAX_CHUNKS above")]
        nonce[NONCE_PREFIX_LEN..11].copy_from_slice(&(self.next as u32).to_be_bytes());
        nonce[11] = u8::from(last);
        self.next += 1;
        self.finished = last;
        Ok(nonce)
    }
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
}

/// Reads until `buf` is full or the reader is exhausted; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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

/// Seals everything `input` yields, as chunks, into `output` (the prefix must already
/// have been written). Returns the number of plaintext bytes.
///
/// One buffer of `chunk_size + 17` bytes: the extra byte is a look-ahead that tells a
/// full chunk that is last from one that is not.
///
/// # Errors
/// [`Error::Io`] from either side, [`Error::TooManyChunks`] past 2^32 chunks.
pub fn seal_stream(
    sealer: &mut ChunkSealer,
    input: &mut impl Read,
    output: &mut impl Write,
) -> Result<u64> {
    let cs = sealer.chunk_size();
    let mut buf = vec![0u8; cs + TAG_LEN + 1];
    let mut carry = 0usize;
    let mut total = 0u64;
    loop {
        let filled = carry + read_full(input, &mut buf[carry..cs])?;
        let last = filled < cs || read_full(input, &mut buf[cs + TAG_LEN..])? == 0;
        sealer.seal_chunk(&mut buf[..filled + TAG_LEN], last)?;
        output.write_all(&buf[..filled + TAG_LEN])?;
        total += filled as u64;
        if last {
            output.flush()?;
            return Ok(total);
        }
        buf[0] = buf[cs + TAG_LEN];
        carry = 1;
    }
}

/// Opens the chunks `input` yields (positioned after the prefix) into `output`. Returns
/// the number of plaintext bytes.
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
    opener: &mut ChunkOpener,
    input: &mut impl Read,
    output: &mut impl Write,
) -> Result<u64> {
    let full = opener.chunk_size() + TAG_LEN;
    let mut buf = vec![0u8; full + 1];
    let mut carry = 0usize;
    let mut total = 0u64;
    loop {
        let filled = carry + read_full(input, &mut buf[carry..full])?;
        let last = filled < full || read_full(input, &mut buf[full..])? == 0;
        let n = opener.open_chunk(&mut buf[..filled], last)?;
        output.write_all(&buf[..n])?;
        total += n as u64;
        if last {
            output.flush()?;
            return Ok(total);
        }
        buf[0] = buf[full];
        carry = 1;
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
