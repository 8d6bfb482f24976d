// Dedicated-worker harness.
//   worker.js?target=native|ours[&grep=TEXT]   run the suites here and post results to the page:
//       {type:'count', count}, {type:'result', result} per test, {type:'done', results, fatal}
//   worker.js?target=...&helper=1              helper mode for cross-context tests: install the
//       target, post {__workerReady}, then answer {__run} messages (see __installRpcServer).
// target=ours deletes WorkerNavigator.prototype.locks, LockManager and Lock, then
// importScripts('/dist/web-locks.js') and awaits navigator.locks.ready if present.
'use strict';
importScripts('suite.js');

(function () {
  const params = new URLSearchParams(self.location.search);
  const target = params.get('target') || 'native';
  const grep = params.get('grep') || '';
  const helper = params.has('helper');
  const POLYFILL = '/dist/web-locks.js';

  function errText(e) { return e && e.stack ? String(e.stack) : String(e); }
  function withTimeout(p, ms, what) {
    let timer;
    return Promise.race([p, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`${what} did not settle within ${ms} ms`)), ms); })])
      .finally(() => clearTimeout(timer));
  }

  async function installTarget() {
    if (target === 'native') {
      if (!('locks' in navigator) || !navigator.locks) throw new Error('native navigator.locks is not available in the worker');
      return;
    }
    if (target !== 'ours') throw new Error(`unknown target ${JSON.stringify(target)}`);
    delete WorkerNavigator.prototype.locks;
    if (typeof Navigator !== 'undefined') delete Navigator.prototype.locks;
    delete self.LockManager;
    delete self.Lock;
    if ('locks' in navigator || 'LockManager' in self || 'Lock' in self) throw new Error('could not delete the native Web Locks API');
    const t0 = performance.now();
    try {
      importScripts(POLYFILL);
    } catch (e) {
      throw new Error(`failed to importScripts(${POLYFILL}): ${e && e.message}`);
    }
    if (!('locks' in navigator) || !navigator.locks) throw new Error(`${POLYFILL} loaded but did not install navigator.locks in the worker`);
    const ready = navigator.locks.ready;
    if (ready && typeof ready.then === 'function') await withTimeout(Promise.resolve(ready), 15000, 'navigator.locks.ready');
    return { polyfillInstallMs: Math.round(performance.now() - t0) };
  }

  if (helper) {
    self.__installRpcServer(self, (msg, reply) => self.postMessage(reply));
    installTarget().then(
      () => self.postMessage({ __workerReady: true }),
      (e) => self.postMessage({ __workerReady: true, error: errText(e) }));
    return;
  }

  self.addEventListener('unhandledrejection', (e) => e.preventDefault());
  const env = { target, scope: 'worker', grep };
  self.postMessage({ type: 'count', count: self.__countTests(env) });
  (async () => {
    let info;
    try {
      info = await installTarget();
    } catch (e) {
      const fatal = errText(e);
      const results = [];
      for (const [list, tests] of [['main', self.__suite], ['cross', self.__crossContextSuite]]) {
        for (const t of tests) if (!grep || t.name.includes(grep)) results.push({ name: t.name, list, windowOnly: !!t.windowOnly, status: 'fail', error: `FATAL: ${fatal}`, ms: 0 });
      }
      self.postMessage({ type: 'done', fatal, results });
      return;
    }
    if (info) self.postMessage({ type: 'info', info });
    const onResult = (result) => self.postMessage({ type: 'result', result });
    const main = await self.__runTests(self.__suite, env, 'main', onResult);
    const cross = await self.__runTests(self.__crossContextSuite, env, 'cross', onResult);
    self.postMessage({ type: 'done', results: main.concat(cross) });
  })().catch((e) => self.postMessage({ type: 'done', fatal: errText(e), results: [] }));
})();
