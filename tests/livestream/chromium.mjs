// Chromium for the livestream tests: Debian's /usr/bin/chromium (or $CHROMIUM) through
// playwright-core, headless, with a fake camera and microphone; pages served from a loopback
// origin with the unmodified socket.io-client browser bundle loaded.

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
export const sioBundle = path.join(here, 'node_modules/socket.io-client/dist/socket.io.min.js');

function warn(msg) { process.stderr.write(`[livestream-chromium] ${msg}\n`); }

/** A loopback HTTP server of one empty page (the pages' origin). */
export function startPageServer() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><html><head><title>ringcast livestream</title></head><body></body></html>');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Launches Chromium; `close()` also removes its profile. */
export async function launch() {
  if (!fs.existsSync(chromiumPath)) throw new Error(`no Chromium at ${chromiumPath} (scripts/install-test-deps.sh)`);
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-ls-chromium-'));
  const args = [
    '--no-sandbox', '--disable-gpu', '--allow-loopback-in-peer-connection',
    '--use-fake-device-for-media-stream=fps=30', '--use-fake-ui-for-media-stream',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
    '--no-first-run', '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
  ];
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath, headless: true, args, chromiumSandbox: false,
    permissions: ['camera', 'microphone'], handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
  });
  return {
    context,
    version: context.browser() ? context.browser().version() : 'unknown',
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** A page at `origin` with the socket.io-client bundle loaded (global `io`). */
export async function openPage(context, origin, name) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') warn(`${name} console.${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => warn(`${name} pageerror: ${e.message}`));
  await page.goto(origin);
  await page.addScriptTag({ path: sioBundle });
  page.name = name;
  return page;
}

/** Polls `fn` every 250 ms until it returns `{ok: true, …}`; throws after `timeoutMs`. */
export async function waitUntil(what, fn, timeoutMs) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last && last.ok) return last;
    if (Date.now() > end) throw new Error(`${what} not reached within ${timeoutMs} ms: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
