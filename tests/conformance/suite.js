// Web Locks conformance suite, written from /work/shared/spec-digest.md (rule ids R-xx refer to its
// checklist, section 10). Classic script: runs in a Window (page.html) and in a dedicated worker
// (worker.js). Tests use whatever is installed as the global navigator.locks / LockManager / Lock.
//
// Exposes:
//   self.__suite              [{name, fn, windowOnly}]  single-context tests (each name starts with its rule id)
//   self.__crossContextSuite  [{name, fn, windowOnly}]  tests whose outcome depends on several contexts
//                                                      sharing one lock manager (iframes, workers)
//   self.__runTests(list, env, listName, onResult) -> Promise<[{name, list, windowOnly, status, error, ms}]>
//   self.__countTests(env)
//   self.__installRpcServer(scope, send)              used by the helper frame / helper worker
//
// Rules for tests: never share lock names (t.uniq()), never rely on timing for ordering (use promise
// ordering and query()), sleep only to prove that something did NOT happen, and always finish:
// the harness fails a test after TEST_TIMEOUT_MS and then runs its cleanups, which release every
// lock the test's helpers took.
(function (global) {
  'use strict';

  const TEST_TIMEOUT_MS = 2000;
  const NOT_HAPPENED_MS = 100; // bounded wait used only to show that something did not happen
  const isWindow = typeof document !== 'undefined';

  // ==================================================================== assertion helpers
  class AssertionError extends Error {
    constructor(message) { super(message); this.name = 'AssertionError'; }
  }
  class SkipSignal {
    constructor(reason) { this.reason = reason; }
  }

  function repr(v) {
    try {
      if (typeof v === 'string') {
        const s = v.length > 60 ? v.slice(0, 60) + `…(${v.length} code units)` : v;
        return JSON.stringify(s);
      }
      if (typeof v === 'symbol') return v.toString();
      if (typeof v === 'function') return `function ${v.name || '(anonymous)'}`;
      if (v === null || typeof v !== 'object') return String(v);
      if (isErrorLike(v)) return `${ctorName(v)}(${v.name}: ${JSON.stringify(v.message)})`;
      if (Array.isArray(v)) return `[${v.map(repr).join(', ')}]`;
      const json = JSON.stringify(v);
      return json && json.length < 200 ? `${ctorName(v)} ${json}` : `[object ${ctorName(v)}]`;
    } catch (e) {
      return Object.prototype.toString.call(v);
    }
  }
  function ctorName(v) {
    try { return (v && v.constructor && v.constructor.name) || Object.prototype.toString.call(v).slice(8, -1); } catch (e) { return '?'; }
  }
  function isErrorLike(v) {
    return v !== null && typeof v === 'object' && typeof v.name === 'string' && typeof v.message === 'string';
  }
  function fail(msg) { throw new AssertionError(msg); }
  function prefix(msg) { return msg ? `${msg}: ` : ''; }

  function assert(cond, msg) { if (!cond) fail(msg || 'assertion failed'); }
  function assertEquals(actual, expected, msg) {
    if (!Object.is(actual, expected)) fail(`${prefix(msg)}expected ${repr(expected)}, got ${repr(actual)}`);
  }
  function assertArrayEquals(actual, expected, msg) {
    if (!Array.isArray(actual)) fail(`${prefix(msg)}expected an array, got ${repr(actual)}`);
    if (actual.length !== expected.length || actual.some((v, i) => !Object.is(v, expected[i]))) {
      fail(`${prefix(msg)}expected ${repr(expected)}, got ${repr(actual)}`);
    }
  }
  function is(value) { return { identity: value }; }

  // check: 'TypeError' | '<DOMException name>' | constructor | {identity: v} | {predicate: fn, what}
  // realm: an extra global (e.g. an iframe's window) whose constructors are also accepted.
  function checkError(e, check, msg, realm) {
    const realms = realm ? [global, realm] : [global];
    if (typeof check === 'string') {
      if (check === 'TypeError' || check === 'RangeError' || check === 'SyntaxError') {
        if (!realms.some((r) => e instanceof r[check])) fail(`${prefix(msg)}expected a real ${check}, got ${repr(e)}`);
        return;
      }
      if (!realms.some((r) => typeof r.DOMException === 'function' && e instanceof r.DOMException)) {
        fail(`${prefix(msg)}expected a DOMException named ${check}, got ${repr(e)}`);
      }
      if (e.name !== check) fail(`${prefix(msg)}expected DOMException name ${check}, got ${repr(e)}`);
      return;
    }
    if (typeof check === 'function') {
      if (!(e instanceof check)) fail(`${prefix(msg)}expected an instance of ${check.name}, got ${repr(e)}`);
      return;
    }
    if (check && typeof check === 'object' && 'identity' in check) {
      if (!Object.is(e, check.identity)) fail(`${prefix(msg)}expected rejection with exactly ${repr(check.identity)}, got ${repr(e)}`);
      return;
    }
    if (check && typeof check === 'object' && typeof check.predicate === 'function') {
      if (!check.predicate(e)) fail(`${prefix(msg)}rejection ${repr(e)} is not ${check.what || 'as expected'}`);
      return;
    }
    throw new Error(`bad check ${repr(check)}`);
  }

  async function assertRejects(promise, check, msg, realm) {
    if (!promise || typeof promise.then !== 'function') fail(`${prefix(msg)}expected a promise, got ${repr(promise)}`);
    let value;
    try {
      value = await promise;
    } catch (e) {
      checkError(e, check, msg, realm);
      return e;
    }
    fail(`${prefix(msg)}expected a rejection, but the promise fulfilled with ${repr(value)}`);
  }

  // Returns the rejection reason of a promise (fails if it fulfils).
  async function rejection(promise, msg) {
    try { await promise; } catch (e) { return e; }
    fail(`${prefix(msg)}expected a rejection, but the promise fulfilled`);
  }

  function defer() {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  }
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const nextTask = () => new Promise((r) => setTimeout(r, 0));
  async function microtasks(n) { for (let i = 0; i < n; i++) await Promise.resolve(); }

  let uniqCounter = 0;
  const runId = Math.random().toString(36).slice(2, 8);

  // ==================================================================== RPC to other contexts
  // A tiny eval server used by helper frames / workers: {__run: id, src, args} -> {__reply: id, ok, value | error}.
  function serializeError(e) {
    return {
      name: e && e.name, message: e && e.message, str: String(e),
      isDOMException: typeof DOMException === 'function' && e instanceof DOMException,
      isTypeError: e instanceof TypeError,
    };
  }
  function installRpcServer(scope, send) {
    scope.addEventListener('message', async (e) => {
      const d = e.data;
      if (!d || typeof d !== 'object' || !('__run' in d)) return;
      let reply;
      try {
        const fn = (0, eval)(`(${d.src})`);
        const value = await fn(...(d.args || []));
        reply = { __reply: d.__run, ok: true, value };
      } catch (err) {
        reply = { __reply: d.__run, ok: false, error: serializeError(err) };
      }
      try { send(e, reply); } catch (err) { send(e, { __reply: d.__run, ok: false, error: serializeError(err) }); }
    });
  }
  let rpcCounter = 0;
  function rpc(post, listenTarget, source, fn, args) {
    const id = `${runId}-${++rpcCounter}`;
    return new Promise((resolve, reject) => {
      const onMsg = (e) => {
        if (source && e.source !== source()) return;
        const d = e.data;
        if (!d || d.__reply !== id) return;
        listenTarget.removeEventListener('message', onMsg);
        if (d.ok) resolve(d.value);
        else {
          const err = new Error(`remote ${d.error.name}: ${d.error.message}`);
          err.remote = d.error;
          reject(err);
        }
      };
      listenTarget.addEventListener('message', onMsg);
      post({ __run: id, src: String(fn), args });
    });
  }

  // Functions evaluated inside helper contexts (must not reference anything from this closure).
  function remoteHold(name, mode) {
    self.__heldLocks = self.__heldLocks || {};
    return new Promise((resolve) => {
      navigator.locks.request(name, { mode: mode || 'exclusive' }, (lock) => {
        resolve({ granted: !!lock, name: lock && lock.name, mode: lock && lock.mode });
        return new Promise((r) => { self.__heldLocks[name] = r; });
      }).catch(() => {});
    });
  }
  function remoteRelease(name) {
    const r = self.__heldLocks && self.__heldLocks[name];
    if (r) r();
    return !!r;
  }
  function remoteEnqueue(name, mode) {
    self.__grants = self.__grants || [];
    navigator.locks.request(name, { mode: mode || 'exclusive' }, (lock) => { self.__grants.push(name); }).catch(() => {});
    return true;
  }
  function remoteGrants() { return (self.__grants || []).slice(); }
  async function remoteSnapshot(name) {
    const q = await navigator.locks.query();
    const f = (a) => a.filter((e) => e.name === name).map((e) => ({ name: e.name, mode: e.mode, clientId: e.clientId }));
    return { held: f(q.held), pending: f(q.pending) };
  }
  async function remoteClientId(name) {
    const q = await navigator.locks.query();
    const e = q.held.concat(q.pending).find((x) => x.name === name);
    return e ? e.clientId : null;
  }
  // Runs in a helper frame: spawns a helper worker and makes it hold `name`.
  function remoteWorkerHold(workerUrl, holdSrc, name) {
    return new Promise((resolve, reject) => {
      const w = new Worker(workerUrl);
      self.__nestedWorkers = (self.__nestedWorkers || []).concat([w]);
      w.onmessage = (e) => {
        const d = e.data || {};
        if (d.__workerReady) {
          if (d.error) { reject(new Error(d.error)); return; }
          w.postMessage({ __run: 'hold', src: holdSrc, args: [name] });
        } else if (d.__reply === 'hold') {
          if (d.ok) resolve(d.value); else reject(new Error(d.error && d.error.message));
        }
      };
      w.onerror = (e) => reject(new Error(`nested worker error: ${e.message}`));
    });
  }

  // ==================================================================== per-test helper object
  function makeT(test, env) {
    const cleanups = [];
    const rule = (/^R-\d+/.exec(test.name) || ['T'])[0];
    const lm = () => navigator.locks;

    const t = {
      env, isWindow,
      assert, assertEquals, assertArrayEquals, assertRejects, rejection, checkError, is, fail, repr,
      defer, sleep, nextTask, microtasks,
      NOT_HAPPENED_MS,
      skip(reason) { throw new SkipSignal(reason); },
      cleanup(fn) { cleanups.push(fn); },
      // Unique lock name (never starts with '-').
      uniq(label) { return `wl-${runId}-${rule}-${++uniqCounter}${label ? '-' + label : ''}`; },

      // Issues request(name, options, cb) where cb records its call and keeps the lock until
      // release()/reject() (or test cleanup). Returns a handle:
      //   granted: promise of the callback's argument (Lock, or null for a failed ifAvailable)
      //   done:    the request() promise (a rejection is pre-handled; await it to observe)
      //   calls, lock, called
      req(name, options, manager) {
        const rel = defer();
        const granted = defer();
        const h = { calls: 0, lock: undefined, called: false, released: false };
        const cb = (lock) => {
          h.calls++;
          h.called = true;
          h.lock = lock;
          granted.resolve(lock);
          return rel.promise;
        };
        h.done = (manager || lm()).request(name, options === undefined ? {} : options, cb);
        h.done.catch(() => {});
        h.granted = granted.promise;
        h.release = (v) => { h.released = true; rel.resolve(v); return h.done; };
        h.reject = (e) => { h.released = true; rel.reject(e); return h.done; };
        cleanups.push(() => rel.resolve());
        return h;
      },

      // Filtered query() snapshot for one name.
      async snapshot(name, manager) {
        const q = await (manager || lm()).query();
        const held = q.held.filter((e) => e.name === name);
        const pending = q.pending.filter((e) => e.name === name);
        return { held, pending, heldModes: held.map((e) => e.mode), pendingModes: pending.map((e) => e.mode), raw: q };
      },

      // Polls pred() (may be async) until truthy; fails after ms.
      async waitFor(pred, what, ms) {
        const deadline = Date.now() + (ms || 1500);
        for (;;) {
          const v = await pred();
          if (v) return v;
          if (Date.now() > deadline) fail(`timed out waiting for ${what || 'condition'}`);
          await sleep(5);
        }
      },

      // Waits until query() shows `count` pending requests for name (the requests are then queued).
      async waitPending(name, count) {
        return t.waitFor(async () => (await t.snapshot(name)).pending.length === count, `${count} pending request(s) for ${name}`);
      },

      // -------------------------------------------------------------- window-only helpers
      // Creates an iframe running page.html?frame=1 with the same target installed.
      async createFrame(opts) {
        if (!isWindow) throw new Error('createFrame is window-only');
        opts = opts || {};
        const iframe = document.createElement('iframe');
        const url = new URL('page.html', location.href);
        url.searchParams.set('frame', '1');
        url.searchParams.set('target', env.target);
        if (opts.sandbox != null) iframe.setAttribute('sandbox', opts.sandbox);
        iframe.src = url.href;
        const ready = new Promise((resolve, reject) => {
          const onMsg = (e) => {
            if (e.source !== iframe.contentWindow || !e.data || !e.data.__frameReady) return;
            removeEventListener('message', onMsg);
            if (e.data.error) reject(new Error(`helper frame bootstrap failed: ${e.data.error}`));
            else resolve();
          };
          addEventListener('message', onMsg);
        });
        document.body.appendChild(iframe);
        cleanups.push(() => iframe.remove());
        await ready;
        return {
          iframe,
          win: opts.sandbox != null && !/allow-same-origin/.test(opts.sandbox) ? null : iframe.contentWindow,
          run(fn, ...args) {
            const w = iframe.contentWindow;
            if (!w) return Promise.reject(new Error('frame is gone'));
            return rpc((m) => w.postMessage(m, '*'), global, () => iframe.contentWindow, fn, args);
          },
          remove() { iframe.remove(); },
        };
      },

      // Creates a dedicated helper worker (worker.js?helper=1) with the same target installed.
      async createWorker() {
        const url = new URL('worker.js', location.href);
        url.searchParams.set('helper', '1');
        url.searchParams.set('target', env.target);
        const worker = new Worker(url.href);
        cleanups.push(() => worker.terminate());
        await new Promise((resolve, reject) => {
          const onMsg = (e) => {
            if (!e.data || !e.data.__workerReady) return;
            worker.removeEventListener('message', onMsg);
            if (e.data.error) reject(new Error(`helper worker bootstrap failed: ${e.data.error}`));
            else resolve();
          };
          worker.addEventListener('message', onMsg);
          worker.addEventListener('error', (e) => reject(new Error(`helper worker error: ${e.message}`)));
        });
        return {
          worker,
          run(fn, ...args) { return rpc((m) => worker.postMessage(m), worker, null, fn, args); },
          terminate() { worker.terminate(); },
        };
      },
      helperWorkerUrl() {
        const url = new URL('worker.js', location.href);
        url.searchParams.set('helper', '1');
        url.searchParams.set('target', env.target);
        return url.href;
      },
      remote: { hold: remoteHold, release: remoteRelease, enqueue: remoteEnqueue, grants: remoteGrants, snapshot: remoteSnapshot, clientId: remoteClientId, workerHold: remoteWorkerHold },
    };

    async function runCleanups() {
      const fns = cleanups.splice(0).reverse();
      for (const fn of fns) {
        try { await Promise.race([Promise.resolve().then(fn), sleep(500)]); } catch (e) { /* ignore */ }
      }
      await nextTask();
    }
    return { t, runCleanups };
  }

  function formatError(e) {
    if (e instanceof AssertionError) return e.message;
    if (e && e.stack) return String(e.stack).split('\n').slice(0, 4).join('\n');
    return `non-Error thrown: ${repr(e)}`;
  }

  function selected(list, env) {
    // grep: a substring of the test name, or several separated by '|'.
    return list.filter((tst) => !env.grep || env.grep.split('|').some((g) => tst.name.includes(g)));
  }

  async function runTests(list, env, listName, onResult) {
    const results = [];
    for (const test of selected(list, env)) {
      const started = Date.now();
      let status;
      let error = null;
      if (test.windowOnly && !isWindow) {
        status = 'skip';
        error = 'window-only test (needs a Document / iframes)';
      } else {
        const { t, runCleanups } = makeT(test, env);
        let timer;
        try {
          await Promise.race([
            Promise.resolve().then(() => test.fn(t)),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new AssertionError(`timeout: test did not finish within ${TEST_TIMEOUT_MS} ms`)), TEST_TIMEOUT_MS);
            }),
          ]);
          status = 'pass';
        } catch (e) {
          if (e instanceof SkipSignal) { status = 'skip'; error = e.reason; } else { status = 'fail'; error = formatError(e); }
        } finally {
          clearTimeout(timer);
        }
        await runCleanups();
      }
      const result = { name: test.name, list: listName, windowOnly: !!test.windowOnly, status, error, ms: Date.now() - started };
      results.push(result);
      if (onResult) { try { onResult(result); } catch (e) { /* ignore */ } }
    }
    return results;
  }

  function countTests(env) {
    return selected(suite, env).length + selected(crossContextSuite, env).length;
  }

  // ==================================================================== the tests
  const suite = [];
  const crossContextSuite = [];
  const names = new Set();
  function add(list, name, fn, opts) {
    if (!/^R-\d\d /.test(name)) throw new Error(`test name must start with a rule id: ${name}`);
    if (names.has(name)) throw new Error(`duplicate test name: ${name}`);
    names.add(name);
    list.push({ name, fn, windowOnly: !!(opts && opts.windowOnly) });
  }
  const test = (name, fn) => add(suite, name, fn);
  const windowTest = (name, fn) => add(suite, name, fn, { windowOnly: true });
  const crossTest = (name, fn) => add(crossContextSuite, name, fn, { windowOnly: true });

  const L = () => navigator.locks;
  const noop = () => {};
  const NotCalled = () => { throw new Error('callback must not be called'); };

  // A callback that records whether it was called.
  function spy(ret) {
    const f = function (lock) { f.calls.push(lock); return typeof ret === 'function' ? ret(lock) : ret; };
    f.calls = [];
    return f;
  }
  function navProto() {
    return isWindow ? Navigator.prototype : WorkerNavigator.prototype;
  }

  // ------------------------------------------------------------------ R-01 exposure / interfaces
  test('R-01 navigator.locks is a LockManager in this secure context', async (t) => {
    t.assertEquals(global.isSecureContext, true, 'harness must run in a secure context');
    t.assert('locks' in navigator, "'locks' in navigator");
    t.assertEquals(typeof LockManager, 'function', 'typeof LockManager');
    t.assertEquals(typeof Lock, 'function', 'typeof Lock');
    t.assert(navigator.locks instanceof LockManager, 'navigator.locks instanceof LockManager');
    t.assertEquals(Object.getPrototypeOf(navigator.locks), LockManager.prototype, 'prototype of navigator.locks');
    t.assertEquals(Object.prototype.toString.call(navigator.locks), '[object LockManager]', 'toString tag');
  });

  test('R-01 locks is an enumerable configurable getter on Navigator.prototype / WorkerNavigator.prototype', async (t) => {
    const proto = navProto();
    const d = Object.getOwnPropertyDescriptor(proto, 'locks');
    t.assert(d, `${isWindow ? 'Navigator' : 'WorkerNavigator'}.prototype has an own 'locks' property`);
    t.assertEquals(typeof d.get, 'function', 'locks has a getter');
    t.assertEquals(d.set, undefined, 'locks has no setter');
    t.assertEquals(d.enumerable, true, 'enumerable');
    t.assertEquals(d.configurable, true, 'configurable');
    t.assert(!Object.prototype.hasOwnProperty.call(navigator, 'locks'), 'navigator has no own locks property');
    t.assertEquals(d.get.call(navigator), navigator.locks, 'getter returns navigator.locks');
    let threw = null;
    try { d.get.call({}); } catch (e) { threw = e; }
    t.assert(threw instanceof TypeError, `getter on a non-Navigator throws TypeError, got ${t.repr(threw)}`);
  });

  test('R-01 LockManager and Lock have no public constructor', async (t) => {
    for (const [C, label] of [[LockManager, 'LockManager'], [Lock, 'Lock']]) {
      let e1 = null;
      try { new C(); } catch (e) { e1 = e; }
      t.assert(e1 instanceof TypeError, `new ${label}() throws TypeError, got ${t.repr(e1)}`);
      let e2 = null;
      try { C(); } catch (e) { e2 = e; }
      t.assert(e2 instanceof TypeError, `${label}() throws TypeError, got ${t.repr(e2)}`);
    }
  });

  test('R-01 LockManager and Lock are non-enumerable, writable, configurable globals', async (t) => {
    for (const name of ['LockManager', 'Lock']) {
      const d = Object.getOwnPropertyDescriptor(global, name);
      t.assert(d, `global has own property ${name}`);
      t.assertEquals(d.enumerable, false, `${name} enumerable`);
      t.assertEquals(d.writable, true, `${name} writable`);
      t.assertEquals(d.configurable, true, `${name} configurable`);
      t.assertEquals(d.value.name, name, `${name}.name`);
      t.assertEquals(d.value.prototype.constructor, d.value, `${name}.prototype.constructor`);
    }
  });

  test('R-01 LockManager.prototype has request() (length 2) and query() (length 0)', async (t) => {
    for (const [m, len] of [['request', 2], ['query', 0]]) {
      const d = Object.getOwnPropertyDescriptor(LockManager.prototype, m);
      t.assert(d, `LockManager.prototype.${m} exists`);
      t.assertEquals(typeof d.value, 'function', `${m} is a function`);
      t.assertEquals(d.enumerable, true, `${m} enumerable`);
      t.assertEquals(d.writable, true, `${m} writable`);
      t.assertEquals(d.configurable, true, `${m} configurable`);
      t.assertEquals(d.value.length, len, `${m}.length`);
      t.assertEquals(d.value.name, m, `${m}.name`);
    }
    t.assert(!Object.prototype.hasOwnProperty.call(navigator.locks, 'request'), 'request is not an own property of the instance');
  });

  test('R-01 a granted lock is a Lock with name/mode getters on Lock.prototype', async (t) => {
    const n = t.uniq();
    let lock;
    await L().request(n, (l) => { lock = l; });
    t.assert(lock instanceof Lock, 'lock instanceof Lock');
    t.assertEquals(Object.getPrototypeOf(lock), Lock.prototype, 'prototype');
    t.assertEquals(Object.prototype.toString.call(lock), '[object Lock]', 'toString tag');
    t.assertArrayEquals(Object.getOwnPropertyNames(lock), [], 'no own properties');
    for (const attr of ['name', 'mode']) {
      const d = Object.getOwnPropertyDescriptor(Lock.prototype, attr);
      t.assert(d && typeof d.get === 'function', `Lock.prototype.${attr} is a getter`);
      t.assertEquals(d.set, undefined, `${attr} has no setter`);
      t.assertEquals(d.enumerable, true, `${attr} enumerable`);
      let threw = null;
      try { d.get.call({}); } catch (e) { threw = e; }
      t.assert(threw instanceof TypeError, `${attr} getter on a non-Lock throws TypeError, got ${t.repr(threw)}`);
    }
    t.assertEquals(lock.name, n, 'name still readable after release');
    t.assertEquals(lock.mode, 'exclusive', 'mode still readable after release');
    let threw = null;
    try { lock.name = 'other'; } catch (e) { threw = e; }
    t.assert(threw instanceof TypeError, 'assigning name in strict mode throws TypeError (readonly)');
    t.assertEquals(lock.name, n, 'name unchanged');
  });

  // ------------------------------------------------------------------ R-02 one LockManager per environment
  test('R-02 navigator.locks returns the same LockManager object every time', async (t) => {
    const a = navigator.locks;
    t.assert(a === navigator.locks, 'navigator.locks === navigator.locks');
    t.assert(Object.getOwnPropertyDescriptor(navProto(), 'locks').get.call(navigator) === a, 'getter returns the same object');
    await L().query();
    t.assert(a === navigator.locks, 'still the same object after use');
  });

  windowTest('R-02 an iframe has its own LockManager instance and interface objects', async (t) => {
    const f = await t.createFrame();
    const w = f.win;
    t.assert(w.navigator.locks, 'iframe has navigator.locks');
    t.assert(w.navigator.locks !== navigator.locks, 'different LockManager object');
    t.assert(w.navigator.locks === w.navigator.locks, 'stable within the iframe');
    t.assert(w.LockManager !== LockManager, 'different LockManager interface object');
    t.assert(w.navigator.locks instanceof w.LockManager, "instanceof the iframe's LockManager");
    t.assert(!(w.navigator.locks instanceof LockManager), "not instanceof the parent's LockManager");
  });

  // Same-origin child realms that never load a script of their own (an iframe made by
  // script, srcdoc, document.write, a popup): each has its own navigator.locks (issue #11).
  function blankFrame(t, setup) {
    const f = document.createElement('iframe');
    if (setup) setup(f);
    document.body.appendChild(f);
    t.cleanup(() => f.remove());
    return f;
  }
  function loaded(f) {
    return new Promise((resolve) => f.addEventListener('load', resolve, { once: true }));
  }

  windowTest('R-02 an about:blank iframe made by script has a LockManager of its own realm', async (t) => {
    const f = blankFrame(t);
    const w = f.contentWindow;
    const lm = w.navigator.locks;
    t.assert(lm, 'the iframe has navigator.locks');
    t.assert(lm !== navigator.locks, 'not the parent manager');
    t.assert(lm instanceof w.LockManager && !(lm instanceof LockManager), "an instance of the iframe's own LockManager");
    const name = t.uniq();
    const cb = w.eval('(function (lock) { return lock && lock.name; })');
    const p = lm.request(name, cb);
    t.assert(w.Promise.resolve(p) === p, "request() returns a promise of the iframe's realm");
    t.assertEquals(await p, name, 'granted in the iframe');
    const q = lm.query();
    t.assert(w.Promise.resolve(q) === q, "query() returns a promise of the iframe's realm");
    await q;
    const e = await t.rejection(lm.request('-x', cb));
    t.assert(e instanceof w.DOMException && !(e instanceof DOMException), "a NotSupportedError of the iframe's realm");
    t.assertEquals(e.name, 'NotSupportedError');
    const te = await t.rejection(lm.request(name));
    t.assert(te instanceof w.TypeError && !(te instanceof TypeError), "a TypeError of the iframe's realm");
    await sharesLockSpace(t, w, 'about:blank iframe');
  });

  // The child's manager is in its origin's one lock space: a lock this page holds is not
  // available to it (R-27).
  async function sharesLockSpace(t, w, what) {
    const name = t.uniq();
    let release;
    const held = new Promise((res) => { release = res; });
    let granted;
    const got = new Promise((res) => { granted = res; });
    const p = navigator.locks.request(name, () => { granted(); return held; });
    await got;
    const seen = await w.navigator.locks.request(name, { ifAvailable: true }, w.eval('(function (l) { return l === null ? "unavailable" : "granted"; })'));
    release();
    await p;
    t.assertEquals(seen, 'unavailable', `${what}: a lock held by its parent must not be available to it`);
  }

  windowTest('R-02 srcdoc, document.write and window.open("") realms have navigator.locks', async (t) => {
    const s = blankFrame(t, (f) => { f.srcdoc = '<p>srcdoc</p>'; });
    await loaded(s);
    const sw = s.contentWindow;
    t.assert(sw.navigator.locks instanceof sw.LockManager, 'srcdoc iframe');
    t.assertEquals(await sw.navigator.locks.request(t.uniq(), sw.eval('(function (l) { return !!l; })')), true, 'srcdoc iframe grants');
    await sharesLockSpace(t, sw, 'srcdoc iframe');
    const d = blankFrame(t);
    const doc = d.contentDocument;
    doc.open();
    doc.write('<!doctype html><p>written</p>');
    doc.close();
    const dw = d.contentWindow;
    t.assert(dw.navigator.locks instanceof dw.LockManager, 'document.write frame');
    t.assertEquals(await dw.navigator.locks.request(t.uniq(), dw.eval('(function (l) { return !!l; })')), true, 'document.write frame grants');
    await sharesLockSpace(t, dw, 'document.write frame');
    const pw = window.open('', '_blank');
    if (!pw) t.skip('popups are blocked here');
    t.cleanup(() => pw.close());
    t.assert(pw.navigator.locks instanceof pw.LockManager, 'popup');
    t.assertEquals(await pw.navigator.locks.request(t.uniq(), pw.eval('(function (l) { return !!l; })')), true, 'popup grants');
    await sharesLockSpace(t, pw, 'popup');
  });

  windowTest('R-10 a removed about:blank iframe rejects request() and query() with its realm\'s InvalidStateError', async (t) => {
    const f = blankFrame(t);
    const w = f.contentWindow;
    const lm = w.navigator.locks;
    const cb = w.eval('(function () { throw new Error("callback must not run"); })');
    const realm = { DOMException: w.DOMException, TypeError: w.TypeError };
    f.remove();
    for (const [what, p] of [['request()', lm.request(t.uniq(), cb)], ['request("-")', lm.request('-', cb)], ['query()', lm.query()]]) {
      const e = await t.rejection(p);
      t.assertEquals(e && e.name, 'InvalidStateError', what);
      t.assert(e instanceof realm.DOMException && !(e instanceof DOMException), `${what}: the iframe's DOMException`);
    }
  });

  windowTest('R-02 a re-inserted iframe gets a new LockManager that works', async (t) => {
    const f = blankFrame(t);
    const before = f.contentWindow.navigator.locks;
    f.remove();
    document.body.appendChild(f);
    const w = f.contentWindow;
    const after = w.navigator.locks;
    t.assert(after && after !== before, 'a new LockManager');
    t.assertEquals(await after.request(t.uniq(), w.eval('(function (l) { return !!l; })')), true, 'it grants');
  });

  crossTest('R-27 a lock held in an about:blank iframe blocks its parent; query() shows the iframe\'s own clientId', async (t) => {
    const f = blankFrame(t);
    const w = f.contentWindow;
    const name = t.uniq();
    let release;
    const held = w.navigator.locks.request(name, w.eval('(function (r) { return function () { return new Promise(function (res) { r(res); }); }; })')((r) => (release = r)));
    await t.waitFor(async () => (await t.snapshot(name)).held.length === 1, "the iframe's lock in the parent's query()");
    t.assertEquals(await navigator.locks.request(name, { ifAvailable: true }, (l) => l), null, 'the parent cannot take it');
    const theirs = (await t.snapshot(name)).held[0].clientId;
    const mine = t.uniq('mine');
    await navigator.locks.request(mine, async () => {
      const me = (await t.snapshot(mine)).held[0].clientId;
      t.assert(theirs !== me, 'the iframe is a client of its own');
    });
    const w2 = t.req(name);
    await t.waitPending(name, 1);
    release();
    await held;
    t.assert((await w2.granted) instanceof Lock, "the parent's request is granted once the iframe released it");
  });

  // ------------------------------------------------------------------ R-03 argument count
  test('R-03 request() with no arguments rejects with TypeError', async (t) => {
    await t.assertRejects(L().request(), 'TypeError');
  });

  test('R-03 request(name) with one argument rejects with TypeError', async (t) => {
    await t.assertRejects(L().request(t.uniq()), 'TypeError');
    await t.assertRejects(L().request(t.uniq(), undefined), 'TypeError', 'request(name, undefined)');
  });

  test('R-03 request(name, options) with a dictionary as 2nd argument rejects with TypeError', async (t) => {
    await t.assertRejects(L().request(t.uniq(), {}), 'TypeError', '{}');
    await t.assertRejects(L().request(t.uniq(), { mode: 'shared' }), 'TypeError', '{mode: shared}');
    await t.assertRejects(L().request(t.uniq(), null), 'TypeError', 'null');
  });

  test('R-03 arguments after the callback are ignored', async (t) => {
    const n = t.uniq();
    const v = await L().request(n, { mode: 'shared' }, (lock) => lock.mode, 'extra', NotCalled);
    t.assertEquals(v, 'shared');
  });

  // ------------------------------------------------------------------ R-04 callback type
  const nonCallables = () => [undefined, null, 0, 1, true, 'callback', Symbol('s'), [], {}, { call() {} }, Promise.resolve(), new Date(0)];

  test('R-04 a non-callable callback rejects with TypeError (2-argument form)', async (t) => {
    for (const v of nonCallables()) await t.assertRejects(L().request(t.uniq(), v), 'TypeError', `callback ${t.repr(v)}`);
  });

  test('R-04 a non-callable callback rejects with TypeError (3-argument form)', async (t) => {
    for (const v of nonCallables()) await t.assertRejects(L().request(t.uniq(), {}, v), 'TypeError', `callback ${t.repr(v)}`);
  });

  test('R-04 a non-callable callback never takes the lock', async (t) => {
    const n = t.uniq();
    await t.assertRejects(L().request(n, {}, {}), 'TypeError');
    const s = await t.snapshot(n);
    t.assertEquals(s.held.length + s.pending.length, 0, 'nothing held or pending');
  });

  test('R-04 any callable object is accepted as the callback', async (t) => {
    const fns = [
      function plain(lock) { return lock.name; },
      (lock) => lock.name,
      async (lock) => lock.name,
      function (lock) { return this === undefined && lock.name; }.bind(undefined),
      new Proxy(function (lock) { return lock.name; }, {}),
      { m(lock) { return lock.name; } }.m,
    ];
    for (const f of fns) {
      const n = t.uniq();
      const v = await L().request(n, f);
      t.assertEquals(v, n, `callable ${t.repr(f)}`);
    }
  });

  // ------------------------------------------------------------------ R-05 mode
  test('R-05 an invalid mode rejects with TypeError', async (t) => {
    for (const mode of ['', 'SHARED', 'Exclusive', 'shared ', ' exclusive', 'read', 'write', null, 0, {}, []]) {
      await t.assertRejects(L().request(t.uniq(), { mode }, NotCalled), 'TypeError', `mode ${t.repr(mode)}`);
    }
  });

  test('R-05 the default mode is exclusive and Lock.mode reflects the requested mode', async (t) => {
    t.assertEquals(await L().request(t.uniq(), (l) => l.mode), 'exclusive', '2-argument form');
    t.assertEquals(await L().request(t.uniq(), {}, (l) => l.mode), 'exclusive', 'empty options');
    t.assertEquals(await L().request(t.uniq(), { mode: undefined }, (l) => l.mode), 'exclusive', 'mode undefined');
    t.assertEquals(await L().request(t.uniq(), { mode: 'exclusive' }, (l) => l.mode), 'exclusive', 'exclusive');
    t.assertEquals(await L().request(t.uniq(), { mode: 'shared' }, (l) => l.mode), 'shared', 'shared');
  });

  test('R-05 mode is converted with ToString before validation', async (t) => {
    t.assertEquals(await L().request(t.uniq(), { mode: { toString: () => 'shared' } }, (l) => l.mode), 'shared', 'object with toString');
    t.assertEquals(await L().request(t.uniq(), { mode: ['shared'] }, (l) => l.mode), 'shared', "['shared']");
    await t.assertRejects(L().request(t.uniq(), { mode: Symbol('shared') }, NotCalled), 'TypeError', 'Symbol mode');
  });

  // ------------------------------------------------------------------ R-06 signal type
  test('R-06 a signal that is not an AbortSignal rejects with TypeError', async (t) => {
    const fakes = [null, 'signal', 1, true, {}, noop, global, new AbortController(), new EventTarget(),
      { aborted: false, reason: undefined, addEventListener() {}, removeEventListener() {} }, Object.create(AbortSignal.prototype)];
    for (const signal of fakes) {
      await t.assertRejects(L().request(t.uniq(), { signal }, NotCalled), 'TypeError', `signal ${t.repr(signal)}`);
    }
  });

  test('R-06 signal: undefined counts as absent (no NotSupportedError with steal or ifAvailable)', async (t) => {
    t.assertEquals(await L().request(t.uniq(), { signal: undefined }, (l) => l.mode), 'exclusive', 'plain');
    t.assertEquals(await L().request(t.uniq(), { signal: undefined, steal: true }, (l) => l && l.mode), 'exclusive', 'with steal');
    t.assertEquals(await L().request(t.uniq(), { signal: undefined, ifAvailable: true }, (l) => l && l.mode), 'exclusive', 'with ifAvailable');
  });

  test('R-06 a live AbortSignal is accepted and does not affect the grant', async (t) => {
    const ac = new AbortController();
    const n = t.uniq();
    t.assertEquals(await L().request(n, { signal: ac.signal }, (l) => l.name), n, 'controller signal');
    if (typeof AbortSignal.any === 'function') {
      const n2 = t.uniq();
      t.assertEquals(await L().request(n2, { signal: AbortSignal.any([ac.signal]) }, (l) => l.name), n2, 'AbortSignal.any');
    }
    const n3 = t.uniq();
    t.assertEquals(await L().request(n3, { signal: AbortSignal.timeout(60000) }, (l) => l.name), n3, 'AbortSignal.timeout');
  });

  // ------------------------------------------------------------------ R-07 / R-08 names
  test('R-07 empty, NUL, lone-surrogate and U+FFFF names are valid', async (t) => {
    const base = t.uniq();
    const names = ['', '\0', base + '\0', base + '\uD800', base + '\uDC00', '\uDC00' + base, base + '\uDFFF\uD800', base + '\uFFFF', base + '\uFFFE'];
    for (const n of names) {
      const got = await L().request(n, (l) => l.name);
      t.assertEquals(got, n, `name ${t.repr(n)}`);
    }
  });

  test('R-07 names are compared code unit by code unit (lone surrogate vs U+FFFD, no normalization)', async (t) => {
    const b = t.uniq();
    const h1 = t.req(b + '\uD800');
    const h2 = t.req(b + 'e\u0301');
    const h3 = t.req(b + 'A');
    await Promise.all([h1.granted, h2.granted, h3.granted]);
    for (const [other, held] of [['\uFFFD', '\uD800'], ['\uDBFF', '\uD800'], ['\uDC00', '\uD800'], ['', '\uD800'], ['\u00e9', 'e\u0301'], ['a', 'A'], ['\uD800\uDC00', '\uD800'], [' A', 'A']]) {
      const got = await L().request(b + other, { ifAvailable: true }, (l) => l);
      t.assert(got instanceof Lock, `${t.repr(other)} is a different resource from held ${t.repr(held)}`);
    }
    for (const held of ['\uD800', 'e\u0301', 'A']) {
      const got = await L().request(b + held, { ifAvailable: true }, (l) => l);
      t.assertEquals(got, null, `${t.repr(held)} itself is held`);
    }
  });

  test('R-07 the name is converted with ToString', async (t) => {
    const num = Math.random() * 1e9;
    t.assertEquals(await L().request(num, (l) => l.name), String(num), 'number');
    const n = t.uniq();
    t.assertEquals(await L().request({ toString: () => n }, (l) => l.name), n, 'object with toString');
    t.assertEquals(await L().request([n, 'x'], (l) => l.name), `${n},x`, 'array');
  });

  test('R-07 a Symbol name rejects with TypeError', async (t) => {
    await t.assertRejects(L().request(Symbol('n'), NotCalled), 'TypeError');
    await t.assertRejects(L().request(Symbol('n'), {}, NotCalled), 'TypeError');
  });

  test('R-07 a 1 MB name works', async (t) => {
    const n = t.uniq() + 'x'.repeat(1 << 20);
    let lockName;
    const h = t.req(n);
    const lock = await h.granted;
    lockName = lock.name;
    t.assertEquals(lockName.length, n.length, 'Lock.name length');
    t.assert(lockName === n, 'Lock.name equals the name');
    const s = await t.snapshot(n);
    t.assertEquals(s.held.length, 1, 'query() reports the 1 MB name as held');
    t.assertEquals(await L().request(n, { ifAvailable: true }, (l) => l), null, 'the 1 MB name is really held');
    await h.release();
    t.assert((await L().request(n, { ifAvailable: true }, (l) => l)) instanceof Lock, 'released');
  });

  test('R-08 Lock.name is exactly the requested name, including lone surrogates', async (t) => {
    const n = t.uniq() + '\uD800 e\u0301\0\uFFFF\uDC00-\u{1F600}';
    const lock = await L().request(n, (l) => l);
    t.assert(lock.name === n, 'Lock.name === name');
    t.assertEquals(lock.name.length, n.length, 'same code unit length');
    const l2 = await L().request('\uDFFF', { mode: 'shared' }, (l) => l);
    t.assert(l2.name === '\uDFFF', 'lone low surrogate alone');
  });

  test('R-08 query() reports the requested name exactly', async (t) => {
    const n = t.uniq() + ' e\u0301\0\uFFFF\uFFFD-\u{1F600}\u200B';
    const h = t.req(n);
    await h.granted;
    const s = await t.snapshot(n);
    t.assertEquals(s.held.length, 1, 'query() finds the exact name');
    t.assert(s.held[0].name === n, 'query() name === name');
  });

  test('R-08 query() reports names containing lone surrogates exactly', async (t) => {
    const b = t.uniq();
    const names = [b + '\uD800', b + '\uDC00x', '\uDBFF' + b];
    const hs = names.map((n) => t.req(n));
    await Promise.all(hs.map((h) => h.granted));
    const q = await L().query();
    for (const n of names) {
      t.assertEquals(q.held.filter((e) => e.name === n).length, 1, `query() reports ${t.repr(n)} verbatim (got names ${t.repr(q.held.filter((e) => !e.name.startsWith('wl-') || e.name.startsWith(b)).map((e) => e.name))})`);
    }
  });

  // ------------------------------------------------------------------ R-09 options conversion
  test('R-09 options null or undefined means the default options', async (t) => {
    t.assertEquals(await L().request(t.uniq(), null, (l) => l.mode), 'exclusive', 'null');
    t.assertEquals(await L().request(t.uniq(), undefined, (l) => l.mode), 'exclusive', 'undefined');
    const n = t.uniq();
    const h = t.req(n);
    await h.granted;
    const w = t.req(n, null);
    await t.waitPending(n, 1); // null options: not ifAvailable, so it waits
    t.assertEquals(w.called, false, 'waiting request not called');
  });

  test('R-09 ifAvailable is converted with ToBoolean', async (t) => {
    const n = t.uniq();
    const h = t.req(n);
    await h.granted;
    for (const v of [1, 'yes', {}, [], -1]) {
      t.assertEquals(await L().request(n, { ifAvailable: v }, (l) => l), null, `truthy ifAvailable ${t.repr(v)}`);
    }
    const falsy = [0, '', null, NaN];
    const waiters = falsy.map((v) => t.req(n, { ifAvailable: v }));
    await t.waitPending(n, falsy.length); // falsy values queue like a normal request
    t.assert(waiters.every((w) => !w.called), 'falsy ifAvailable requests wait');
  });

  test('R-09 steal is converted with ToBoolean', async (t) => {
    const n = t.uniq();
    const victim = t.req(n);
    await victim.granted;
    const stealer = t.req(n, { steal: 'yes' });
    const lock = await stealer.granted;
    t.assert(lock instanceof Lock, 'truthy steal granted at once');
    await t.assertRejects(victim.done, 'AbortError', 'victim evicted');
    const w = t.req(n, { steal: 0 });
    await t.waitPending(n, 1);
    t.assertEquals(w.called, false, 'steal: 0 waits like a normal request');
    await t.assertRejects(L().request(t.uniq(), { steal: 1, ifAvailable: 'y' }, NotCalled), 'NotSupportedError', 'truthy steal + truthy ifAvailable');
  });

  // ------------------------------------------------------------------ R-10 non-fully-active
  windowTest('R-10 a removed iframe\'s LockManager rejects request() with InvalidStateError, even for "-"', async (t) => {
    const f = await t.createFrame();
    let w = f.win;
    const lm = w.navigator.locks;
    const cb = w.eval('(function () { throw new Error("callback must not run"); })');
    const AC = w.AbortController;
    w = { DOMException: w.DOMException, TypeError: w.TypeError }; // the iframe's constructors, captured while attached
    f.remove();
    await t.assertRejects(lm.request(t.uniq(), cb), 'InvalidStateError', 'valid name', w);
    await t.assertRejects(lm.request('-', cb), 'InvalidStateError', '"-"', w);
    await t.assertRejects(lm.request('-x', { steal: true, ifAvailable: true, mode: 'shared' }, cb), 'InvalidStateError', '"-x" + steal + ifAvailable', w);
    const ac = new AC();
    ac.abort('custom');
    await t.assertRejects(lm.request(t.uniq(), { signal: ac.signal }, cb), 'InvalidStateError', 'aborted signal', w);
    await t.assertRejects(lm.request(t.uniq(), cb), 'InvalidStateError', 'keeps rejecting', w);
  });

  windowTest('R-10 a removed iframe\'s LockManager rejects query() with InvalidStateError', async (t) => {
    const f = await t.createFrame();
    const w = f.win;
    const lm = w.navigator.locks;
    await lm.query(); // works while attached
    const realm = { DOMException: w.DOMException, TypeError: w.TypeError };
    f.remove();
    await t.assertRejects(lm.query(), 'InvalidStateError', 'query() after removal', realm);
    await t.assertRejects(lm.query(), 'InvalidStateError', 'keeps rejecting', realm);
  });

  windowTest('R-18 argument TypeErrors take precedence over InvalidStateError', async (t) => {
    const f = await t.createFrame();
    const w = f.win;
    const lm = w.navigator.locks;
    const cb = w.eval('(function () {})');
    const realm = { DOMException: w.DOMException, TypeError: w.TypeError };
    f.remove();
    await t.assertRejects(lm.request('-'), 'TypeError', 'one argument', realm);
    await t.assertRejects(lm.request('-', { mode: 'bogus' }, cb), 'TypeError', 'bad mode', realm);
    await t.assertRejects(lm.request('-', {}, 'not callable'), 'TypeError', 'bad callback', realm);
    await t.assertRejects(lm.request('-', { signal: 'nope' }, cb), 'TypeError', 'bad signal', realm);
  });

  // ------------------------------------------------------------------ R-11 / R-76 SecurityError
  function opaqueProbe() {
    const run = (p) => p.then(() => ({ ok: true }), (e) => ({ ok: false, name: e && e.name, isDOMException: e instanceof DOMException }));
    return Promise.all([
      run(navigator.locks.request('x', () => { self.__cbRan = true; })),
      run(navigator.locks.query()),
      run(navigator.locks.request('-', () => {})),
    ]).then((r) => ({ request: r[0], query: r[1], reserved: r[2], cbRan: !!self.__cbRan, origin: self.origin }));
  }

  windowTest('R-11 an opaque-origin (sandboxed) iframe\'s request() rejects with SecurityError', async (t) => {
    const f = await t.createFrame({ sandbox: 'allow-scripts' });
    const r = await f.run(opaqueProbe);
    t.assertEquals(r.origin, 'null', 'frame has an opaque origin');
    t.assertEquals(r.request.name, 'SecurityError', 'request() rejection');
    t.assertEquals(r.request.isDOMException, true, 'request() rejection is a DOMException');
    t.assertEquals(r.reserved.name, 'SecurityError', 'SecurityError precedes the reserved-name check');
    t.assertEquals(r.cbRan, false, 'callback never runs');
  });

  windowTest('R-76 an opaque-origin (sandboxed) iframe\'s query() rejects with SecurityError', async (t) => {
    const f = await t.createFrame({ sandbox: 'allow-scripts' });
    const r = await f.run(opaqueProbe);
    t.assertEquals(r.query.name, 'SecurityError', 'query() rejection');
    t.assertEquals(r.query.isDOMException, true, 'query() rejection is a DOMException');
  });

  // ------------------------------------------------------------------ R-12 reserved names
  test('R-12 a name starting with "-" rejects with NotSupportedError', async (t) => {
    for (const n of ['-', '--', '-x', '-' + t.uniq(), '-\uD800']) {
      const cb = spy();
      await t.assertRejects(L().request(n, cb), 'NotSupportedError', `name ${t.repr(n)}`);
      await t.assertRejects(L().request(n, { mode: 'shared' }, cb), 'NotSupportedError', `name ${t.repr(n)} shared`);
      t.assertEquals(cb.calls.length, 0, 'callback not called');
    }
  });

  test('R-12 "-" elsewhere in the name, or look-alike dashes first, are allowed', async (t) => {
    const u = t.uniq();
    for (const n of [u + '-', 'x-' + u, ' -' + u, '\u2010' + u, '\u2212' + u, '\uFF0D' + u, '\uFE63' + u, '\u00AD-' + u]) {
      t.assertEquals(await L().request(n, (l) => l.name), n, `name ${t.repr(n)}`);
    }
  });

  // ------------------------------------------------------------------ R-13 / R-14 / R-15 option combinations
  test('R-13 steal together with ifAvailable rejects with NotSupportedError and has no effect', async (t) => {
    const n = t.uniq();
    const holder = t.req(n);
    await holder.granted;
    const cb = spy();
    await t.assertRejects(L().request(n, { steal: true, ifAvailable: true }, cb), 'NotSupportedError');
    await t.assertRejects(L().request(n, { steal: true, ifAvailable: true, mode: 'exclusive' }, cb), 'NotSupportedError');
    t.assertEquals(cb.calls.length, 0, 'callback not called');
    const s = await t.snapshot(n);
    t.assertEquals(s.held.length, 1, 'holder not evicted');
    t.assertEquals(s.pending.length, 0, 'nothing queued');
  });

  test('R-14 steal with mode "shared" rejects with NotSupportedError and has no effect', async (t) => {
    const n = t.uniq();
    const holder = t.req(n);
    await holder.granted;
    const cb = spy();
    await t.assertRejects(L().request(n, { steal: true, mode: 'shared' }, cb), 'NotSupportedError');
    t.assertEquals(cb.calls.length, 0, 'callback not called');
    const s = await t.snapshot(n);
    t.assertEquals(s.held.length, 1, 'holder not evicted');
    t.assertEquals(s.pending.length, 0, 'nothing queued');
    t.assertEquals(await L().request(t.uniq(), { steal: true, mode: 'exclusive' }, (l) => l.mode), 'exclusive', 'steal with explicit exclusive is fine');
  });

  test('R-15 signal together with steal rejects with NotSupportedError', async (t) => {
    const n = t.uniq();
    const holder = t.req(n);
    await holder.granted;
    const cb = spy();
    await t.assertRejects(L().request(n, { steal: true, signal: new AbortController().signal }, cb), 'NotSupportedError');
    t.assertEquals(cb.calls.length, 0, 'callback not called');
    t.assertEquals((await t.snapshot(n)).held.length, 1, 'holder not evicted');
  });

  test('R-15 signal together with ifAvailable rejects with NotSupportedError', async (t) => {
    const cb = spy();
    await t.assertRejects(L().request(t.uniq(), { ifAvailable: true, signal: new AbortController().signal }, cb), 'NotSupportedError', 'free name');
    await t.assertRejects(L().request(t.uniq(), { ifAvailable: true, mode: 'shared', signal: new AbortController().signal }, cb), 'NotSupportedError', 'shared');
    await t.nextTask();
    t.assertEquals(cb.calls.length, 0, 'callback not called');
  });

  // ------------------------------------------------------------------ R-16 already-aborted signal
  test('R-16 an already-aborted signal rejects with exactly its custom reason', async (t) => {
    const reasons = [new Error('custom'), 'a string', 42, { custom: true }, new DOMException('x', 'TimeoutError'), null];
    for (const reason of reasons) {
      const ac = new AbortController();
      ac.abort(reason);
      const cb = spy();
      await t.assertRejects(L().request(t.uniq(), { signal: ac.signal }, cb), t.is(reason), `reason ${t.repr(reason)}`);
      await t.assertRejects(L().request(t.uniq(), { signal: AbortSignal.abort(reason), mode: 'shared' }, cb), t.is(reason), `AbortSignal.abort(${t.repr(reason)})`);
      t.assertEquals(cb.calls.length, 0, 'callback not called');
    }
  });

  test('R-16 an already-aborted signal with the default reason rejects with that same AbortError', async (t) => {
    const ac = new AbortController();
    ac.abort();
    const e = await t.assertRejects(L().request(t.uniq(), { signal: ac.signal }, NotCalled), 'AbortError');
    t.assert(e === ac.signal.reason, 'rejection is signal.reason itself, not a fresh AbortError');
    const s = AbortSignal.abort();
    const e2 = await t.assertRejects(L().request(t.uniq(), { signal: s }, NotCalled), 'AbortError');
    t.assert(e2 === s.reason, 'AbortSignal.abort(): rejection is signal.reason itself');
  });

  test('R-16 an already-aborted signal never runs the callback and never takes the lock', async (t) => {
    const n = t.uniq();
    const cb = spy();
    const p = L().request(n, { signal: AbortSignal.abort('r') }, cb);
    const s = await t.snapshot(n);
    t.assertEquals(s.held.length + s.pending.length, 0, 'nothing held or pending');
    await t.assertRejects(p, t.is('r'));
    t.assert((await L().request(n, { ifAvailable: true }, (l) => l)) instanceof Lock, 'name is free');
    await t.sleep(t.NOT_HAPPENED_MS);
    t.assertEquals(cb.calls.length, 0, 'callback not called');
  });

  // ------------------------------------------------------------------ R-17 no synchronous throws
  test('R-17 request() and query() report every failure as a rejected promise, never a sync throw', async (t) => {
    const aborted = AbortSignal.abort();
    const bad = [
      ['no args', () => L().request()],
      ['1 arg', () => L().request('x')],
      ['bad callback', () => L().request('x', 5)],
      ['bad mode', () => L().request('x', { mode: 'x' }, noop)],
      ['bad signal', () => L().request('x', { signal: 1 }, noop)],
      ['reserved name', () => L().request('-x', noop)],
      ['steal+ifAvailable', () => L().request('x', { steal: true, ifAvailable: true }, noop)],
      ['steal+shared', () => L().request('x', { steal: true, mode: 'shared' }, noop)],
      ['signal+steal', () => L().request('x', { steal: true, signal: new AbortController().signal }, noop)],
      ['aborted signal', () => L().request('x', { signal: aborted }, noop)],
      ['request with bad this', () => LockManager.prototype.request.call({}, 'x', noop)],
      ['request with undefined this', () => LockManager.prototype.request.call(undefined, 'x', noop)],
      ['query with bad this', () => LockManager.prototype.query.call({})],
      ['query with null this', () => LockManager.prototype.query.call(null)],
    ];
    for (const [label, call] of bad) {
      let p;
      try { p = call(); } catch (e) { t.fail(`${label}: threw synchronously ${t.repr(e)}`); }
      t.assert(p instanceof Promise, `${label}: returns a Promise`);
      await t.rejection(p, label);
    }
    await t.assertRejects(LockManager.prototype.request.call({}, 'x', noop), 'TypeError', 'bad this is a TypeError');
    await t.assertRejects(LockManager.prototype.query.call({}), 'TypeError', 'query bad this is a TypeError');
  });

  test('R-17 exceptions thrown while converting arguments become rejections with that exception', async (t) => {
    const err1 = new Error('name toString');
    await t.assertRejects(L().request({ toString() { throw err1; } }, noop), t.is(err1), 'name conversion');
    const err2 = new Error('mode getter');
    await t.assertRejects(L().request(t.uniq(), { get mode() { throw err2; } }, noop), t.is(err2), 'mode getter');
    const err3 = { notAnError: true };
    await t.assertRejects(L().request(t.uniq(), { get ifAvailable() { throw err3; } }, noop), t.is(err3), 'ifAvailable getter');
    const err4 = new RangeError('steal');
    await t.assertRejects(L().request(t.uniq(), { get steal() { throw err4; } }, noop), t.is(err4), 'steal getter');
    const err5 = new Error('signal');
    await t.assertRejects(L().request(t.uniq(), { get signal() { throw err5; } }, noop), t.is(err5), 'signal getter');
    const err6 = new Error('mode toString');
    await t.assertRejects(L().request(t.uniq(), { mode: { toString() { throw err6; } } }, noop), t.is(err6), 'mode toString');
  });

  test('R-17 rejection values are real DOMException / TypeError instances with the legacy codes', async (t) => {
    const te = await t.rejection(L().request('x'));
    t.assertEquals(Object.getPrototypeOf(te), TypeError.prototype, 'TypeError prototype');
    t.assert(te instanceof Error, 'TypeError instanceof Error');
    const cases = [
      ['NotSupportedError', 9, L().request('-', noop)],
      ['AbortError', 20, L().request(t.uniq(), { signal: AbortSignal.abort() }, noop)],
    ];
    for (const [name, code, p] of cases) {
      const e = await t.rejection(p);
      t.assertEquals(Object.getPrototypeOf(e), DOMException.prototype, `${name} prototype`);
      t.assertEquals(e.name, name, 'name');
      t.assertEquals(e.code, code, `${name}.code`);
      t.assertEquals(typeof e.message, 'string', 'message is a string');
      t.assertEquals(Object.prototype.toString.call(e), '[object DOMException]', 'toString tag');
    }
  });

  // ------------------------------------------------------------------ R-18 check order
  test('R-18 argument TypeErrors take precedence over every later check', async (t) => {
    const aborted = AbortSignal.abort('reason');
    await t.assertRejects(L().request('-', { steal: true, ifAvailable: true, mode: 'shared', signal: aborted }, 'not callable'), 'TypeError', 'bad callback');
    await t.assertRejects(L().request('-', { mode: 'nope', steal: true, ifAvailable: true }, noop), 'TypeError', 'bad mode');
    await t.assertRejects(L().request('-', { signal: 'nope', steal: true, ifAvailable: true }, noop), 'TypeError', 'bad signal');
    await t.assertRejects(L().request('-', { signal: aborted, mode: 'nope' }, noop), 'TypeError', 'bad mode + aborted signal');
    await t.assertRejects(L().request('-'), 'TypeError', 'reserved name, 1 argument');
    await t.assertRejects(L().request('-', {}), 'TypeError', 'reserved name, dictionary as callback');
  });

  test('R-18 IDL converts name, then option members in lexicographic order, then the callback', async (t) => {
    const log = [];
    const opts = {};
    for (const k of ['steal', 'signal', 'mode', 'ifAvailable']) {
      Object.defineProperty(opts, k, { enumerable: true, get() { log.push(k); return k === 'mode' ? 'exclusive' : undefined; } });
    }
    const name = { toString() { log.push('name'); return '-reserved'; } };
    await t.assertRejects(L().request(name, opts, 'not callable'), 'TypeError', 'bad callback');
    t.assertArrayEquals(log, ['name', 'ifAvailable', 'mode', 'signal', 'steal'], 'conversion order (then the callback check fails)');
    log.length = 0;
    await t.assertRejects(L().request(name, opts, noop), 'NotSupportedError', 'reserved name');
    t.assertArrayEquals(log, ['name', 'ifAvailable', 'mode', 'signal', 'steal'], 'each member read once');
  });

  // The checks below share the NotSupportedError name; their order is observable only through the
  // message, so compare with each single failure's own message (implementation-relative).
  async function notSupportedMessage(t, p, label) {
    const e = await t.assertRejects(p, 'NotSupportedError', label);
    return e.message;
  }

  test('R-18 the reserved-name check precedes the steal+ifAvailable check', async (t) => {
    const mName = await notSupportedMessage(t, L().request('-', noop), 'reserved name alone');
    const mCombo = await notSupportedMessage(t, L().request(t.uniq(), { steal: true, ifAvailable: true }, noop), 'steal+ifAvailable alone');
    const mBoth = await notSupportedMessage(t, L().request('-', { steal: true, ifAvailable: true }, noop), 'both');
    if (mName !== mCombo) t.assertEquals(mBoth, mName, 'message of the combined failure');
  });

  test('R-18 the steal+ifAvailable check precedes the steal+mode check', async (t) => {
    const mCombo = await notSupportedMessage(t, L().request(t.uniq(), { steal: true, ifAvailable: true }, noop), 'steal+ifAvailable alone');
    const mMode = await notSupportedMessage(t, L().request(t.uniq(), { steal: true, mode: 'shared' }, noop), 'steal+shared alone');
    const mBoth = await notSupportedMessage(t, L().request(t.uniq(), { steal: true, ifAvailable: true, mode: 'shared' }, noop), 'both');
    if (mCombo !== mMode) t.assertEquals(mBoth, mCombo, 'message of the combined failure');
  });

  test('R-18 the steal+mode check precedes the signal combination check', async (t) => {
    const sig = new AbortController().signal;
    const mMode = await notSupportedMessage(t, L().request(t.uniq(), { steal: true, mode: 'shared' }, noop), 'steal+shared alone');
    const mSig = await notSupportedMessage(t, L().request(t.uniq(), { steal: true, signal: sig }, noop), 'steal+signal alone');
    const mBoth = await notSupportedMessage(t, L().request(t.uniq(), { steal: true, mode: 'shared', signal: sig }, noop), 'both');
    if (mMode !== mSig) t.assertEquals(mBoth, mMode, 'message of the combined failure');
  });

  test('R-18 a reserved name with an already-aborted signal rejects with NotSupportedError', async (t) => {
    const reason = new Error('abort reason');
    await t.assertRejects(L().request('-x', { signal: AbortSignal.abort(reason) }, NotCalled), 'NotSupportedError', 'custom reason');
    await t.assertRejects(L().request('-', { signal: AbortSignal.abort() }, NotCalled), 'NotSupportedError', 'default reason');
  });

  test('R-18 an already-aborted signal with ifAvailable rejects with NotSupportedError', async (t) => {
    await t.assertRejects(L().request(t.uniq(), { ifAvailable: true, signal: AbortSignal.abort('r') }, NotCalled), 'NotSupportedError');
  });

  test('R-18 an already-aborted signal with steal rejects with NotSupportedError', async (t) => {
    await t.assertRejects(L().request(t.uniq(), { steal: true, signal: AbortSignal.abort('r') }, NotCalled), 'NotSupportedError');
  });

  // ------------------------------------------------------------------ R-20 FIFO
  test('R-20 exclusive requests for one name are granted one at a time in FIFO order', async (t) => {
    const n = t.uniq();
    const holder = t.req(n);
    await holder.granted;
    const log = [];
    const ps = [1, 2, 3, 4, 5].map((i) => L().request(n, async () => { log.push(`start${i}`); await t.nextTask(); log.push(`end${i}`); return i; }));
    await t.waitPending(n, 5);
    t.assertArrayEquals(log, [], 'nothing granted while held');
    await holder.release();
    t.assertArrayEquals(await Promise.all(ps), [1, 2, 3, 4, 5], 'results');
    t.assertArrayEquals(log, ['start1', 'end1', 'start2', 'end2', 'start3', 'end3', 'start4', 'end4', 'start5', 'end5'], 'grant order');
  });

  test('R-20 requests issued while the name is free are also granted in request order', async (t) => {
    const n = t.uniq();
    const log = [];
    const ps = [1, 2, 3].map((i) => L().request(n, () => { log.push(i); }));
    await Promise.all(ps);
    t.assertArrayEquals(log, [1, 2, 3]);
  });

  // ------------------------------------------------------------------ R-21 names independent
  test('R-21 locks on different names never block each other', async (t) => {
    const a = t.uniq('a');
    const holder = t.req(a);
    await holder.granted;
    t.assertEquals(await L().request(a + 'b', (l) => l.name), a + 'b', 'longer name');
    t.assertEquals(await L().request(a.slice(0, -1), (l) => l.name), a.slice(0, -1), 'prefix name');
    t.assert((await L().request(t.uniq('c'), { ifAvailable: true }, (l) => l)) instanceof Lock, 'ifAvailable on another name');
    const sharedHolder = t.req(t.uniq('d'), { mode: 'shared' });
    await sharedHolder.granted;
    t.assertEquals(await L().request(t.uniq('e'), { mode: 'exclusive' }, (l) => l.mode), 'exclusive', 'exclusive on another name while shared held elsewhere');
  });

  // ------------------------------------------------------------------ R-22 shared
  test('R-22 shared locks on one name are held concurrently', async (t) => {
    const n = t.uniq();
    const s1 = t.req(n, { mode: 'shared' });
    await s1.granted;
    const s2 = t.req(n, { mode: 'shared' });
    const s3 = t.req(n, { mode: 'shared' });
    const [l2, l3] = await Promise.all([s2.granted, s3.granted]);
    t.assert(l2 instanceof Lock && l3 instanceof Lock, 'granted while the first is held');
    t.assertEquals(s1.released, false, 'first still held');
    const s = await t.snapshot(n);
    t.assertArrayEquals(s.heldModes, ['shared', 'shared', 'shared'], 'three shared holders');
  });

  test('R-22 waiting shared requests are granted in request order', async (t) => {
    const n = t.uniq();
    const x = t.req(n);
    await x.granted;
    const log = [];
    const ps = [1, 2, 3, 4].map((i) => L().request(n, { mode: 'shared' }, () => { log.push(i); }));
    await t.waitPending(n, 4);
    await x.release();
    await Promise.all(ps);
    t.assertArrayEquals(log, [1, 2, 3, 4]);
  });

  // ------------------------------------------------------------------ R-23 exclusion
  async function assertWaits(t, holderMode, waiterMode) {
    const n = t.uniq();
    const holder = t.req(n, { mode: holderMode });
    await holder.granted;
    const waiter = t.req(n, { mode: waiterMode });
    await t.waitPending(n, 1);
    await t.sleep(t.NOT_HAPPENED_MS);
    t.assertEquals(waiter.called, false, `${waiterMode} callback must not run while ${holderMode} is held`);
    const s = await t.snapshot(n);
    t.assertArrayEquals(s.heldModes, [holderMode], 'held');
    t.assertArrayEquals(s.pendingModes, [waiterMode], 'pending');
    await holder.release();
    const lock = await waiter.granted;
    t.assertEquals(lock.mode, waiterMode, 'granted after release');
  }
  test('R-23 an exclusive request waits while a shared lock is held', (t) => assertWaits(t, 'shared', 'exclusive'));
  test('R-23 a shared request waits while an exclusive lock is held', (t) => assertWaits(t, 'exclusive', 'shared'));
  test('R-23 an exclusive request waits while an exclusive lock is held', (t) => assertWaits(t, 'exclusive', 'exclusive'));

  // ------------------------------------------------------------------ R-24 no barging
  test('R-24 a shared request does not barge past a waiting exclusive request', async (t) => {
    const n = t.uniq();
    const s1 = t.req(n, { mode: 'shared' });
    await s1.granted;
    const log = [];
    const x = L().request(n, { mode: 'exclusive' }, async () => { log.push('x-start'); await t.nextTask(); log.push('x-end'); });
    await t.waitPending(n, 1);
    const s2 = L().request(n, { mode: 'shared' }, () => { log.push('s2'); });
    await t.waitPending(n, 2);
    await t.sleep(t.NOT_HAPPENED_MS);
    t.assertArrayEquals(log, [], 'the later shared request waits although it is compatible with the holder');
    t.assertArrayEquals((await t.snapshot(n)).pendingModes, ['exclusive', 'shared'], 'pending order');
    await s1.release();
    await Promise.all([x, s2]);
    t.assertArrayEquals(log, ['x-start', 'x-end', 's2'], 'exclusive first, then shared');
  });

  // ------------------------------------------------------------------ R-25 batch grant
  test('R-25 one release grants every consecutive shared request at the head of the queue', async (t) => {
    const n = t.uniq();
    const x1 = t.req(n);
    await x1.granted;
    const s = [t.req(n, { mode: 'shared' }), t.req(n, { mode: 'shared' }), t.req(n, { mode: 'shared' })];
    const x2 = t.req(n);
    const s4 = t.req(n, { mode: 'shared' });
    await t.waitPending(n, 5);
    await x1.release();
    const locks = await Promise.all(s.map((h) => h.granted));
    t.assert(locks.every((l) => l instanceof Lock && l.mode === 'shared'), 'all three shared granted while none released');
    const snap = await t.snapshot(n);
    t.assertArrayEquals(snap.heldModes, ['shared', 'shared', 'shared'], 'held');
    t.assertArrayEquals(snap.pendingModes, ['exclusive', 'shared'], 'pending: the exclusive and the shared behind it');
    t.assertEquals(x2.called || s4.called, false, 'the exclusive and the shared behind it wait');
  });

  // ------------------------------------------------------------------ R-26 not re-entrant
  test('R-26 a context\'s own exclusive lock blocks its later same-name requests (not re-entrant)', async (t) => {
    const n = t.uniq();
    const inner = await L().request(n, async () => {
      const ifAvail = await L().request(n, { ifAvailable: true }, (l) => l);
      const nested = t.req(n);
      const nestedShared = t.req(n, { mode: 'shared' });
      await t.waitPending(n, 2);
      await t.sleep(t.NOT_HAPPENED_MS);
      return { ifAvail, nestedCalled: nested.called || nestedShared.called, nested };
    });
    t.assertEquals(inner.ifAvail, null, 'ifAvailable from inside the callback gets null');
    t.assertEquals(inner.nestedCalled, false, 'nested requests wait while the outer lock is held');
    t.assert((await inner.nested.granted) instanceof Lock, 'nested request granted once the outer lock is released');
  });

  test('R-26 a shared holder requesting the same name exclusively waits', async (t) => {
    const n = t.uniq();
    const r = await L().request(n, { mode: 'shared' }, async () => {
      const x = t.req(n);
      await t.waitPending(n, 1);
      const snap = await t.snapshot(n);
      return { called: x.called, held: snap.heldModes, pending: snap.pendingModes };
    });
    t.assertEquals(r.called, false, 'exclusive waits');
    t.assertArrayEquals(r.held, ['shared']);
    t.assertArrayEquals(r.pending, ['exclusive']);
  });

  // ------------------------------------------------------------------ R-30 callback invocation
  test('R-30 the callback is never invoked synchronously inside request()', async (t) => {
    let called = false;
    const p = L().request(t.uniq(), () => { called = true; });
    t.assertEquals(called, false, 'not called during request()');
    let called2 = false;
    const p2 = L().request(t.uniq(), { ifAvailable: true }, () => { called2 = true; });
    t.assertEquals(called2, false, 'ifAvailable: not called during request()');
    await Promise.all([p, p2]);
    t.assert(called && called2, 'called later');
  });

  test('R-30 the callback runs in a later task, not in the current microtask checkpoint', async (t) => {
    let called = false;
    const p = L().request(t.uniq(), () => { called = true; });
    await t.microtasks(50);
    t.assertEquals(called, false, 'not called during the microtask checkpoint that follows request()');
    await p;
    t.assertEquals(called, true);
  });

  test('R-30 the callback gets exactly one argument, a new Lock, with this undefined', async (t) => {
    const n = t.uniq();
    const seen = [];
    const cb = function () { seen.push({ self: this, argc: arguments.length, lock: arguments[0] }); };
    await L().request(n, cb);
    await L().request(n, cb);
    await L().request(n, { mode: 'shared' }, cb);
    t.assertEquals(seen.length, 3, 'three grants');
    for (const s of seen) {
      t.assertEquals(s.self, undefined, 'this');
      t.assertEquals(s.argc, 1, 'arguments.length');
      t.assert(s.lock instanceof Lock, 'argument is a Lock');
    }
    t.assert(seen[0].lock !== seen[1].lock && seen[1].lock !== seen[2].lock, 'each grant has its own Lock object');
    t.assertEquals(seen[2].lock.mode, 'shared', 'the Lock reflects its own grant');
    t.assertEquals(seen[0].lock.mode, 'exclusive', 'an older Lock is unchanged');
  });

  // ------------------------------------------------------------------ R-31 hold duration
  test('R-31 the lock is held until the callback\'s promise fulfils', async (t) => {
    const n = t.uniq();
    const d = t.defer();
    const p = L().request(n, () => d.promise);
    await t.waitFor(async () => (await t.snapshot(n)).held.length === 1, 'lock held');
    await t.sleep(t.NOT_HAPPENED_MS);
    t.assertEquals(await L().request(n, { ifAvailable: true }, (l) => l), null, 'still held while the promise is pending');
    d.resolve('v');
    t.assertEquals(await p, 'v');
    t.assert((await L().request(n, { ifAvailable: true }, (l) => l)) instanceof Lock, 'released');
  });

  test('R-31 the lock is held until the callback\'s promise rejects', async (t) => {
    const n = t.uniq();
    const d = t.defer();
    const p = L().request(n, () => d.promise);
    p.catch(noop);
    await t.waitFor(async () => (await t.snapshot(n)).held.length === 1, 'lock held');
    t.assertEquals(await L().request(n, { ifAvailable: true }, (l) => l), null, 'still held');
    const err = new Error('x');
    d.reject(err);
    await t.assertRejects(p, t.is(err));
    t.assert((await L().request(n, { ifAvailable: true }, (l) => l)) instanceof Lock, 'released after rejection');
  });

  test('R-31 a callback that throws releases the lock and rejects with the thrown value', async (t) => {
    const n = t.uniq();
    const err = new TypeError('thrown');
    await t.assertRejects(L().request(n, () => { throw err; }), t.is(err));
    t.assert((await L().request(n, { ifAvailable: true }, (l) => l)) instanceof Lock, 'released');
    const waiter = L().request(n, () => 'next');
    await t.assertRejects(L().request(n, () => { throw 'string thrown'; }), t.is('string thrown'), 'non-Error thrown value');
    t.assertEquals(await waiter, 'next');
  });

  test('R-31 a callback returning a rejected promise releases the lock and rejects with the reason', async (t) => {
    const n = t.uniq();
    const reason = { why: 'rejected' };
    await t.assertRejects(L().request(n, () => Promise.reject(reason)), t.is(reason));
    await t.assertRejects(L().request(n, async () => { await null; throw reason; }), t.is(reason), 'async function');
    t.assert((await L().request(n, { ifAvailable: true }, (l) => l)) instanceof Lock, 'released');
  });

  test('R-31 a synchronous return releases the lock for the next waiter', async (t) => {
    const n = t.uniq();
    const log = [];
    const p1 = L().request(n, () => { log.push(1); return 42; });
    const p2 = L().request(n, async () => { log.push(2); return (await t.snapshot(n)).held.length; });
    t.assertEquals(await p1, 42);
    t.assertEquals(await p2, 1, 'only the second lock is held during its callback');
    t.assertArrayEquals(log, [1, 2]);
  });

  // ------------------------------------------------------------------ R-32 result propagation
  test('R-32 request() fulfils with the callback\'s return value', async (t) => {
    const obj = { v: 1 };
    t.assertEquals(await L().request(t.uniq(), () => obj), obj, 'object identity');
    t.assertEquals(await L().request(t.uniq(), () => undefined), undefined, 'undefined');
    t.assertEquals(await L().request(t.uniq(), () => Promise.resolve(obj)), obj, 'promise');
    t.assertEquals(await L().request(t.uniq(), async () => { await t.nextTask(); return 'late'; }), 'late', 'async');
    const inner = t.uniq();
    t.assertEquals(await L().request(t.uniq(), () => L().request(inner, () => 'nested')), 'nested', 'nested request');
  });

  test('R-32 a thenable returned by the callback is adopted', async (t) => {
    let thenCalls = 0;
    const thenable = { then(res) { thenCalls++; res('adopted'); } };
    t.assertEquals(await L().request(t.uniq(), () => thenable), 'adopted');
    t.assertEquals(thenCalls, 1, 'then called once');
    const rejecting = { then(_, rej) { rej('no'); } };
    await t.assertRejects(L().request(t.uniq(), () => rejecting), t.is('no'), 'rejecting thenable');
  });

  test('R-32 request() rejects with the callback\'s exception, whatever its type', async (t) => {
    for (const v of [new Error('e'), undefined, null, 0, 'str', Symbol.iterator, { o: 1 }]) {
      await t.assertRejects(L().request(t.uniq(), () => { throw v; }), t.is(v), `thrown ${t.repr(v)}`);
    }
  });

  test('R-32 an exception thrown by the callback is not reported as an uncaught error', async (t) => {
    let errors = 0;
    const onError = (e) => { errors++; e.preventDefault(); };
    global.addEventListener('error', onError);
    t.cleanup(() => global.removeEventListener('error', onError));
    const n = t.uniq();
    await t.rejection(L().request(n, () => { throw new Error('in callback'); }));
    await t.rejection(L().request(n, { ifAvailable: true }, () => { throw new Error('in callback'); }));
    const h = t.req(n);
    await h.granted;
    await t.rejection(L().request(n, { ifAvailable: true }, () => { throw new Error('in null callback'); }));
    await t.sleep(t.NOT_HAPPENED_MS);
    t.assertEquals(errors, 0, 'error events');
  });

  // ------------------------------------------------------------------ R-33 thrown thenable
  test('R-33 a thrown thenable rejects the promise as-is and its then is never called', async (t) => {
    let thenCalled = false;
    const thenable = { then() { thenCalled = true; } };
    const n = t.uniq();
    // Capture the reason without returning it from an async function (that would adopt the thenable).
    let outcome = null;
    await L().request(n, () => { throw thenable; }).then(
      () => { outcome = { fulfilled: true }; },
      (e) => { outcome = { fulfilled: false, same: e === thenable }; });
    t.assertEquals(outcome.fulfilled, false, 'rejected');
    t.assertEquals(outcome.same, true, 'rejected with the thrown thenable itself');
    await t.nextTask();
    t.assertEquals(thenCalled, false, 'then was never called');
    t.assert((await L().request(n, { ifAvailable: true }, (l) => l)) instanceof Lock, 'released');
  });

  // ------------------------------------------------------------------ R-34 settle after release
  test('R-34 when request() fulfils, the lock is already released', async (t) => {
    const n = t.uniq();
    await L().request(n, () => 'done');
    const got = await L().request(n, { ifAvailable: true }, (l) => l);
    t.assert(got instanceof Lock, 'an ifAvailable request right after the promise settles succeeds');
    await L().request(n, async () => { await t.nextTask(); });
    t.assert((await L().request(n, { ifAvailable: true }, (l) => l)) instanceof Lock, 'async callback too');
  });

  test('R-34 when request() rejects, the lock is already released', async (t) => {
    const n = t.uniq();
    await t.rejection(L().request(n, () => { throw new Error('x'); }));
    t.assert((await L().request(n, { ifAvailable: true }, (l) => l)) instanceof Lock, 'sync throw');
    await t.rejection(L().request(n, async () => { await t.nextTask(); throw new Error('y'); }));
    t.assert((await L().request(n, { ifAvailable: true }, (l) => l)) instanceof Lock, 'async rejection');
  });

  test('R-34 when request() settles, the next waiter already holds the lock', async (t) => {
    const n = t.uniq();
    const a = t.req(n);
    await a.granted;
    const b = t.req(n, { mode: 'shared' });
    await t.waitPending(n, 1);
    await a.release('a-done');
    t.assertEquals(await a.done, 'a-done');
    const s = await t.snapshot(n);
    t.assertArrayEquals(s.heldModes, ['shared'], 'the waiter holds the lock');
    t.assertEquals(s.pending.length, 0, 'nothing pending');
    await b.granted;
  });

  // ------------------------------------------------------------------ R-40..R-43 ifAvailable
  test('R-40 an ifAvailable request for a free name gets a real Lock', async (t) => {
    const n = t.uniq();
    const lock = await L().request(n, { ifAvailable: true }, (l) => l);
    t.assert(lock instanceof Lock, 'Lock');
    t.assertEquals(lock.name, n, 'name');
    t.assertEquals(lock.mode, 'exclusive', 'mode');
    const h = t.req(t.uniq(), { ifAvailable: true, mode: 'shared' });
    const l2 = await h.granted;
    t.assertEquals(l2 && l2.mode, 'shared', 'shared ifAvailable');
    const s = await t.snapshot(l2.name);
    t.assertArrayEquals(s.heldModes, ['shared'], 'the granted ifAvailable lock is held');
  });

  test('R-41 ifAvailable on a held name calls the callback with null and is never queued', async (t) => {
    const n = t.uniq();
    const holder = t.req(n);
    await holder.granted;
    const args = [];
    const p = L().request(n, { ifAvailable: true }, function () { args.push(Array.from(arguments)); return 'fallback'; });
    t.assertEquals(await p, 'fallback', 'promise fulfils with the callback\'s value');
    t.assertEquals(args.length, 1, 'called once');
    t.assertEquals(args[0].length, 1, 'one argument');
    t.assertEquals(args[0][0], null, 'argument is null');
    const w = t.req(n, { ifAvailable: true });
    t.assertEquals(await w.granted, null, 'second ifAvailable gets null');
    const s = await t.snapshot(n);
    t.assertEquals(s.pending.length, 0, 'ifAvailable requests never appear in pending');
    await holder.release();
    await L().request(n, noop); // the name is free and nobody else queued
    await t.sleep(t.NOT_HAPPENED_MS);
    t.assertEquals(args.length, 1, 'callback not called again with a Lock after release');
    t.assertEquals(w.calls, 1, 'pending-promise ifAvailable callback not called again');
  });

  test('R-41 ifAvailable: the promise follows the null-callback\'s result', async (t) => {
    const n = t.uniq();
    const holder = t.req(n);
    await holder.granted;
    const err = new Error('thrown from null callback');
    await t.assertRejects(L().request(n, { ifAvailable: true }, () => { throw err; }), t.is(err), 'throw');
    await t.assertRejects(L().request(n, { ifAvailable: true }, () => Promise.reject(err)), t.is(err), 'rejected promise');
    const d = t.defer();
    let settled = false;
    const p = L().request(n, { ifAvailable: true }, () => d.promise);
    p.then(() => { settled = true; });
    await t.sleep(t.NOT_HAPPENED_MS);
    t.assertEquals(settled, false, 'pending while the callback promise is pending');
    d.resolve('later');
    t.assertEquals(await p, 'later');
    t.assertEquals(holder.released, false, 'holder untouched');
    t.assertEquals(await L().request(n, { ifAvailable: true }, (l) => l), null, 'still held');
  });

  test('R-41 the null callback runs in a later task, not synchronously or in the current microtask checkpoint', async (t) => {
    const n = t.uniq();
    const holder = t.req(n);
    await holder.granted;
    let called = false;
    const p = L().request(n, { ifAvailable: true }, (l) => { called = true; return l; });
    t.assertEquals(called, false, 'not called during request()');
    await t.microtasks(50);
    t.assertEquals(called, false, 'not called in the microtask checkpoint that follows request()');
    t.assertEquals(await p, null);
    t.assertEquals(called, true);
  });

  test('R-42 ifAvailable fails when only a waiting request (no conflicting holder) blocks it', async (t) => {
    const n = t.uniq();
    const s1 = t.req(n, { mode: 'shared' });
    await s1.granted;
    const x = t.req(n, { mode: 'exclusive' });
    await t.waitPending(n, 1);
    const got = await L().request(n, { ifAvailable: true, mode: 'shared' }, (l) => l);
    t.assertEquals(got, null, 'shared ifAvailable gets null because the queue is not empty');
    const s = await t.snapshot(n);
    t.assertArrayEquals(s.heldModes, ['shared']);
    t.assertArrayEquals(s.pendingModes, ['exclusive']);
    t.assertEquals(x.called, false);
  });

  test('R-43 a shared ifAvailable request is granted while only shared locks are held', async (t) => {
    const n = t.uniq();
    const s1 = t.req(n, { mode: 'shared' });
    await s1.granted;
    const h = t.req(n, { mode: 'shared', ifAvailable: true });
    const lock = await h.granted;
    t.assert(lock instanceof Lock && lock.mode === 'shared', 'granted');
    t.assertArrayEquals((await t.snapshot(n)).heldModes, ['shared', 'shared']);
  });

  test('R-43 ifAvailable gets null for exclusive-vs-shared and shared-vs-exclusive conflicts', async (t) => {
    const n1 = t.uniq();
    const s1 = t.req(n1, { mode: 'shared' });
    await s1.granted;
    t.assertEquals(await L().request(n1, { ifAvailable: true }, (l) => l), null, 'exclusive while shared held');
    const n2 = t.uniq();
    const x = t.req(n2);
    await x.granted;
    t.assertEquals(await L().request(n2, { ifAvailable: true, mode: 'shared' }, (l) => l), null, 'shared while exclusive held');
    t.assertEquals(await L().request(n2, { ifAvailable: true }, (l) => l), null, 'exclusive while exclusive held');
  });

  // ------------------------------------------------------------------ R-50..R-54 steal
  test('R-50 steal evicts every held lock with the name, each rejecting with AbortError', async (t) => {
    const n = t.uniq();
    const other = t.req(t.uniq('other'));
    const v1 = t.req(n, { mode: 'shared' });
    const v2 = t.req(n, { mode: 'shared' });
    await Promise.all([v1.granted, v2.granted, other.granted]);
    const stealer = t.req(n, { steal: true });
    const lock = await stealer.granted;
    t.assert(lock instanceof Lock && lock.mode === 'exclusive', 'stealer granted an exclusive Lock');
    await t.assertRejects(v1.done, 'AbortError', 'first victim');
    await t.assertRejects(v2.done, 'AbortError', 'second victim');
    const s = await t.snapshot(n);
    t.assertArrayEquals(s.heldModes, ['exclusive'], 'only the stealer holds the name');
    await t.sleep(t.NOT_HAPPENED_MS);
    t.assertEquals(other.released, false, 'lock on another name untouched');
    t.assertEquals((await t.snapshot(t.uniq('unused'))).held.length, 0);
    t.assertEquals(await L().request(lock.name, { ifAvailable: true }, (l) => l), null, 'stealer really holds it');
  });

  test('R-50 the victim\'s AbortError is a fresh DOMException per victim', async (t) => {
    const n = t.uniq();
    const v1 = t.req(n, { mode: 'shared' });
    const v2 = t.req(n, { mode: 'shared' });
    await Promise.all([v1.granted, v2.granted]);
    await L().request(n, { steal: true }, noop);
    const e1 = await t.assertRejects(v1.done, 'AbortError');
    const e2 = await t.assertRejects(v2.done, 'AbortError');
    t.assertEquals(e1.code, 20, 'AbortError code');
    t.assert(e1 instanceof DOMException && e2 instanceof DOMException, 'DOMException instances');
  });

  test('R-51 a stealer is granted ahead of waiting requests, which keep their order', async (t) => {
    const n = t.uniq();
    const h = t.req(n);
    await h.granted;
    const log = [];
    const waiters = [['w1', 'exclusive'], ['w2', 'shared'], ['w3', 'shared'], ['w4', 'exclusive']].map(([id, mode]) =>
      L().request(n, { mode }, async () => { log.push(id); await t.nextTask(); }));
    await t.waitPending(n, 4);
    const stealer = t.req(n, { steal: true });
    await stealer.granted;
    log.push('stealer');
    await t.assertRejects(h.done, 'AbortError', 'holder evicted');
    const s = await t.snapshot(n);
    t.assertArrayEquals(s.heldModes, ['exclusive'], 'stealer holds');
    t.assertArrayEquals(s.pendingModes, ['exclusive', 'shared', 'shared', 'exclusive'], 'waiters keep their order');
    await stealer.release();
    await Promise.all(waiters);
    t.assertEquals(log[0], 'stealer');
    t.assertArrayEquals(log.slice(1, 2), ['w1']);
    t.assertArrayEquals(log.slice(2, 4).sort(), ['w2', 'w3']);
    t.assertEquals(log[4], 'w4');
  });

  test('R-52 among competing steals the last one processed wins', async (t) => {
    const n = t.uniq();
    const s1 = t.req(n, { steal: true });
    await s1.granted;
    const s2 = t.req(n, { steal: true });
    await s2.granted;
    await t.assertRejects(s1.done, 'AbortError', 'first stealer evicted by the second');
    const s3 = t.req(n, { steal: true });
    const s4 = t.req(n, { steal: true });
    await s4.granted;
    await t.assertRejects(s2.done, 'AbortError', 'second stealer evicted');
    await t.assertRejects(s3.done, 'AbortError', 'third stealer evicted by the fourth');
    const s = await t.snapshot(n);
    t.assertEquals(s.held.length, 1, 'exactly one holder');
    t.assertEquals(s.pending.length, 0, 'nothing pending');
    t.assertEquals(s4.released, false);
  });

  test('R-53 a victim\'s callback keeps running and its later settlement has no effect', async (t) => {
    const n = t.uniq();
    const resume = t.defer();
    const victimDone = t.defer();
    let victimLock;
    const victim = L().request(n, async (lock) => {
      victimLock = lock;
      await resume.promise;
      victimDone.resolve('continued');
      return 'late value';
    });
    victim.catch(noop);
    await t.waitFor(() => victimLock, 'victim granted');
    const stealer = t.req(n, { steal: true });
    await stealer.granted;
    await t.assertRejects(victim, 'AbortError', 'victim promise rejects at once');
    resume.resolve();
    t.assertEquals(await victimDone.promise, 'continued', 'the victim\'s callback was not interrupted');
    await t.nextTask();
    await t.assertRejects(victim, 'AbortError', 'still rejected with AbortError after the callback returns a value');
    t.assertEquals(victimLock.name, n, 'the victim Lock stays readable');
    t.assertEquals(await L().request(n, { ifAvailable: true }, (l) => l), null, 'the stealer still holds the lock');
    t.assertArrayEquals((await t.snapshot(n)).heldModes, ['exclusive'], 'exactly one holder');
    t.assertEquals(stealer.released, false);
  });

  test('R-54 steal with no holder behaves like an ordinary exclusive grant', async (t) => {
    const n = t.uniq();
    const v = await L().request(n, { steal: true }, (l) => { t.assertEquals(l.mode, 'exclusive'); return 'stolen-free'; });
    t.assertEquals(v, 'stolen-free');
    t.assert((await L().request(n, { ifAvailable: true }, (l) => l)) instanceof Lock, 'released afterwards');
  });

  // ------------------------------------------------------------------ R-60..R-63 abort
  test('R-60 aborting a queued request rejects it with the reason and removes it from the queue', async (t) => {
    const n = t.uniq();
    const holder = t.req(n);
    await holder.granted;
    const ac = new AbortController();
    const cb = spy();
    const p = L().request(n, { signal: ac.signal }, cb);
    p.catch(noop);
    await t.waitPending(n, 1);
    const reason = new Error('abort reason');
    ac.abort(reason);
    await t.assertRejects(p, t.is(reason));
    t.assertEquals(holder.released, false, 'rejected while the holder still holds');
    await t.waitFor(async () => (await t.snapshot(n)).pending.length === 0, 'request removed from pending');
    await holder.release();
    t.assert((await L().request(n, { ifAvailable: true }, (l) => l)) instanceof Lock, 'name free after the holder releases');
    await t.sleep(t.NOT_HAPPENED_MS);
    t.assertEquals(cb.calls.length, 0, 'aborted callback never runs');
  });

  test('R-60 aborting a queued request reprocesses the queue', async (t) => {
    const n = t.uniq();
    const s1 = t.req(n, { mode: 'shared' });
    await s1.granted;
    const ac = new AbortController();
    const x = L().request(n, { signal: ac.signal }, NotCalled);
    x.catch(noop);
    await t.waitPending(n, 1);
    const s2 = t.req(n, { mode: 'shared' });
    await t.waitPending(n, 2);
    t.assertEquals(s2.called, false, 'blocked by the exclusive request');
    ac.abort();
    await t.assertRejects(x, 'AbortError');
    const l2 = await Promise.race([s2.granted, t.sleep(1000).then(() => 'not granted')]);
    t.assert(l2 instanceof Lock, 'the shared request behind the aborted exclusive one is granted at once, ' +
      `while the first shared lock is still held (got ${t.repr(l2)} within 1 s: the queue was not reprocessed after the abort)`);
    t.assertEquals(s1.released, false, 'the first shared lock is still held');
  });

  test('R-60 one signal aborts every request that uses it', async (t) => {
    const n = t.uniq();
    const holder = t.req(n);
    await holder.granted;
    const ac = new AbortController();
    const p1 = L().request(n, { signal: ac.signal }, NotCalled);
    const p2 = L().request(n, { signal: ac.signal, mode: 'shared' }, NotCalled);
    const other = t.req(n);
    await t.waitPending(n, 3);
    ac.abort('stop');
    await t.assertRejects(p1, t.is('stop'));
    await t.assertRejects(p2, t.is('stop'));
    await t.waitFor(async () => (await t.snapshot(n)).pending.length === 1, 'only the unsignalled request left');
    await holder.release();
    t.assert((await other.granted) instanceof Lock, 'the unsignalled request is granted');
  });

  test('R-60 aborting with the default reason rejects with signal.reason (an AbortError)', async (t) => {
    const n = t.uniq();
    const holder = t.req(n);
    await holder.granted;
    const ac = new AbortController();
    const p = L().request(n, { signal: ac.signal }, NotCalled);
    p.catch(noop);
    await t.waitPending(n, 1);
    ac.abort();
    const e = await t.assertRejects(p, 'AbortError');
    t.assert(e === ac.signal.reason, 'the exact signal.reason object');
  });

  test('R-61 aborting right after request() skips the callback and frees the lock', async (t) => {
    const n = t.uniq();
    const ac = new AbortController();
    const cb = spy();
    const p = L().request(n, { signal: ac.signal }, cb);
    p.catch(noop);
    const reason = { r: 1 };
    ac.abort(reason);
    await t.assertRejects(p, t.is(reason));
    t.assertEquals(await L().request(n, (l) => l.name), n, 'a later request is granted');
    await t.waitFor(async () => { const s = await t.snapshot(n); return s.held.length === 0 && s.pending.length === 0; }, 'nothing held or pending');
    await t.sleep(t.NOT_HAPPENED_MS);
    t.assertEquals(cb.calls.length, 0, 'callback never runs');
  });

  test('R-61 an abort issued in the same task as the release that would grant the request skips its callback', async (t) => {
    // Depending on the implementation the abort lands just before or just after the grant on the lock
    // task queue; either way the callback (which would run in a later task) must be skipped.
    const n = t.uniq();
    const holder = t.req(n);
    await holder.granted;
    const ac = new AbortController();
    const cb = spy();
    const p = L().request(n, { signal: ac.signal }, cb);
    p.catch(noop);
    const next = t.req(n);
    await t.waitPending(n, 2);
    holder.release();
    ac.abort('late abort');
    await t.assertRejects(p, t.is('late abort'));
    t.assert((await next.granted) instanceof Lock, 'the next waiter is granted');
    await t.sleep(t.NOT_HAPPENED_MS);
    t.assertEquals(cb.calls.length, 0, 'aborted callback never runs');
  });

  test('R-62 an abort after the callback started is ignored', async (t) => {
    const n = t.uniq();
    const ac = new AbortController();
    const h = t.req(n, { signal: ac.signal });
    await h.granted;
    ac.abort(new Error('too late'));
    await t.sleep(t.NOT_HAPPENED_MS);
    t.assertEquals(await L().request(n, { ifAvailable: true }, (l) => l), null, 'lock still held after the abort');
    await h.release('callback value');
    t.assertEquals(await h.done, 'callback value', 'promise follows the callback');
  });

  test('R-62 an abort after the callback started does not turn a rejection into the abort reason', async (t) => {
    const n = t.uniq();
    const ac = new AbortController();
    const h = t.req(n, { signal: ac.signal });
    await h.granted;
    ac.abort('abort reason');
    const err = new Error('callback error');
    h.reject(err);
    await t.assertRejects(h.done, t.is(err));
  });

  test('R-63 an abort after the release is ignored', async (t) => {
    const n = t.uniq();
    const ac = new AbortController();
    const p = L().request(n, { signal: ac.signal }, () => 'value');
    t.assertEquals(await p, 'value');
    let events = 0;
    ac.signal.addEventListener('abort', () => { events++; });
    ac.abort('after');
    t.assertEquals(events, 1, 'abort event dispatched normally');
    t.assertEquals(await p, 'value', 'promise unchanged');
    t.assertEquals(await L().request(n, (l) => l.name), n, 'name usable');
    const s = await t.snapshot(n);
    t.assertEquals(s.held.length + s.pending.length, 0);
  });

  test('R-63 an abort after the release does not affect later requests for the same name', async (t) => {
    const n = t.uniq();
    const ac = new AbortController();
    t.assertEquals(await L().request(n, { signal: ac.signal }, () => 'first'), 'first');
    const holder = t.req(n);
    await holder.granted;
    const waiter = t.req(n, { mode: 'shared' });
    await t.waitPending(n, 1);
    ac.abort('old signal');
    await t.sleep(t.NOT_HAPPENED_MS);
    const s = await t.snapshot(n);
    t.assertArrayEquals(s.heldModes, ['exclusive'], 'the new holder keeps the lock');
    t.assertArrayEquals(s.pendingModes, ['shared'], 'the new waiter stays queued');
    t.assertEquals(waiter.called, false, 'waiter not granted early');
    await holder.release('ok');
    t.assertEquals(await holder.done, 'ok', 'holder promise unaffected');
    t.assert((await waiter.granted) instanceof Lock, 'waiter granted normally');
  });

  // ------------------------------------------------------------------ R-70..R-75 query
  test('R-70 query() resolves to a plain {held, pending} object of {name, mode, clientId} entries', async (t) => {
    const n = t.uniq();
    const h = t.req(n);
    await h.granted;
    const w = t.req(n, { mode: 'shared' });
    await t.waitPending(n, 1);
    const p = L().query();
    t.assert(p instanceof Promise, 'returns a Promise');
    const q = await p;
    t.assertEquals(Object.getPrototypeOf(q), Object.prototype, 'snapshot is a plain object');
    t.assertArrayEquals(Object.keys(q), ['held', 'pending'], 'snapshot keys, in dictionary order');
    t.assertEquals(Object.getPrototypeOf(q.held), Array.prototype, 'held is a plain Array');
    t.assert(Array.isArray(q.held) && Array.isArray(q.pending), 'arrays');
    const e1 = q.held.find((e) => e.name === n);
    const e2 = q.pending.find((e) => e.name === n);
    t.assert(e1 && e2, 'entries present');
    for (const e of [e1, e2]) {
      t.assertEquals(Object.getPrototypeOf(e), Object.prototype, 'entry is a plain object');
      // Web IDL converts a dictionary to an object member by member in lexicographic order.
      t.assertArrayEquals(Object.keys(e), ['clientId', 'mode', 'name'], 'entry keys, in dictionary order');
      for (const k of ['clientId', 'mode', 'name']) {
        const d = Object.getOwnPropertyDescriptor(e, k);
        t.assert(d.writable && d.enumerable && d.configurable && !d.get, `${k} is a plain data property`);
      }
      t.assertEquals(typeof e.clientId, 'string', 'clientId type');
    }
    t.assertEquals(e1.mode, 'exclusive');
    t.assertEquals(e2.mode, 'shared');
    t.assertEquals(w.called, false);
  });

  test('R-70 query() returns a fresh, static snapshot each time', async (t) => {
    const n = t.uniq();
    const h = t.req(n);
    await h.granted;
    const q1 = await L().query();
    const q2 = await L().query();
    t.assert(q1 !== q2 && q1.held !== q2.held && q1.pending !== q2.pending, 'new objects per call');
    await h.release();
    t.assertEquals(q1.held.filter((e) => e.name === n).length, 1, 'an old snapshot is not live');
    const q3 = await L().query();
    t.assertEquals(q3.held.filter((e) => e.name === n).length, 0, 'a new snapshot reflects the release');
    t.assertEquals(q3.pending.filter((e) => e.name === n).length, 0);
  });

  test('R-70 query() issued right after request() already reports the grant as held', async (t) => {
    // request() and query() reach the lock task queue in call order, so the grant precedes the snapshot.
    const n = t.uniq();
    const h = t.req(n);
    const s = await t.snapshot(n);
    t.assertArrayEquals(s.heldModes, ['exclusive'], 'held');
    t.assertEquals(s.pending.length, 0, 'not pending');
    await h.granted;
  });

  test('R-71 held lists each shared holder individually', async (t) => {
    const n = t.uniq();
    const hs = [1, 2, 3].map(() => t.req(n, { mode: 'shared' }));
    await Promise.all(hs.map((h) => h.granted));
    const s = await t.snapshot(n);
    t.assertArrayEquals(s.heldModes, ['shared', 'shared', 'shared']);
    await hs[1].release();
    t.assertArrayEquals((await t.snapshot(n)).heldModes, ['shared', 'shared'], 'one fewer after a release');
  });

  test('R-72 pending lists waiting requests in request order within a name', async (t) => {
    const n = t.uniq();
    const h = t.req(n);
    await h.granted;
    const modes = ['shared', 'exclusive', 'shared', 'shared', 'exclusive', 'exclusive', 'shared'];
    for (const mode of modes) t.req(n, { mode });
    await t.waitPending(n, modes.length);
    t.assertArrayEquals((await t.snapshot(n)).pendingModes, modes);
  });

  test('R-72 pending keeps request order within each of several interleaved names', async (t) => {
    const a = t.uniq('a');
    const b = t.uniq('b');
    const ha = t.req(a);
    const hb = t.req(b);
    await Promise.all([ha.granted, hb.granted]);
    const ma = ['exclusive', 'shared', 'exclusive'];
    const mb = ['shared', 'shared', 'exclusive', 'shared'];
    for (let i = 0; i < 4; i++) {
      if (ma[i]) t.req(a, { mode: ma[i] });
      if (mb[i]) t.req(b, { mode: mb[i] });
    }
    await t.waitPending(a, 3);
    await t.waitPending(b, 4);
    const q = await L().query();
    t.assertArrayEquals(q.pending.filter((e) => e.name === a).map((e) => e.mode), ma, 'name a');
    t.assertArrayEquals(q.pending.filter((e) => e.name === b).map((e) => e.mode), mb, 'name b');
  });

  test('R-74 clientId is a non-empty string, the same for every entry from this context', async (t) => {
    const a = t.uniq('a');
    const b = t.uniq('b');
    const ha = t.req(a);
    const hb = t.req(b, { mode: 'shared' });
    await Promise.all([ha.granted, hb.granted]);
    t.req(a, { mode: 'shared' });
    await t.waitPending(a, 1);
    const q = await L().query();
    const mine = q.held.concat(q.pending).filter((e) => e.name === a || e.name === b);
    t.assertEquals(mine.length, 3, 'three entries');
    const id = mine[0].clientId;
    t.assertEquals(typeof id, 'string', 'clientId is a string');
    t.assert(id.length > 0, 'clientId is non-empty');
    t.assert(mine.every((e) => e.clientId === id), `all entries share one clientId: ${t.repr(mine.map((e) => e.clientId))}`);
    const q2 = await L().query();
    t.assertEquals(q2.held.find((e) => e.name === a).clientId, id, 'stable across queries');
  });

  windowTest('R-74 clientId differs between a window and its iframe', async (t) => {
    const n = t.uniq();
    const h = t.req(n);
    await h.granted;
    const mine = (await t.snapshot(n)).held[0].clientId;
    const f = await t.createFrame();
    const fn = t.uniq('frame');
    await f.run(t.remote.hold, fn);
    const theirs = await f.run(t.remote.clientId, fn);
    t.assertEquals(typeof theirs, 'string', "iframe's clientId");
    t.assert(theirs.length > 0, 'non-empty');
    t.assert(theirs !== mine, `different clientIds (${mine} vs ${theirs})`);
  });

  test('R-75 query() exposes a deadlock as crossed held and pending entries', async (t) => {
    const a = t.uniq('a');
    const b = t.uniq('b');
    const gotA = t.defer();
    const gotB = t.defer();
    const inner = [];
    L().request(a, async () => { gotA.resolve(); await gotB.promise; inner.push(t.req(b)); return new Promise(noop); }).catch(noop);
    L().request(b, async () => { gotB.resolve(); await gotA.promise; inner.push(t.req(a)); return new Promise(noop); }).catch(noop);
    await t.waitFor(async () => {
      const q = await L().query();
      return q.pending.some((e) => e.name === a) && q.pending.some((e) => e.name === b);
    }, 'both cross requests pending');
    const q = await L().query();
    const held = q.held.filter((e) => e.name === a || e.name === b).map((e) => e.name).sort();
    const pending = q.pending.filter((e) => e.name === a || e.name === b).map((e) => e.name).sort();
    t.assertArrayEquals(held, [a, b].sort(), 'both held');
    t.assertArrayEquals(pending, [a, b].sort(), 'both pending');
    // Break the deadlock so nothing leaks: steal both names.
    await L().request(a, { steal: true }, noop);
    await L().request(b, { steal: true }, noop);
  });

  // ==================================================================== cross-context tests
  // These need several contexts (iframes, workers) to share one lock manager (R-27).

  crossTest('R-27 a lock held by an iframe blocks its same-origin parent', async (t) => {
    const n = t.uniq();
    const f = await t.createFrame();
    const r = await f.run(t.remote.hold, n);
    t.assertEquals(r.granted, true, 'iframe holds the lock');
    t.assertEquals(await L().request(n, { ifAvailable: true }, (l) => l), null, 'parent ifAvailable gets null');
    const s = await t.snapshot(n);
    t.assertArrayEquals(s.heldModes, ['exclusive'], "parent's query() shows the iframe's lock");
    const w = t.req(n);
    await t.waitPending(n, 1);
    const theirs = await f.run(t.remote.snapshot, n);
    t.assertArrayEquals(theirs.pending.map((e) => e.mode), ['exclusive'], "the iframe's query() shows the parent's pending request");
    t.assert(theirs.pending[0].clientId !== theirs.held[0].clientId, 'the two entries carry different clientIds');
    await f.run(t.remote.release, n);
    t.assert((await w.granted) instanceof Lock, "the parent's request is granted after the iframe releases");
  });

  crossTest('R-27 a dedicated worker and its window share one lock manager', async (t) => {
    const n = t.uniq();
    const wk = await t.createWorker();
    const r = await wk.run(t.remote.hold, n);
    t.assertEquals(r.granted, true, 'worker holds the lock');
    t.assertEquals(await L().request(n, { ifAvailable: true }, (l) => l), null, 'window ifAvailable gets null');
    const w = t.req(n, { mode: 'shared' });
    await t.waitPending(n, 1);
    await wk.run(t.remote.release, n);
    t.assert((await w.granted) instanceof Lock, 'window granted after the worker releases');
  });

  crossTest('R-80 removing an iframe releases the locks it holds', async (t) => {
    const n = t.uniq();
    const f = await t.createFrame();
    await f.run(t.remote.hold, n);
    const w = t.req(n);
    await t.waitPending(n, 1);
    f.remove();
    t.assert((await w.granted) instanceof Lock, "the parent's waiting request is granted");
  });

  crossTest('R-80 removing an iframe drops its pending requests', async (t) => {
    const n = t.uniq();
    const h = t.req(n);
    await h.granted;
    const f = await t.createFrame();
    await f.run(t.remote.enqueue, n, 'exclusive');
    await t.waitPending(n, 1);
    f.remove();
    await t.waitFor(async () => (await t.snapshot(n)).pending.length === 0, "the iframe's request leaves the queue");
    const w = t.req(n, { mode: 'shared' });
    await h.release();
    t.assert((await w.granted) instanceof Lock, 'the next requester is served');
    t.assertEquals((await t.snapshot(n)).held.length, 1, 'only the parent holds the name');
  });

  crossTest('R-81 terminating a worker releases its locks', async (t) => {
    const n = t.uniq();
    const wk = await t.createWorker();
    await wk.run(t.remote.hold, n);
    const w = t.req(n);
    await t.waitPending(n, 1);
    wk.terminate();
    t.assert((await w.granted) instanceof Lock, 'window granted after the worker is terminated');
  });

  crossTest('R-82 removing an iframe releases the locks held by its dedicated worker', async (t) => {
    const n = t.uniq();
    const f = await t.createFrame();
    const r = await f.run(t.remote.workerHold, t.helperWorkerUrl(), String(t.remote.hold), n);
    t.assertEquals(r.granted, true, "the iframe's worker holds the lock");
    const w = t.req(n);
    await t.waitPending(n, 1);
    f.remove();
    t.assert((await w.granted) instanceof Lock, 'granted after the owning iframe is removed');
  });

  crossTest('R-85 removing one iframe does not release another iframe\'s locks', async (t) => {
    const a = t.uniq('a');
    const b = t.uniq('b');
    const f1 = await t.createFrame();
    const f2 = await t.createFrame();
    await f1.run(t.remote.hold, a);
    await f2.run(t.remote.hold, b);
    const wa = t.req(a);
    await t.waitPending(a, 1);
    f1.remove();
    t.assert((await wa.granted) instanceof Lock, "the removed iframe's lock is released");
    await t.sleep(t.NOT_HAPPENED_MS);
    t.assertEquals(await L().request(b, { ifAvailable: true }, (l) => l), null, "the other iframe's lock is still held");
    t.assertEquals((await t.snapshot(b)).held.length, 1);
  });

  crossTest('R-74 one context\'s entries carry one clientId, different from other contexts\'', async (t) => {
    const n = t.uniq();
    const f = await t.createFrame();
    const wk = await t.createWorker();
    await f.run(t.remote.hold, n + 'f');
    await wk.run(t.remote.hold, n + 'w');
    const h = t.req(n + 'p');
    await h.granted;
    const q = await L().query();
    const id = (x) => (q.held.find((e) => e.name === x) || {}).clientId;
    const ids = [id(n + 'p'), id(n + 'f'), id(n + 'w')];
    t.assert(ids.every((x) => typeof x === 'string' && x.length > 0), `all present: ${t.repr(ids)}`);
    t.assertEquals(new Set(ids).size, 3, 'window, iframe and worker have distinct clientIds');
    t.assertEquals(await f.run(t.remote.clientId, n + 'f'), ids[1], "the iframe sees the same clientId for its own lock");
  });

  // ==================================================================== exports
  global.__suite = suite;
  global.__crossContextSuite = crossContextSuite;
  global.__runTests = runTests;
  global.__countTests = countTests;
  global.__installRpcServer = installRpcServer;
})(self);
