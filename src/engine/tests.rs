//! Engine unit tests, named after the rules of spec-digest.md they check.
use super::*;

const EX: LockMode = LockMode::Exclusive;
const SH: LockMode = LockMode::Shared;
const PLAIN: RequestFlags = RequestFlags { if_available: false, steal: false };
const TRY: RequestFlags = RequestFlags { if_available: true, steal: false };
const STEAL: RequestFlags = RequestFlags { if_available: false, steal: true };

fn k(client: u32, request: u64) -> RequestKey {
    RequestKey { client: ClientId(client), request: RequestId(request) }
}

fn n(s: &str) -> ResourceName {
    s.encode_utf16().collect::<Vec<_>>().into()
}

struct T {
    e: Engine,
    out: Vec<Effect>,
}

impl T {
    fn new() -> Self {
        T { e: Engine::new(), out: Vec::new() }
    }
    /// The effects of one request, without the `Queued` acks (see `queued_acks_*`).
    fn req(&mut self, key: RequestKey, name: &str, mode: LockMode, flags: RequestFlags) -> Vec<Effect> {
        self.e.request(key, n(name), mode, flags, &mut self.out).expect("valid request");
        let mut out = std::mem::take(&mut self.out);
        out.retain(|e| !matches!(e, Effect::Queued(..)));
        out
    }
    fn rel(&mut self, key: RequestKey) -> Vec<Effect> {
        self.e.release(key, &mut self.out);
        std::mem::take(&mut self.out)
    }
    fn term(&mut self, client: u32) -> Vec<Effect> {
        self.e.terminate(ClientId(client), &mut self.out);
        std::mem::take(&mut self.out)
    }
}

use Effect::{Granted as G, Stolen as S, Unavailable as U};

#[test]
fn r20_same_name_is_granted_fifo() {
    let mut t = T::new();
    assert_eq!(t.req(k(1, 1), "a", EX, PLAIN), [G(k(1, 1))]);
    assert_eq!(t.req(k(2, 1), "a", EX, PLAIN), []);
    assert_eq!(t.req(k(3, 1), "a", EX, PLAIN), []);
    assert_eq!(t.rel(k(1, 1)), [G(k(2, 1))]);
    assert_eq!(t.rel(k(2, 1)), [G(k(3, 1))]);
    assert_eq!(t.rel(k(3, 1)), []);
    assert!(t.e.is_empty());
    assert!(t.e.names.is_empty(), "empty per-name state is dropped");
}

#[test]
fn r21_different_names_never_block() {
    let mut t = T::new();
    assert_eq!(t.req(k(1, 1), "a", EX, PLAIN), [G(k(1, 1))]);
    assert_eq!(t.req(k(1, 2), "b", EX, PLAIN), [G(k(1, 2))]);
}

#[test]
fn r07_names_are_code_units_with_no_normalisation() {
    let mut t = T::new();
    let lone: ResourceName = vec![0xD800].into();
    let repl: ResourceName = vec![0xFFFD].into();
    let empty: ResourceName = Vec::new().into();
    let nul: ResourceName = vec![0].into();
    let mut out = Vec::new();
    for (i, name) in [lone, repl, empty, nul].into_iter().enumerate() {
        t.e.request(k(1, i as u64), name, EX, PLAIN, &mut out).expect("valid");
    }
    assert_eq!(out.len(), 4, "four distinct names, all granted: {out:?}");
}

#[test]
fn r22_shared_locks_coexist_in_order() {
    let mut t = T::new();
    assert_eq!(t.req(k(1, 1), "a", SH, PLAIN), [G(k(1, 1))]);
    assert_eq!(t.req(k(2, 1), "a", SH, PLAIN), [G(k(2, 1))]);
    assert_eq!(t.e.snapshot().held.len(), 2);
}

#[test]
fn r23_exclusive_waits_for_any_holder_shared_waits_for_exclusive() {
    let mut t = T::new();
    t.req(k(1, 1), "a", SH, PLAIN);
    assert_eq!(t.req(k(2, 1), "a", EX, PLAIN), []);
    assert_eq!(t.rel(k(1, 1)), [G(k(2, 1))]);
    assert_eq!(t.req(k(3, 1), "a", SH, PLAIN), []);
    assert_eq!(t.rel(k(2, 1)), [G(k(3, 1))]);
}

