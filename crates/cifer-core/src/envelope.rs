//! Envelope v1, suite 0x01 (ML-KEM-768), end to end: PROTOCOL.md §2.

use std::io::{Read, Write};

use rand_core::CryptoRng;

use crate::aead::Backend;
use crate::error::{Error, Result};
use crate::header::{EnvelopePrefix, HEADER_LEN, Header};
use crate::keys::{DecapsulationKey, EncapsulationKey, Seed, SharedSecret};
use crate::pipeline::{
    default_threads, open_slice, open_stream_parallel, seal_slice_into, seal_stream_parallel,
};
use crate::positional::{ReadAt, ReadFrom, open_positional, seal_positional};
use crate::schedule::StreamKey;
use crate::stream::{ChunkOpener, ChunkSealer, read_full};
use crate::suite::Suite;

/// Starts a suite 0x01 envelope to `recipient`: a fresh ML-KEM encapsulation with OS
/// randomness through the fastest ML-KEM backend compiled in, the prefix and the stream
/// key derived from it.
///
/// # Errors
/// [`Error::UnsupportedSuite`] unless `header.suite` is 0x01; [`Error::Rng`].
pub fn begin(recipient: &EncapsulationKey, header: Header) -> Result<(EnvelopePrefix, StreamKey)> {
    if header.suite != Suite::MlKem768 {
        return Err(Error::UnsupportedSuite(header.suite));
    }
    let (ct, ss) = recipient.encapsulate_os()?;
    finish_begin(header, &ct[..], &ss)
}

/// Like [`begin`], with the encapsulation randomness drawn from `rng` by the RustCrypto
/// ML-KEM backend (reproducible tests and simulations).
///
/// # Errors
/// [`Error::UnsupportedSuite`] unless `header.suite` is 0x01.
pub fn begin_with_rng(
    recipient: &EncapsulationKey,
    header: Header,
    rng: &mut impl CryptoRng,
) -> Result<(EnvelopePrefix, StreamKey)> {
    if header.suite != Suite::MlKem768 {
        return Err(Error::UnsupportedSuite(header.suite));
    }
    let (ct, ss) = recipient.encapsulate(rng);
    finish_begin(header, &ct[..], &ss)
}

/// Like [`begin`] with the ML-KEM encapsulation randomness `m` given: for known-answer
/// vectors only. Reusing `m` reuses the key and nonces and destroys confidentiality.
///
/// # Errors
/// As [`begin`].
#[cfg(feature = "hazmat")]
pub fn begin_deterministic(
    recipient: &EncapsulationKey,
    header: Header,
    m: &[u8; 32],
) -> Result<(EnvelopePrefix, StreamKey)> {
    if header.suite != Suite::MlKem768 {
        return Err(Error::UnsupportedSuite(header.suite));
    }
    let (ct, ss) = recipient.encapsulate_deterministic(m);
    finish_begin(header, &ct[..], &ss)
}

fn finish_begin(
    header: Header,
    ct: &[u8],
    ss: &SharedSecret,
) -> Result<(EnvelopePrefix, StreamKey)> {
    let prefix = EnvelopePrefix::new(header, ct)?;
    let key = StreamKey::derive(ss.as_bytes(), &prefix)?;
    Ok((prefix, key))
}

impl Seed {
    /// Derives the stream key of a suite 0x01 envelope: decapsulate, then §2.1.
    ///
    /// # Errors
    /// [`Error::UnsupportedSuite`] for other suites.
    pub fn stream_key(&self, prefix: &EnvelopePrefix) -> Result<StreamKey> {
        self.decapsulation_key().stream_key(prefix)
    }
}

impl DecapsulationKey {
    /// [`Seed::stream_key`] with the key already derived (for several envelopes to the
    /// same key: the derivation is the larger part of the cost).
    ///
    /// # Errors
    /// [`Error::UnsupportedSuite`] for other suites.
    pub fn stream_key(&self, prefix: &EnvelopePrefix) -> Result<StreamKey> {
        let ct = match prefix.header().suite {
            Suite::MlKem768 => prefix.encapsulation(),
            other => return Err(Error::UnsupportedSuite(other)),
        };
        let ss = self.decapsulate(ct)?;
        StreamKey::derive(ss.as_bytes(), prefix)
    }
}

/// Reads and validates the prefix (header, then encapsulation) from the front of a stream.
///
/// # Errors
/// The typed header errors, [`Error::Truncated`], [`Error::InvalidPoint`], [`Error::Io`].
pub fn read_prefix(input: &mut impl Read) -> Result<EnvelopePrefix> {
    let mut head = [0u8; HEADER_LEN];
    let n = read_full(input, &mut head)?;
    let header = Header::decode(&head[..n])?;
    let mut bytes = vec![0u8; EnvelopePrefix::len_for(&header)];
    bytes[..HEADER_LEN].copy_from_slice(&head);
    let got = read_full(input, &mut bytes[HEADER_LEN..])?;
    if got != bytes.len() - HEADER_LEN {
        return Err(Error::Truncated);
    }
    EnvelopePrefix::decode(&bytes).map(|(p, _)| p)
}

