#!/usr/bin/env node
// The voice-channel test's driver: mediasoup-client pages in Debian's Chromium against Ringcast's
// /sessions API (see voice_client.js). Each --participant is one page: an `audio` session that
// publishes a tone of TONE Hz (0: publishes nothing; `muted`: the track is disabled, so it sends
// silence) and, with `mix`, takes the channel's Opus mix. Prints JSON lines on stdout: `joined`
// per participant, a `sample` per second (each page's figures and the server's
// GET /sessions/{id}/stats), `closed`, or `error`.
//
//   node tests/mediasoup/voice.mjs --server http://127.0.0.1:8089 --channel UUID \
//     --participant alice:JWT:440 --participant bob:JWT:660:muted --participant carol:JWT:0:mix \
//     [--duration 8] [--chromium /usr/bin/chromium]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
  const o = { duration: 8, chromium: process.env.CHROMIUM || '/usr/bin/chromium', participants: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    switch (k) {
      case '--server': o.server = v().replace(/\/$/, ''); break;
      case '--channel': o.channel = v(); break;
      case '--duration': o.duration = Number(v()); break;
      case '--chromium': o.chromium = v(); break;
      case '--participant': {
        const [user, token, tone, flags] = v().split(':');
        const f = (flags || '').split(',');
        o.participants.push({ user, token, tone: Number(tone), muted: f.includes('muted'), mix: f.includes('mix') });
        break;
      }
      default: throw new Error(`unknown argument ${k}`);
    }
  }
  if (!o.server || !o.channel || o.participants.length === 0) {
    throw new Error('--server, --channel and at least one --participant are required');
  }
  return o;
}

const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const built = await esbuild.build({
    entryPoints: [path.join(here, 'voice_client.js')], bundle: true, write: false, format: 'iife',
    globalName: 'ringcast', platform: 'browser', target: 'chrome120', logLevel: 'silent',
  });
  const code = built.outputFiles[0].text;
  if (!fs.existsSync(o.chromium)) {
    throw new Error(`Chromium not found at ${o.chromium}: run scripts/install-test-deps.sh (or set CHROMIUM)`);
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-voice-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: o.chromium, headless: true, chromiumSandbox: false,
    args: [
      '--no-sandbox', '--disable-gpu', '--allow-loopback-in-peer-connection',
      '--autoplay-policy=no-user-gesture-required', '--use-fake-ui-for-media-stream',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
      '--no-first-run', '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
    ],
    handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
  });
  try {
    emit({ type: 'browser', version: context.browser() ? context.browser().version() : 'unknown' });
    const pages = [];
    for (const p of o.participants) {
      const page = await context.newPage();
      page.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`[${p.user}] ${m.text()}\n`); });
      page.on('pageerror', (e) => process.stderr.write(`[${p.user} error] ${e}\n`));
      await page.goto(`${o.server}/health`);
      await page.addScriptTag({ content: code });
      const args = { server: o.server, channel: o.channel, ...p };
      const joined = await page.evaluate((a) => window.ringcast.join(a), args);
      emit({ type: 'joined', user: p.user, ...joined });
      pages.push({ page, args, joined });
    }
    const start = Date.now();
    while (Date.now() - start < o.duration * 1000) {
      await sleep(1000);
      const participants = {};
      for (const { page, args, joined } of pages) {
        const r = await fetch(`${o.server}/sessions/${joined.session_id}/stats`, {
          headers: { authorization: `Bearer ${args.token}` },
        });
        participants[args.user] = {
          page: await page.evaluate(() => window.ringcast.sample()),
          server: { status: r.status, body: await r.json().catch(() => null) },
        };
      }
      emit({ type: 'sample', t: (Date.now() - start) / 1000, participants });
    }
    const closed = {};
    for (const { page, args } of pages) closed[args.user] = await page.evaluate((a) => window.ringcast.close(a), args);
    emit({ type: 'closed', participants: closed });
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => {
  emit({ type: 'error', message: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
