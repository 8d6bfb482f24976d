//! Messages between a context (client) and the arbiter that owns the engine.
//!
//! The wire form is a sequence of 16-bit words, because resource names are sequences of
//! UTF-16 code units and must cross unchanged (lone surrogates included). Every message
//! starts with [`VERSION`]; the decoder is total: anything malformed, truncated, foreign
//! or from another protocol version decodes to a [`DecodeError`], never a panic.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use alloc::vec;
use alloc::vec::Vec;

use crate::engine::{ClientId, Effect, LockMode, RequestFlags, RequestId};

/// The newest protocol version this build speaks: every message starts with the version
/// it is written in. Channel, database and worker names carry no version (they are the
/// same for every release), so that every release of the package on an origin meets in
/// one lock space: a client speaks the newest version that both it and the arbiter speak
/// (the arbiter announces its range), and waits where there is none; the arbiter answers
/// each client in the client's version. Bumped on any change to the wire format; a build
/// keeps decoding and encoding every version from [`MIN_VERSION`] on.
///
/// Feature `next-protocol` (test builds only, `WEB_LOCKS_NEXT_PROTOCOL=1` in
/// scripts/build.mjs): a build that speaks the next version too, as the next release
/// will, to test two releases on one origin (tests/e2e/versions.mjs).
#[cfg(not(feature = "next-protocol"))]
pub const VERSION: u16 = 3;
/// The newest protocol version this build speaks (see the other definition).
#[cfg(feature = "next-protocol")]
pub const VERSION: u16 = 4;
/// The oldest protocol version this build speaks. Version 2 is the first one of a
/// release. Version 3 adds delegation ([`ClientMsg::Ask`], [`ArbiterMsg::Owned`],
/// [`ArbiterMsg::Revoke`], [`ClientMsg::Handback`]): a client asks for it only from an
/// arbiter that speaks 3. Version 4 (test builds) shares version 3's wire format.
/// (Feature `next-protocol-only`, test builds only: a release that speaks only version 4,
/// so that it meets no build of this one.)
#[cfg(not(feature = "next-protocol-only"))]
pub const MIN_VERSION: u16 = 2;
/// The oldest protocol version this build speaks (see the other definition).
#[cfg(feature = "next-protocol-only")]
pub const MIN_VERSION: u16 = 4;

/// The first protocol version with delegation (an arbiter that speaks it may be asked).
pub const DELEGATION: u16 = 3;

/// One `{name, mode, clientId}` of a query answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireLockInfo {
    pub name: Vec<u16>,
    pub mode: LockMode,
    pub client: Vec<u16>,
    /// The request's label (`holder`), if it was made with one.
    pub label: Option<Label>,
    /// A held lock with a lease: milliseconds left.
    pub expires_in: Option<u32>,
}

/// A lock or a waiting request that a client re-registers with a new arbiter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    pub id: RequestId,
    pub name: Vec<u16>,
    pub mode: LockMode,
    /// `None`: held. `Some(p)`: waiting at queue position `p` ([`ArbiterMsg::Queued`]).
    pub position: Option<i64>,
    /// What the lock services added (the label; the lease's and the wait's *remaining*
    /// milliseconds); empty for a spec request.
    pub extras: Extras,
}

/// A request's label (feature `services`; without it there are none, at no cost).
#[cfg(feature = "services")]
pub type Label = Vec<u16>;
/// A request's label (feature `services`; without it there are none, at no cost).
#[cfg(not(feature = "services"))]
pub type Label = core::convert::Infallible;

/// What a lock service request (`acquire()`) adds to a spec request (feature `services`;
/// without it, nothing).
#[cfg(not(feature = "services"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extras;

/// What a lock service request (`acquire()`) adds to a spec request; all optional.
#[cfg(feature = "services")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    /// Who holds it (`holder`): reported by query() and in `LockHeldError`.
    pub label: Option<Vec<u16>>,
    /// A lease: the arbiter releases the lock this many ms after the grant or the last
    /// [`ClientMsg::Renew`], even though its holder lives.
    pub ttl: Option<u32>,
    /// Stop waiting this many ms after the request reaches the arbiter.
    pub timeout: Option<u32>,
}

