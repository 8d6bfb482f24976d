// The chaos checker on fabricated histories: each check must catch what it is for, and
// explain what the spec allows. No browser needed: `node --test tests/chaos/`.
import assert from "node:assert/strict";
import { test } from "node:test";
import { check } from "./check.mjs";
import { decode, encode } from "./trace.mjs";

let seq = 0;
/** A decision log: [t, kind, client, id?, mode?, name?] rows of one arbiter epoch. */
function log(epoch, rows) {
  return rows.map(([t, kind, client, id, mode, name]) => ({ epoch, t, seq: seq++, kind, client, id, mode, name }));
}
function rec(clientId, id, name, mode, start, end, more = {}) {
  return { ctx: clientId, clientId, id, name, mode, steal: false, ifAvailable: false, t0: start - 1, start, end, settled: end === null ? null : end + 0.1, outcome: "released", ...more };
}
const kinds = (r) => r.violations.map((v) => v.kind).sort();

test("the trace words round-trip", () => {
  const ds = log(3, [
    [1, "hello", "a"],
    [1, "restored-held", "a", 7, "shared", "n\u0000\ud800"],
    [1, "restored-queued", "a", 8, "exclusive", ""],
    [2, "granted", "b", 70000, "exclusive", "x"],
    [3, "stolen", "b", 70000],
    [3, "released", "a", 7],
    [3, "withdrawn", "a", 8],
    [3, "unavailable", "a", 9],
    [4, "gone", "a"],
    [4, "expired", "c", 3],
    [4, "timed-out", "c", 4],
    [5, "owned", "c", 5, "shared", "o"],
    [6, "handback", "c", undefined, undefined, "o"],
  ]).concat([{ epoch: 3, t: 5, kind: "recovered" }]);
  const fields = ({ epoch, kind, client, id, mode, name }) => Object.fromEntries(Object.entries({ epoch, kind, client, id, mode, name }).filter(([, v]) => v !== undefined));
  assert.deepEqual(decode([[3, 0, encode(ds)]]).map(fields), ds.map(fields));
});

test("a clean handoff has no violation and no overlap", () => {
  const decisions = log(1, [
    [10, "granted", "a", 1, "exclusive", "n"],
    [12, "released", "a", 1],
    [12, "granted", "b", 1, "exclusive", "n"],
    [15, "released", "b", 1],
  ]);
  const r = check({ records: [rec("a", 1, "n", "exclusive", 10.3, 11.9), rec("b", 1, "n", "exclusive", 12.4, 14.8)], decisions });
  assert.deepEqual(kinds(r), []);
  assert.equal(r.overlaps.total, 0);
});

test("an arbiter that grants a held lock is caught, and the overlap is unexplained", () => {
  const decisions = log(1, [
    [10, "granted", "a", 1, "exclusive", "n"],
    [11, "granted", "b", 1, "exclusive", "n"],
    [15, "released", "a", 1],
    [16, "released", "b", 1],
  ]);
  const r = check({ records: [rec("a", 1, "n", "exclusive", 10.3, 14.8), rec("b", 1, "n", "exclusive", 11.3, 15.8)], decisions });
  assert.deepEqual(kinds(r), ["arbiter granted a held lock", "unexplained overlap"]);
});

test("a shared grant next to shared holders is fine, next to an exclusive one is not", () => {
  const ok = check({
    records: [rec("a", 1, "n", "shared", 10.3, 14), rec("b", 1, "n", "shared", 11.3, 14)],
    decisions: log(1, [[10, "granted", "a", 1, "shared", "n"], [11, "granted", "b", 1, "shared", "n"], [14.2, "released", "a", 1], [14.2, "released", "b", 1]]),
  });
  assert.deepEqual(kinds(ok), []);
  const bad = check({
    records: [rec("a", 1, "n", "exclusive", 10.3, 14), rec("b", 1, "n", "shared", 11.3, 14)],
    decisions: log(1, [[10, "granted", "a", 1, "exclusive", "n"], [11, "granted", "b", 1, "shared", "n"], [14.2, "released", "a", 1], [14.2, "released", "b", 1]]),
  });
  assert.ok(kinds(bad).includes("arbiter granted a held lock"));
});

test("a release the arbiter processed before the callback ended is caught (the overlap it caused too)", () => {
  const decisions = log(1, [
    [10, "granted", "a", 1, "exclusive", "n"],
    [12, "released", "a", 1],
    [12, "granted", "b", 1, "exclusive", "n"],
    [20, "released", "b", 1],
  ]);
  const r = check({ records: [rec("a", 1, "n", "exclusive", 10.3, 16), rec("b", 1, "n", "exclusive", 12.4, 19)], decisions });
  assert.deepEqual(kinds(r), ["released at the arbiter before its callback ended"]);
});