/// Encrypts everything `input` yields into an envelope on `output`, with OS randomness
/// ([`begin`]). Returns the number of plaintext bytes.
///
/// # Errors
/// [`Error::UnsupportedSuite`] unless suite 0x01; [`Error::Io`]; [`Error::TooManyChunks`].
pub fn encrypt(
    recipient: &EncapsulationKey,
    header: Header,
    input: &mut impl Read,
    output: &mut impl Write,
) -> Result<u64> {
    let (prefix, key) = begin(recipient, header)?;
    encrypt_body(&prefix, &key, input, output)
}

/// [`encrypt`] with the encapsulation randomness from `rng` ([`begin_with_rng`]).
///
/// # Errors
/// As [`encrypt`].
pub fn encrypt_with_rng(
    recipient: &EncapsulationKey,
    header: Header,
    rng: &mut impl CryptoRng,
    input: &mut impl Read,
    output: &mut impl Write,
) -> Result<u64> {
    let (prefix, key) = begin_with_rng(recipient, header, rng)?;
    encrypt_body(&prefix, &key, input, output)
}

fn encrypt_body(
    prefix: &EnvelopePrefix,
    key: &StreamKey,
    input: &mut impl Read,
    output: &mut impl Write,
) -> Result<u64> {
    output.write_all(prefix.as_bytes())?;
    let sealer = ChunkSealer::new(key, prefix, Backend::fastest())?;
    seal_stream_parallel(sealer, input, output, default_threads())
}

/// Decrypts an envelope with a stream key obtained elsewhere (from the black box),
/// `input` positioned after the prefix.
///
/// # Errors
/// As [`open_stream`].
pub fn decrypt_body(
    key: &StreamKey,
    prefix: &EnvelopePrefix,
    input: &mut impl Read,
    output: &mut impl Write,
) -> Result<u64> {
    let opener = ChunkOpener::new(key, prefix, Backend::fastest())?;
    open_stream_parallel(opener, input, output, default_threads())
}

/// Decrypts a whole envelope with the secret's seed (local identity file).
///
/// # Errors
/// As [`read_prefix`] and [`open_stream`].
pub fn decrypt(seed: &Seed, input: &mut impl Read, output: &mut impl Write) -> Result<u64> {
    let prefix = read_prefix(input)?;
    let key = seed.stream_key(&prefix)?;
    decrypt_body(&key, &prefix, input, output)
}

/// [`encrypt`] for input that can be read by offset (a regular file): the `len` bytes of
/// `input` from `start` on, read by the worker threads themselves
/// ([`seal_positional`]), so that the calling thread only writes. Same envelope format;
/// exactly `len` bytes are sealed.
///
/// # Errors
/// As [`encrypt`]; [`Error::Io`] (`UnexpectedEof`) if the input ends before `len` bytes.
pub fn encrypt_positional<R: ReadAt + ?Sized>(
    recipient: &EncapsulationKey,
    header: Header,
    input: &R,
    start: u64,
    len: u64,
    output: &mut impl Write,
) -> Result<u64> {
    let (prefix, key) = begin(recipient, header)?;
    output.write_all(prefix.as_bytes())?;
    let sealer = ChunkSealer::new(&key, &prefix, Backend::fastest())?;
    seal_positional(sealer, input, start, len, output, positional_workers())
}

/// [`decrypt_body`] for a body held in `input` from `start` to `end` (a regular file, the
/// prefix already read), with a stream key obtained elsewhere; the body is read by the
/// worker threads themselves ([`open_positional`]).
///
/// # Errors
/// As [`decrypt_body`].
pub fn decrypt_body_positional<R: ReadAt + ?Sized>(
    key: &StreamKey,
    prefix: &EnvelopePrefix,
    input: &R,
    start: u64,
    end: u64,
    output: &mut impl Write,
) -> Result<u64> {
    let opener = ChunkOpener::new(key, prefix, Backend::fastest())?;
    let len = end.checked_sub(start).ok_or(Error::Truncated)?;
    open_positional(opener, input, start, len, output, positional_workers())
}