#[test]
fn r24_no_barging_past_a_waiting_request() {
    let mut t = T::new();
    t.req(k(1, 1), "a", SH, PLAIN);
    t.req(k(2, 1), "a", EX, PLAIN);
    // Compatible with the shared holder, but behind the waiting exclusive request.
    assert_eq!(t.req(k(3, 1), "a", SH, PLAIN), []);
    assert_eq!(t.rel(k(1, 1)), [G(k(2, 1))]);
    assert_eq!(t.rel(k(2, 1)), [G(k(3, 1))]);
}

#[test]
fn r25_one_pass_grants_every_grantable_request_at_the_head() {
    let mut t = T::new();
    t.req(k(1, 1), "a", EX, PLAIN);
    for c in 2..7 {
        t.req(k(c, 1), "a", SH, PLAIN);
    }
    t.req(k(7, 1), "a", EX, PLAIN);
    t.req(k(8, 1), "a", SH, PLAIN);
    assert_eq!(t.rel(k(1, 1)), [G(k(2, 1)), G(k(3, 1)), G(k(4, 1)), G(k(5, 1)), G(k(6, 1))]);
}

#[test]
fn r26_not_reentrant() {
    let mut t = T::new();
    t.req(k(1, 1), "a", EX, PLAIN);
    assert_eq!(t.req(k(1, 2), "a", EX, PLAIN), []);
    assert!(t.e.is_queued(k(1, 2)));
}

#[test]
fn r40_r41_if_available_grants_or_reports_unavailable_without_queueing() {
    let mut t = T::new();
    assert_eq!(t.req(k(1, 1), "a", EX, TRY), [G(k(1, 1))]);
    assert_eq!(t.req(k(2, 1), "a", EX, TRY), [U(k(2, 1))]);
    assert_eq!(t.req(k(2, 2), "a", SH, TRY), [U(k(2, 2))]);
    assert!(!t.e.is_queued(k(2, 1)) && t.e.snapshot().pending.is_empty());
    // The same key may be used again: it was never stored.
    assert_eq!(t.rel(k(1, 1)), []);
    assert_eq!(t.req(k(2, 1), "a", EX, TRY), [G(k(2, 1))]);
}

#[test]
fn r41_unavailable_on_a_fresh_name_leaves_no_state() {
    let mut t = T::new();
    t.req(k(1, 1), "a", EX, PLAIN);
    t.rel(k(1, 1));
    t.req(k(1, 2), "b", SH, PLAIN);
    assert_eq!(t.req(k(1, 3), "b", EX, TRY), [U(k(1, 3))]);
    t.rel(k(1, 2));
    assert!(t.e.names.is_empty());
}

#[test]
fn r42_if_available_fails_when_only_a_waiter_blocks() {
    let mut t = T::new();
    t.req(k(1, 1), "a", SH, PLAIN);
    t.req(k(2, 1), "a", EX, PLAIN);
    // Shared would be compatible with the shared holder, but the queue is not empty.
    assert_eq!(t.req(k(3, 1), "a", SH, TRY), [U(k(3, 1))]);
}

#[test]
fn r43_shared_if_available_granted_beside_shared_holders() {
    let mut t = T::new();
    t.req(k(1, 1), "a", SH, PLAIN);
    assert_eq!(t.req(k(2, 1), "a", SH, TRY), [G(k(2, 1))]);
}

#[test]
fn r50_r51_steal_evicts_every_holder_and_goes_to_the_head() {
    let mut t = T::new();
    t.req(k(1, 1), "a", SH, PLAIN);
    t.req(k(2, 1), "a", SH, PLAIN);
    t.req(k(3, 1), "a", EX, PLAIN);
    assert_eq!(t.req(k(4, 1), "a", EX, STEAL), [S(k(1, 1)), S(k(2, 1)), G(k(4, 1))]);
    // Victims' later releases are no-ops; the earlier waiter keeps its place.
    assert_eq!(t.rel(k(1, 1)), []);
    assert!(!t.e.is_held(k(1, 1)));
    assert_eq!(t.rel(k(4, 1)), [G(k(3, 1))]);
}

#[test]
fn r52_last_steal_wins() {
    let mut t = T::new();
    assert_eq!(t.req(k(1, 1), "a", EX, STEAL), [G(k(1, 1))]);
    assert_eq!(t.req(k(2, 1), "a", EX, STEAL), [S(k(1, 1)), G(k(2, 1))]);
    assert_eq!(t.e.snapshot().held.len(), 1);
}

#[test]
fn r54_steal_with_no_holder_is_a_normal_grant() {
    let mut t = T::new();
    assert_eq!(t.req(k(1, 1), "a", EX, STEAL), [G(k(1, 1))]);
}

