// dist/web-locks-arbiter.js is a classic script that must sit next to dist/web-locks.js: the
// arbiter's SharedWorker script, which web-locks.js also loads where its context has to
// host the arbiter. It exports nothing, and has no effect when imported.
export {};
