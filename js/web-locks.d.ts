// dist/web-locks.js is a classic script (`<script src>`, `importScripts()`): it exports
// nothing, and installs the polyfill on `navigator.locks` where the browser has none.
// Imported for its side effect, it does the same.
export {};
