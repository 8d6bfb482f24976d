//! Messages between a context (client) and the arbiter that owns the engine.
//!
//! The wire form is a sequence of 16-bit words, because resource names are sequences of
//! UTF-16 code units and must cross unchanged (lone surrogates included). Every message
//! starts with [`VERSION`]; the decoder is total: anything malformed, truncated, foreign
//! or from another protocol version decodes to a [`DecodeError`], never a panic.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use alloc::vec;
use alloc::vec::Vec;

use crate::engine::{LockMode, RequestFlags, RequestId};

/// Bumped on any incompatible change; also part of channel and worker names, so two
/// versions never share a channel in the first place.
pub const VERSION: u16 = 2;

/// One `{name, mode, clientId}` of a query answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireLockInfo {
    pub name: Vec<u16>,
    pub mode: LockMode,
    pub client: Vec<u16>,
}

/// A lock or a waiting request that a client re-registers with a new arbiter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    pub id: RequestId,
    pub name: Vec<u16>,
    pub mode: LockMode,
    /// `None`: held. `Some(p)`: waiting at queue position `p` ([`ArbiterMsg::Queued`]).
    pub position: Option<i64>,
}

/// Client → arbiter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMsg {
    /// First message of a client to an arbiter: its public `clientId`, and what it holds
    /// and waits for (empty unless an earlier arbiter is gone).
    Hello { client: Vec<u16>, restore: Vec<Restored> },
    /// The context is going away (`pagehide`): drop its requests, release its locks.
    Goodbye,
    /// Spec "request a lock": queue (or steal, or try) a lock on `name`.
    Request { id: RequestId, name: Vec<u16>, mode: LockMode, flags: RequestFlags },
    /// Release a held lock or withdraw a queued request (settled callback, abort, or a
    /// grant that will not be used).
    Release { id: RequestId },
    /// Ask for a snapshot; answered by [`ArbiterMsg::Snapshot`] with the same `id`.
    Query { id: u32 },
}

/// Arbiter → client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArbiterMsg {
    /// The request waits at this queue position (kept for a restore).
    Queued {
        id: RequestId,
        position: i64,
    },
    Granted {
        id: RequestId,
    },
    Unavailable {
        id: RequestId,
    },
    Stolen {
        id: RequestId,
    },
    Snapshot {
        id: u32,
        held: Vec<WireLockInfo>,
        pending: Vec<WireLockInfo>,
    },
}

/// Why a message could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Empty, or from another protocol version.
    Version,
    /// A tag this version does not know.
    Tag,
    /// Ran out of words, or a field holds an impossible value.
    Malformed,
    /// Words left over after a complete message.
    Trailing,
}

const T_REQUEST: u16 = 1;
const T_RELEASE: u16 = 2;
const T_QUERY: u16 = 3;
const T_HELLO: u16 = 4;
const T_GOODBYE: u16 = 5;
const T_QUEUED: u16 = 20;
const T_GRANTED: u16 = 16;
const T_UNAVAILABLE: u16 = 17;
const T_STOLEN: u16 = 18;
const T_SNAPSHOT: u16 = 19;

const F_SHARED: u16 = 1;
const F_IF_AVAILABLE: u16 = 2;
const F_STEAL: u16 = 4;
const F_QUEUED: u16 = 8;
/// In a snapshot entry's mode word: the same `clientId` as the entry before it (most
/// entries of a snapshot name one of a few clients; a `clientId` is 36 words).
const F_SAME_CLIENT: u16 = 16;

struct Writer(Vec<u16>);

impl Writer {
    fn new(tag: u16) -> Self {
        Writer(vec![VERSION, tag])
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&[v as u16, (v >> 16) as u16]);
    }
    fn u64(&mut self, v: u64) {
        self.u32(v as u32);
        self.u32((v >> 32) as u32);
    }
    fn str(&mut self, s: &[u16]) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s);
    }
    fn infos(&mut self, list: &[WireLockInfo]) {
        self.u32(list.len() as u32);
        let mut prev: Option<&[u16]> = None;
        for i in list {
            let same = prev == Some(&i.client[..]);
            self.0.push(mode_bits(i.mode) | if same { F_SAME_CLIENT } else { 0 });
            self.str(&i.name);
            if !same {
                self.str(&i.client);
            }
            prev = Some(&i.client);
        }
    }
}

struct Reader<'a>(&'a [u16]);

