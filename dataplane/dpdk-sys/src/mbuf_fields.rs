//! The `rte_mbuf` fields the safe layer reads and writes, by name, on every supported DPDK.
//!
//! DPDK 24.11 wrapped them in anonymous unions (its marker fields became unions with the
//! field groups), so bindgen's Rust path to them differs: `m.data_off` up to 23.11,
//! `m.__bindgen_anon_1.__bindgen_anon_1.data_off` from 24.11. The build script looks at
//! the generated bindings and sets `fl_mbuf_unions` for the second layout; this module is
//! the only place that knows. The C shim needs nothing: C reaches the fields by name
//! through anonymous unions. `tests/layout.rs` checks every offset here against `offsetof`.

#![allow(unsafe_code)]

use crate::rte_mbuf;

macro_rules! fields {
    ($($get:ident, $set:ident, $off:ident: $ty:ty => $($path:ident).+;)*) => {
        $(
            #[doc = concat!("`", stringify!($get), "` of `m`.")]
            #[inline(always)]
            pub fn $get(m: &rte_mbuf) -> $ty {
                // SAFETY: where the path crosses a union, each of its members is plain
                // integer data that any bit pattern makes valid (DPDK's views of the same
                // bytes), and the offset is the C compiler's (tests/layout.rs).
                #[allow(unused_unsafe)]
                unsafe { m.$($path).+ }
            }
            #[doc = concat!("Sets `", stringify!($get), "` of `m`.")]
            #[inline(always)]
            pub fn $set(m: &mut rte_mbuf, v: $ty) {
                // SAFETY: as for the read; writing one member of such a union leaves the
                // others valid.
                #[allow(unused_unsafe)]
                unsafe { m.$($path).+ = v };
            }
            #[doc = concat!("Offset of `", stringify!($get), "` in `rte_mbuf`.")]
            pub const $off: usize = core::mem::offset_of!(rte_mbuf, $($path).+);
        )*
    };
}

#[cfg(not(fl_mbuf_unions))]
fields! {
    data_off, set_data_off, DATA_OFF: u16 => data_off;
    nb_segs, set_nb_segs, NB_SEGS: u16 => nb_segs;
    port, set_port, PORT: u16 => port;
    pkt_len, set_pkt_len, PKT_LEN: u32 => pkt_len;
    data_len, set_data_len, DATA_LEN: u16 => data_len;
    rss, set_rss, RSS: u32 => __bindgen_anon_2.hash.rss;
}

#[cfg(fl_mbuf_unions)]
fields! {
    data_off, set_data_off, DATA_OFF: u16 => __bindgen_anon_1.__bindgen_anon_1.data_off;
    nb_segs, set_nb_segs, NB_SEGS: u16 => __bindgen_anon_1.__bindgen_anon_1.nb_segs;
    port, set_port, PORT: u16 => __bindgen_anon_1.__bindgen_anon_1.port;
    pkt_len, set_pkt_len, PKT_LEN: u32 => __bindgen_anon_2.__bindgen_anon_1.pkt_len;
    data_len, set_data_len, DATA_LEN: u16 => __bindgen_anon_2.__bindgen_anon_1.data_len;
    rss, set_rss, RSS: u32 => __bindgen_anon_2.__bindgen_anon_1.__bindgen_anon_2.hash.rss;
}
