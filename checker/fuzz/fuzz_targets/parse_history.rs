//! Any input, in every format: `parse_history` must return, never panic.
#![no_main]

use checker::import::{parse_history, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in Format::ALL {
        let _ = parse_history(data, "fuzz", format);
    }
});