/// [`decrypt`] of the envelope held in `input` from `start` to `end` (a regular file and
/// its length), the body read by the worker threads themselves ([`open_positional`]).
/// Same results and errors as [`decrypt`] over those bytes.
///
/// # Errors
/// As [`decrypt`].
pub fn decrypt_positional<R: ReadAt + ?Sized>(
    seed: &Seed,
    input: &R,
    start: u64,
    end: u64,
    output: &mut impl Write,
) -> Result<u64> {
    let mut reader = ReadFrom::new(input, start);
    let prefix = read_prefix(&mut reader)?;
    let key = seed.stream_key(&prefix)?;
    decrypt_body_positional(&key, &prefix, input, reader.position(), end, output)
}

/// Encrypts a byte slice into a new envelope, with OS randomness.
///
/// # Errors
/// As [`encrypt`].
pub fn seal(recipient: &EncapsulationKey, header: Header, plaintext: &[u8]) -> Result<Vec<u8>> {
    let (prefix, key) = begin(recipient, header)?;
    seal_prepared(&prefix, &key, plaintext)
}

fn seal_prepared(prefix: &EnvelopePrefix, key: &StreamKey, plaintext: &[u8]) -> Result<Vec<u8>> {
    // Zeroed by the allocator (fresh pages from the OS for a large message), so sizing
    // the output costs no separate fill pass.
    let mut out = vec![0u8; sealed_len(prefix.header(), plaintext.len())];
    write_sealed(prefix, key, plaintext, &mut out)?;
    Ok(out)
}

/// Writes the envelope into `out`, which is exactly [`sealed_len`] long.
fn write_sealed(
    prefix: &EnvelopePrefix,
    key: &StreamKey,
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let (head, body) = out.split_at_mut(prefix.as_bytes().len());
    head.copy_from_slice(prefix.as_bytes());
    let sealer = ChunkSealer::new(key, prefix, Backend::fastest())?;
    seal_slice_into(sealer, plaintext, body, slice_threads(plaintext.len()))
}

fn seal_prepared_into(
    prefix: &EnvelopePrefix,
    key: &StreamKey,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    // Resized, not cleared: every byte is overwritten, and a buffer reused across calls
    // is neither refilled nor refaulted.
    out.resize(sealed_len(prefix.header(), plaintext.len()), 0);
    write_sealed(prefix, key, plaintext, out)
}

/// [`seal`] into a caller-owned buffer (its contents replaced), so that a loop sealing
/// many messages reuses one allocation and its already-mapped pages.
///
/// # Errors
/// As [`encrypt`].
pub fn seal_into(
    recipient: &EncapsulationKey,
    header: Header,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    let (prefix, key) = begin(recipient, header)?;
    seal_prepared_into(&prefix, &key, plaintext, out)
}

/// Threads for an in-memory message: one below 1 MiB (thread start-up would dominate).
fn slice_threads(len: usize) -> usize {
    if len < (1 << 20) { 1 } else { default_threads() }
}

/// [`seal`] with the encapsulation randomness from `rng`.
///
/// # Errors
/// As [`encrypt`].
pub fn seal_with_rng(
    recipient: &EncapsulationKey,
    header: Header,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>> {
    let (prefix, key) = begin_with_rng(recipient, header, rng)?;
    seal_prepared(&prefix, &key, plaintext)
}

/// The exact length of an envelope holding `len` plaintext bytes.
#[must_use]
pub fn sealed_len(header: &Header, len: usize) -> usize {
    let chunks = len.div_ceil(header.chunk_size()).max(1);
    EnvelopePrefix::len_for(header) + len + chunks * crate::header::TAG_LEN
}

/// Decrypts a whole in-memory envelope.
///
/// # Errors
/// As [`decrypt`].
pub fn open(seed: &Seed, envelope: &[u8]) -> Result<Vec<u8>> {
    open_with_key(&seed.decapsulation_key(), envelope)
}

/// [`open`] with the decapsulation key already derived.
///
/// # Errors
/// As [`decrypt`].
pub fn open_with_key(key: &DecapsulationKey, envelope: &[u8]) -> Result<Vec<u8>> {
    let (prefix, used) = EnvelopePrefix::decode(envelope)?;
    let stream = key.stream_key(&prefix)?;
    open_body(&stream, &prefix, &envelope[used..])
}

/// Opens an in-memory envelope body (after the prefix) with a stream key obtained
/// elsewhere (the black box). All or nothing.
///
/// # Errors
/// [`Error::Truncated`], [`Error::Authentication`].
pub fn open_body(key: &StreamKey, prefix: &EnvelopePrefix, body: &[u8]) -> Result<Vec<u8>> {
    let opener = ChunkOpener::new(key, prefix, Backend::fastest())?;
    open_slice(opener, body, slice_threads(body.len()))
}

/// Worker threads for the positional drivers: one core is left to the calling thread,
/// which writes the output meanwhile (0 on one core: the sequential driver).
fn positional_workers() -> usize {
    default_threads().saturating_sub(1)
}
