#!/usr/bin/env node
// Conformance runner: serves the repo root over HTTP (localhost = secure context), drives Chromium
// through playwright-core, runs the suite for each target (native, ours) x scope (window, worker),
// prints a per-rule table, writes build/conformance.{json,md}, and sets the exit code.
//
//   node tests/conformance/run.mjs [--target native|ours|ours-esm|both] [--scope window|worker|both]
//                                  [--grep TEXT] [--enforce-cross-context] [--headed] [--insecure]
//
// --insecure serves the pages from http://intranet.test (mapped to 127.0.0.1 by Chromium's
// host resolver): a real insecure origin, without native navigator.locks; target ours only.
//
// Exit code: 1 if any test of a run target fails (native or ours), except the tests named in
// tests/conformance/known-differences.json: {"<full test name>": "reason"} excuses the test for every
// target; {"<full test name>": {"reason": "...", "targets": ["native"]}} only for the listed targets
// (use this for engine bugs, so that 'ours' must still pass the spec-correct test). Tests of
// self.__crossContextSuite are reported in their own table; a failure there fails the run for
// both targets (pass --no-enforce-cross-context to report 'ours' cross-context failures only,
// e.g. when debugging the single-context mode).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const BUILD = path.join(ROOT, 'build');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PER_TEST_MS = 2000; // enforced in the page/worker harness; the runner only adds a global bound

// ---------------------------------------------------------------- CLI
function parseArgs(argv) {
  const opts = { target: 'both', scope: 'both', grep: '', enforceCross: true, headed: false, insecure: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (a.includes('=')) return a.slice(a.indexOf('=') + 1);
      if (i + 1 >= argv.length) usage(`missing value for ${a}`);
      return argv[++i];
    };
    if (a === '--target' || a.startsWith('--target=')) opts.target = val();
    else if (a === '--scope' || a.startsWith('--scope=')) opts.scope = val();
    else if (a === '--grep' || a.startsWith('--grep=')) opts.grep = val();
    else if (a === '--enforce-cross-context') opts.enforceCross = true;
    else if (a === '--no-enforce-cross-context') opts.enforceCross = false;
    else if (a === '--headed') opts.headed = true;
    else if (a === '--insecure') opts.insecure = true;
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!['native', 'ours', 'ours-esm', 'both'].includes(opts.target)) usage(`bad --target ${opts.target}`);
  // ours-esm: the polyfill through the ESM entry (import + install()), in a window.
  if (opts.target === 'ours-esm') opts.scope = 'window';
  if (!['window', 'worker', 'both'].includes(opts.scope)) usage(`bad --scope ${opts.scope}`);
  // An insecure origin has no native navigator.locks: only ours can run there.
  if (opts.insecure) opts.target = 'ours';
  return opts;
}
function usage(err) {
  if (err) console.error(`run.mjs: ${err}`);
  console.error('usage: node tests/conformance/run.mjs [--target native|ours|both] [--scope window|worker|both] [--grep TEXT] [--enforce-cross-context]');
  process.exit(err ? 2 : 0);
}

