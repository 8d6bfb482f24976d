// The chaos runner's exact checker. It joins the arbiter's decision log (trace.mjs) with the
// contexts' own holder intervals (a lock callback's start and end, stamped in the context
// with performance.timeOrigin + performance.now(), one clock for the whole browser).
//
// 1. Arbiter level, per arbiter epoch, in the order the arbiter decided: a grant never
//    conflicts with a lock that arbiter still counts as held; a restored held lock (after
//    an arbiter restart) conflicts only if one side is a steal victim that never heard of
//    it (the spec lets its callback run on); no two arbiters grant at once.
// 2. Context level, per callback that got a lock: the arbiter granted that very request
//    (client id and request id) before the callback started; the arbiter did not release
//    it before the callback ended; its context was not declared dead while it ran; a
//    recovery did not drop it while it ran.
// 3. Every overlap of two conflicting callbacks on one name is listed and either explained
//    by an eviction the arbiter made before it granted the other (a steal, or the
//    context's death) or reported as a violation, with the decisions that led to it.
//
// Clock slack: outside cross-origin isolation performance.now() is coarsened to 0.1 ms (with
// jitter), and each context has its own timeOrigin: stamps taken in two contexts compare
// to a few ticks. Measured here (figures.margins): a callback's start stamp as much as
// 0.2 ms before the arbiter's stamp of the grant that caused it.
export const SLACK_MS = 0.5;

const conflicts = (a, b) => a === "exclusive" || b === "exclusive";
const before = (x, y) => x.epoch < y.epoch || (x.epoch === y.epoch && x.seq < y.seq);

/**
 * records: [{ctx, clientId, id, name, mode, steal, ifAvailable, t0, start, end, settled, outcome}]
 * decisions: decode()d trace. killed: Map clientId -> time the runner killed it.
 * Returns { violations, overlaps: {total, explained, byReason}, figures }.
 */
