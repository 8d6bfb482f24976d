// The show-control mixer (mixer.html): four faders shared by every open tab of the origin,
// one operator per fader, through the lock services of the classic script
// (self.WebLocksWasm, from /dist/web-locks.js).
//
// - Grabbing a fader (pointerdown, or a key on the focused fader) calls acquire() with
//   ifAvailable, the desk name as holder and a lease (ttl); a fader held elsewhere is
//   refused at once with a LockHeldError naming the holder.
// - Every move renews the lease; letting go (pointerup, keyup) releases the lock.
// - A desk that stops moving for the lease time loses the fader: the handle's signal aborts
//   with a TimeoutError, and the drag stops. A closed tab frees its faders at once.
// - Every tab polls status() for the four faders (holder and the lease left) and shows it.
// - Values travel between the tabs on the BroadcastChannel "mixer-values".
//
// Query parameters: ?desk=NAME sets the desk name, ?ttl=MS the lease (default 30000).
// window.mixer = { grab(i), move(i, value), letGo(i), state(i) } drives it from a script.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const ttlParam = Number(params.get("ttl"));
  const TTL = Number.isFinite(ttlParam) && ttlParam > 0 ? ttlParam : 30000;
  const POLL_MS = 250;
  const NOTE_MS = 8000;
  const CHANNELS = [
    { name: "Vocals", colour: "#ff5d8f", value: 70 },
    { name: "Guitar", colour: "#ffb000", value: 55 },
    { name: "Keys", colour: "#47c7ff", value: 80 },
    { name: "Drums", colour: "#8f7bff", value: 40 },
  ];
  const lockName = (i) => `fader-${i + 1}`;
  const seconds = (ms) => `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
  const clamp = (v) => Math.round(Math.min(100, Math.max(0, Number(v))));

  // ---- the desk ----------------------------------------------------------------------

  const deskInput = $("desk");
  deskInput.value =
    params.get("desk") || sessionStorage.getItem("mixer-desk") || `Desk ${1 + Math.floor(Math.random() * 99)}`;
  const desk = () => deskInput.value.trim() || "Unnamed desk";
  const showDesk = () => {
    sessionStorage.setItem("mixer-desk", deskInput.value);
    document.title = `${desk()} · Mixer · web-locks-wasm`;
  };
  deskInput.addEventListener("input", showDesk);
  showDesk();
  $("ttl").textContent = seconds(TTL).replace(".0 s", " s");

  function log(msg, cls = "") {
    const li = document.createElement("li");
    li.className = cls;
    li.textContent = `${new Date().toTimeString().slice(0, 8)}  ${msg}`;
    $("log").prepend(li);
    while ($("log").children.length > 200) $("log").lastChild.remove();
  }

  const services = self.WebLocksWasm;
  if (!services) {
    log("the lock services did not load (/dist/web-locks.js)", "err");
    throw new Error("mixer: self.WebLocksWasm is missing");
  }
  const { acquire, status, LockHeldError } = services;
  const values = new BroadcastChannel("mixer-values");

  // ---- one fader -------------------------------------------------------------------------

  class Fader {
    constructor(i, channel) {
      this.i = i;
      this.name = lockName(i);
      this.label = `${i + 1} ${channel.name}`;
      this.value = channel.value;
      this.phase = "idle"; // "idle" | "grabbing" (acquire() in flight) | "held"
      this.handle = null;
      this.pendingValue = null; // a value asked for while grabbing, applied on the grant
      this.letGoWhenGranted = false;
      this.renewing = false;
      this.renewAgain = false;
      this.remote = null; // the last status() of the lock
      this.gen = 0; // bumped on every local grant and release: older status() answers are stale
      this.note = "";
      this.noteTimer = 0;
      this.drag = null; // { pointerId, startY, startValue }
      this.keyDown = false;

      const strip = $("strip").content.firstElementChild.cloneNode(true);
      strip.dataset.fader = i;
      strip.style.setProperty("--ch", channel.colour);
      strip.querySelector(".name").textContent = this.label;
      this.el = {
        strip,
        readout: strip.querySelector(".readout"),
        fader: strip.querySelector(".fader"),
        state: strip.querySelector(".state"),
        lease: strip.querySelector(".lease"),
        note: strip.querySelector(".note"),
      };
      this.el.fader.setAttribute("aria-label", `Fader ${this.label}`);
      this.bindPointer();
      this.bindKeys();
      this.render();
    }

    /** Takes the fader's lock. Resolves to true once held, false when refused or lost. */
    async grab() {
      this.letGoWhenGranted = false;
      if (this.phase !== "idle") return this.phase === "held";
      this.phase = "grabbing";
      this.setNote("");
      this.render();
      let handle;
      try {
        handle = await acquire(this.name, { holder: desk(), ttl: TTL, ifAvailable: true });
      } catch (e) {
        this.phase = "idle";
        this.pendingValue = null;
        this.endDrag();
        if (e instanceof LockHeldError) {
          const who = e.holder ?? "another desk";
          this.setNote(`refused: in use by ${who}`);
          log(`fader ${this.label}: refused, in use by ${who}`, "busy");
        } else {
          this.setNote(`error: ${e.name}: ${e.message}`);
          log(`fader ${this.label}: ${e.name}: ${e.message}`, "err");
        }
        this.render();
        return false;
      }
      this.phase = "held";
      this.handle = handle;
      this.gen++;
      handle.signal.addEventListener("abort", () => this.lost(handle, handle.signal.reason), { once: true });
      log(`fader ${this.label}: taken by ${handle.holder}`, "mine");
      if (this.pendingValue !== null) this.setValue(this.pendingValue);
      this.pendingValue = null;
      this.render();
      if (this.letGoWhenGranted) await this.letGo();
      return this.phase === "held";
    }

    /** Moves the held fader to `value` (0..100) and renews its lease. False when not held. */
    move(value) {
      const v = clamp(value);
      if (!Number.isFinite(v)) return false;
      if (this.phase === "grabbing") this.pendingValue = v;
      if (this.phase !== "held") return false;
      this.setValue(v);
      this.renew();
      return true;
    }

    /** Releases the fader (once granted, if the grab is still in flight). */
    async letGo() {
      if (this.phase === "grabbing") {
        this.letGoWhenGranted = true;
        return;
      }
      if (this.phase !== "held") return;
      const handle = this.handle;
      this.phase = "idle";
      this.handle = null;
      this.remote = null; // not "in use by" this desk until the next status() says so
      this.gen++;
      this.render();
      await handle.release();
      this.gen++; // a status() sent before the release was processed may still show it held
      log(`fader ${this.label}: released`);
    }

    // At most one renew() in flight; moves made meanwhile renew once more when it settles.
    renew() {
      if (this.renewing) {
        this.renewAgain = true;
        return;
      }
      const handle = this.handle;
      this.renewing = true;
      this.renewAgain = false;
      handle.renew().then(
        (held) => {
          this.renewing = false;
          if (this.handle !== handle) return;
          if (!held) this.lost(handle, null);
          else if (this.renewAgain) this.renew();
        },
        (e) => {
          this.renewing = false;
          log(`fader ${this.label}: renew failed: ${e}`, "err");
        },
      );
    }

    /** The lock went away without letGo(): the lease ran out, or it was taken over (stolen). */
    lost(handle, reason) {
      if (this.handle !== handle) return; // released by us already
      this.phase = "idle";
      this.handle = null;
      this.remote = null;
      this.gen++;
      this.endDrag();
      this.keyDown = false;
      const why = { TimeoutError: "lease expired", AbortError: "taken over" }[reason && reason.name] || "lost";
      this.setNote(`${why}: fader released`);
      log(`fader ${this.label}: ${why}`, "err");
      this.render();
    }

    setValue(v, broadcast = true) {
      if (v === this.value) return;
      this.value = v;
      if (broadcast) values.postMessage({ type: "value", i: this.i, value: v, desk: desk() });
      this.render();
    }

    setNote(text) {
      clearTimeout(this.noteTimer);
      this.note = text;
      if (text) this.noteTimer = setTimeout(() => this.setNote(""), NOTE_MS);
      this.render();
    }

    // ---- input ----

    bindPointer() {
      const f = this.el.fader;
      const travel = () => f.clientHeight - this.el.strip.querySelector(".cap").offsetHeight;
      f.addEventListener("pointerdown", (e) => {
        if (e.button !== 0 || this.drag) return;
        e.preventDefault(); // no text selection while dragging (and no focus: given here)
        f.focus({ focusVisible: false });
        f.setPointerCapture(e.pointerId);
        this.drag = { pointerId: e.pointerId, startY: e.clientY, startValue: this.value };
        this.grab();
      });
      f.addEventListener("pointermove", (e) => {
        const d = this.drag;
        if (!d || e.pointerId !== d.pointerId) return;
        this.move(d.startValue + ((d.startY - e.clientY) * 100) / travel());
      });
      const up = (e) => {
        if (!this.drag || e.pointerId !== this.drag.pointerId) return;
        this.drag = null;
        this.letGo();
      };
      f.addEventListener("pointerup", up);
      f.addEventListener("pointercancel", up);
      f.addEventListener("lostpointercapture", up);
    }

    endDrag() {
      const d = this.drag;
      this.drag = null;
      if (d && this.el.fader.hasPointerCapture(d.pointerId)) this.el.fader.releasePointerCapture(d.pointerId);
    }

    bindKeys() {
      const steps = { ArrowUp: 1, ArrowRight: 1, ArrowDown: -1, ArrowLeft: -1, PageUp: 10, PageDown: -10, Home: -100, End: 100 };
      this.el.fader.addEventListener("keydown", (e) => {
        const step = steps[e.key];
        if (step === undefined || this.drag) return;
        e.preventDefault();
        this.keyDown = true;
        this.letGoWhenGranted = false; // a key pressed again before the grant: keep it
        const base = this.phase === "grabbing" && this.pendingValue !== null ? this.pendingValue : this.value;
        if (this.phase === "idle") {
          this.pendingValue = clamp(base + step);
          this.grab();
        } else this.move(base + step);
      });
      this.el.fader.addEventListener("keyup", (e) => {
        if (!this.keyDown || steps[e.key] === undefined) return;
        this.keyDown = false;
        this.letGo();
      });
      this.el.fader.addEventListener("blur", () => {
        if (!this.keyDown) return;
        this.keyDown = false;
        this.letGo();
      });
    }

    // ---- display ----

    /** What this tab shows for the fader, as data (also for window.mixer.state()). */
    view() {
      const s = this.remote;
      const mine = this.phase === "held";
      const busy = !mine && this.phase !== "grabbing" && !!(s && s.locked);
      let state = "free";
      if (mine) state = `yours (${this.handle.holder})`;
      else if (this.phase === "grabbing") state = "grabbing…";
      else if (busy) state = `in use by ${s.holder ?? "another desk"}`;
      let lease = "";
      if ((mine || busy) && s && s.locked) lease = s.expiresIn === null ? "no lease" : `lease ${seconds(s.expiresIn)} left`;
      return { value: this.value, phase: this.phase, mine, busy, holder: s && s.locked ? s.holder : null, expiresIn: s ? s.expiresIn : null, state, lease, note: this.note };
    }

    render() {
      const v = this.view();
      const { strip, readout, fader, state, lease, note } = this.el;
      strip.classList.toggle("mine", v.mine);
      strip.classList.toggle("busy", v.busy);
      strip.classList.toggle("grabbing", v.phase === "grabbing");
      fader.style.setProperty("--v", v.value / 100);
      fader.setAttribute("aria-valuenow", v.value);
      fader.setAttribute("aria-disabled", v.busy);
      readout.textContent = v.value;
      state.textContent = v.state;
      lease.textContent = v.lease;
      note.textContent = v.note;
    }
  }

  const faders = CHANNELS.map((c, i) => new Fader(i, c));
  $("console").append(...faders.map((f) => f.el.strip));

  // ---- status() polling ------------------------------------------------------------------

  async function poll() {
    const gens = faders.map((f) => f.gen);
    try {
      const all = await Promise.all(faders.map((f) => status(f.name)));
      all.forEach((s, i) => {
        const f = faders[i];
        if (f.gen !== gens[i]) return; // granted or released meanwhile: the next poll tells
        const was = f.remote;
        if (was && was.locked && !s.locked && f.phase === "idle") log(`fader ${f.label}: free again (was ${was.holder ?? "held"})`);
        f.remote = s;
        f.render();
      });
    } catch (e) {
      log(`status() failed: ${e}`, "err");
    }
    setTimeout(poll, POLL_MS);
  }
  poll();

  // ---- values across the tabs ------------------------------------------------------------

  let synced = false;
  values.onmessage = ({ data }) => {
    if (!data || typeof data !== "object") return;
    const ours = (i) => Number.isInteger(i) && i >= 0 && i < faders.length && faders[i].phase !== "held";
    if (data.type === "value" && ours(data.i) && Number.isFinite(data.value)) faders[data.i].setValue(clamp(data.value), false);
    else if (data.type === "hello") values.postMessage({ type: "values", values: faders.map((f) => f.value) });
    else if (data.type === "values" && !synced && Array.isArray(data.values)) {
      synced = true;
      data.values.forEach((v, i) => ours(i) && Number.isFinite(v) && faders[i].setValue(clamp(v), false));
    }
  };
  values.postMessage({ type: "hello" });

  log(`${desk()} ready; lease ${seconds(TTL)}`);

  // ---- hooks for scripts and tests -------------------------------------------------------

  const at = (i) => {
    const f = faders[i];
    if (!f) throw new RangeError(`no fader ${i}`);
    return f;
  };
  window.mixer = {
    grab: (i) => at(i).grab(),
    move: (i, value) => at(i).move(value),
    letGo: (i) => at(i).letGo(),
    state: (i) => at(i).view(),
  };
})();