impl Reader<'_> {
    fn word(&mut self) -> Result<u16, DecodeError> {
        let (first, rest) = self.0.split_first().ok_or(DecodeError::Malformed)?;
        self.0 = rest;
        Ok(*first)
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from(self.word()?) | (u32::from(self.word()?) << 16))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from(self.u32()?) | (u64::from(self.u32()?) << 32))
    }
    fn str(&mut self) -> Result<Vec<u16>, DecodeError> {
        let len = self.u32()? as usize;
        if len > self.0.len() {
            return Err(DecodeError::Malformed);
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(s.to_vec())
    }
    fn infos(&mut self) -> Result<Vec<WireLockInfo>, DecodeError> {
        let n = self.u32()? as usize;
        // Each entry takes at least 3 words: never trust a count beyond the input.
        if n > self.0.len() / 3 {
            return Err(DecodeError::Malformed);
        }
        let mut v: Vec<WireLockInfo> = Vec::with_capacity(n);
        for _ in 0..n {
            let bits = self.word()?;
            let mode = match bits & !F_SAME_CLIENT {
                0 => LockMode::Exclusive,
                F_SHARED => LockMode::Shared,
                _ => return Err(DecodeError::Malformed),
            };
            let name = self.str()?;
            let client = if bits & F_SAME_CLIENT == 0 {
                self.str()?
            } else {
                v.last().ok_or(DecodeError::Malformed)?.client.clone()
            };
            v.push(WireLockInfo { mode, name, client });
        }
        Ok(v)
    }
    fn end<T>(self, v: T) -> Result<T, DecodeError> {
        if self.0.is_empty() {
            Ok(v)
        } else {
            Err(DecodeError::Trailing)
        }
    }
}

fn mode_bits(mode: LockMode) -> u16 {
    match mode {
        LockMode::Exclusive => 0,
        LockMode::Shared => F_SHARED,
    }
}

fn header<'a>(words: &'a [u16]) -> Result<(u16, Reader<'a>), DecodeError> {
    match words {
        [VERSION, tag, rest @ ..] => Ok((*tag, Reader(rest))),
        _ => Err(DecodeError::Version),
    }
}

impl ClientMsg {
    pub fn encode(&self) -> Vec<u16> {
        match self {
            ClientMsg::Request { id, name, mode, flags } => {
                let mut w = Writer::new(T_REQUEST);
                w.u64(id.0);
                let mut bits = mode_bits(*mode);
                if flags.if_available {
                    bits |= F_IF_AVAILABLE;
                }
                if flags.steal {
                    bits |= F_STEAL;
                }
                w.0.push(bits);
                w.str(name);
                w.0
            }
            ClientMsg::Release { id } => {
                let mut w = Writer::new(T_RELEASE);
                w.u64(id.0);
                w.0
            }
            ClientMsg::Query { id } => {
                let mut w = Writer::new(T_QUERY);
                w.u32(*id);
                w.0
            }
            ClientMsg::Hello { client, restore } => {
                let mut w = Writer::new(T_HELLO);
                w.str(client);
                w.u32(restore.len() as u32);
                for r in restore {
                    w.u64(r.id.0);
                    w.0.push(mode_bits(r.mode) | if r.position.is_some() { F_QUEUED } else { 0 });
                    if let Some(p) = r.position {
                        w.u64(p as u64);
                    }
                    w.str(&r.name);
                }
                w.0
            }
            ClientMsg::Goodbye => Writer::new(T_GOODBYE).0,
        }
    }