#[cfg(feature = "services")]
impl Extras {
    pub fn is_empty(&self) -> bool {
        self.label.is_none() && self.ttl.is_none() && self.timeout.is_none()
    }
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
    /// A [`ClientMsg::Request`] that also asks for the name (version 3): where nothing is
    /// queued or held on it and it is not contended, the arbiter grants it with
    /// [`ArbiterMsg::Owned`] and the client then serves the name itself, in its own
    /// engine, until it hands it back. Otherwise it is an ordinary request.
    Ask { id: RequestId, name: Vec<u16>, mode: LockMode, flags: RequestFlags },
    /// Gives an owned name back (asked by [`ArbiterMsg::Revoke`], or because it is idle):
    /// what the client's engine had on it, holders first in grant order, then the queue
    /// with its positions, which the arbiter takes over exactly.
    Handback { name: Vec<u16>, entries: Vec<Restored> },
    /// A lock service request: a [`ClientMsg::Request`] with a label, a lease or a timeout.
    #[cfg(feature = "services")]
    Acquire { id: RequestId, name: Vec<u16>, mode: LockMode, flags: RequestFlags, extras: Extras },
    /// Extend a held lock's lease to `ttl` ms from now (or start one); answered by
    /// [`ArbiterMsg::Renewed`].
    #[cfg(feature = "services")]
    Renew { id: RequestId, ttl: u32 },
    /// A [`ClientMsg::Query`] from a client that knows the lock services: the snapshot's
    /// entries carry their labels and lease times (other clients get the spec's shape).
    #[cfg(feature = "services")]
    QueryLabeled { id: u32 },
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
    /// The lock's lease ran out: the arbiter released it.
    #[cfg(feature = "services")]
    Expired {
        id: RequestId,
    },
    /// The request waited until its timeout: the arbiter withdrew it.
    #[cfg(feature = "services")]
    TimedOut {
        id: RequestId,
    },
    /// The answer to [`ClientMsg::Renew`]: whether the lock was still held (and renewed).
    #[cfg(feature = "services")]
    Renewed {
        id: RequestId,
        held: bool,
    },
    /// This `Acquire` closed a cycle of waiting requests (a deadlock): the arbiter
    /// withdrew it. `cycle` lists the cycle's requests, this one first.
    #[cfg(feature = "services")]
    Deadlock {
        id: RequestId,
        cycle: Vec<WireLockInfo>,
    },
    /// A spec request (`Request`) closed a cycle: it keeps waiting, as the spec says, and
    /// its client is told, with the cycle (this one first), for its diagnostic channel.
    #[cfg(feature = "services")]
    DeadlockReport {
        id: RequestId,
        cycle: Vec<WireLockInfo>,
    },
    /// An `Acquire` with `ifAvailable` could not be granted at once (the lock services'
    /// `Unavailable`): with the label of one current holder, if it has one.
    #[cfg(feature = "services")]
    Busy {
        id: RequestId,
        holder: Option<Label>,
    },
    Snapshot {
        id: u32,
        held: Vec<WireLockInfo>,
        pending: Vec<WireLockInfo>,
    },
    /// The [`ClientMsg::Ask`] is granted and its client now serves the name (version 3).
    Owned {
        id: RequestId,
    },
    /// Another context needs the name (or a query needs its state): hand it back.
    Revoke {
        name: Vec<u16>,
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
#[cfg(feature = "services")]
const T_ACQUIRE: u16 = 6;
#[cfg(feature = "services")]
const T_RENEW: u16 = 7;
#[cfg(feature = "services")]
const T_QUERY_LABELED: u16 = 8;
const T_ASK: u16 = 9;
const T_HANDBACK: u16 = 10;
const T_OWNED: u16 = 27;
const T_REVOKE: u16 = 28;
const T_QUEUED: u16 = 20;
const T_GRANTED: u16 = 16;
const T_UNAVAILABLE: u16 = 17;
const T_STOLEN: u16 = 18;
const T_SNAPSHOT: u16 = 19;
#[cfg(feature = "services")]
const T_EXPIRED: u16 = 21;
#[cfg(feature = "services")]
const T_TIMED_OUT: u16 = 22;
#[cfg(feature = "services")]
const T_RENEWED: u16 = 23;
#[cfg(feature = "services")]
const T_DEADLOCK: u16 = 24;
#[cfg(feature = "services")]
const T_BUSY: u16 = 25;
#[cfg(feature = "services")]
const T_DEADLOCK_REPORT: u16 = 26;

const F_SHARED: u16 = 1;
const F_IF_AVAILABLE: u16 = 2;
const F_STEAL: u16 = 4;
const F_QUEUED: u16 = 8;
/// In a snapshot entry's mode word: the same `clientId` as the entry before it (most
/// entries of a snapshot name one of a few clients; a `clientId` is 36 words).
const F_SAME_CLIENT: u16 = 16;
/// In a restored entry's mode word: [`Extras`] follow.
#[cfg_attr(not(feature = "services"), allow(dead_code))]
const F_EXTRAS: u16 = 32;
/// In a snapshot entry's mode word: a label follows; a lease's remaining ms follow.
#[cfg(feature = "services")]
const F_LABELED: u16 = 32;
#[cfg(feature = "services")]
const F_EXPIRES: u16 = 64;

/// [`Extras`] bits.
#[cfg(feature = "services")]
const X_LABEL: u16 = 1;
#[cfg(feature = "services")]
const X_TTL: u16 = 2;
#[cfg(feature = "services")]
const X_TIMEOUT: u16 = 4;

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
            #[allow(unused_mut)]
            let mut bits = mode_bits(i.mode) | if same { F_SAME_CLIENT } else { 0 };
            #[cfg(feature = "services")]
            {
                bits |=
                    if i.label.is_some() { F_LABELED } else { 0 } | if i.expires_in.is_some() { F_EXPIRES } else { 0 };
            }
            self.0.push(bits);
            self.str(&i.name);
            if !same {
                self.str(&i.client);
            }
            #[cfg(feature = "services")]
            {
                if let Some(label) = &i.label {
                    self.str(label);
                }
                if let Some(ms) = i.expires_in {
                    self.u32(ms);
                }
            }
            prev = Some(&i.client);
        }
    }
    /// Restored entries (a `Hello`'s, a `Handback`'s).
    fn entries(&mut self, list: &[Restored]) {
        self.u32(list.len() as u32);
        for r in list {
            self.u64(r.id.0);
            #[cfg(feature = "services")]
            let extras = !r.extras.is_empty();
            #[cfg(not(feature = "services"))]
            let extras = false;
            self.0.push(
                mode_bits(r.mode) | if r.position.is_some() { F_QUEUED } else { 0 } | if extras { F_EXTRAS } else { 0 },
            );
            if let Some(p) = r.position {
                self.u64(p as u64);
            }
            self.str(&r.name);
            #[cfg(feature = "services")]
            if extras {
                self.extras(&r.extras);
            }
        }
    }
    #[cfg(feature = "services")]
    fn extras(&mut self, x: &Extras) {
        let bits = if x.label.is_some() { X_LABEL } else { 0 }
            | if x.ttl.is_some() { X_TTL } else { 0 }
            | if x.timeout.is_some() { X_TIMEOUT } else { 0 };
        self.0.push(bits);
        if let Some(label) = &x.label {
            self.str(label);
        }
        if let Some(ms) = x.ttl {
            self.u32(ms);
        }
        if let Some(ms) = x.timeout {
            self.u32(ms);
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
            #[cfg(feature = "services")]
            let known = F_SAME_CLIENT | F_LABELED | F_EXPIRES;
            #[cfg(not(feature = "services"))]
            let known = F_SAME_CLIENT;
            let mode = mode_of(bits, known)?;
            let name = self.str()?;
            let client = if bits & F_SAME_CLIENT == 0 {
                self.str()?
            } else {
                v.last().ok_or(DecodeError::Malformed)?.client.clone()
            };
            #[cfg(feature = "services")]
            let label = if bits & F_LABELED != 0 { Some(self.str()?) } else { None };
            #[cfg(feature = "services")]
            let expires_in = if bits & F_EXPIRES != 0 { Some(self.u32()?) } else { None };
            #[cfg(not(feature = "services"))]
            let (label, expires_in) = (None, None);
            v.push(WireLockInfo { mode, name, client, label, expires_in });
        }
        Ok(v)
    }
    fn entries(&mut self) -> Result<Vec<Restored>, DecodeError> {
        let n = self.u32()? as usize;
        // Each entry takes at least 7 words: never trust a count beyond the input.
        if n > self.0.len() / 7 {
            return Err(DecodeError::Malformed);
        }
        let mut restore = Vec::with_capacity(n);
        for _ in 0..n {
            let id = RequestId(self.u64()?);
            let bits = self.word()?;
            #[cfg(feature = "services")]
            let known = F_QUEUED | F_EXTRAS;
            #[cfg(not(feature = "services"))]
            let known = F_QUEUED;
            let mode = mode_of(bits, known)?;
            let position = if bits & F_QUEUED != 0 { Some(self.u64()? as i64) } else { None };
            let name = self.str()?;
            #[cfg(feature = "services")]
            let extras = if bits & F_EXTRAS != 0 { self.extras()? } else { Extras::default() };
            #[cfg(not(feature = "services"))]
            let extras = Extras;
            restore.push(Restored { id, name, mode, position, extras });
        }
        Ok(restore)
    }
    #[cfg(feature = "services")]
    fn extras(&mut self) -> Result<Extras, DecodeError> {
        let bits = self.word()?;
        if bits & !(X_LABEL | X_TTL | X_TIMEOUT) != 0 {
            return Err(DecodeError::Malformed);
        }
        let label = if bits & X_LABEL != 0 { Some(self.str()?) } else { None };
        let ttl = if bits & X_TTL != 0 { Some(self.u32()?) } else { None };
        let timeout = if bits & X_TIMEOUT != 0 { Some(self.u32()?) } else { None };
        Ok(Extras { label, ttl, timeout })
    }
    fn request(&mut self) -> Result<(RequestId, Vec<u16>, LockMode, RequestFlags), DecodeError> {
        let id = RequestId(self.u64()?);
        let bits = self.word()?;
        if bits & !(F_SHARED | F_IF_AVAILABLE | F_STEAL) != 0 {
            return Err(DecodeError::Malformed);
        }
        let mode = if bits & F_SHARED != 0 { LockMode::Shared } else { LockMode::Exclusive };
        let flags = RequestFlags { if_available: bits & F_IF_AVAILABLE != 0, steal: bits & F_STEAL != 0 };
        Ok((id, self.str()?, mode, flags))
    }
    fn end<T>(self, v: T) -> Result<T, DecodeError> {
        if self.0.is_empty() {
            Ok(v)
        } else {
            Err(DecodeError::Trailing)
        }
    }
}

