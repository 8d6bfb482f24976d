//! Delegation, the client's half (protocol version 3): a name that only this context uses
//! is served in this context's own [`Engine`], with no message per request.
//!
//! Sans-IO, like the arbiter: the bindings (and the simulation in tests/delegation_sim.rs)
//! pass every message they would send to the arbiter through [`Delegation::outgoing`], and
//! every message from the arbiter through [`Delegation::incoming`]. What must go to the
//! arbiter comes out in `send`; what the local engine decided comes out in `local`, as the
//! arbiter's own answers ([`ArbiterMsg::Granted`], `Queued`, `Unavailable`, `Stolen`), for
//! the client to handle exactly as if the arbiter had sent them.
//!
//! A name moves through these states on the client:
//!
//! ```text
//!        request(N) ──► Asking(N): `Ask` sent; later requests on N, and queries, wait here
//!   ┌─────────────────────┘ │
//!   │ any other answer      │ Owned: the request is granted here; what waited is served
//!   ▼                       ▼        here (a lock service request gives N back first)
//!  (none) ◄── Handback ── Owned(N): every request on N is served by the local engine
//!        (Revoke, idle after a task, a query, a lock service request, a new arbiter)
//! ```
//!
//! Why it is exact:
//! * while the client asks, it sends nothing else on N, so when the arbiter delegates N
//!   (only where nothing is queued or held on it, see `Arbiter::delegate`) no request of
//!   this client on N is on its way to the arbiter: the client has every one of them;
//! * the arbiter parks anything another context sends on N until the owner handed N back,
//!   and the handback carries the local engine's entries exactly (holders in grant order,
//!   the queue with its positions), which the arbiter's engine takes over as they are;
//! * the owner sends nothing on N while it owns it, and its later requests on N follow
//!   the handback on the same ordered channel;
//! * a query first gets every owned name back (this context's own, then, at the arbiter,
//!   everyone else's), so it sees every lock;
//! * an owner that dies takes its names with it: only it had anything on them;
//! * a new arbiter knows no owners: the client re-registers what it holds and queues on
//!   owned names like any other (`Restored`, at the local queue positions).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use alloc::rc::Rc;
use alloc::vec::Vec;

use crate::engine::{ClientId, Effect, Engine, LockMode, RequestFlags, RequestId, RequestKey};
use crate::map::NameMap;
use crate::protocol::{ArbiterMsg, ClientMsg, Extras, Restored};

/// How many refused names a client remembers (it then forgets them all).
const REFUSED: usize = 256;

/// The local engine's only client.
const ME: ClientId = ClientId(0);

fn key(id: RequestId) -> RequestKey {
    RequestKey { client: ME, request: id }
}

enum Own {
    /// An `Ask` for this request is out; what the client sends on the name meanwhile
    /// waits here, in order.
    Asking { mode: LockMode, flags: RequestFlags, waiting: Vec<ClientMsg> },
    /// Served by the local engine.
    Owned,
}

/// The names this context owns or asks for, and the engine that serves the owned ones.
#[derive(Default)]
pub struct Delegation {
    engine: Engine,
    names: NameMap<Own>,
    /// The names being asked for, by the id of the request that asks.
    asking: Vec<(RequestId, Rc<[u16]>)>,
    /// A query made while an `Ask` was out, and everything the client sent after it, in
    /// order: they go once every `Ask` is answered (the query must see what waited).
    held: Vec<ClientMsg>,
    /// Names the arbiter would not delegate, with the request it served instead: asked for
    /// no more until that request settles (then the name may be free again). At most
    /// [`REFUSED`].
    refused: NameMap<RequestId>,
    refused_len: usize,
    /// Requests withdrawn while their `Ask` was out: an ordinary answer to one does not
    /// mean that the name is refused (the request it would wait for is gone).
    withdrawn: Vec<RequestId>,
    /// A local release may have left an owned name idle: [`Delegation::give_back_idle`].
    idle: bool,
}

impl Delegation {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether this context owns `name`.
    pub fn owns(&self, name: &[u16]) -> bool {
        matches!(self.names.get(name), Some(Own::Owned))
    }

    /// Whether some owned name may be idle: the client should call
    /// [`Delegation::give_back_idle`] in a task of its own (not at once, so that a
    /// context that requests the name again in the same task keeps it).
    pub fn maybe_idle(&self) -> bool {
        self.idle
    }

