// Decodes the arbiter's decision log (feature `trace`; src/bindings/host.rs `takeTrace`).
// Each batch the observer collected is [epoch, t, words | "lead" | "retire"]: the decisions
// one arbiter made in one step, stamped with its clock (performance.timeOrigin + now()).

const KINDS = [null, "hello", "restored-held", "restored-queued", "granted", "unavailable", "stolen", "released", "withdrawn", "gone", "recovered", "expired", "timed-out", "owned", "handback"];
const str = (w, at) => {
  const n = w[at];
  return [String.fromCharCode(...w.slice(at + 1, at + 1 + n)), at + 1 + n];
};

/** Flattens batches into decisions {epoch, t, seq, kind, client?, id?, mode?, name?}, in arrival order. */
export function decode(batches) {
  const out = [];
  let seq = 0;
  for (const [epoch, t, w] of batches) {
    if (typeof w === "string") {
      out.push({ epoch, t, seq: seq++, kind: w });
      continue;
    }
    for (let at = 0; at < w.length; ) {
      const kind = KINDS[w[at++]];
      if (!kind) throw new Error(`trace: unknown decision kind ${w[at - 1]} at word ${at - 1}`);
      const d = { epoch, t, seq: seq++, kind };
      if (kind !== "recovered") [d.client, at] = str(w, at);
      if (!["hello", "gone", "recovered", "handback"].includes(kind)) {
        d.id = w[at] + w[at + 1] * 65536;
        at += 2;
      }
      if (["granted", "restored-held", "restored-queued", "owned"].includes(kind)) {
        d.mode = w[at++] ? "shared" : "exclusive";
        [d.name, at] = str(w, at);
      }
      if (kind === "handback") [d.name, at] = str(w, at);
      out.push(d);
    }
  }
  return out;
}

/** Encodes decisions back into one batch's words (for the checker's own tests). */
export function encode(decisions) {
  const w = [];
  const s = (x) => w.push(x.length, ...[...x].map((c) => c.charCodeAt(0)));
  for (const d of decisions) {
    w.push(KINDS.indexOf(d.kind));
    if (d.kind !== "recovered") s(d.client);
    if (!["hello", "gone", "recovered", "handback"].includes(d.kind)) w.push(d.id & 0xffff, Math.floor(d.id / 65536));
    if (["granted", "restored-held", "restored-queued", "owned"].includes(d.kind)) {
      w.push(d.mode === "shared" ? 1 : 0);
      s(d.name);
    }
    if (d.kind === "handback") s(d.name);
  }
  return w;
}
