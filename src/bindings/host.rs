//! The arbiter as a SharedWorker (or an elected context) runs it: the sans-IO [`Arbiter`]
//! behind a wasm-bindgen class. `js/arbiter.js` owns the I/O: ports, BroadcastChannel,
//! IndexedDB probes, the election; it feeds messages in, and replies leave through
//! `io.deliver(connection, words)`.

use alloc::vec::Vec;
use wasm_bindgen::prelude::*;

use crate::arbiter::Arbiter;
use crate::engine::ClientId;
use crate::map::IdMap;
use crate::protocol::{version_of, ArbiterMsg, ClientMsg, VERSION};

#[wasm_bindgen]
extern "C" {
    /// The JS side of an [`ArbiterHost`].
    pub type ArbiterIo;
    /// Sends encoded [`ArbiterMsg`] words to a connection (copying `words`).
    #[wasm_bindgen(method)]
    fn deliver(this: &ArbiterIo, connection: u32, words: &[u16]);
    /// The host's clock, in ms (`performance.now()`): leases and waits run on it.
    #[cfg(feature = "services")]
    #[wasm_bindgen(method)]
    fn now(this: &ArbiterIo) -> f64;
    /// Call `advance()` at this time of the host's clock (replacing the last such timer).
    #[cfg(feature = "services")]
    #[wasm_bindgen(method)]
    fn timer(this: &ArbiterIo, at: f64);
}

/// One arbiter instance: the origin's lock manager, for every connected context.
#[wasm_bindgen]
pub struct ArbiterHost {
    arbiter: Arbiter,
    io: ArbiterIo,
    out: Vec<(ClientId, ArbiterMsg)>,
    malformed: u32,
    /// The protocol version each connection speaks (that of its messages): its answers
    /// are written in it.
    versions: IdMap<ClientId, u16>,
    /// The time the io's timer is set for.
    #[cfg(feature = "services")]
    armed: Option<u64>,
}

#[wasm_bindgen]
impl ArbiterHost {
    #[wasm_bindgen(constructor)]
    pub fn new(io: ArbiterIo) -> ArbiterHost {
        // Born recovering: nothing is granted before `beginRecovery` has said which live
        // contexts to wait for (a previous arbiter may have granted anything).
        ArbiterHost {
            arbiter: Arbiter::recovering(),
            io,
            out: Vec::new(),
            malformed: 0,
            versions: IdMap::default(),
            #[cfg(feature = "services")]
            armed: None,
        }
    }

    /// A new connection (a port, or a client first heard of on the channel).
    pub fn connect(&mut self) -> u32 {
        self.arbiter.connect().0
    }

    /// One encoded [`ClientMsg`] from `connection`. Undecodable input is counted and
    /// ignored; returns whether it decoded.
    pub fn handle(&mut self, connection: u32, words: &[u16]) -> bool {
        let Ok(msg) = ClientMsg::decode(words) else {
            self.malformed = self.malformed.saturating_add(1);
            return false;
        };
        if let Some(v) = version_of(words) {
            self.versions.insert(ClientId(connection), v);
        }
        self.tick();
        self.arbiter.handle(ClientId(connection), msg, &mut self.out);
        self.flush();
        true
    }

    /// The connection is gone: its requests are dropped and its locks released.
    pub fn disconnect(&mut self, connection: u32) {
        self.tick();
        self.arbiter.disconnect(ClientId(connection), &mut self.out);
        self.flush();
        self.versions.remove(ClientId(connection));
    }

    /// The context with this `clientId` is dead (its IndexedDB probe fired).
    pub fn gone(&mut self, client_id: &[u16]) {
        self.tick();
        if let Some(c) = self.arbiter.client(client_id) {
            self.versions.remove(c);
        }
        self.arbiter.gone(client_id, &mut self.out);
        self.flush();
    }

    /// This arbiter replaces a dead one: wait for these `clientId`s (UTF-16, each
    /// followed by a 0 separator) to re-register before granting anything.
    #[wasm_bindgen(js_name = beginRecovery)]
    pub fn begin_recovery(&mut self, client_ids: &[u16]) {
        self.tick();
        let live = client_ids.split(|&u| u == 0).filter(|s| !s.is_empty()).map(<[u16]>::to_vec);
        self.arbiter.begin_recovery(live, &mut self.out);
        self.flush();
    }

    /// The io's timer fired: end the leases and waits that ran out.
    #[cfg(feature = "services")]
    pub fn advance(&mut self) {
        self.armed = None;
        self.tick();
        self.flush();
    }

