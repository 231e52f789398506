//! The key-file parsers (PROTOCOL.md §5) take any text without panicking, and whatever
//! they accept re-encodes to the same canonical line.
#![no_main]

use cifer_core::{EncapsulationKey, Seed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(seed) = Seed::from_identity_file(text) {
        assert_eq!(seed.to_identity_file().trim_end(), text.trim_end_matches('\n'));
    }
    if let Ok(ek) = EncapsulationKey::from_recipient_file(text) {
        assert_eq!(ek.to_recipient_file().trim_end(), text.trim_end_matches('\n'));
    }
});