    /// Forgets everything: a new arbiter, which knows no owners. The client re-registers
    /// what it holds and queues on owned names as on any other, at the positions the local
    /// engine gave (the `Queued` answers it got from [`Delegation::outgoing`]), and sends
    /// again what waited for an `Ask` (requests it never heard of an answer for).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// A message the client would send to the arbiter. `may_ask`: the arbiter speaks a
    /// version with delegation.
    pub fn outgoing(&mut self, msg: ClientMsg, may_ask: bool, send: &mut Vec<ClientMsg>, local: &mut Vec<ArbiterMsg>) {
        if self.held.is_empty() {
            self.route(msg, may_ask, send, local);
        } else {
            self.held.push(msg);
        }
    }

    fn route(&mut self, msg: ClientMsg, may_ask: bool, send: &mut Vec<ClientMsg>, local: &mut Vec<ArbiterMsg>) {
        match msg {
            ClientMsg::Request { id, name, mode, flags } => match self.names.get_mut(&name) {
                Some(Own::Owned) => {
                    let mut fx = Vec::new();
                    // The bindings validated the flags, and ids are never reused.
                    let _ = self.engine.request(key(id), name.into(), mode, flags, &mut fx);
                    answers(fx, local);
                }
                Some(Own::Asking { waiting, .. }) => waiting.push(ClientMsg::Request { id, name, mode, flags }),
                None if may_ask && !self.refused.contains_key(&name) => {
                    let name: Rc<[u16]> = name.into();
                    self.names.insert(name.clone(), Own::Asking { mode, flags, waiting: Vec::new() });
                    self.asking.push((id, name.clone()));
                    send.push(ClientMsg::Ask { id, name: name.to_vec(), mode, flags });
                }
                None => send.push(ClientMsg::Request { id, name, mode, flags }),
            },
            #[cfg(feature = "services")]
            ClientMsg::Acquire { ref name, .. } => match self.names.get_mut(name) {
                // The lock services are the arbiter's (labels, leases, timeouts, deadlocks).
                Some(Own::Owned) => {
                    let name = name.clone();
                    self.hand_back(&name, send);
                    send.push(msg);
                }
                Some(Own::Asking { waiting, .. }) => waiting.push(msg),
                None => send.push(msg),
            },
            ClientMsg::Release { id } => {
                if let Some((name, _)) = self.engine.lookup(key(id)) {
                    let name = name.clone();
                    let mut fx = Vec::new();
                    self.engine.release(key(id), &mut fx);
                    answers(fx, local);
                    if self.engine.is_idle(&name) {
                        self.idle = true;
                    }
                    return;
                }
                self.settled(id);
                // The request of an `Ask` still out: its answer refuses nothing.
                if self.asking.iter().any(|(a, _)| *a == id) {
                    self.withdrawn.push(id);
                }
                // A request that waits for an `Ask`'s answer was never sent: drop it.
                for (_, name) in &self.asking {
                    if let Some(Own::Asking { waiting, .. }) = self.names.get_mut(name) {
                        if let Some(i) = waiting.iter().position(|m| request_id(m) == Some(id)) {
                            waiting.remove(i);
                            return;
                        }
                    }
                }
                send.push(msg);
            }
            ClientMsg::Query { .. } => self.query(msg, send),
            #[cfg(feature = "services")]
            ClientMsg::QueryLabeled { .. } => self.query(msg, send),
            msg => send.push(msg),
        }
    }

    /// A query goes once no `Ask` is out, after every owned name went back.
    fn query(&mut self, msg: ClientMsg, send: &mut Vec<ClientMsg>) {
        if self.asking.is_empty() {
            self.give_back_all(send);
            send.push(msg);
        } else {
            self.held.push(msg);
        }
    }

    /// Sends what was held behind a query, once no `Ask` is out (a request among it may
    /// ask again: what follows it waits again).
    fn release_held(&mut self, may_ask: bool, send: &mut Vec<ClientMsg>, local: &mut Vec<ArbiterMsg>) {
        while self.asking.is_empty() && !self.held.is_empty() {
            let msg = self.held.remove(0);
            self.route(msg, may_ask, send, local);
        }
    }

