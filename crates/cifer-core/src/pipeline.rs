//! Parallel STREAM drivers (PROTOCOL.md §2.2): the same bytes as
//! [`seal_stream`](crate::stream::seal_stream) / [`open_stream`](crate::stream::open_stream),
//! faster on several cores.
//!
//! Chunks are independent once their index is fixed, so a batch of chunks is sealed or
//! opened by several threads while the calling thread writes the previous batch and reads
//! the next one. Three batch buffers of about 4 MiB rotate (reading → crypto → writing),
//! so memory stays near 12 MiB whatever the input length. Chunk indices are handed out by
//! the sealer's counter ([`ChunkSealer::reserve`]) exactly once each, so a (key, nonce)
//! pair can never repeat. Reader and writer are used only from the calling thread.
//! Chunks larger than 4 MiB fall back to the one-buffer sequential driver, which keeps
//! memory within two chunks.

use std::io::{Read, Write};
use std::thread;

use crate::error::{Error, Result};
use crate::header::TAG_LEN;
use crate::stream::{
    ChunkOpener, ChunkSealer, OpenBuffer, SealBuffer, open_stream, read_full, seal_stream,
};

/// Target plaintext bytes per batch.
pub(crate) const BATCH_BYTES: usize = 4 << 20;
/// Bytes handled by the one-chunk sequential buffer before switching to batches.
pub(crate) const WARM_UP_BYTES: usize = 1 << 20;

/// Worker threads to use: the machine's parallelism, at most 8.
#[must_use]
pub fn default_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

struct Batch {
    buf: Vec<u8>,
    /// Length of each chunk in the batch as read (plaintext for sealing, ciphertext+tag
    /// for opening), then as written.
    lens: Vec<usize>,
    /// Whether the batch ends the message.
    last: bool,
    base: u64,
}

impl Batch {
    fn new(len: usize, k: usize) -> Self {
        Self { buf: vec![0u8; len], lens: Vec::with_capacity(k), last: false, base: 0 }
    }
}

/// Runs `f(chunk_index_in_batch, slot)` over the first `n` slots of `buf`, split across
/// `threads` scoped threads in contiguous ranges, while `io` runs on the calling thread.
///
/// Returns the I/O error if `io` failed, else the first (lowest-index) chunk failure as
/// `Err((index, error))` so that callers can still release the chunks before it.
pub(crate) fn crypto_alongside<F, G>(
    buf: &mut [u8],
    slot: usize,
    n: usize,
    threads: usize,
    f: F,
    io: G,
) -> Result<Result<(), (usize, Error)>>
where
    F: Fn(usize, &mut [u8]) -> Result<()> + Sync,
    G: FnOnce() -> Result<()>,
{
    let per = n.div_ceil(threads.max(1)).max(1);
    thread::scope(|s| {
        let f = &f;
        let used = (n * slot).min(buf.len());
        let handles: Vec<_> = buf[..used]
            .chunks_mut(per * slot)
            .enumerate()
            .map(|(part, region)| {
                s.spawn(move || {
                    for (j, chunk) in region.chunks_mut(slot).enumerate() {
                        let index = part * per + j;
                        f(index, chunk).map_err(|e| (index, e))?;
                    }
                    Ok(())
                })
            })
            .collect();
        let io_result = io();
        let mut first: Result<(), (usize, Error)> = Ok(());
        for h in handles {
            // A worker only panics on a bug; count it as a failure of its range.
            let r = h.join().unwrap_or(Err((0, Error::Authentication)));
            if let Err((j, e)) = r
                && first.as_ref().err().is_none_or(|(k, _)| j < *k)
            {
                first = Err((j, e));
            }
        }
        io_result.map(|()| first)
    })
}

