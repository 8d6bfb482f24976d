// `await using` with a LockHandle (lib esnext: tsconfig.esnext.json).
import { acquire } from "../../dist/services.js";

export async function disposable(): Promise<string> {
  await using h = await acquire("z");
  return h.name;
}
