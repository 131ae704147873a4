#![forbid(unsafe_code)]
//! fastlag configuration.
