// The pages of tests/e2e/sw-clientid.mjs, before the polyfill: as in a browser without the
// API (the polyfill then installs itself), with the page's own service-worker message
// handler, which must see nothing of ours.
delete Navigator.prototype.locks;
delete window.LockManager;
delete window.Lock;
window.pageMessages = 0;
navigator.serviceWorker.addEventListener("message", () => window.pageMessages++);
navigator.serviceWorker.startMessages();