#[test]
fn r60_abort_of_a_waiter_removes_it_and_reprocesses() {
    let mut t = T::new();
    t.req(k(1, 1), "a", SH, PLAIN);
    t.req(k(2, 1), "a", EX, PLAIN);
    t.req(k(3, 1), "a", SH, PLAIN);
    // Withdrawing the exclusive waiter lets the shared request behind it in.
    assert_eq!(t.rel(k(2, 1)), [G(k(3, 1))]);
}

#[test]
fn r61_dropping_an_unused_grant_passes_the_lock_on() {
    let mut t = T::new();
    t.req(k(1, 1), "a", EX, PLAIN);
    t.req(k(2, 1), "a", EX, PLAIN);
    assert_eq!(t.rel(k(1, 1)), [G(k(2, 1))]);
}

#[test]
fn r63_release_of_an_unknown_key_is_a_no_op() {
    let mut t = T::new();
    assert!(!t.e.release(k(9, 9), &mut t.out));
    assert!(t.out.is_empty());
}

#[test]
fn r71_r72_snapshot_lists_each_holder_and_pending_in_request_order() {
    let mut t = T::new();
    t.req(k(1, 1), "a", SH, PLAIN);
    t.req(k(2, 1), "a", SH, PLAIN);
    t.req(k(3, 1), "a", EX, PLAIN);
    t.req(k(2, 2), "a", SH, PLAIN);
    t.req(k(4, 1), "b", EX, PLAIN);
    let s = t.e.snapshot();
    let held: Vec<_> = s.held.iter().map(|i| (i.client.0, i.request.0, i.mode)).collect();
    assert_eq!(held, [(1, 1, SH), (2, 1, SH), (4, 1, EX)]);
    let pending: Vec<_> = s.pending.iter().map(|i| (i.client.0, i.mode)).collect();
    assert_eq!(pending, [(3, EX), (2, SH)]);
}

#[test]
fn r80_terminate_drops_requests_then_releases_locks() {
    let mut t = T::new();
    t.req(k(1, 1), "a", EX, PLAIN);
    t.req(k(2, 1), "a", EX, PLAIN);
    t.req(k(1, 2), "a", EX, PLAIN); // the dying client's own waiter, behind client 2
    t.req(k(1, 3), "b", EX, PLAIN);
    t.req(k(3, 1), "b", SH, PLAIN);
    let mut got = t.term(1);
    got.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(got, [G(k(2, 1)), G(k(3, 1))]);
    assert_eq!(t.e.snapshot().pending, []);
}

#[test]
fn r80_terminate_never_grants_the_dying_clients_own_requests() {
    let mut t = T::new();
    t.req(k(1, 1), "a", EX, PLAIN);
    t.req(k(1, 2), "a", EX, PLAIN);
    assert_eq!(t.term(1), []);
    assert!(t.e.is_empty() && t.e.names.is_empty());
}

#[test]
fn r85_terminate_is_scoped_to_one_client() {
    let mut t = T::new();
    t.req(k(1, 1), "a", SH, PLAIN);
    t.req(k(2, 1), "a", SH, PLAIN);
    t.term(1);
    assert!(t.e.is_held(k(2, 1)));
}

#[test]
fn invalid_flags_and_duplicates_are_errors_not_panics() {
    let mut t = T::new();
    let both = RequestFlags { if_available: true, steal: true };
    assert_eq!(t.e.request(k(1, 1), n("a"), EX, both, &mut t.out), Err(EngineError::InvalidFlags));
    assert_eq!(t.e.request(k(1, 1), n("a"), SH, STEAL, &mut t.out), Err(EngineError::InvalidFlags));
    t.req(k(1, 1), "a", EX, PLAIN);
    assert_eq!(t.e.request(k(1, 1), n("b"), EX, PLAIN, &mut t.out), Err(EngineError::DuplicateRequest));
    assert!(t.out.is_empty());
}

#[test]
fn scale_100k_names_and_100k_waiters() {
    let mut t = T::new();
    let mut out = Vec::new();
    for i in 0..100_000u64 {
        t.e.request(k(1, i), n(&format!("n{i}")), EX, PLAIN, &mut out).expect("valid");
    }
    assert_eq!(out.len(), 100_000);
    out.clear();
    for i in 0..100_000u64 {
        t.e.request(k(2, i), n("one"), EX, PLAIN, &mut out).expect("valid");
    }
    out.retain(|e| !matches!(e, Effect::Queued(..)));
    assert_eq!(out.len(), 1);
    assert_eq!(t.e.snapshot().pending.len(), 99_999);
    t.e.terminate(ClientId(2), &mut out);
    t.e.terminate(ClientId(1), &mut out);
    assert!(t.e.is_empty());
}