/// Parallel [`seal_stream`]: identical output. Returns the plaintext length.
///
/// # Errors
/// As [`seal_stream`].
pub fn seal_stream_parallel(
    sealer: ChunkSealer,
    input: &mut impl Read,
    output: &mut impl Write,
    threads: usize,
) -> Result<u64> {
    let cs = sealer.chunk_size();
    if threads < 2 || cs > BATCH_BYTES {
        return seal_stream(sealer, input, output);
    }
    // Small messages never pay for batch buffers or threads: the first WARM_UP_BYTES go
    // through the one-chunk buffer, and only a longer stream switches to batches.
    let mut first = SealBuffer::new(sealer);
    let mut total = 0u64;
    for _ in 0..(WARM_UP_BYTES / cs).max(1) {
        let n = read_full(input, first.read_region())?;
        let (out, len, last) = first.seal(n)?;
        output.write_all(out)?;
        total += len as u64;
        if last {
            output.flush()?;
            return Ok(total);
        }
    }
    let (mut sealer, mut carry) = first.into_parts();
    let slot = cs + TAG_LEN;
    let k = BATCH_BYTES / cs;
    // Reads up to k chunks into their slots: one read of cs + 1 bytes per chunk, the
    // extra byte (landing in the tag area) being the look-ahead that says more follows.
    let mut fill = |b: &mut Batch, input: &mut dyn Read| -> Result<()> {
        b.lens.clear();
        b.last = false;
        for j in 0..k {
            let at = j * slot;
            let start = usize::from(carry.is_some());
            if let Some(byte) = carry.take() {
                b.buf[at] = byte;
            }
            let filled = start + read_full(input, &mut b.buf[at + start..=at + cs])?;
            b.lens.push(filled.min(cs));
            if filled <= cs {
                b.last = true;
                return Ok(());
            }
            carry = Some(b.buf[at + cs]);
        }
        Ok(())
    };
    // Sealed slots are contiguous: every chunk but the batch's last is full, so a
    // batch goes out in one write.
    let write = |b: &Batch, output: &mut dyn Write| -> Result<()> {
        let n = b.lens.len();
        let end = (n - 1) * slot + b.lens[n - 1] + TAG_LEN;
        output.write_all(&b.buf[..end])?;
        Ok(())
    };
    let (mut reading, mut sealing, mut writing) =
        (Batch::new(k * slot, k), Batch::new(k * slot, k), Batch::new(k * slot, k));
    fill(&mut sealing, input)?;
    let mut pending_write = false;
    loop {
        let n = sealing.lens.len();
        sealing.base = sealer.reserve(n as u64, sealing.last)?;
        let (base, last, lens) = (sealing.base, sealing.last, sealing.lens.clone());
        let sealer_ref = &sealer;
        let more = !sealing.last;
        crypto_alongside(
            &mut sealing.buf,
            slot,
            n,
            threads,
            |j, chunk| {
                let is_last = last && j + 1 == n;
                sealer_ref.seal_at(base + j as u64, &mut chunk[..lens[j] + TAG_LEN], is_last)
            },
            || {
                if pending_write {
                    write(&writing, output)?;
                }
                if more {
                    fill(&mut reading, input)?;
                }
                Ok(())
            },
        )?
        .map_err(|(_, e)| e)?;
        total += sealing.lens.iter().map(|l| *l as u64).sum::<u64>();
        if sealing.last {
            write(&sealing, output)?;
            output.flush()?;
            return Ok(total);
        }
        // Rotate: sealed → writing, read → sealing, written → reading.
        std::mem::swap(&mut writing, &mut sealing);
        std::mem::swap(&mut sealing, &mut reading);
        pending_write = true;
    }
}

