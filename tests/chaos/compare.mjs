// Replays a chaos run's dump (run.mjs --dump) through the interval-only checker that the
// e2e suite uses (tests/e2e/harness.mjs checkExclusion, which has no arbiter log and must
// guess who a steal evicted from the stealers' callback times), and shows, for every
// overlap it reports, what the arbiter's decision log says happened. This is how the
// reports of issue #8 were classified.
//
//   node tests/chaos/compare.mjs build/chaos-1.json [--show 5]
import { readFileSync } from "node:fs";
import { checkExclusion } from "../e2e/harness.mjs";
import { check, fmt } from "./check.mjs";

const [file] = process.argv.slice(2);
const show = Number(process.argv[process.argv.indexOf("--show") + 1]) || 5;
const { records, decisions, killed } = JSON.parse(readFileSync(file, "utf8"));
const kills = new Map(killed);

// The e2e checker's view: ctx = context label, deaths = when the runner killed it.
const deaths = {};
for (const r of records) if (kills.has(r.clientId)) deaths[r.ctx] = kills.get(r.clientId);
const old = checkExclusion(
  records.map((r) => ({ ...r, key: String(r.id), seq: r.id })),
  deaths,
);
const exact = check({ records, decisions, killed: kills });
console.log(`${records.length} requests, ${decisions.length} decisions`);
console.log(`interval-only checker (tests/e2e/harness.mjs): ${old.length} overlaps reported as violations`);
console.log(`exact checker: ${exact.violations.length} violations; ${exact.overlaps.total} overlaps, explained ${JSON.stringify(exact.overlaps.byReason)}`);
console.log(`clocks: ${JSON.stringify(exact.figures.handoffs)}; margins ${JSON.stringify(exact.figures.margins)}`);

// For each old report, what the log says about the two requests.
const byCtxId = new Map(records.map((r) => [`${r.ctx}/${r.id}`, r]));
const parse = (b) => {
  const m = b.match(/^(\S+)\/(\d+) /);
  return m && byCtxId.get(`${m[1]}/${m[2]}`);
};
const classes = {};
const examples = [];
for (const v of old) {
  const [a, b] = [parse(v.a), parse(v.b)];
  if (!a || !b) continue;
  const about = (r) => decisions.filter((d) => d.client === r.clientId && d.id === r.id);
  const story = (r) => about(r).map((d) => d.kind).join(" → ");
  const evicted = (r) => about(r).find((d) => d.kind === "stolen");
  const grant = (r) => about(r).find((d) => d.kind === "granted" || d.kind === "restored-held");
  const before = (x, y) => x && y && (x.epoch < y.epoch || (x.epoch === y.epoch && x.seq < y.seq));
  let why = "unexplained";
  if (before(evicted(a), grant(b)) || before(evicted(b), grant(a))) {
    // Which steal evicted it, and when its own callback started (or whether it ran at all).
    const victim = before(evicted(a), grant(b)) ? a : b;
    const ev = evicted(victim);
    const stealGrant = decisions.find((d) => d.epoch === ev.epoch && d.seq > ev.seq && d.kind === "granted");
    const stealer = stealGrant && records.find((r) => r.clientId === stealGrant.client && r.id === stealGrant.id);
    why = !stealer || stealer.start === null ? "evicted by a steal whose callback never ran" : stealer.start > victim.start ? "evicted by a steal whose callback started after the victim's" : "evicted by a steal (callback started before)";
  } else {
    const rel = (r) => about(r).find((d) => d.kind === "released");
    if (before(rel(a), grant(b)) || before(rel(b), grant(a))) why = "released before the other's grant: clock skew";
  }
  classes[why] = (classes[why] || 0) + 1;
  if (examples.length < show) examples.push({ v, why, a, b, story: [story(a), story(b)] });
}
console.log("the interval-only reports, by what the log says:", classes);
for (const e of examples) {
  console.log(`\n- ${e.why}: ${e.v.name}, overlap ${e.v.overlapMs.toFixed(3)} ms\n    ${e.v.a}\n      log: ${e.story[0]}\n    ${e.v.b}\n      log: ${e.story[1]}`);
  const t0 = Math.min(e.a.t0, e.b.t0);
  const t1 = Math.max(e.a.end ?? e.a.start, e.b.end ?? e.b.start);
  for (const d of decisions.filter((d) => d.t >= t0 - 2 && d.t <= t1 + 2 && (d.name === e.v.name || d.kind === "stolen" || d.kind === "released"))) {
    if (d.kind === "released" || d.kind === "stolen") {
      const r = records.find((x) => x.clientId === d.client && x.id === d.id);
      if (!r || r.name !== e.v.name) continue;
    }
    console.log(`      ${fmt(d)}`);
  }
}
