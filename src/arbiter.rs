//! The arbiter: owns the origin's one [`Engine`], maps connected clients onto it and turns
//! engine effects into messages for the clients they concern. Sans-IO: the host feeds
//! messages in and sends what comes out.
//!
//! In the single-context build the arbiter lives in the calling context itself (the
//! degenerate arbiter); cross-context hosts feed it the same [`ClientMsg`]s.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::engine::{ClientId, Effect, Engine, EngineError, LockInfo, RequestKey};
use crate::protocol::{ArbiterMsg, ClientMsg, WireLockInfo};

/// Owns one engine and the clients connected to it.
#[derive(Debug, Default)]
pub struct Arbiter {
    engine: Engine,
    /// Connected clients and their public `clientId` (as UTF-16), shown by `query()`.
    clients: BTreeMap<ClientId, Rc<[u16]>>,
    next_client: u32,
    effects: Vec<Effect>,
    /// Messages refused by the engine (duplicate ids, impossible flags): counted, not fatal.
    pub rejected: u64,
}

impl Arbiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a client under its public `clientId`.
    pub fn connect(&mut self, label: &[u16]) -> ClientId {
        let id = ClientId(self.next_client);
        self.next_client = self.next_client.wrapping_add(1);
        self.clients.insert(id, label.into());
        id
    }

    /// The client is gone: its requests are dropped and its locks released.
    pub fn disconnect(&mut self, client: ClientId, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        if self.clients.remove(&client).is_some() {
            self.engine.terminate(client, &mut self.effects);
            self.flush(out);
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Handles one message from `client`; replies (to it and to others) go to `out`.
    pub fn handle(
        &mut self,
        client: ClientId,
        msg: ClientMsg,
        out: &mut Vec<(ClientId, ArbiterMsg)>,
    ) {
        if !self.clients.contains_key(&client) {
            self.rejected += 1;
            return;
        }
        match msg {
            ClientMsg::Request {
                id,
                name,
                mode,
                flags,
            } => {
                let key = RequestKey {
                    client,
                    request: id,
                };
                let result = self
                    .engine
                    .request(key, name.into(), mode, flags, &mut self.effects);
                if let Err(EngineError::DuplicateRequest | EngineError::InvalidFlags) = result {
                    self.rejected += 1;
                }
            }
            ClientMsg::Release { id } => {
                self.engine.release(
                    RequestKey {
                        client,
                        request: id,
                    },
                    &mut self.effects,
                );
            }
            ClientMsg::Query { id } => {
                let snap = self.engine.snapshot();
                let wire = |i: &LockInfo| WireLockInfo {
                    name: i.name.to_vec(),
                    mode: i.mode,
                    client: self
                        .clients
                        .get(&i.client)
                        .map(|c| c.to_vec())
                        .unwrap_or_default(),
                };
                let held = snap.held.iter().map(wire).collect();
                let pending = snap.pending.iter().map(wire).collect();
                out.push((client, ArbiterMsg::Snapshot { id, held, pending }));
            }
        }
        self.flush(out);
    }

    fn flush(&mut self, out: &mut Vec<(ClientId, ArbiterMsg)>) {
        out.extend(self.effects.drain(..).map(|e| match e {
            Effect::Granted(k) => (k.client, ArbiterMsg::Granted { id: k.request }),
            Effect::Unavailable(k) => (k.client, ArbiterMsg::Unavailable { id: k.request }),
            Effect::Stolen(k) => (k.client, ArbiterMsg::Stolen { id: k.request }),
        }));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::engine::{LockMode, RequestFlags, RequestId};

    fn req(id: u64, name: &str, mode: LockMode, flags: RequestFlags) -> ClientMsg {
        ClientMsg::Request {
            id: RequestId(id),
            name: name.encode_utf16().collect(),
            mode,
            flags,
        }
    }

    #[test]
    fn routes_effects_to_their_clients_and_reports_client_ids() {
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        let c1 = a.connect(&[0x31]);
        let c2 = a.connect(&[0x32]);
        a.handle(
            c1,
            req(1, "x", LockMode::Exclusive, RequestFlags::default()),
            &mut out,
        );
        a.handle(
            c2,
            req(1, "x", LockMode::Exclusive, RequestFlags::default()),
            &mut out,
        );
        assert_eq!(out, vec![(c1, ArbiterMsg::Granted { id: RequestId(1) })]);
        out.clear();
        a.handle(c2, ClientMsg::Query { id: 5 }, &mut out);
        let ArbiterMsg::Snapshot {
            id: 5,
            held,
            pending,
        } = &out[0].1
        else {
            panic!("{out:?}")
        };
        assert_eq!(held[0].client, vec![0x31]);
        assert_eq!(pending[0].client, vec![0x32]);
        out.clear();
        a.disconnect(c1, &mut out);
        assert_eq!(out, vec![(c2, ArbiterMsg::Granted { id: RequestId(1) })]);
    }

    #[test]
    fn unknown_clients_and_duplicates_are_counted_not_fatal() {
        let mut a = Arbiter::new();
        let mut out = Vec::new();
        a.handle(ClientId(42), ClientMsg::Query { id: 1 }, &mut out);
        let c = a.connect(&[]);
        a.handle(
            c,
            req(1, "x", LockMode::Exclusive, RequestFlags::default()),
            &mut out,
        );
        a.handle(
            c,
            req(1, "y", LockMode::Exclusive, RequestFlags::default()),
            &mut out,
        );
        a.handle(
            c,
            req(
                2,
                "y",
                LockMode::Shared,
                RequestFlags {
                    steal: true,
                    if_available: false,
                },
            ),
            &mut out,
        );
        assert_eq!(a.rejected, 3);
        assert_eq!(out, vec![(c, ArbiterMsg::Granted { id: RequestId(1) })]);
    }
}