export function check({ records, decisions, killed = new Map(), slackMs = SLACK_MS, offsets = null }) {
  const violations = [];
  // offsets (optional): label -> {offset, rtt}, a context's clock minus the observer's, from
  // the ping with the smallest round trip. A clock off by more than that round trip and
  // than 1 ms (twice the slack) is off for sure: its context's stamps are corrected by it.
  const corrected = [];
  if (offsets) {
    const off = new Map([...offsets].filter(([, c]) => Math.abs(c.offset) > Math.max(1, c.rtt)));
    for (const [ctx, c] of off) corrected.push({ ctx, offsetMs: c.offset, uncertaintyMs: c.rtt / 2 });
    if (off.size) {
      records = records.map((r) => {
        const c = off.get(r.ctx);
        if (!c) return r;
        const f = (t) => (t === null || t === undefined ? t : t - c.offset);
        return { ...r, t0: f(r.t0), start: f(r.start), end: f(r.end), settled: f(r.settled) };
      });
    }
  }
  const hist = new Map(); // clientId/id -> { grants: [], ends: [] }
  const h = (k) => hist.get(k) || hist.set(k, { grants: [], ends: [] }).get(k);
  const key = (client, id) => `${client}/${id}`;
  const hellos = new Map(); // clientId -> [decision]
  const gones = new Map(); // clientId -> [decision]
  const stolen = new Set();
  const epochs = new Map();
  for (const d of decisions) (epochs.get(d.epoch) || epochs.set(d.epoch, []).get(d.epoch)).push(d);
  const excerpt = (pred, t0, t1) =>
    decisions.filter((d) => d.t >= t0 - 20 && d.t <= t1 + 20 && pred(d)).map(fmt);
  const grantSpan = new Map(); // epoch -> [first grant t, last grant t]
  // Delegation: clientId + "\n" + name -> [{d: the owned decision, end: handback or gone}],
  // the times a context served a name itself (its own grants are not in the log).
  const ownerships = new Map();
  const ownKey = (client, name) => `${client}\n${name}`;
  const handoffs = []; // [released key, granted key]: an exclusive grant right after a release

  for (const [epoch, list] of [...epochs].sort((a, b) => a[0] - b[0])) {
    const holders = new Map(); // name -> Map(key -> {mode, zombie, d})
    const lastRelease = new Map(); // name -> key of the last lock released on it
    const held = new Map(); // clientId -> Set(key) held in this epoch
    const nameOf = new Map();
    const owner = new Map(); // name -> the open ownership {d, end}
    let handedBack = null; // the handback whose restored entries follow
    const add = (d, zombie) => {
      const k = key(d.client, d.id);
      const on = holders.get(d.name) || holders.set(d.name, new Map()).get(d.name);
      on.set(k, { mode: d.mode, zombie, d });
      (held.get(d.client) || held.set(d.client, new Set()).get(d.client)).add(k);
      nameOf.set(k, d.name);
      h(k).grants.push(d);
    };
    const remove = (k, d) => {
      const name = nameOf.get(k);
      if (name === undefined) return false;
      holders.get(name)?.delete(k);
      nameOf.delete(k);
      h(k).ends.push(d);
      return true;
    };
    for (const d of list) {
      const k = d.id !== undefined ? key(d.client, d.id) : null;
      if (handedBack && !(d.kind.startsWith("restored") && d.client === handedBack.client && d.name === handedBack.name)) handedBack = null;
      if (handedBack) d.viaHandback = true;
      if (["granted", "owned"].includes(d.kind) || (d.kind === "restored-held" && !d.viaHandback)) {
        const o = owner.get(d.name);
        if (o && o.d.client !== d.client) violations.push({ kind: "arbiter granted a name another context owns", detail: `${fmt(d)} while ${o.d.client} owned it`, decisions: excerpt((x) => x.name === d.name, o.d.t, d.t) });
      }
      if (d.kind === "owned") {
        // The name is the client's until its handback (or death); the Ask's own request is
        // granted like any other (below).
        const o = { d, end: null };
        owner.set(d.name, o);
        const ok = ownKey(d.client, d.name);
        (ownerships.get(ok) || ownerships.set(ok, []).get(ok)).push(o);
      }
      switch (d.kind) {
        case "handback": {
          const o = owner.get(d.name);
          if (!o || o.d.client !== d.client) violations.push({ kind: "handback of a name not owned", detail: fmt(d) });
          else o.end = d;
          owner.delete(d.name);
          // What the owner held locally ends here; what it still held comes back restored.
          for (const [x, v] of [...(holders.get(d.name) || new Map())]) if (v.d.client === d.client) remove(x, d);
          handedBack = d;
          break;
        }
        case "hello":
          (hellos.get(d.client) || hellos.set(d.client, []).get(d.client)).push(d);
          break;
        case "granted":
        case "owned":
        case "restored-held": {
          const others = [...(holders.get(d.name) || new Map())].filter(([, x]) => conflicts(x.mode, d.mode));
          const zombie = stolen.has(k);
          if (d.kind !== "restored-held" && others.length) {
            violations.push({ kind: "arbiter granted a held lock", detail: `${fmt(d)} while ${others.map(([o]) => o).join(", ")} held it`, decisions: excerpt((x) => x.name === d.name || others.some(([o]) => o === key(x.client, x.id)), d.t, d.t) });
          } else if (others.length && !zombie && !others.every(([, x]) => x.zombie)) {
            violations.push({ kind: "arbiter restored conflicting holders", detail: `${fmt(d)} next to ${others.map(([o]) => o).join(", ")}, none a steal victim`, decisions: excerpt((x) => x.name === d.name, d.t, d.t) });
          }
          add(d, zombie);
          if (d.kind !== "restored-held" && d.mode === "exclusive" && lastRelease.has(d.name)) {
            // A handoff: this grant followed that release, in the arbiter's order.
            handoffs.push([lastRelease.get(d.name), k]);
          }
          if (d.kind !== "restored-held") lastRelease.delete(d.name);
          if (d.kind !== "restored-held") {
            const s = grantSpan.get(epoch) || grantSpan.set(epoch, [d.t, d.t]).get(epoch);
            s[1] = d.t;
          }
          break;
        }
        case "stolen":
          stolen.add(k);
          remove(k, d);
          break;
        case "expired": // a lease ran out: the arbiter took the lock from a live holder
          remove(k, d);
          break;
        case "released": {
          const name = nameOf.get(k);
          if (remove(k, d)) lastRelease.set(name, k);
          break;
        }
        case "gone":
          (gones.get(d.client) || gones.set(d.client, []).get(d.client)).push(d);
          for (const [name, o] of [...owner]) if (o.d.client === d.client) (o.end = d), owner.delete(name);
          for (const x of held.get(d.client) || []) remove(x, d);
          held.delete(d.client);
          break;
      }
    }
  }
  // No two arbiters grant at once: every epoch's grants come after the previous ones'.
  const spans = [...grantSpan].sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    const [e0, [, last0]] = spans[i - 1];
    const [e1, [first1]] = spans[i];
    if (first1 < last0 - slackMs) violations.push({ kind: "two arbiters granted at once", detail: `epoch ${e1} granted at ${first1.toFixed(2)}, epoch ${e0} still granting at ${last0.toFixed(2)}` });
  }

  // Context level.
  const holds = [];
  const figures = { callbacks: 0, requests: records.length, unsettled: 0, outcomes: {}, margins: {}, localCallbacks: 0, ownerships: [...ownerships.values()].reduce((n, l) => n + l.length, 0) };
  // The smallest time seen between an arbiter decision and what it causes in a context
  // (negative: clock skew between the two contexts, which the slack must cover).
  const margin = (what, ms) => (figures.margins[what] = Math.min(figures.margins[what] ?? Infinity, ms));
  for (const r of records) {
    figures.outcomes[r.outcome] = (figures.outcomes[r.outcome] || 0) + 1;
    const dead = killed.has(r.clientId);
    if (r.settled === null && !dead) figures.unsettled++;
    if (r.start === null || r.outcome === "unavailable") continue;
    figures.callbacks++;
    const k = key(r.clientId, r.id);
    let x = hist.get(k);
    const about = (t0, t1) => excerpt((d) => d.name === r.name || (d.client === r.clientId && (d.id === r.id || d.id === undefined)), t0, t1);
    // Granted by its own context's engine: while that context owned the name (the last
    // ownership that began by the callback's start).
    const began = (ownerships.get(ownKey(r.clientId, r.name)) || []).findLast((o) => o.d.t <= r.start + slackMs);
    const own = began && (!began.end || r.start <= began.end.t + slackMs) ? began : null;
    if (own && (!x || !x.grants.length || x.grants[0].kind === "restored-held")) {
      figures.localCallbacks++;
      const ends = x ? x.ends : own.end ? [own.end] : [];
      x = { grants: [own.d, ...(x ? x.grants : [])], ends, own };
    }
    if (!x || !x.grants.length) {
      violations.push({ kind: "callback ran without a grant", detail: brief(r), decisions: about(r.t0, r.start) });
      continue;
    }
    const g = x.grants[0];
    margin("grant → callback start", r.start - g.t);
    if (r.start < g.t - slackMs) violations.push({ kind: "callback started before its grant", detail: `${brief(r)}; granted at ${g.t.toFixed(3)}`, decisions: about(r.t0, r.start) });
    const lastGrant = x.grants[x.grants.length - 1];
    // Held by an arbiter that died and never re-registered: its context died too (a later
    // arbiter found it gone), or released it in between (checked below).
    const last = x.ends[x.ends.length - 1] || (gones.get(r.clientId) || []).find((d) => d.epoch > lastGrant.epoch);
    let end = r.end;
    if (end === null) {
      if (!dead) {
        violations.push({ kind: "a live context's callback never ended", detail: brief(r) });
        end = Infinity;
      } else end = last ? last.t : Infinity; // it ran until its context died (or its release reached the arbiter)
    }
    const freed = last && ["released", "handback"].includes(last.kind);
    if (last && last.kind === "released" && r.end !== null) margin("callback end → release", last.t - r.end);
    // Stolen within its owner's engine (not in the arbiter's log): its callback may run on
    // past the handback, which did not carry it (R-53).
    const stolenLocally = last && last.kind === "handback" && r.outcome === "stolen";
    if (freed && !stolenLocally && r.end !== null && r.end > last.t + slackMs) {
      violations.push({ kind: "released at the arbiter before its callback ended", detail: `${brief(r)}; released at ${last.t.toFixed(3)}`, decisions: about(r.start, r.end) });
    }
    if (last && last.kind === "gone" && !dead && end > last.t + slackMs) {
      violations.push({ kind: "context declared gone while its callback ran", detail: `${brief(r)}; gone at ${last.t.toFixed(3)} (epoch ${last.epoch})`, decisions: about(r.start, last.t) });
    }
    if (!last) {
      // Held by an arbiter that died, and not re-registered with the next: the context
      // released it in between. It must have ended before the context's Hello to the next.
      const next = (hellos.get(r.clientId) || []).find((d) => d.epoch > lastGrant.epoch);
      if (next && end > next.t + slackMs) violations.push({ kind: "dropped by a recovery while its callback ran", detail: `${brief(r)}; re-registered without it at ${next.t.toFixed(3)} (epoch ${next.epoch})`, decisions: about(r.start, next.t) });
    }
    const evict = last && (["stolen", "gone", "expired"].includes(last.kind) || stolenLocally) ? last : null;
    const released = freed ? last : null;
    // The ownership it was granted under, if any (the Ask's own request is granted by "owned").
    const under = x.own || (g.kind === "owned" ? (ownerships.get(ownKey(g.client, g.name)) || []).find((o) => o.d === g) : null);
    holds.push({ r, s: r.start, e: end, grant: g, evict, released, own: under || null });
  }

  // Overlaps, each explained or reported.
  const overlaps = { total: 0, explained: 0, byReason: { stolen: 0, gone: 0, expired: 0, released: 0, handback: 0 } };
  const byName = new Map();
  for (const x of holds) (byName.get(x.r.name) || byName.set(x.r.name, []).get(x.r.name)).push(x);
  for (const [name, list] of byName) {
    list.sort((a, b) => a.s - b.s);
    for (let i = 0; i < list.length; i++) {
      const a = list[i];
      for (let j = i + 1; j < list.length; j++) {
        const b = list[j];
        if (b.s >= a.e - slackMs) break;
        if (!conflicts(a.r.mode, b.r.mode)) continue;
        const overlap = Math.min(a.e, b.e) - b.s;
        if (overlap <= slackMs) continue;
        overlaps.total++;
        // Explained when one of the two had been evicted before the other was granted; or
        // released before it (then the apparent overlap is clock skew: the checks above
        // bound each stamp against the arbiter's, so it is at most twice the slack).
        const first = (x, y) => (x && before(x, y) ? x : null);
        let why = first(a.evict, b.grant) || first(b.evict, a.grant) || first(a.released, b.grant) || first(b.released, a.grant);
        // Both granted by one context's own engine while it owned the name: a steal there
        // is not in the arbiter's log, and that engine grants nothing that conflicts with a
        // lock it holds, so one of them was evicted by a steal before the other's grant.
        const sameOwnership = a.own && a.own === b.own;
        const localSteal = sameOwnership && (a.r.outcome === "stolen" || b.r.outcome === "stolen");
        if (!why && localSteal) why = { kind: "stolen" };
        if (why) {
          overlaps.explained++;
          overlaps.byReason[why.kind]++;
          continue;
        }
        violations.push({
          kind: "unexplained overlap",
          detail: `${name}: ${brief(a.r)} and ${brief(b.r)} overlap by ${overlap.toFixed(3)} ms; neither was evicted before the other's grant`,
          decisions: excerpt((d) => d.name === name || [a.r, b.r].some((r) => d.client === r.clientId && (d.id === r.id || d.id === undefined)), a.r.t0, Math.min(a.e, b.e)),
        });
      }
    }
  }
  // Clock check: for an exclusive handoff (the arbiter granted B right after A's release),
  // B's callback truly started after A's ended. Stamps from two contexts can still show B
  // first: this is how far (ms), which bounds what the contexts' clocks can show.
  const byKey = new Map(records.map((r) => [key(r.clientId, r.id), r]));
  let worst = Infinity;
  let negative = 0;
  for (const [a, b] of handoffs) {
    const ra = byKey.get(a);
    const rb = byKey.get(b);
    if (!ra || !rb || ra.end === null || rb.start === null || ra.clientId === rb.clientId) continue;
    const gap = rb.start - ra.end;
    worst = Math.min(worst, gap);
    if (gap < 0) negative++;
  }
  figures.handoffs = { crossContext: handoffs.length, smallestGapMs: worst, negativeGaps: negative };
  figures.clockCorrected = corrected;
  figures.arbiters = epochs.size;
  figures.decisions = decisions.length;
  return { violations, overlaps, figures };
}

function brief(r) {
  const f = (t) => (t === null || t === undefined ? "-" : t.toFixed(3));
  return `${r.ctx} ${r.clientId.slice(0, 8)}/${r.id} ${r.mode}${r.steal ? "+steal" : ""}${r.ifAvailable ? "+ifAvailable" : ""} requested ${f(r.t0)} held [${f(r.start)}, ${f(r.end)}] ${r.outcome}`;
}

export function fmt(d) {
  const who = d.client !== undefined ? ` ${d.client.slice(0, 8)}${d.id !== undefined ? `/${d.id}` : ""}` : "";
  return `${d.t.toFixed(3)} e${d.epoch} ${d.kind}${who}${d.name !== undefined ? ` ${d.mode} ${JSON.stringify(d.name)}` : ""}`;
}
