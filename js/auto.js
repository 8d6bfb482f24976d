// `import "web-locks-wasm/auto"`: installs the polyfill where `navigator.locks` is missing.
import { install } from "./index.js";

install();
