//! fastlag dataplane