/// Parallel [`open_stream`]: identical output and errors. Plaintext of a batch is written
/// only after every chunk of that batch (and all before it) authenticated.
///
/// # Errors
/// As [`open_stream`].
pub fn open_stream_parallel(
    opener: ChunkOpener,
    input: &mut impl Read,
    output: &mut impl Write,
    threads: usize,
) -> Result<u64> {
    let cs = opener.chunk_size();
    if threads < 2 || cs > BATCH_BYTES {
        return open_stream(opener, input, output);
    }
    let mut first = OpenBuffer::new(opener);
    let mut total = 0u64;
    for _ in 0..(WARM_UP_BYTES / cs).max(1) {
        let n = read_full(input, first.read_region())?;
        let (out, last) = first.open(n)?;
        output.write_all(out)?;
        total += out.len() as u64;
        if last {
            output.flush()?;
            return Ok(total);
        }
    }
    let (mut opener, mut carry) = first.into_parts();
    let slot = cs + TAG_LEN;
    let k = BATCH_BYTES / cs;
    // One contiguous read of up to k slots plus a look-ahead byte.
    let mut fill = |b: &mut Batch, input: &mut dyn Read| -> Result<()> {
        b.lens.clear();
        let start = usize::from(carry.is_some());
        if let Some(byte) = carry.take() {
            b.buf[0] = byte;
        }
        let filled = start + read_full(input, &mut b.buf[start..=k * slot])?;
        b.last = filled <= k * slot;
        if !b.last {
            carry = Some(b.buf[k * slot]);
            b.lens.resize(k, slot);
            return Ok(());
        }
        // The final batch: full slots, then the remainder (or a full slot) as the last
        // chunk. An empty body still has one (empty) last chunk, which must hold a tag.
        let n = filled.div_ceil(slot).max(1);
        b.lens.resize(n, slot);
        b.lens[n - 1] = filled - (n - 1) * slot;
        Ok(())
    };
    let write = |b: &Batch, output: &mut dyn Write| -> Result<()> {
        for (j, len) in b.lens.iter().enumerate() {
            output.write_all(&b.buf[j * slot..j * slot + len])?;
        }
        Ok(())
    };
    let (mut reading, mut opening, mut writing) =
        (Batch::new(k * slot + 1, k), Batch::new(k * slot + 1, k), Batch::new(k * slot + 1, k));
    fill(&mut opening, input)?;
    let mut pending_write = false;
    loop {
        let n = opening.lens.len();
        if opening.last && opening.lens[n - 1] < TAG_LEN {
            return Err(Error::Truncated);
        }
        let base = opener.reserve(n as u64, opening.last)?;
        let (last, lens) = (opening.last, opening.lens.clone());
        let opener_ref = &opener;
        let more = !opening.last;
        let opened = crypto_alongside(
            &mut opening.buf,
            slot,
            n,
            threads,
            |j, chunk| {
                let is_last = last && j + 1 == n;
                opener_ref.open_at(base + j as u64, &mut chunk[..lens[j]], is_last).map(|_| ())
            },
            || {
                if pending_write {
                    write(&writing, output)?;
                }
                if more {
                    fill(&mut reading, input)?;
                }
                Ok(())
            },
        )?;
        for len in &mut opening.lens {
            *len = len.saturating_sub(TAG_LEN);
        }
        if let Err((bad, e)) = opened {
            // Release what authenticated before the failing chunk, as the sequential
            // driver does, then fail.
            opening.lens.truncate(bad);
            write(&opening, output)?;
            output.flush()?;
            return Err(e);
        }
        total += opening.lens.iter().map(|l| *l as u64).sum::<u64>();
        if opening.last {
            write(&opening, output)?;
            output.flush()?;
            return Ok(total);
        }
        std::mem::swap(&mut writing, &mut opening);
        std::mem::swap(&mut opening, &mut reading);
        pending_write = true;
    }
}

/// Seals a whole in-memory plaintext onto the end of `out` (which already holds the
/// envelope prefix): [`seal_slice_into`] on `out` grown by the sealed body's length, the
/// chunks spread over `threads` threads. Same bytes as [`seal_stream`]. When sealing
/// fails, `out` is left as it was.
///
/// # Errors
/// [`Error::TooManyChunks`] past 2^32 chunks.
pub fn seal_slice(
    sealer: ChunkSealer,
    plaintext: &[u8],
    out: &mut Vec<u8>,
    threads: usize,
) -> Result<()> {
    let n = plaintext.len().div_ceil(sealer.chunk_size()).max(1);
    let start = out.len();
    out.resize(start + plaintext.len() + n * TAG_LEN, 0);
    let sealed = seal_slice_into(sealer, plaintext, &mut out[start..], threads);
    if sealed.is_err() {
        out.truncate(start); // no half-sealed body is left behind
    }
    sealed
}

/// The plaintext of each of the `n` chunks (an empty message has one empty chunk).
fn chunks_of(plaintext: &[u8], cs: usize, n: usize) -> impl Iterator<Item = &[u8]> {
    (0..n).map(move |i| {
        &plaintext[(i * cs).min(plaintext.len())..((i + 1) * cs).min(plaintext.len())]
    })
}

