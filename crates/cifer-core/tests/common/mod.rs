//! What the driver tests (`pipeline.rs`, `positional.rs`) share: one fixed envelope key,
//! a deterministic plaintext, and the sequential sealer they are all compared against.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation, reason = "tests")]

use cifer_core::stream::{ChunkSealer, seal_stream};
use cifer_core::{Backend, EnvelopePrefix, Header, Seed, StreamKey, Suite, envelope};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub(crate) const MIB: usize = 1 << 20;

/// The prefix and stream key of an envelope with chunks of `2^log2` bytes (fixed seeds).
pub(crate) fn setup(log2: u8) -> (EnvelopePrefix, StreamKey) {
    let seed = Seed::generate(&mut ChaCha20Rng::seed_from_u64(1));
    let header = Header::new(Suite::MlKem768, log2, 5, [9u8; 32]).unwrap();
    envelope::begin_with_rng(&seed.encapsulation_key(), header, &mut ChaCha20Rng::seed_from_u64(2))
        .unwrap()
}

/// `len` bytes of a pattern that does not repeat at chunk or batch boundaries.
pub(crate) fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
}

/// The body the sequential driver seals from `pt`.
pub(crate) fn sequential(prefix: &EnvelopePrefix, key: &StreamKey, pt: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    seal_stream(ChunkSealer::new(key, prefix, Backend::fastest()).unwrap(), &mut &pt[..], &mut out)
        .unwrap();
    out
}
