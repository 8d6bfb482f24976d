import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL(".", import.meta.url));
export default {
  root,
  logLevel: "warn",
  resolve: { alias: { "web-locks-wasm": fileURLToPath(new URL("../../dist/index.js", import.meta.url)) } },
  build: { outDir: fileURLToPath(new URL("../../build/bundler", import.meta.url)), emptyOutDir: true },
};