    /// Whether every connection speaks a protocol version in `range` (`oldest << 16 |
    /// newest`): then an arbiter that speaks those can take over from this one.
    #[wasm_bindgen(js_name = servedWithin)]
    pub fn served_within(&self, range: u32) -> bool {
        let (oldest, newest) = ((range >> 16) as u16, range as u16);
        self.versions.iter().all(|(_, &v)| (oldest..=newest).contains(&v))
    }

    pub fn client(&self, client_id: &[u16]) -> i64 {
        self.arbiter.client(client_id).map_or(-1, |c| i64::from(c.0))
    }

    #[wasm_bindgen(getter)]
    pub fn recovering(&self) -> bool {
        self.arbiter.is_recovering()
    }

    /// Messages that could not be decoded, plus messages the arbiter refused.
    #[wasm_bindgen(getter)]
    pub fn rejected(&self) -> f64 {
        f64::from(self.malformed) + self.arbiter.rejected as f64
    }

    /// The decisions made since the last call (feature `trace`, test builds only), as
    /// words: per decision a kind (1 Hello, 2 Restored held, 3 Restored queued, 4 Granted,
    /// 5 Unavailable, 6 Stolen, 7 Released, 8 Withdrawn, 9 Gone, 10 Recovered, 11 Expired,
    /// 12 TimedOut), then,
    /// where it has them, the `clientId` (length-prefixed), the request id (two words),
    /// the mode (0 exclusive, 1 shared) and the name (length-prefixed). See
    /// tests/chaos/trace.mjs.
    #[cfg(feature = "trace")]
    #[wasm_bindgen(js_name = takeTrace)]
    pub fn take_trace(&mut self) -> Vec<u16> {
        use crate::arbiter::Decision as D;
        use crate::engine::LockMode;
        let mut w: Vec<u16> = Vec::new();
        let str = |w: &mut Vec<u16>, s: &[u16]| {
            w.push(s.len() as u16);
            w.extend_from_slice(s);
        };
        let id =
            |w: &mut Vec<u16>, id: crate::engine::RequestId| w.extend_from_slice(&[id.0 as u16, (id.0 >> 16) as u16]);
        let mode = |m: LockMode| u16::from(m == LockMode::Shared);
        for d in &self.arbiter.take_trace() {
            match d {
                D::Hello { client } | D::Gone { client } => {
                    w.push(if matches!(d, D::Hello { .. }) { 1 } else { 9 });
                    str(&mut w, client);
                }
                &D::Restored { ref client, id: i, ref name, mode: m, held } => {
                    w.push(if held { 2 } else { 3 });
                    str(&mut w, client);
                    id(&mut w, i);
                    w.push(mode(m));
                    str(&mut w, name);
                }
                &(D::Granted { ref client, id: i, ref name, mode: m }
                | D::Owned { ref client, id: i, ref name, mode: m }) => {
                    w.push(if matches!(d, D::Owned { .. }) { 13 } else { 4 });
                    str(&mut w, client);
                    id(&mut w, i);
                    w.push(mode(m));
                    str(&mut w, name);
                }
                &(D::Unavailable { ref client, id: i }
                | D::Stolen { ref client, id: i }
                | D::Released { ref client, id: i }
                | D::Withdrawn { ref client, id: i }) => {
                    w.push(match d {
                        D::Unavailable { .. } => 5,
                        D::Stolen { .. } => 6,
                        D::Released { .. } => 7,
                        _ => 8,
                    });
                    str(&mut w, client);
                    id(&mut w, i);
                }
                &D::Recovered => w.push(10),
                D::Handback { client, name } => {
                    w.push(14);
                    str(&mut w, client);
                    str(&mut w, name);
                }
                &(D::Expired { ref client, id: i } | D::TimedOut { ref client, id: i }) => {
                    w.push(if matches!(d, D::Expired { .. }) { 11 } else { 12 });
                    str(&mut w, client);
                    id(&mut w, i);
                }
            }
        }
        w
    }

    /// Brings the arbiter's clock to now, before anything that may grant: a lease runs
    /// from the grant, on the clock as it is then (a stale one would end it early).
    fn tick(&mut self) {
        #[cfg(feature = "services")]
        self.arbiter.advance(self.io.now() as u64, &mut self.out);
    }

    fn flush(&mut self) {
        for (client, msg) in self.out.drain(..) {
            let version = self.versions.get(client).copied().unwrap_or(VERSION);
            self.io.deliver(client.0, &msg.encode_in(version));
        }
        #[cfg(feature = "services")]
        {
            let due = self.arbiter.poll_timeout();
            if due.is_some() && due != self.armed {
                self.armed = due;
                self.io.timer(due.unwrap_or_default() as f64);
            }
        }
    }
}
