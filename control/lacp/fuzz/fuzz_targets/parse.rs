//! Every parser over arbitrary bytes: no panic, and whatever parses re-emits identically.
//! The body is `lacp::wire::fuzz_parse`, which the crate's proptest also runs on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lacp::wire::fuzz_parse(data);
});
