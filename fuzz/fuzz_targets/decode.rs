//! The protocol decoder on any input: never panics, and what decodes encodes back to the
//! same words.
#![no_main]
use libfuzzer_sys::fuzz_target;
use web_locks_wasm::protocol::{ArbiterMsg, ClientMsg};

fuzz_target!(|data: &[u8]| {
    let words: Vec<u16> = data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    if let Ok(m) = ClientMsg::decode(&words) {
        assert_eq!(ClientMsg::decode(&m.encode()), Ok(m));
    }
    if let Ok(m) = ArbiterMsg::decode(&words) {
        assert_eq!(ArbiterMsg::decode(&m.encode()), Ok(m));
    }
});