/// Seals a whole in-memory plaintext into `body`, which must be exactly the sealed body's
/// length (`sealed_len` minus the prefix; anything it held is overwritten). The chunks are
/// split into `threads` contiguous runs, and each thread copies its chunks into place and
/// seals each one while it is in cache: the plaintext is read once and the envelope
/// written once, by the thread that seals it. Reusing one `body` across calls keeps its
/// pages mapped. Same bytes as [`seal_stream`].
///
/// # Errors
/// [`Error::TooManyChunks`] past 2^32 chunks; [`Error::Malformed`] (nothing sealed) if
/// `body` has the wrong length.
pub fn seal_slice_into(
    mut sealer: ChunkSealer,
    plaintext: &[u8],
    body: &mut [u8],
    threads: usize,
) -> Result<()> {
    let cs = sealer.chunk_size();
    let n = plaintext.len().div_ceil(cs).max(1);
    let expected = plaintext.len() + n * TAG_LEN;
    if body.len() != expected {
        return Err(Error::Malformed { what: "sealed body buffer", expected, got: body.len() });
    }
    let base = sealer.reserve(n as u64, true)?;
    let slot = cs + TAG_LEN;
    let per = n.div_ceil(threads.max(1)).max(1);
    let sealer = &sealer;
    let seal_run = move |run: usize, region: &mut [u8]| -> Result<()> {
        let first = run * per;
        let texts = chunks_of(plaintext, cs, n).skip(first);
        for (j, (place, text)) in region.chunks_mut(slot).zip(texts).enumerate() {
            let i = first + j;
            place[..text.len()].copy_from_slice(text);
            sealer.seal_at(base + i as u64, place, i + 1 == n)?;
        }
        Ok(())
    };
    if per >= n {
        return seal_run(0, body);
    }
    thread::scope(|s| {
        let handles: Vec<_> = body
            .chunks_mut(per * slot)
            .enumerate()
            .map(|(run, region)| s.spawn(move || seal_run(run, region)))
            .collect();
        handles.into_iter().try_for_each(|h| h.join().unwrap_or(Err(Error::Authentication)))
    })
}

/// Opens a whole in-memory envelope body (everything after the prefix): out of place,
/// chunks spread over `threads` threads. All or nothing: any failing chunk fails the
/// message and no plaintext is returned. Same errors as [`open_stream`].
///
/// # Errors
/// [`Error::Truncated`] for a body that ends inside a tag; [`Error::Authentication`].
pub fn open_slice(mut opener: ChunkOpener, body: &[u8], threads: usize) -> Result<Vec<u8>> {
    let full = opener.chunk_size() + TAG_LEN;
    let n = body.len().div_ceil(full).max(1);
    let last_len = body.len() - (n - 1) * full;
    if last_len < TAG_LEN {
        return Err(Error::Truncated);
    }
    let base = opener.reserve(n as u64, true)?;
    let mut out = vec![0u8; body.len() - n * TAG_LEN];
    let cs = opener.chunk_size();
    let per = n.div_ceil(threads.max(1)).max(1);
    let opener = &opener;
    // Split the output by chunk ranges, not by bytes: an empty last chunk (or an empty
    // message) has no output bytes but must still be authenticated.
    let parts = n.div_ceil(per);
    let mut regions = Vec::with_capacity(parts);
    let mut rest = &mut out[..];
    for _ in 0..parts {
        let (region, tail) = rest.split_at_mut((per * cs).min(rest.len()));
        regions.push(region);
        rest = tail;
    }
    let open_range = move |part: usize, region: &mut [u8]| -> Result<(), (usize, Error)> {
        for j in 0..per {
            let i = part * per + j;
            if i >= n {
                break;
            }
            let src = &body[i * full..((i + 1) * full).min(body.len())];
            let lo = j * cs;
            let hi = lo + src.len() - TAG_LEN;
            opener
                .open_at_into(base + i as u64, src, &mut region[lo..hi], i + 1 == n)
                .map_err(|e| (i, e))?;
        }
        Ok(())
    };
    // One part (every small message): on this thread, as `seal_slice_into` does.
    let first_failure = if let [region] = regions.as_mut_slice() {
        open_range(0, region)
    } else {
        thread::scope(|s| {
            let handles: Vec<_> = regions
                .into_iter()
                .enumerate()
                .map(|(part, region)| s.spawn(move || open_range(part, region)))
                .collect();
            let mut first: Result<(), (usize, Error)> = Ok(());
            for h in handles {
                if let Err((i, e)) = h.join().unwrap_or(Err((0, Error::Authentication)))
                    && first.as_ref().err().is_none_or(|(k, _)| i < *k)
                {
                    first = Err((i, e));
                }
            }
            first
        })
    };
    first_failure.map_err(|(_, e)| e)?;
    Ok(out)
}