test("a steal victim whose callback runs on is explained; the same overlap without the steal is not", () => {
  const records = [rec("a", 1, "n", "exclusive", 10.3, 20, { outcome: "stolen" }), rec("s", 1, "n", "exclusive", 12.4, 14, { steal: true })];
  const withSteal = check({ records, decisions: log(1, [[10, "granted", "a", 1, "exclusive", "n"], [12, "stolen", "a", 1], [12, "granted", "s", 1, "exclusive", "n"], [14.3, "released", "s", 1]]) });
  assert.deepEqual(kinds(withSteal), []);
  assert.equal(withSteal.overlaps.byReason.stolen, 1);
  // A victim whose grant and eviction were both in flight starts after the stealer.
  const late = check({
    records: [rec("a", 1, "n", "exclusive", 13, 13, { outcome: "released" }), rec("s", 1, "n", "exclusive", 12.4, 14, { steal: true })],
    decisions: log(1, [[10, "granted", "a", 1, "exclusive", "n"], [12, "stolen", "a", 1], [12, "granted", "s", 1, "exclusive", "n"], [14.3, "released", "s", 1]]),
  });
  assert.equal(late.overlaps.total, 0, "a zero-length hold inside another is no overlap beyond the slack");
  const noSteal = check({ records, decisions: log(1, [[10, "granted", "a", 1, "exclusive", "n"], [12, "granted", "s", 1, "exclusive", "n"], [14.3, "released", "s", 1], [20.2, "released", "a", 1]]) });
  assert.ok(kinds(noSteal).includes("unexplained overlap"));
});

test("a callback with no grant in the log is caught", () => {
  const r = check({ records: [rec("a", 5, "n", "exclusive", 10, 11)], decisions: log(1, [[9, "granted", "a", 4, "exclusive", "n"], [9.5, "released", "a", 4]]) });
  assert.deepEqual(kinds(r), ["callback ran without a grant"]);
});

test("a context declared gone while alive is caught; a killed one's open hold ends at its death", () => {
  const decisions = log(1, [[10, "granted", "a", 1, "exclusive", "n"], [12, "gone", "a"], [12, "granted", "b", 1, "exclusive", "n"], [14, "released", "b", 1]]);
  const alive = check({ records: [rec("a", 1, "n", "exclusive", 10.3, 16), rec("b", 1, "n", "exclusive", 12.4, 13.8)], decisions });
  assert.ok(kinds(alive).includes("context declared gone while its callback ran"));
  const dead = check({ records: [rec("a", 1, "n", "exclusive", 10.3, null, { outcome: "held" }), rec("b", 1, "n", "exclusive", 12.4, 13.8)], decisions, killed: new Map([["a", 11]]) });
  assert.deepEqual(kinds(dead), []);
});

test("two arbiters granting at once are caught; a restart with restored holders is not", () => {
  const both = [...log(2, [[10, "granted", "a", 1, "exclusive", "x"], [30, "granted", "a", 2, "exclusive", "y"]]), ...log(3, [[20, "granted", "b", 1, "exclusive", "z"]])];
  assert.ok(kinds(check({ records: [], decisions: both })).includes("two arbiters granted at once"));
  const restart = [
    ...log(2, [[10, "granted", "a", 1, "exclusive", "x"], [11, "granted", "b", 1, "exclusive", "y"]]),
    ...log(3, [[20, "hello", "a"], [20, "restored-held", "a", 1, "exclusive", "x"], [21, "hello", "b"], [22, "recovered"], [25, "released", "a", 1], [25, "granted", "c", 1, "exclusive", "x"]]),
  ];
  const r = check({ records: [rec("a", 1, "x", "exclusive", 10.3, 24.8), rec("c", 1, "x", "exclusive", 25.3, 26), rec("b", 1, "y", "exclusive", 11.2, 15)], decisions: restart });
  assert.deepEqual(kinds(r), []);
});

test("a restore that brings back two holders is caught unless one is a steal victim", () => {
  const e2 = log(2, [[10, "granted", "a", 1, "exclusive", "x"], [11, "stolen", "a", 1], [11, "granted", "s", 1, "exclusive", "x"]]);
  const victim = [...e2, ...log(3, [[20, "restored-held", "a", 1, "exclusive", "x"], [20, "restored-held", "s", 1, "exclusive", "x"]])];
  assert.deepEqual(kinds(check({ records: [], decisions: victim })), []);
  const bad = [...log(2, [[10, "granted", "a", 1, "exclusive", "x"]]), ...log(3, [[20, "restored-held", "a", 1, "exclusive", "x"], [20, "restored-held", "b", 1, "exclusive", "x"]])];
  assert.deepEqual(kinds(check({ records: [], decisions: bad })), ["arbiter restored conflicting holders"]);
});

test("a hold dropped by a recovery while its callback ran is caught", () => {
  const decisions = [...log(2, [[10, "granted", "a", 1, "exclusive", "x"]]), ...log(3, [[20, "hello", "a"], [21, "recovered"], [22, "granted", "b", 1, "exclusive", "x"], [23, "released", "b", 1]])];
  const r = check({ records: [rec("a", 1, "x", "exclusive", 10.3, 30), rec("b", 1, "x", "exclusive", 22.3, 22.9)], decisions });
  assert.ok(kinds(r).includes("dropped by a recovery while its callback ran"));
});

