//! # cifer-async
//!
//! Tokio drivers for the CIFER v1 envelope (PROTOCOL.md §2): the same sans-I/O
//! [`ChunkSealer`]/[`ChunkOpener`] state machines as the blocking drivers in
//! `cifer_core::stream`, fed from `AsyncRead` and written to `AsyncWrite`. Memory is one
//! chunk buffer whatever the input length; output is byte-identical to the blocking
//! drivers for the same stream key.

use cifer_core::header::{EnvelopePrefix, HEADER_LEN, Header, TAG_LEN};
use cifer_core::stream::{ChunkOpener, ChunkSealer};
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
///
/// # Errors
/// [`Error::Io`], [`Error::TooManyChunks`].
pub async fn seal_stream<R, W>(
    sealer: &mut ChunkSealer,
    input: &mut R,
    output: &mut W,
) -> Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let cs = sealer.chunk_size();
    let mut buf = vec![0u8; cs + TAG_LEN + 1];
    let (mut carry, mut total) = (0usize, 0u64);
    loop {
        let filled = carry + read_full(input, &mut buf[carry..cs]).await?;
        let last = filled < cs || read_full(input, &mut buf[cs + TAG_LEN..]).await? == 0;
        sealer.seal_chunk(&mut buf[..filled + TAG_LEN], last)?;
        output.write_all(&buf[..filled + TAG_LEN]).await?;
        total += filled as u64;
        if last {
            output.flush().await?;
            return Ok(total);
        }
        buf[0] = buf[cs + TAG_LEN];
        carry = 1;
    }
}

/// Opens the chunks `input` yields into `output`; returns the plaintext length. As with
/// the blocking driver, the message is authentic only once this returns `Ok`.
///
/// # Errors
/// [`Error::Truncated`], [`Error::Authentication`], [`Error::Io`].
pub async fn open_stream<R, W>(
    opener: &mut ChunkOpener,
    input: &mut R,
    output: &mut W,
) -> Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let full = opener.chunk_size() + TAG_LEN;
    let mut buf = vec![0u8; full + 1];
    let (mut carry, mut total) = (0usize, 0u64);
    loop {
        let filled = carry + read_full(input, &mut buf[carry..full]).await?;
        let last = filled < full || read_full(input, &mut buf[full..]).await? == 0;
        let n = opener.open_chunk(&mut buf[..filled], last)?;
        output.write_all(&buf[..n]).await?;
        total += n as u64;
        if last {
            output.flush().await?;
            return Ok(total);
        }
        buf[0] = buf[full];
        carry = 1;
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

/// Encrypts `input` to `recipient` as one envelope on `output`.
///
/// # Errors
/// As [`envelope::begin`] and [`seal_stream`].
pub async fn encrypt<R, W>(
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
    let (prefix, key) = envelope::begin(recipient, header, rng)?;
    output.write_all(prefix.as_bytes()).await?;
    let mut sealer = ChunkSealer::new(&key, &prefix, Backend::fastest())?;
    seal_stream(&mut sealer, input, output).await
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
    let mut opener = ChunkOpener::new(key, prefix, Backend::fastest())?;
    open_stream(&mut opener, input, output).await
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
