#![forbid(unsafe_code)]
//! fastlag control plane.