/// The mode in an entry's mode word, whose other bits must be among `known`.
fn mode_of(bits: u16, known: u16) -> Result<LockMode, DecodeError> {
    match bits & !known {
        0 => Ok(LockMode::Exclusive),
        F_SHARED => Ok(LockMode::Shared),
        _ => Err(DecodeError::Malformed),
    }
}

fn mode_bits(mode: LockMode) -> u16 {
    match mode {
        LockMode::Exclusive => 0,
        LockMode::Shared => F_SHARED,
    }
}

/// A `Request`, and the start of an `Acquire`.
fn request(tag: u16, id: RequestId, name: &[u16], mode: LockMode, flags: RequestFlags) -> Writer {
    let mut w = Writer::new(tag);
    w.u64(id.0);
    let mut bits = mode_bits(mode);
    if flags.if_available {
        bits |= F_IF_AVAILABLE;
    }
    if flags.steal {
        bits |= F_STEAL;
    }
    w.0.push(bits);
    w.str(name);
    w
}

fn header<'a>(words: &'a [u16]) -> Result<(u16, Reader<'a>), DecodeError> {
    match words {
        [v, tag, rest @ ..] if (MIN_VERSION..=VERSION).contains(v) => Ok((*tag, Reader(rest))),
        _ => Err(DecodeError::Version),
    }
}

