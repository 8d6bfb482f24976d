// The service worker client of the e2e tests: agent.js deletes the native API and
// importScripts('/dist/web-locks.js') (for ?target=ours), then answers the harness's
// postMessage commands (request/release locks, query, ...).
importScripts("/tests/e2e/agent.js");
