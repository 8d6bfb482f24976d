// Hex to bytes, for the wasm the classic scripts inline. Hex, not base64: gzip finds the
// wasm's repetitions in byte-aligned text, so a script compresses almost as well as the
// wasm itself (base64 costs a third more).
export function fromHex(hex) {
  // Native where there is one (Chromium 140+, Firefox 133+, Safari 18.2+): 0.3 ms against
  // 28 ms for the loop, measured cold in Chromium 156, on the path of every cold start.
  if (typeof Uint8Array.fromHex === "function") return Uint8Array.fromHex(hex);
  const bytes = new Uint8Array(hex.length / 2);
  const nibble = (i) => (hex.charCodeAt(i) & 15) + (hex.charCodeAt(i) > 57 ? 9 : 0);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (nibble(2 * i) << 4) | nibble(2 * i + 1);
  return bytes;
}

/** The key of the one global by which the two classic scripts meet, for a moment. */
export const HOOK = Symbol.for("web-locks-wasm");
