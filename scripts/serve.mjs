// Serves the repository root (the demo is at /www/, the package at /dist/).
import { serve } from "./server.mjs";

const port = Number(process.argv[2] || process.env.PORT || 8080);
const root = new URL("..", import.meta.url).pathname;
const server = await serve(root, port);
console.log(`web-locks-wasm demo: http://localhost:${server.address().port}/www/`);
