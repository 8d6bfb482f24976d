// Shared Chromium launch options for every browser test and benchmark: Debian's chromium,
// headless, and the flags that keep it off this machine's closed network.
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export function launchOptions(extra = []) {
  return {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extra,
    ],
  };
}
