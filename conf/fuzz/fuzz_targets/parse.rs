//! Any bytes as a configuration file: `conf::parse` never panics, and every diagnostic names
//! the origin and a position inside the text, on one line (the same contract as the
//! proptest in conf/tests/fuzz.rs, driven by coverage instead of a grammar).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match conf::parse(text, "fuzz.toml") {
        Ok(config) => {
            let _ = config.summary();
        }
        Err(err) => {
            assert!(!err.diagnostics.is_empty());
            let lines = text.split('\n').count();
            for d in &err.diagnostics {
                assert_eq!(d.file, "fuzz.toml");
                assert!(d.line >= 1 && d.line <= lines, "{d} ({lines} lines)");
                assert!(d.column >= 1, "{d}");
                assert!(!d.message.is_empty());
                assert!(!d.to_string().contains('\n'), "{d:?}");
            }
        }
    }
});