// ---------------------------------------------------------------- static server
const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.cjs': 'text/javascript; charset=utf-8', '.json': 'application/json; charset=utf-8', '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8', '.map': 'application/json; charset=utf-8', '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon',
  '.ts': 'text/plain; charset=utf-8',
};
function startServer() {
  const server = http.createServer((req, res) => {
    let pathname;
    try { pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname); } catch { res.writeHead(400).end(); return; }
    const file = path.resolve(ROOT, '.' + pathname);
    if (file !== ROOT && !file.startsWith(ROOT + path.sep)) { res.writeHead(403).end('forbidden'); return; }
    fs.stat(file, (err, st) => {
      let target = file;
      if (!err && st.isDirectory()) target = path.join(file, 'index.html');
      fs.readFile(target, (err2, body) => {
        if (err2) { res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end(`404 ${pathname}`); return; }
        res.writeHead(200, {
          'content-type': MIME[path.extname(target).toLowerCase()] || 'application/octet-stream',
          'cache-control': 'no-store',
          'content-length': body.length,
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// ---------------------------------------------------------------- run one combination
async function runCombo(browser, base, target, scope, grep) {
  const context = await browser.newContext(); // own profile-like storage: its own lock universe
  const page = await context.newPage();
  const log = [];
  page.on('console', (m) => log.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  page.on('requestfailed', (r) => log.push(`[requestfailed] ${r.url()} ${r.failure() && r.failure().errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) log.push(`[http ${r.status()}] ${r.url()}`); });
  const url = `${base}/tests/conformance/page.html?target=${target}&scope=${scope}${grep ? `&grep=${encodeURIComponent(grep)}` : ''}`;
  let out;
  try {
    await page.goto(url, { waitUntil: 'load', timeout: 30000 });
    const count = await page.waitForFunction(() => typeof self.__testCount === 'number' ? self.__testCount : null, null, { timeout: 30000 })
      .then((h) => h.jsonValue());
    const budget = count * (PER_TEST_MS + 1500) + 30000;
    await page.waitForFunction(() => self.__done === true, null, { timeout: budget, polling: 100 });
    out = await page.evaluate(() => ({ results: self.__results, fatal: self.__fatal || null, info: self.__info || null }));
  } catch (e) {
    out = { results: null, fatal: `runner: ${e.message.split('\n')[0]}`, info: null };
    try {
      const partial = await page.evaluate(() => ({ results: self.__results || self.__partial || null, fatal: self.__fatal || null }));
      if (partial.results) out.results = partial.results;
      if (partial.fatal) out.fatal += `; page: ${partial.fatal}`;
    } catch { /* page gone */ }
  }
  await context.close();
  return { target, scope, url, log, ...out };
}

// ---------------------------------------------------------------- report helpers
const ruleOf = (name) => (/^(R-\d+)/.exec(name) || [null, '?'])[1];
const ruleNum = (name) => { const m = /^R-(\d+)/.exec(name); return m ? Number(m[1]) : 1e9; };
const SYMBOL = { pass: 'pass', fail: 'FAIL', skip: 'skip', missing: '—' };
function pad(s, n) { s = String(s); return s.length >= n ? s : s + ' '.repeat(n - s.length); }
function mdEscape(s) { return String(s).replace(/\|/g, '\\|').replace(/\n/g, ' '); }

function main() {
  return (async () => {
    const opts = parseArgs(process.argv.slice(2));
    const targets = opts.target === 'both' ? ['native', 'ours'] : [opts.target];
    const scopes = opts.scope === 'both' ? ['window', 'worker'] : [opts.scope];
    const knownPath = path.join(HERE, 'known-differences.json');
    let known = {};
    try { known = JSON.parse(fs.readFileSync(knownPath, 'utf8')); } catch (e) {
      console.error(`run.mjs: cannot read ${knownPath}: ${e.message}`); process.exit(2);
    }
    // On an insecure origin the spec hides navigator.locks ([SecureContext]); providing it
    // there is the polyfill's purpose, and the harness's own secure-context check does not
    // apply.
    if (opts.insecure) {
      known['R-01 navigator.locks is a LockManager in this secure context'] = {
        reason: 'insecure origin (--insecure): the polyfill provides navigator.locks where [SecureContext] hides it',
        targets: ['ours'],
      };
    }
    if (targets.includes('ours') && !fs.existsSync(path.join(ROOT, 'dist', 'web-locks.js'))) {
      console.error('\n!!! /dist/web-locks.js does not exist: every "ours" test will FAIL (build the polyfill first).\n');
    }

    const server = await startServer();
    const port = server.address().port;
    // --insecure: a real plain-http origin (http://intranet.test, mapped to this machine by
    // the host resolver, so nothing leaves it), where browsers hide navigator.locks: the
    // polyfill's first use case. localhost would be a secure context.
    const host = opts.insecure ? 'intranet.test' : 'localhost';
    const base = `http://${host}:${port}`;
    let browser;
    const runs = [];
    try {
      const args = CHROMIUM_ARGS.filter((a) => opts.headed ? a !== '--headless=new' : true);
      if (opts.insecure) args.push('--host-resolver-rules=MAP intranet.test 127.0.0.1');
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: !opts.headed, args });
      if (opts.insecure) {
        const page = await browser.newPage();
        await page.goto(`${base}/tests/e2e/blank.html`);
        const origin = await page.evaluate(() => ({ secure: isSecureContext, locks: 'locks' in navigator, origin: location.origin }));
        await page.close();
        if (origin.secure || origin.locks) throw new Error(`--insecure: ${origin.origin} is not the insecure origin expected: ${JSON.stringify(origin)}`);
        console.error(`insecure origin ${origin.origin}: isSecureContext false, no native navigator.locks`);
      }
      for (const target of targets) {
        for (const scope of scopes) {
          const t0 = Date.now();
          process.stderr.write(`running ${target}/${scope} ... `);
          const r = await runCombo(browser, base, target, scope, opts.grep);
          r.ms = Date.now() - t0;
          process.stderr.write(`${r.fatal ? 'FATAL' : 'done'} in ${(r.ms / 1000).toFixed(1)} s\n`);
          runs.push(r);
        }
      }
    } finally {
      if (browser) await browser.close().catch(() => {});
      server.close();
    }

    // ---- collate
    const combos = runs.map((r) => `${r.target}/${r.scope}`);
    const tests = new Map(); // name -> {name, rule, list, windowOnly, results: {combo: {status, error}}}
    for (const r of runs) {
      const combo = `${r.target}/${r.scope}`;
      for (const res of r.results || []) {
        if (!tests.has(res.name)) tests.set(res.name, { name: res.name, rule: ruleOf(res.name), list: res.list, windowOnly: !!res.windowOnly, results: {} });
        tests.get(res.name).results[combo] = { status: res.status, error: res.error || null, ms: res.ms };
      }
    }
    // A fatal run (e.g. missing dist/web-locks.js) with no results: every known test fails loudly.
    for (const r of runs) {
      const combo = `${r.target}/${r.scope}`;
      if (r.fatal) for (const t of tests.values()) if (!t.results[combo]) t.results[combo] = { status: 'fail', error: `FATAL: ${r.fatal}` };
    }
    const sorted = [...tests.values()].sort((a, b) => ruleNum(a.name) - ruleNum(b.name) || a.name.localeCompare(b.name));

    const knownReason = (name, target) => {
      const k = known[name];
      if (!k) return null;
      if (typeof k === 'string') return k;
      if (Array.isArray(k.targets) && !k.targets.includes(target)) return null;
      return k.reason || 'known difference';
    };
    for (const name of Object.keys(known)) if (!tests.has(name)) console.error(`warning: known-differences.json names an unknown test: ${name}`);
    const failures = [];
    const knownHit = [];
    for (const t of sorted) {
      for (const combo of combos) {
        const res = t.results[combo];
        if (!res || res.status !== 'fail') continue;
        const target = combo.split('/')[0].replace('ours-esm', 'ours');
        if (knownReason(t.name, target)) { knownHit.push({ test: t.name, combo, reason: knownReason(t.name, target) }); continue; }
        if (t.list === 'cross' && target === 'ours' && !opts.enforceCross) continue;
        failures.push({ test: t.name, combo, error: res.error });
      }
    }
    for (const r of runs) if (r.fatal && !(r.results && r.results.length)) failures.push({ test: '(harness)', combo: `${r.target}/${r.scope}`, error: r.fatal });

    // ---- console table
    const nameW = Math.min(96, Math.max(20, ...sorted.map((t) => t.name.length)));
    const colW = Math.max(...combos.map((c) => c.length), 6) + 2;
    const lines = [];
    for (const list of ['main', 'cross']) {
      const rows = sorted.filter((t) => t.list === list);
      if (!rows.length) continue;
      lines.push('');
      lines.push(list === 'main' ? '== Conformance suite (self.__suite) ==' : '== Cross-context suite (self.__crossContextSuite) ==');
      lines.push(pad('test', nameW) + ' ' + combos.map((c) => pad(c, colW)).join(''));
      let lastRule = null;
      for (const t of rows) {
        if (t.rule !== lastRule) { lines.push(`-- ${t.rule}`); lastRule = t.rule; }
        const nm = t.name.length > nameW ? t.name.slice(0, nameW - 1) + '…' : t.name;
        lines.push(pad(nm, nameW) + ' ' + combos.map((c) => pad((SYMBOL[(t.results[c] || {}).status] || SYMBOL.missing) + (knownReason(t.name, c.split('/')[0]) && (t.results[c] || {}).status === 'fail' ? '*' : ''), colW)).join(''));
      }
    }
    const summary = {};
    for (const combo of combos) {
      const s = { main: { pass: 0, fail: 0, skip: 0 }, cross: { pass: 0, fail: 0, skip: 0 } };
      for (const t of sorted) { const res = t.results[combo]; if (res) s[t.list || 'main'][res.status] = (s[t.list || 'main'][res.status] || 0) + 1; }
      summary[combo] = s;
    }
    lines.push('');
    lines.push('== Summary (main suite | cross-context suite) ==');
    for (const combo of combos) {
      const s = summary[combo]; const r = runs.find((x) => `${x.target}/${x.scope}` === combo);
      lines.push(`${pad(combo, 16)} main: ${s.main.pass} pass, ${s.main.fail} fail, ${s.main.skip} skip | cross: ${s.cross.pass} pass, ${s.cross.fail} fail, ${s.cross.skip} skip${r.fatal ? `   FATAL: ${r.fatal}` : ''}`);
    }
    if (knownHit.length) {
      lines.push('');
      lines.push('Known differences (reported, not failing; marked * above):');
      for (const k of knownHit) lines.push(`  ${k.combo}  ${k.test}: ${k.reason}`);
    }
    const crossOursFails = sorted.filter((t) => t.list === 'cross').flatMap((t) => combos.filter((c) => c.startsWith('ours/') && (t.results[c] || {}).status === 'fail').map((c) => ({ t, c })));
    if (crossOursFails.length && !opts.enforceCross) {
      lines.push('');
      lines.push(`Cross-context failures for 'ours' (informational; use --enforce-cross-context to make them fatal): ${crossOursFails.length}`);
    }
    if (failures.length) {
      lines.push('');
      lines.push(`FAILURES (${failures.length}):`);
      const fatalCounts = {};
      for (const f of failures) {
        if (String(f.error || '').startsWith('FATAL:')) { fatalCounts[f.combo] = (fatalCounts[f.combo] || 0) + 1; continue; }
        lines.push(`  [${f.combo}] ${f.test}\n      ${String(f.error || '').split('\n').join('\n      ')}`);
      }
      for (const [combo, count] of Object.entries(fatalCounts)) {
        const r = runs.find((x) => `${x.target}/${x.scope}` === combo);
        lines.push(`  [${combo}] ALL ${count} tests FAILED: harness fatal error:\n      ${String(r && r.fatal).split('\n').join('\n      ')}`);
      }
      for (const r of runs) if (r.fatal && r.log.length) { lines.push(`  page log for ${r.target}/${r.scope}:`); for (const l of r.log.slice(-20)) lines.push(`      ${l}`); }
    }
    console.log(lines.join('\n'));

    // ---- files
    fs.mkdirSync(BUILD, { recursive: true });
    const json = {
      generatedAt: new Date().toISOString(),
      browser: CHROMIUM,
      combos: runs.map((r) => ({ combo: `${r.target}/${r.scope}`, target: r.target, scope: r.scope, fatal: r.fatal || null, ms: r.ms, info: r.info })),
      summary,
      knownDifferences: known,
      failures,
      tests: sorted,
    };
    const out = opts.insecure ? 'conformance-insecure' : opts.target === 'ours-esm' ? 'conformance-esm' : 'conformance';
    fs.writeFileSync(path.join(BUILD, `${out}.json`), JSON.stringify(json, null, 2) + '\n');
    const md = [];
    md.push('# Web Locks conformance', '', `Generated ${json.generatedAt} with ${CHROMIUM}.`, '');
    md.push('| combination | main pass | main fail | main skip | cross pass | cross fail | cross skip | note |', '|---|---|---|---|---|---|---|---|');
    for (const r of runs) {
      const c = `${r.target}/${r.scope}`; const s = summary[c];
      md.push(`| ${c} | ${s.main.pass} | ${s.main.fail} | ${s.main.skip} | ${s.cross.pass} | ${s.cross.fail} | ${s.cross.skip} | ${r.fatal ? 'FATAL: ' + mdEscape(r.fatal) : ''} |`);
    }
    for (const list of ['main', 'cross']) {
      const rows = sorted.filter((t) => t.list === list);
      if (!rows.length) continue;
      md.push('', list === 'main' ? '## Conformance suite' : '## Cross-context suite', '');
      md.push(`| rule | test | ${combos.join(' | ')} |`, `|---|---|${combos.map(() => '---').join('|')}|`);
      for (const t of rows) {
        md.push(`| ${t.rule} | ${mdEscape(t.name)} | ${combos.map((c) => { const res = t.results[c]; if (!res) return '—'; return res.status === 'fail' ? `**FAIL**${knownReason(t.name, c.split('/')[0]) ? ' (known)' : ''}` : res.status; }).join(' | ')} |`);
      }
    }
    if (failures.length || knownHit.length) {
      md.push('', '## Failures', '');
      for (const f of failures) md.push(`- \`${f.combo}\` ${mdEscape(f.test)}: ${mdEscape(f.error || '')}`);
      for (const k of knownHit) md.push(`- \`${k.combo}\` ${mdEscape(k.test)} (known difference: ${mdEscape(k.reason)})`);
    }
    fs.writeFileSync(path.join(BUILD, `${out}.md`), md.join('\n') + '\n');
    console.log(`\nwrote build/${out}.json and build/${out}.md`);
    process.exitCode = failures.length ? 1 : 0;
  })();
}

main().catch((e) => { console.error(e); process.exit(2); });