    /// A message from the arbiter. Returns it when the client should handle it as usual
    /// (answers that concern delegation are handled here; their effects come out in `send`
    /// and `local`).
    pub fn incoming(
        &mut self,
        msg: ArbiterMsg,
        may_ask: bool,
        send: &mut Vec<ClientMsg>,
        local: &mut Vec<ArbiterMsg>,
    ) -> Option<ArbiterMsg> {
        match msg {
            ArbiterMsg::Owned { id } => {
                let name = self.answered(id)?;
                self.unwithdraw(id);
                let Some(Own::Asking { mode, flags, waiting, .. }) = self.names.insert(name.clone(), Own::Owned) else {
                    return None;
                };
                let mut fx = Vec::new();
                let _ = self.engine.request(key(id), name, mode, flags, &mut fx);
                answers(fx, local);
                for m in waiting {
                    self.route(m, may_ask, send, local);
                }
                self.release_held(may_ask, send, local);
                None
            }
            ArbiterMsg::Revoke { name } => {
                if self.owns(&name) {
                    self.hand_back(&name, send);
                }
                None
            }
            ArbiterMsg::Granted { id }
            | ArbiterMsg::Queued { id, .. }
            | ArbiterMsg::Unavailable { id }
            | ArbiterMsg::Stolen { id } => {
                // Not delegated: an ordinary answer. What waited goes to the arbiter.
                if let Some(name) = self.answered(id) {
                    let withdrawn = self.unwithdraw(id);
                    if let Some(Own::Asking { waiting, .. }) = self.names.remove(&name) {
                        if !withdrawn {
                            if self.refused_len >= REFUSED {
                                self.refused = NameMap::default();
                                self.refused_len = 0;
                            }
                            if self.refused.insert(name, id).is_none() {
                                self.refused_len += 1;
                            }
                        }
                        for m in waiting {
                            self.route(m, may_ask, send, local);
                        }
                    }
                    self.release_held(may_ask, send, local);
                } else if !matches!(msg, ArbiterMsg::Granted { .. } | ArbiterMsg::Queued { .. }) {
                    self.settled(id);
                }
                Some(msg)
            }
            msg => Some(msg),
        }
    }

    /// Request `id` settled: a name refused while it was served may be asked for again.
    fn settled(&mut self, id: RequestId) {
        if self.refused_len == 0 {
            return;
        }
        let name = self.refused.iter().find(|(_, r)| **r == id).map(|(name, _)| name.clone());
        if let Some(name) = name {
            self.refused.remove(&name);
            self.refused_len -= 1;
        }
    }

    /// Gives back every owned name that nothing holds or waits for.
    pub fn give_back_idle(&mut self, send: &mut Vec<ClientMsg>) {
        self.idle = false;
        let idle: Vec<Rc<[u16]>> = self
            .names
            .iter()
            .filter(|(name, own)| matches!(own, Own::Owned) && self.engine.is_idle(name))
            .map(|(name, _)| name.clone())
            .collect();
        for name in idle {
            self.hand_back(&name, send);
        }
    }

    /// The `Ask` of request `id` was answered: the name it asked for.
    fn answered(&mut self, id: RequestId) -> Option<Rc<[u16]>> {
        let i = self.asking.iter().position(|(a, _)| *a == id)?;
        Some(self.asking.remove(i).1)
    }