#[test]
fn one_megabyte_name() {
    let mut t = T::new();
    let big: ResourceName = vec![0x61u16; 1 << 20].into();
    t.e.request(k(1, 1), big.clone(), EX, PLAIN, &mut t.out).expect("valid");
    t.e.request(k(1, 2), big, EX, PLAIN, &mut t.out).expect("valid");
    assert_eq!(t.out, [G(k(1, 1)), Effect::Queued(k(1, 2), 1)]);
}

#[test]
fn queued_acks_carry_positions_and_steals_go_before_the_head() {
    let mut t = T::new();
    let mut out = Vec::new();
    t.e.request(k(1, 1), n("a"), EX, PLAIN, &mut out).expect("valid");
    t.e.request(k(2, 1), n("a"), EX, PLAIN, &mut out).expect("valid");
    t.e.request(k(3, 1), n("a"), SH, PLAIN, &mut out).expect("valid");
    assert_eq!(out, [G(k(1, 1)), Effect::Queued(k(2, 1), 1), Effect::Queued(k(3, 1), 2)]);
    out.clear();
    // A granted steal is never reported as queued.
    t.e.request(k(4, 1), n("a"), EX, STEAL, &mut out).expect("valid");
    assert_eq!(out, [S(k(1, 1)), G(k(4, 1))]);
}

#[test]
fn restore_rebuilds_holders_and_queue_order_then_grants_fifo() {
    // The state of a first engine, as clients would re-register it with a second one.
    let mut first = T::new();
    let mut acks = Vec::new();
    first.e.request(k(1, 1), n("a"), EX, PLAIN, &mut acks).expect("valid");
    first.e.request(k(2, 1), n("a"), EX, PLAIN, &mut acks).expect("valid");
    first.e.request(k(3, 1), n("a"), SH, PLAIN, &mut acks).expect("valid");
    first.e.request(k(3, 2), n("a"), SH, PLAIN, &mut acks).expect("valid");
    let positions: Vec<(RequestKey, i64)> = acks
        .iter()
        .filter_map(|e| match e {
            Effect::Queued(key, pos) => Some((*key, *pos)),
            _ => None,
        })
        .collect();
    let mut second = T::new();
    // Clients re-register in any order.
    for (key, pos) in positions.iter().rev() {
        let mode = if key.client.0 == 3 { SH } else { EX };
        second.e.restore_queued(*key, n("a"), mode, *pos).expect("valid");
    }
    second.e.restore_held(k(1, 1), n("a"), EX).expect("valid");
    assert_eq!(second.e.snapshot(), first.e.snapshot());
    let mut out = Vec::new();
    second.e.process_all(&mut out);
    assert_eq!(out, [], "the holder still holds");
    assert_eq!(second.rel(k(1, 1)), [G(k(2, 1))]);
    assert_eq!(second.rel(k(2, 1)), [G(k(3, 1)), G(k(3, 2))]);
    // New requests go behind the restored ones.
    assert_eq!(second.req(k(4, 1), "a", EX, PLAIN), []);
    assert_eq!(second.e.restore_queued(k(5, 1), n("a"), EX, 4), Err(EngineError::DuplicateRequest), "position taken");
}

/// The arbiter's guard for the deadlock search of spec requests: another client on the
/// name, as a holder or among the last `within` waiters.
#[cfg(feature = "services")]
#[test]
fn others_on_name_sees_holders_and_the_queue_tail_only() {
    let mut t = T::new();
    t.req(k(1, 1), "a", EX, PLAIN);
    t.req(k(1, 2), "a", EX, PLAIN);
    assert!(!t.e.others_on_name(k(1, 2), 64), "only client 1 on the name");
    t.req(k(2, 1), "a", EX, PLAIN);
    for r in 3..10 {
        t.req(k(1, r), "a", EX, PLAIN);
    }
    assert!(t.e.others_on_name(k(1, 9), 64), "client 2 waits among the last 64");
    assert!(!t.e.others_on_name(k(1, 9), 3), "client 2 waits further ahead than 3");
    assert!(t.e.others_on_name(k(2, 1), 0), "client 1 holds the name");
}