test("a context's clock known to be off is corrected by its measured offset, and only then", () => {
  const decisions = log(1, [
    [10, "granted", "a", 1, "exclusive", "n"],
    [12, "released", "a", 1],
    [12.5, "granted", "b", 1, "exclusive", "n"],
    [14, "released", "b", 1],
  ]);
  // b's clock runs 3,000 ms ahead of every other's.
  const records = () => [rec("a", 1, "n", "exclusive", 10.2, 11.9), rec("b", 1, "n", "exclusive", 3012.7, 3013.9)];
  assert.ok(check({ records: records(), decisions }).violations.length > 0, "the skewed stamps alone look wrong");
  const r = check({ records: records(), decisions, offsets: new Map([["b", { offset: 3000, rtt: 0.4 }]]) });
  assert.deepEqual(kinds(r), []);
  assert.equal(r.figures.clockCorrected.length, 1);
  // An offset within the ping's round trip (or under 1 ms) is noise: nothing is corrected,
  // and a real overlap stays one.
  const overlap = [rec("a", 1, "n", "exclusive", 10.2, 13.9), rec("b", 1, "n", "exclusive", 12.7, 13.9)];
  const r2 = check({ records: overlap, decisions, offsets: new Map([["b", { offset: 0.6, rtt: 0.8 }]]) });
  assert.equal(r2.figures.clockCorrected.length, 0);
  assert.ok(r2.violations.length > 0, "a real overlap must stay reported");
});

test("delegation: grants by the owner's own engine, a handback, then another context", () => {
  // c owns "n": its request 1 is the Ask's grant, 2 and 3 are granted by its own engine;
  // 3 is still held at the handback and comes back restored; then d is granted.
  const decisions = log(1, [
    [10, "owned", "c", 1, "exclusive", "n"],
    [20, "handback", "c", undefined, undefined, "n"],
    [20, "restored-held", "c", 3, "exclusive", "n"],
    [25, "released", "c", 3],
    [25, "granted", "d", 1, "exclusive", "n"],
    [30, "released", "d", 1],
  ]);
  const records = [
    rec("c", 1, "n", "exclusive", 10.3, 12),
    rec("c", 2, "n", "exclusive", 12.1, 15),
    rec("c", 3, "n", "exclusive", 15.1, 24.8),
    rec("d", 1, "n", "exclusive", 25.3, 29),
  ];
  const r = check({ records, decisions });
  assert.deepEqual(kinds(r), []);
  // A local callback outside any ownership of its context ran without a grant.
  const outside = check({ records: [...records, rec("c", 4, "n", "exclusive", 40, 41)], decisions });
  assert.deepEqual(kinds(outside), ["callback ran without a grant"]);
  // A local lock still running after the handback, and not handed back, is caught.
  const lost = check({ records: [rec("c", 1, "n", "exclusive", 10.3, 12), rec("c", 2, "n", "exclusive", 12.1, 22)], decisions: decisions.slice(0, 2) });
  assert.deepEqual(kinds(lost), ["released at the arbiter before its callback ended"]);
  // Owned twice in a row: a callback of the second ownership is judged by the second.
  const twice = log(1, [
    [10, "owned", "c", 1, "exclusive", "n"],
    [20, "handback", "c", undefined, undefined, "n"],
    [20, "owned", "c", 2, "exclusive", "n"],
    [30, "handback", "c", undefined, undefined, "n"],
  ]);
  const again = check({ records: [rec("c", 1, "n", "exclusive", 10.3, 19), rec("c", 2, "n", "exclusive", 20.2, 25), rec("c", 3, "n", "exclusive", 25.1, 29)], decisions: twice });
  assert.deepEqual(kinds(again), []);
  // A steal within the owner's own engine (not in the arbiter's log) explains the overlap.
  const stealing = check({
    records: [rec("c", 1, "n", "exclusive", 10.3, 19, { outcome: "stolen" }), rec("c", 2, "n", "exclusive", 12, 15, { steal: true })],
    decisions: twice.slice(0, 2),
  });
  assert.deepEqual(kinds(stealing), []);
  assert.equal(stealing.overlaps.byReason.stolen, 1);
  const notStolen = check({ records: [rec("c", 1, "n", "exclusive", 10.3, 19), rec("c", 2, "n", "exclusive", 12, 15)], decisions: twice.slice(0, 2) });
  assert.deepEqual(kinds(notStolen), ["unexplained overlap"]);
  // The arbiter granting an owned name to another context is caught.
  const stolenName = check({
    records: [],
    decisions: log(1, [
      [10, "owned", "c", 1, "shared", "n"],
      [11, "granted", "d", 1, "shared", "n"],
    ]),
  });
  assert.deepEqual(kinds(stolenName), ["arbiter granted a name another context owns"]);
});