    /// Whether request `id` was withdrawn while its `Ask` was out (forgetting it).
    fn unwithdraw(&mut self, id: RequestId) -> bool {
        match self.withdrawn.iter().position(|w| *w == id) {
            Some(i) => {
                self.withdrawn.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Gives back every owned name (before a query, or the context is about to be frozen).
    pub fn give_back_all(&mut self, send: &mut Vec<ClientMsg>) {
        let owned: Vec<Rc<[u16]>> =
            self.names.iter().filter(|(_, own)| matches!(own, Own::Owned)).map(|(name, _)| name.clone()).collect();
        for name in owned {
            self.hand_back(&name, send);
        }
    }

    /// Sends `name` back with everything the local engine has on it.
    fn hand_back(&mut self, name: &[u16], send: &mut Vec<ClientMsg>) {
        self.names.remove(name);
        let entries = self
            .engine
            .take_name(name)
            .into_iter()
            .map(|(k, mode, position)| Restored {
                id: k.request,
                name: name.to_vec(),
                mode,
                position,
                // Spec requests only: a unit struct without the lock services.
                #[allow(clippy::default_constructed_unit_structs)]
                extras: Extras::default(),
            })
            .collect();
        send.push(ClientMsg::Handback { name: name.to_vec(), entries });
    }
}

fn request_id(m: &ClientMsg) -> Option<RequestId> {
    match m {
        ClientMsg::Request { id, .. } => Some(*id),
        #[cfg(feature = "services")]
        ClientMsg::Acquire { id, .. } => Some(*id),
        _ => None,
    }
}

/// The local engine's effects as the arbiter's answers.
fn answers(fx: Vec<Effect>, local: &mut Vec<ArbiterMsg>) {
    local.extend(fx.into_iter().map(|e| ArbiterMsg::answering(e).1));
}

#[cfg(all(test, not(target_arch = "wasm32")))]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn n() -> Vec<u16> {
        vec![0x6e]
    }
    fn req(id: u64) -> ClientMsg {
        ClientMsg::Request { id: RequestId(id), name: n(), mode: LockMode::Exclusive, flags: RequestFlags::default() }
    }
    fn out(d: &mut Delegation, msg: ClientMsg) -> (Vec<ClientMsg>, Vec<ArbiterMsg>) {
        let (mut send, mut local) = (Vec::new(), Vec::new());
        d.outgoing(msg, true, &mut send, &mut local);
        (send, local)
    }
    fn inc(d: &mut Delegation, msg: ArbiterMsg) -> (Option<ArbiterMsg>, Vec<ClientMsg>, Vec<ArbiterMsg>) {
        let (mut send, mut local) = (Vec::new(), Vec::new());
        let rest = d.incoming(msg, true, &mut send, &mut local);
        (rest, send, local)
    }

    #[test]
    fn requests_made_while_asking_wait_and_are_then_served_here_in_order() {
        let mut d = Delegation::new();
        let (send, _) = out(&mut d, req(1));
        assert!(matches!(send[..], [ClientMsg::Ask { id: RequestId(1), .. }]));
        assert_eq!(out(&mut d, req(2)), (vec![], vec![]), "waits for the answer");
        let (rest, send, local) = inc(&mut d, ArbiterMsg::Owned { id: RequestId(1) });
        assert_eq!((rest, send), (None, vec![]));
        assert_eq!(
            local,
            vec![ArbiterMsg::Granted { id: RequestId(1) }, ArbiterMsg::Queued { id: RequestId(2), position: 1 }]
        );
        // Released here, the next is granted here; a revoke hands back the exact state.
        assert_eq!(
            out(&mut d, ClientMsg::Release { id: RequestId(1) }),
            (vec![], vec![ArbiterMsg::Granted { id: RequestId(2) }])
        );
        out(&mut d, req(3));
        let (_, send, _) = inc(&mut d, ArbiterMsg::Revoke { name: n() });
        let ClientMsg::Handback { entries, .. } = &send[0] else { panic!("{send:?}") };
        assert_eq!(entries.iter().map(|e| (e.id.0, e.position)).collect::<Vec<_>>(), vec![(2, None), (3, Some(2))]);
        assert!(!d.owns(&n()));
        // Once given back, a release goes to the arbiter.
        assert_eq!(
            out(&mut d, ClientMsg::Release { id: RequestId(2) }).0,
            vec![ClientMsg::Release { id: RequestId(2) }]
        );
    }

    #[test]
    fn a_query_made_while_asking_waits_with_what_follows_and_gets_the_names_back_first() {
        let mut d = Delegation::new();
        out(&mut d, req(1));
        assert_eq!(out(&mut d, ClientMsg::Query { id: 1 }), (vec![], vec![]));
        let other = ClientMsg::Request {
            id: RequestId(2),
            name: vec![0x6f],
            mode: LockMode::Shared,
            flags: RequestFlags::default(),
        };
        assert_eq!(out(&mut d, other), (vec![], vec![]), "after the query: it waits too");
        let (_, send, _) = inc(&mut d, ArbiterMsg::Owned { id: RequestId(1) });
        assert!(matches!(send[0], ClientMsg::Handback { .. }), "{send:?}");
        assert_eq!(send[1], ClientMsg::Query { id: 1 });
        assert!(matches!(send[2], ClientMsg::Ask { id: RequestId(2), .. }));
    }

    #[test]
    fn a_name_refused_is_asked_for_again_once_its_request_settled_unless_it_was_withdrawn_while_asking() {
        let mut d = Delegation::new();
        out(&mut d, req(1));
        inc(&mut d, ArbiterMsg::Queued { id: RequestId(1), position: 0 });
        assert_eq!(out(&mut d, req(2)).0, vec![req(2)], "refused: an ordinary request");
        out(&mut d, ClientMsg::Release { id: RequestId(1) });
        assert!(matches!(out(&mut d, req(3)).0[..], [ClientMsg::Ask { .. }]), "settled: asked again");
        // Withdrawn while its Ask was out: the ordinary answer does not refuse the name.
        out(&mut d, ClientMsg::Release { id: RequestId(3) });
        inc(&mut d, ArbiterMsg::Queued { id: RequestId(3), position: 0 });
        assert!(matches!(out(&mut d, req(4)).0[..], [ClientMsg::Ask { .. }]));
    }
}