/// The version a message is written in, if this build speaks it.
pub fn version_of(words: &[u16]) -> Option<u16> {
    words.first().copied().filter(|v| (MIN_VERSION..=VERSION).contains(v))
}

/// A message written in `version` (every version this build speaks has one wire format
/// so far: only the version word differs).
fn written_in(mut words: Vec<u16>, version: u16) -> Vec<u16> {
    if let Some(v) = words.first_mut() {
        *v = version;
    }
    words
}

impl ClientMsg {
    /// This message in `version` (one this build speaks: [`MIN_VERSION`]..=[`VERSION`]).
    pub fn encode_in(&self, version: u16) -> Vec<u16> {
        written_in(self.encode(), version)
    }

    /// This message in [`VERSION`].
    pub fn encode(&self) -> Vec<u16> {
        match self {
            ClientMsg::Request { id, name, mode, flags } => request(T_REQUEST, *id, name, *mode, *flags).0,
            #[cfg(feature = "services")]
            ClientMsg::Acquire { id, name, mode, flags, extras } => {
                let mut w = request(T_ACQUIRE, *id, name, *mode, *flags);
                w.extras(extras);
                w.0
            }
            #[cfg(feature = "services")]
            ClientMsg::Renew { id, ttl } => {
                let mut w = Writer::new(T_RENEW);
                w.u64(id.0);
                w.u32(*ttl);
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
            #[cfg(feature = "services")]
            ClientMsg::QueryLabeled { id } => {
                let mut w = Writer::new(T_QUERY_LABELED);
                w.u32(*id);
                w.0
            }
            ClientMsg::Hello { client, restore } => {
                let mut w = Writer::new(T_HELLO);
                w.str(client);
                w.entries(restore);
                w.0
            }
            ClientMsg::Ask { id, name, mode, flags } => request(T_ASK, *id, name, *mode, *flags).0,
            ClientMsg::Handback { name, entries } => {
                let mut w = Writer::new(T_HANDBACK);
                w.str(name);
                w.entries(entries);
                w.0
            }
            ClientMsg::Goodbye => Writer::new(T_GOODBYE).0,
        }
    }

    pub fn decode(words: &[u16]) -> Result<Self, DecodeError> {
        let (tag, mut r) = header(words)?;
        match tag {
            T_REQUEST => {
                let (id, name, mode, flags) = r.request()?;
                r.end(ClientMsg::Request { id, name, mode, flags })
            }
            #[cfg(feature = "services")]
            T_ACQUIRE => {
                let (id, name, mode, flags) = r.request()?;
                let extras = r.extras()?;
                r.end(ClientMsg::Acquire { id, name, mode, flags, extras })
            }
            #[cfg(feature = "services")]
            T_RENEW => {
                let id = RequestId(r.u64()?);
                let ttl = r.u32()?;
                r.end(ClientMsg::Renew { id, ttl })
            }
            T_RELEASE => {
                let id = RequestId(r.u64()?);
                r.end(ClientMsg::Release { id })
            }
            T_QUERY => {
                let id = r.u32()?;
                r.end(ClientMsg::Query { id })
            }
            #[cfg(feature = "services")]
            T_QUERY_LABELED => {
                let id = r.u32()?;
                r.end(ClientMsg::QueryLabeled { id })
            }
            T_HELLO => {
                let client = r.str()?;
                let restore = r.entries()?;
                r.end(ClientMsg::Hello { client, restore })
            }
            T_ASK => {
                let (id, name, mode, flags) = r.request()?;
                r.end(ClientMsg::Ask { id, name, mode, flags })
            }
            T_HANDBACK => {
                let name = r.str()?;
                let entries = r.entries()?;
                r.end(ClientMsg::Handback { name, entries })
            }
            T_GOODBYE => r.end(ClientMsg::Goodbye),
            _ => Err(DecodeError::Tag),
        }
    }
}

impl ArbiterMsg {
    /// What an engine effect tells its request's client (and which client that is).
    pub fn answering(effect: Effect) -> (ClientId, Self) {
        match effect {
            Effect::Granted(k) => (k.client, ArbiterMsg::Granted { id: k.request }),
            Effect::Unavailable(k) => (k.client, ArbiterMsg::Unavailable { id: k.request }),
            Effect::Stolen(k) => (k.client, ArbiterMsg::Stolen { id: k.request }),
            Effect::Queued(k, position) => (k.client, ArbiterMsg::Queued { id: k.request, position }),
        }
    }

