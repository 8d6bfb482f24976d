// The latest result of each browser run, for the README's generated support table
// (scripts/support-table.mjs): build/results/<name>.json, written by each runner.
import { mkdirSync, writeFileSync } from "node:fs";

const dir = new URL("../build/results/", import.meta.url);

/** Records `rows` ({ [scenario]: "pass" | "fail" | "not drivable: why" }) for `engine`. */
export function record(name, { engine, version, rows, notes = [] }) {
  mkdirSync(dir, { recursive: true });
  const at = new Date().toISOString().slice(0, 10);
  writeFileSync(new URL(`${name}.json`, dir), JSON.stringify({ engine, version, at, rows, notes }, null, 2) + "\n");
}

/** The browser version from a user agent string. */
export function versionOf(ua) {
  const m = /(Firefox|Chrome|Version)\/([\d.]+)/.exec(ua || "");
  return m ? `${m[1] === "Version" ? "WebKitGTK (Safari" : m[1]} ${m[2]}${m[1] === "Version" ? ")" : ""}` : String(ua);
}