    pub fn decode(words: &[u16]) -> Result<Self, DecodeError> {
        let (tag, mut r) = header(words)?;
        match tag {
            T_REQUEST => {
                let id = RequestId(r.u64()?);
                let bits = r.word()?;
                if bits & !(F_SHARED | F_IF_AVAILABLE | F_STEAL) != 0 {
                    return Err(DecodeError::Malformed);
                }
                let mode = if bits & F_SHARED != 0 { LockMode::Shared } else { LockMode::Exclusive };
                let flags = RequestFlags { if_available: bits & F_IF_AVAILABLE != 0, steal: bits & F_STEAL != 0 };
                let name = r.str()?;
                r.end(ClientMsg::Request { id, name, mode, flags })
            }
            T_RELEASE => {
                let id = RequestId(r.u64()?);
                r.end(ClientMsg::Release { id })
            }
            T_QUERY => {
                let id = r.u32()?;
                r.end(ClientMsg::Query { id })
            }
            T_HELLO => {
                let client = r.str()?;
                let n = r.u32()? as usize;
                // Each entry takes at least 7 words: never trust a count beyond the input.
                if n > r.0.len() / 7 {
                    return Err(DecodeError::Malformed);
                }
                let mut restore = Vec::with_capacity(n);
                for _ in 0..n {
                    let id = RequestId(r.u64()?);
                    let bits = r.word()?;
                    let mode = match bits & !F_QUEUED {
                        0 => LockMode::Exclusive,
                        F_SHARED => LockMode::Shared,
                        _ => return Err(DecodeError::Malformed),
                    };
                    let position = if bits & F_QUEUED != 0 { Some(r.u64()? as i64) } else { None };
                    restore.push(Restored { id, name: r.str()?, mode, position });
                }
                r.end(ClientMsg::Hello { client, restore })
            }
            T_GOODBYE => r.end(ClientMsg::Goodbye),
            _ => Err(DecodeError::Tag),
        }
    }
}

impl ArbiterMsg {
    pub fn encode(&self) -> Vec<u16> {
        let (tag, id) = match self {
            ArbiterMsg::Granted { id } => (T_GRANTED, id),
            ArbiterMsg::Unavailable { id } => (T_UNAVAILABLE, id),
            ArbiterMsg::Stolen { id } => (T_STOLEN, id),
            ArbiterMsg::Queued { id, position } => {
                let mut w = Writer::new(T_QUEUED);
                w.u64(id.0);
                w.u64(*position as u64);
                return w.0;
            }
            ArbiterMsg::Snapshot { id, held, pending } => {
                let mut w = Writer::new(T_SNAPSHOT);
                w.u32(*id);
                w.infos(held);
                w.infos(pending);
                return w.0;
            }
        };
        let mut w = Writer::new(tag);
        w.u64(id.0);
        w.0
    }