    /// This message in `version` (one this build speaks: [`MIN_VERSION`]..=[`VERSION`]).
    pub fn encode_in(&self, version: u16) -> Vec<u16> {
        written_in(self.encode(), version)
    }

    /// This message in [`VERSION`].
    pub fn encode(&self) -> Vec<u16> {
        let (tag, id) = match self {
            ArbiterMsg::Granted { id } => (T_GRANTED, id),
            ArbiterMsg::Unavailable { id } => (T_UNAVAILABLE, id),
            ArbiterMsg::Stolen { id } => (T_STOLEN, id),
            ArbiterMsg::Owned { id } => (T_OWNED, id),
            ArbiterMsg::Revoke { name } => {
                let mut w = Writer::new(T_REVOKE);
                w.str(name);
                return w.0;
            }
            #[cfg(feature = "services")]
            ArbiterMsg::Expired { id } => (T_EXPIRED, id),
            #[cfg(feature = "services")]
            ArbiterMsg::TimedOut { id } => (T_TIMED_OUT, id),
            #[cfg(feature = "services")]
            ArbiterMsg::Renewed { id, held } => {
                let mut w = Writer::new(T_RENEWED);
                w.u64(id.0);
                w.0.push(u16::from(*held));
                return w.0;
            }
            #[cfg(feature = "services")]
            ArbiterMsg::Deadlock { id, cycle } | ArbiterMsg::DeadlockReport { id, cycle } => {
                let tag = if matches!(self, ArbiterMsg::Deadlock { .. }) { T_DEADLOCK } else { T_DEADLOCK_REPORT };
                let mut w = Writer::new(tag);
                w.u64(id.0);
                w.infos(cycle);
                return w.0;
            }
            #[cfg(feature = "services")]
            ArbiterMsg::Busy { id, holder } => {
                let mut w = Writer::new(T_BUSY);
                w.u64(id.0);
                w.0.push(u16::from(holder.is_some()));
                if let Some(h) = holder {
                    w.str(h);
                }
                return w.0;
            }

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
            T_GRANTED | T_UNAVAILABLE | T_STOLEN | T_OWNED => {
                let id = RequestId(r.u64()?);
                r.end(match tag {
                    T_GRANTED => ArbiterMsg::Granted { id },
                    T_UNAVAILABLE => ArbiterMsg::Unavailable { id },
                    T_OWNED => ArbiterMsg::Owned { id },
                    _ => ArbiterMsg::Stolen { id },
                })
            }
            T_REVOKE => {
                let name = r.str()?;
                r.end(ArbiterMsg::Revoke { name })
            }
            #[cfg(feature = "services")]
            T_EXPIRED | T_TIMED_OUT => {
                let id = RequestId(r.u64()?);
                r.end(if tag == T_EXPIRED { ArbiterMsg::Expired { id } } else { ArbiterMsg::TimedOut { id } })
            }
            #[cfg(feature = "services")]
            T_DEADLOCK | T_DEADLOCK_REPORT => {
                let id = RequestId(r.u64()?);
                let cycle = r.infos()?;
                r.end(if tag == T_DEADLOCK {
                    ArbiterMsg::Deadlock { id, cycle }
                } else {
                    ArbiterMsg::DeadlockReport { id, cycle }
                })
            }
            #[cfg(feature = "services")]
            T_BUSY => {
                let id = RequestId(r.u64()?);
                let holder = match r.word()? {
                    0 => None,
                    1 => Some(r.str()?),
                    _ => return Err(DecodeError::Malformed),
                };
                r.end(ArbiterMsg::Busy { id, holder })
            }
            #[cfg(feature = "services")]
            T_RENEWED => {
                let id = RequestId(r.u64()?);
                let held = match r.word()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::Malformed),
                };
                r.end(ArbiterMsg::Renewed { id, held })
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

/// Appends `words` to a batch as one frame: its length (32 bits, low word first), then the
/// words. Messages sent in one task travel as one batch, one `postMessage` (js/coord.js
/// `batcher`, which frames the same way).
pub fn push_frame(batch: &mut Vec<u16>, words: &[u16]) {
    let len = words.len() as u32;
    batch.extend_from_slice(&[len as u16, (len >> 16) as u16]);
    batch.extend_from_slice(words);
}

/// Calls `each` with every frame of a batch, in order; `false` if the batch is malformed
/// (the frames before the malformed one were passed on).
pub fn each_frame(batch: &[u16], mut each: impl FnMut(&[u16])) -> bool {
    let mut rest = batch;
    while let [lo, hi, tail @ ..] = rest {
        let len = (usize::from(*hi) << 16) | usize::from(*lo);
        let Some((frame, next)) = tail.split_at_checked(len) else { return false };
        each(frame);
        rest = next;
    }
    rest.is_empty()
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_round_trip_and_malformed_batches_stop() {
        let msgs: [&[u16]; 3] = [&[1, 2, 3], &[], &[0xFFFF; 70_000]];
        let mut batch = Vec::new();
        for m in msgs {
            push_frame(&mut batch, m);
        }
        let mut got: Vec<Vec<u16>> = Vec::new();
        assert!(each_frame(&batch, |f| got.push(f.to_vec())));
        assert_eq!(got, msgs.iter().map(|m| m.to_vec()).collect::<Vec<_>>());
        // A frame longer than what is left, and a lone length word: false, after the
        // whole frames before them.
        let mut n = 0;
        assert!(!each_frame(&[1, 0, 9, 5, 0, 1], |_| n += 1));
        assert_eq!(n, 1);
        assert!(!each_frame(&[0, 0, 7], |_| n += 1));
        assert_eq!(n, 2);
        assert!(each_frame(&[], |_| n += 1));
        assert_eq!(n, 2);
    }

    #[allow(clippy::default_constructed_unit_structs)] // `Extras` without the services
    fn sample_client() -> Vec<ClientMsg> {
        #[allow(unused_mut)]
        let mut v = vec![
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
            ClientMsg::Ask {
                id: RequestId(5),
                name: vec![0x61],
                mode: LockMode::Exclusive,
                flags: RequestFlags { if_available: false, steal: true },
            },
            ClientMsg::Handback { name: vec![0xD800], entries: vec![] },
            ClientMsg::Handback {
                name: vec![0x62],
                entries: vec![
                    Restored {
                        id: RequestId(3),
                        name: vec![0x62],
                        mode: LockMode::Shared,
                        position: None,
                        extras: Extras::default(),
                    },
                    Restored {
                        id: RequestId(4),
                        name: vec![0x62],
                        mode: LockMode::Exclusive,
                        position: Some(-1),
                        extras: Extras::default(),
                    },
                ],
            },
            ClientMsg::Query { id: 3 },
            ClientMsg::Goodbye,
            ClientMsg::Hello { client: vec![0x61, 0xDFFF], restore: vec![] },
            ClientMsg::Hello {
                client: vec![],
                restore: vec![
                    Restored {
                        id: RequestId(1),
                        name: vec![0xD800],
                        mode: LockMode::Shared,
                        position: None,
                        extras: Extras::default(),
                    },
                    Restored {
                        id: RequestId(2),
                        name: vec![],
                        mode: LockMode::Exclusive,
                        position: Some(-3),
                        extras: Extras::default(),
                    },
                ],
            },
        ];
        #[cfg(feature = "services")]
        v.extend([
            ClientMsg::Acquire {
                id: RequestId(9),
                name: vec![0x61],
                mode: LockMode::Exclusive,
                flags: RequestFlags { if_available: true, steal: false },
                extras: Extras { label: Some(vec![]), ttl: Some(30_000), timeout: Some(5) },
            },
            ClientMsg::Acquire {
                id: RequestId(10),
                name: vec![],
                mode: LockMode::Shared,
                flags: RequestFlags::default(),
                extras: Extras::default(),
            },
            ClientMsg::Renew { id: RequestId(9), ttl: 0 },
            ClientMsg::QueryLabeled { id: u32::MAX },
            ClientMsg::Hello {
                client: vec![],
                restore: vec![
                    Restored {
                        id: RequestId(3),
                        name: vec![0x78],
                        mode: LockMode::Exclusive,
                        position: None,
                        extras: Extras { label: Some(vec![0x44, 0xD800]), ttl: Some(u32::MAX), timeout: None },
                    },
                    Restored {
                        id: RequestId(4),
                        name: vec![0x78],
                        mode: LockMode::Shared,
                        position: Some(5),
                        extras: Extras { label: None, ttl: None, timeout: Some(0) },
                    },
                ],
            },
        ]);
        v
    }

    fn sample_arbiter() -> Vec<ArbiterMsg> {
        let info = |n: &[u16], m, c: &[u16]| WireLockInfo {
            name: n.to_vec(),
            mode: m,
            client: c.to_vec(),
            label: None,
            expires_in: None,
        };
        #[allow(unused_mut)]
        let mut v = vec![
            ArbiterMsg::Granted { id: RequestId(1) },
            ArbiterMsg::Owned { id: RequestId(u64::MAX) },
            ArbiterMsg::Revoke { name: vec![0xDC00, 0x61] },
            ArbiterMsg::Queued { id: RequestId(4), position: i64::MIN },
            ArbiterMsg::Unavailable { id: RequestId(2) },
            ArbiterMsg::Stolen { id: RequestId(3) },
            ArbiterMsg::Snapshot {
                id: 9,
                held: vec![info(&[97], LockMode::Exclusive, &[49]), info(&[0xDC00], LockMode::Shared, &[])],
                pending: vec![],
            },
        ];
        #[cfg(feature = "services")]
        v.extend([
            ArbiterMsg::Expired { id: RequestId(5) },
            ArbiterMsg::TimedOut { id: RequestId(6) },
            ArbiterMsg::Renewed { id: RequestId(7), held: true },
            ArbiterMsg::Renewed { id: RequestId(8), held: false },
            ArbiterMsg::Busy { id: RequestId(12), holder: None },
            ArbiterMsg::Busy { id: RequestId(13), holder: Some(vec![0xD800, 0x61]) },
            ArbiterMsg::DeadlockReport {
                id: RequestId(14),
                cycle: vec![WireLockInfo {
                    name: vec![],
                    mode: LockMode::Shared,
                    client: vec![9],
                    label: Some(vec![]),
                    expires_in: None,
                }],
            },
            ArbiterMsg::Deadlock {
                id: RequestId(11),
                cycle: vec![
                    WireLockInfo {
                        name: vec![1],
                        mode: LockMode::Exclusive,
                        client: vec![2],
                        label: None,
                        expires_in: None,
                    },
                    WireLockInfo {
                        name: vec![3],
                        mode: LockMode::Shared,
                        client: vec![4],
                        label: Some(vec![5]),
                        expires_in: None,
                    },
                ],
            },
            ArbiterMsg::Snapshot {
                id: 10,
                held: vec![WireLockInfo {
                    name: vec![1],
                    mode: LockMode::Exclusive,
                    client: vec![2],
                    label: Some(vec![0x44]),
                    expires_in: Some(29_999),
                }],
                pending: vec![WireLockInfo {
                    name: vec![1],
                    mode: LockMode::Shared,
                    client: vec![2],
                    label: Some(vec![]),
                    expires_in: None,
                }],
            },
        ]);
        v
    }

    #[test]
    fn snapshot_sends_a_repeated_client_once() {
        let info = |n: u16, c: &[u16]| WireLockInfo {
            name: vec![n],
            mode: LockMode::Shared,
            client: c.to_vec(),
            label: None,
            expires_in: None,
        };
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
    fn the_js_names_carry_no_protocol_version() {
        // Channels, databases and the SharedWorker have one name for every release, so
        // that all releases on an origin meet (the version is in every message instead).
        let coord = include_str!("../js/coord.js");
        assert!(coord.contains("export const PREFIX = \"web-locks-wasm\";"));
    }

    #[test]
    fn round_trip() {
        for m in sample_client() {
            assert_eq!(ClientMsg::decode(&m.encode()), Ok(m.clone()));
            for v in MIN_VERSION..=VERSION {
                let w = m.encode_in(v);
                assert_eq!((version_of(&w), ClientMsg::decode(&w)), (Some(v), Ok(m.clone())));
            }
        }
        for m in sample_arbiter() {
            assert_eq!(ArbiterMsg::decode(&m.encode()), Ok(m.clone()));
            for v in MIN_VERSION..=VERSION {
                let w = m.encode_in(v);
                assert_eq!((version_of(&w), ArbiterMsg::decode(&w)), (Some(v), Ok(m.clone())));
            }
        }
    }

    #[test]
    fn foreign_versions_and_truncations_are_errors() {
        assert_eq!(ClientMsg::decode(&[]), Err(DecodeError::Version));
        assert_eq!(ClientMsg::decode(&[VERSION + 1, T_QUERY, 0, 0]), Err(DecodeError::Version));
        assert_eq!(ClientMsg::decode(&[MIN_VERSION - 1, T_QUERY, 0, 0]), Err(DecodeError::Version));
        assert_eq!(version_of(&[MIN_VERSION - 1, T_QUERY]), None);
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
