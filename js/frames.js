// Same-origin child realms that never load the script (an about:blank or srcdoc iframe, a
// frame written with document.write, a popup from window.open("")): a realm of their own,
// in which the browser's own API would exist. Where the polyfill is in force in a window,
// each such realm gets the polyfill too, as a client of its own, with everything it hands
// out (promises, errors, interface objects) from its own realm: this script's own source
// runs again in the child, as an inline script, the moment the page reaches the child's
// window (contentWindow, contentDocument, window.open). Cross-origin and opaque (sandboxed)
// children cannot be reached and are left alone.
// `text()`: the inline script to run in a child (the classic script, told where it is
// served from), or null where there is none to run.
export function propagate(g, text, nonce) {
  const tried = new WeakSet(); // documents injected into once (a CSP may refuse it: once)
  const adopt = (w) => {
    try {
      // A cross-origin WindowProxy throws here; a realm that has the polyfill already
      // (injected, or it loaded the script) is left alone.
      if (!w || w === g || w.WebLocksWasm) return;
      const d = w.document;
      if (!d || tried.has(d)) return;
      tried.add(d);
      const t = text();
      if (!t) return;
      const s = d.createElement("script");
      s.textContent = t;
      if (nonce) s.nonce = nonce;
      (d.head || d.documentElement || d).appendChild(s);
      s.remove();
    } catch {}
  };
  const hook = (proto, key, toWindow) => {
    const desc = proto && Object.getOwnPropertyDescriptor(proto, key);
    if (!desc || typeof desc.get !== "function") return;
    const get = desc.get;
    Object.defineProperty(proto, key, {
      ...desc,
      // A method-shorthand getter keeps the platform getter's name ("get contentWindow").
      get: {
        get [key]() {
          const v = get.call(this);
          if (v) adopt(toWindow(v));
          return v;
        },
      }.__lookupGetter__(key),
    });
  };
  for (const C of [g.HTMLIFrameElement, g.HTMLFrameElement, g.HTMLObjectElement]) {
    if (typeof C !== "function") continue;
    hook(C.prototype, "contentWindow", (w) => w);
    hook(C.prototype, "contentDocument", (d) => d.defaultView);
  }
  const open = g.open;
  if (typeof open === "function") {
    const desc = Object.getOwnPropertyDescriptor(g, "open");
    Object.defineProperty(g, "open", {
      ...desc,
      value: {
        open() {
          const w = open.apply(this, arguments);
          adopt(w);
          return w;
        },
      }.open,
    });
  }
}
