//! # cifer-async
//!
//! Tokio drivers for the CIFER v1 envelope (PROTOCOL.md §2): the same sans-I/O
//! [`ChunkSealer`]/[`ChunkOpener`] state machines as the blocking drivers in
//! `cifer_core::stream`, fed from `AsyncRead` and written to `AsyncWrite`. Memory is one
//! chunk buffer whatever the input length; output is byte-identical to the blocking
//! drivers for the same stream key.

use cifer_core::header::{EnvelopePrefix, HEADER_LEN, Header};
use cifer_core::stream::{ChunkOpener, ChunkSealer, OpenBuffer, SealBuffer};
use cifer_core::{Backend, EncapsulationKey, Error, Result, Seed, StreamKey, envelope};
use rand_core::CryptoRng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Seals everything `input` yields as chunks into `output`; returns the plaintext length.
/// One read and one write per chunk, through [`SealBuffer`].
///
/// # Errors
/// [`Error::Io`], [`Error::TooManyChunks`].
pub async fn seal_stream<R, W>(sealer: ChunkSealer, input: &mut R, output: &mut W) -> Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = SealBuffer::new(sealer);
    let mut total = 0u64;
    loop {
        let n = read_full(input, buf.read_region()).await?;
        let (out, len, last) = buf.seal(n)?;
        output.write_all(out).await?;
        total += len as u64;
        if last {
            output.flush().await?;
            return Ok(total);
        }
    }
}

/// Opens the chunks `input` yields into `output`; returns the plaintext length. As with
/// the blocking driver, the message is authentic only once this returns `Ok`.
///
/// # Errors
/// [`Error::Truncated`], [`Error::Authentication`], [`Error::Io`].
pub async fn open_stream<R, W>(opener: ChunkOpener, input: &mut R, output: &mut W) -> Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = OpenBuffer::new(opener);
    let mut total = 0u64;
    loop {
        let n = read_full(input, buf.read_region()).await?;
        let (out, last) = buf.open(n)?;
        output.write_all(out).await?;
        total += out.len() as u64;
        if last {
            output.flush().await?;
            return Ok(total);
        }
    }
}

/// Reads and validates the envelope prefix (header and encapsulation).
///
/// # Errors
/// The typed header errors of [`Header::decode`], [`Error::Truncated`], [`Error::Io`].
pub async fn read_prefix<R: AsyncRead + Unpin>(input: &mut R) -> Result<EnvelopePrefix> {
    let mut head = [0u8; HEADER_LEN];
    let n = read_full(input, &mut head).await?;
    let header = Header::decode(&head[..n])?;
    let mut bytes = vec![0u8; EnvelopePrefix::len_for(&header)];
    bytes[..HEADER_LEN].copy_from_slice(&head);
    if read_full(input, &mut bytes[HEADER_LEN..]).await? != bytes.len() - HEADER_LEN {
        return Err(Error::Truncated);
    }
    EnvelopePrefix::decode(&bytes).map(|(p, _)| p)
}

/// Encrypts `input` to `recipient` as one envelope on `output`, with OS randomness.
///
/// # Errors
/// As [`envelope::begin`] and [`seal_stream`].
pub async fn encrypt<R, W>(
    recipient: &EncapsulationKey,
    header: Header,
    input: &mut R,
    output: &mut W,
) -> Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (prefix, key) = envelope::begin(recipient, header)?;
    encrypt_body(&prefix, &key, input, output).await
}

/// [`encrypt`] with the encapsulation randomness from `rng`.
///
/// # Errors
/// As [`envelope::begin_with_rng`] and [`seal_stream`].
pub async fn encrypt_with_rng<R, W>(
    recipient: &EncapsulationKey,
    header: Header,
    rng: &mut impl CryptoRng,
    input: &mut R,
    output: &mut W,
) -> Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (prefix, key) = envelope::begin_with_rng(recipient, header, rng)?;
    encrypt_body(&prefix, &key, input, output).await
}

async fn encrypt_body<R, W>(
    prefix: &EnvelopePrefix,
    key: &StreamKey,
    input: &mut R,
    output: &mut W,
) -> Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    output.write_all(prefix.as_bytes()).await?;
    let sealer = ChunkSealer::new(key, prefix, Backend::fastest())?;
    seal_stream(sealer, input, output).await
}

/// Decrypts the body of an envelope whose prefix was already read, with a stream key
/// obtained elsewhere (the black box).
///
/// # Errors
/// As [`open_stream`].
pub async fn decrypt_body<R, W>(
    key: &StreamKey,
    prefix: &EnvelopePrefix,
    input: &mut R,
    output: &mut W,
) -> Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let opener = ChunkOpener::new(key, prefix, Backend::fastest())?;
    open_stream(opener, input, output).await
}

/// Decrypts a whole envelope with the secret's seed.
///
/// # Errors
/// As [`read_prefix`] and [`open_stream`].
pub async fn decrypt<R, W>(seed: &Seed, input: &mut R, output: &mut W) -> Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let prefix = read_prefix(input).await?;
    let key = seed.stream_key(&prefix)?;
    decrypt_body(&key, &prefix, input, output).await
}
