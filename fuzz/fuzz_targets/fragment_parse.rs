//! Fragment and commitment parsers take any bytes without panicking; parsed values
//! re-encode to the same bytes.
#![no_main]

use cifer_core::{Commitments, Fragment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = Fragment::from_bytes(data) {
        assert_eq!(&f.to_bytes()[..], data);
    }
    if let Ok(c) = Commitments::from_bytes(data) {
        assert_eq!(c.to_bytes(), data);
    }
});
