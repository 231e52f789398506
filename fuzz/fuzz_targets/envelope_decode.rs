//! Any byte string fed to the envelope decoder returns a typed error or a plaintext; it
//! never panics, and with a fixed identity it never authenticates forged input.
#![no_main]

use cifer_core::{EnvelopePrefix, Seed, envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = EnvelopePrefix::decode(data);
    let seed = Seed::from_bytes([7u8; 64]);
    if let Ok(pt) = envelope::open(&seed, data) {
        // Forging an envelope to a key the fuzzer does not have means breaking ML-KEM or
        // AES-GCM: treat success as a finding.
        panic!("forged envelope authenticated ({} bytes)", pt.len());
    }
});
