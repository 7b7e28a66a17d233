#!/usr/bin/env node
// mediasoup-client in Chromium against Ringcast's /sessions API. Bundles client.js with esbuild,
// opens two pages of Debian's Chromium (fake camera and microphone) on the server's origin, has
// the first publish camera and microphone and the second consume both, and prints one JSON object
// per line on stdout: `published`, `subscribed`, a `sample` per second (the pages' RTP figures and
// the server's GET /sessions/{id}/stats), `closed`, or `error`.
//
//   node tests/mediasoup/run.mjs --server http://127.0.0.1:8089 --channel UUID \
//     --pub-user alice --pub-token JWT --sub-user bob --sub-token JWT [--duration 10] \
//     [--audio-quality low|medium|high] [--chromium /usr/bin/chromium]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const o = { duration: 10, chromium: process.env.CHROMIUM || '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    switch (k) {
      case '--server': o.server = v().replace(/\/$/, ''); break;
      case '--channel': o.channel = v(); break;
      case '--pub-user': o.pubUser = v(); break;
      case '--pub-token': o.pubToken = v(); break;
      case '--sub-user': o.subUser = v(); break;
      case '--sub-token': o.subToken = v(); break;
      case '--duration': o.duration = Number(v()); break;
      case '--audio-quality': o.audioQuality = v(); break;
      case '--chromium': o.chromium = v(); break;
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  for (const k of ['server', 'channel', 'pubUser', 'pubToken', 'subUser', 'subToken']) {
    if (!o[k]) throw new Error(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is required`);
  }
  return o;
}

const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function bundle() {
  const r = await esbuild.build({
    entryPoints: [path.join(here, 'client.js')], bundle: true, write: false, format: 'iife',
    globalName: 'ringcast', platform: 'browser', target: 'chrome120', logLevel: 'silent',
  });
  return r.outputFiles[0].text;
}

async function launch(o) {
  if (!fs.existsSync(o.chromium)) {
    throw new Error(`Chromium not found at ${o.chromium}: run scripts/install-test-deps.sh (or set CHROMIUM)`);
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-mediasoup-'));
  const args = [
    '--no-sandbox', '--disable-gpu', '--allow-loopback-in-peer-connection',
    '--use-fake-device-for-media-stream=fps=30', '--use-fake-ui-for-media-stream',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
    '--no-first-run', '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
    // A server outside 127.0.0.1 (the page in a network namespace) is not a secure context by
    // itself; mediasoup-client's device detection needs one (navigator.userAgentData).
    `--unsafely-treat-insecure-origin-as-secure=${o.server}`,
  ];
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: o.chromium, headless: true, args, chromiumSandbox: false,
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

async function page(browser, o, code) {
  const p = await browser.context.newPage();
  p.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`[page] ${m.text()}\n`); });
  p.on('pageerror', (e) => process.stderr.write(`[page error] ${e}\n`));
  // The server's own origin: the API is same-origin and no page needs serving.
  await p.goto(`${o.server}/health`);
  await p.addScriptTag({ content: code });
  return p;
}

async function serverStats(o, token, id) {
  const r = await fetch(`${o.server}/sessions/${id}/stats`, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: await r.json().catch(() => null) };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const code = await bundle();
  const browser = await launch(o);
  emit({ type: 'browser', version: browser.version });
  try {
    const pub = await page(browser, o, code);
    const sub = await page(browser, o, code);
    const po = { server: o.server, token: o.pubToken, channel: o.channel, user: o.pubUser, audioQuality: o.audioQuality };
    const published = await pub.evaluate((a) => window.ringcast.publish(a), po);
    emit({ type: 'published', ...published });
    const so = { server: o.server, token: o.subToken, channel: o.channel, user: o.subUser, tracks: [published.video, published.audio] };
    const subscribed = await sub.evaluate((a) => window.ringcast.consume(a), so);
    emit({ type: 'subscribed', ...subscribed });
    const start = Date.now();
    while (Date.now() - start < o.duration * 1000) {
      await sleep(1000);
      emit({
        type: 'sample', t: (Date.now() - start) / 1000,
        publisher: await pub.evaluate(() => window.ringcast.sample()),
        subscriber: await sub.evaluate(() => window.ringcast.sample()),
        server_publisher: await serverStats(o, o.pubToken, published.session_id),
        server_subscriber: await serverStats(o, o.subToken, subscribed.session_id),
      });
    }
    const closedSub = await sub.evaluate((a) => window.ringcast.close(a), so);
    const closedPub = await pub.evaluate((a) => window.ringcast.close(a), po);
    emit({ type: 'closed', publisher: closedPub, subscriber: closedSub });
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  emit({ type: 'error', message: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
