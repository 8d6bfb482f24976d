// Side-effect import: installs the polyfill on `navigator.locks` where missing.
export {};