    pub fn decode(words: &[u16]) -> Result<Self, DecodeError> {
        let (tag, mut r) = header(words)?;
        match tag {
            T_GRANTED | T_UNAVAILABLE | T_STOLEN => {
                let id = RequestId(r.u64()?);
                r.end(match tag {
                    T_GRANTED => ArbiterMsg::Granted { id },
                    T_UNAVAILABLE => ArbiterMsg::Unavailable { id },
                    _ => ArbiterMsg::Stolen { id },
                })
            }
            T_QUEUED => {
                let id = RequestId(r.u64()?);
                let position = r.u64()? as i64;
                r.end(ArbiterMsg::Queued { id, position })
            }
            T_SNAPSHOT => {
                let id = r.u32()?;
                let held = r.infos()?;
                let pending = r.infos()?;
                r.end(ArbiterMsg::Snapshot { id, held, pending })
            }
            _ => Err(DecodeError::Tag),
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_client() -> Vec<ClientMsg> {
        vec![
            ClientMsg::Request {
                id: RequestId(u64::MAX),
                name: vec![0xD800, 0, 0xFFFF],
                mode: LockMode::Shared,
                flags: RequestFlags { if_available: true, steal: false },
            },
            ClientMsg::Request {
                id: RequestId(7),
                name: vec![],
                mode: LockMode::Exclusive,
                flags: RequestFlags { if_available: false, steal: true },
            },
            ClientMsg::Release { id: RequestId(1 << 40) },
            ClientMsg::Query { id: 3 },
            ClientMsg::Goodbye,
            ClientMsg::Hello { client: vec![0x61, 0xDFFF], restore: vec![] },
            ClientMsg::Hello {
                client: vec![],
                restore: vec![
                    Restored { id: RequestId(1), name: vec![0xD800], mode: LockMode::Shared, position: None },
                    Restored { id: RequestId(2), name: vec![], mode: LockMode::Exclusive, position: Some(-3) },
                ],
            },
        ]
    }

    fn sample_arbiter() -> Vec<ArbiterMsg> {
        let info = |n: &[u16], m, c: &[u16]| WireLockInfo { name: n.to_vec(), mode: m, client: c.to_vec() };
        vec![
            ArbiterMsg::Granted { id: RequestId(1) },
            ArbiterMsg::Queued { id: RequestId(4), position: i64::MIN },
            ArbiterMsg::Unavailable { id: RequestId(2) },
            ArbiterMsg::Stolen { id: RequestId(3) },
            ArbiterMsg::Snapshot {
                id: 9,
                held: vec![info(&[97], LockMode::Exclusive, &[49]), info(&[0xDC00], LockMode::Shared, &[])],
                pending: vec![],
            },
        ]
    }

    #[test]
    fn snapshot_sends_a_repeated_client_once() {
        let info = |n: u16, c: &[u16]| WireLockInfo { name: vec![n], mode: LockMode::Shared, client: c.to_vec() };
        let a = [0x61; 36];
        let b = [0x62; 36];
        let held = vec![info(1, &a), info(2, &a), info(3, &b), info(4, &a), info(5, &a)];
        let pending = vec![info(6, &a), info(7, &[]), info(8, &[])];
        let m = ArbiterMsg::Snapshot { id: 1, held, pending };
        let w = m.encode();
        assert_eq!(ArbiterMsg::decode(&w), Ok(m));
        // Header 4 words; per entry 1 mode + 3 name words, plus 2 + 36 for each new client
        // (held: a, b, a; pending: a, "" with no units).
        assert_eq!(w.len(), 4 + 2 + 2 + 8 * 4 + 4 * 38 + 2);
        // The first entry of a list has no entry before it to repeat.
        let mut bad = vec![VERSION, T_SNAPSHOT, 1, 0, 1, 0, F_SAME_CLIENT, 1, 0, 0x61, 0, 0];
        assert_eq!(ArbiterMsg::decode(&bad), Err(DecodeError::Malformed));
        bad[6] = F_SHARED | 4;
        assert_eq!(ArbiterMsg::decode(&bad), Err(DecodeError::Malformed));
    }

    #[test]
    fn the_js_names_carry_this_protocol_version() {
        // Channels, databases and the SharedWorker are named after the version, so that
        // two versions never exchange messages they cannot decode.
        let coord = include_str!("../js/coord.js");
        assert!(coord.contains(&format!("export const PREFIX = \"web-locks-wasm-{VERSION}\";")));
    }

    #[test]
    fn round_trip() {
        for m in sample_client() {
            assert_eq!(ClientMsg::decode(&m.encode()), Ok(m));
        }
        for m in sample_arbiter() {
            assert_eq!(ArbiterMsg::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn foreign_versions_and_truncations_are_errors() {
        assert_eq!(ClientMsg::decode(&[]), Err(DecodeError::Version));
        assert_eq!(ClientMsg::decode(&[VERSION + 1, T_QUERY, 0, 0]), Err(DecodeError::Version));
        assert_eq!(ClientMsg::decode(&[VERSION, 99]), Err(DecodeError::Tag));
        // A client message is not an arbiter message and vice versa.
        assert_eq!(ArbiterMsg::decode(&ClientMsg::Query { id: 1 }.encode()), Err(DecodeError::Tag));
        for m in sample_client() {
            let w = m.encode();
            for cut in 0..w.len() {
                assert!(ClientMsg::decode(&w[..cut]).is_err(), "{m:?} cut at {cut}");
            }
            let mut long = w.clone();
            long.push(0);
            assert_eq!(ClientMsg::decode(&long), Err(DecodeError::Trailing));
        }
        for m in sample_arbiter() {
            let w = m.encode();
            for cut in 0..w.len() {
                assert!(ArbiterMsg::decode(&w[..cut]).is_err(), "{m:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        // A snapshot claiming 2^32-1 entries in a 10-word message is rejected up front.
        let w = [VERSION, T_SNAPSHOT, 0, 0, 0xFFFF, 0xFFFF, 0, 0, 0, 0];
        assert_eq!(ArbiterMsg::decode(&w), Err(DecodeError::Malformed));
    }

    proptest! {
        #[test]
        fn decoders_are_total(words in proptest::collection::vec(any::<u16>(), 0..64)) {
            let _ = ClientMsg::decode(&words);
            let _ = ArbiterMsg::decode(&words);
        }

        #[test]
        fn decoders_are_total_near_valid(idx in 0usize..8, pos in 0usize..64, val in any::<u16>()) {
            let msgs: Vec<Vec<u16>> = sample_client().iter().map(ClientMsg::encode)
                .chain(sample_arbiter().iter().map(ArbiterMsg::encode)).collect();
            let mut w = msgs[idx % msgs.len()].clone();
            let at = pos % w.len();
            w[at] = val;
            let _ = ClientMsg::decode(&w);
            let _ = ArbiterMsg::decode(&w);
        }
    }
}
