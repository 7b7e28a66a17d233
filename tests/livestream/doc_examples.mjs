// The JavaScript examples of docs/api/livestream.md (broadcaster, viewer, chat), run as they are
// in Chromium, each in its own page: the viewer must decode the broadcaster's video and the chat
// example must see its own message.
//
// Usage: node doc_examples.mjs '<json config>'
//   config: {base, streamId, streamKey, tokens: {broadcaster, viewer, chatter}, minFrames}
// Prints JSON lines ({"step": ...}) and a final {"summary": ...}; a failed check prints
// {"error": ...} and exits 1.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, openPage, startPageServer, waitUntil } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const cfg = JSON.parse(process.argv[2] || '{}');
const docPath = path.join(here, '../../docs/api/livestream.md');

function out(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }
function check(cond, what, detail) {
  if (!cond) throw new Error(`check failed: ${what}${detail === undefined ? '' : ' ' + JSON.stringify(detail)}`);
}

/** Every ```js block of the page, in order. */
function jsBlocks(md) {
  const blocks = [];
  const re = /^```js\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(md); m; m = re.exec(md)) blocks.push(m[1]);
  return blocks;
}

// In the page, before an example: peer connections are recorded (to read their stats), and the
// names the examples use exist.
function prelude() {
  window.pcs = [];
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.pcs.push(this); }
  };
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.appendChild(video);
  window.exampleVideo = video;
  window.shown = [];
  window.exampleShow = (userId, message) => window.shown.push({ userId, message });
}

/** Runs `code` in `page` as the body of an async function of the names the examples use. */
async function runExample(page, code, vars) {
  await page.evaluate(prelude);
  await page.evaluate(([body, v]) => {
    // eslint-disable-next-line no-new-func
    const f = new Function('serverUrl', 'token', 'streamId', 'streamKey', 'video', 'show',
      `return (async () => {\n${body}\n})();`);
    window.exampleDone = 'running';
    f(v.serverUrl, v.token, v.streamId, v.streamKey, window.exampleVideo, window.exampleShow)
      .then(() => { window.exampleDone = 'ok'; }, (e) => { window.exampleDone = `error: ${e.message}`; });
  }, [code, vars]);
}

/** The page's first peer connection: its state and video counters. */
function pageState(page) {
  return page.evaluate(async () => {
    const pc = window.pcs[0];
    let video = null;
    if (pc) {
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') video = { framesDecoded: s.framesDecoded || 0 };
        if (s.type === 'outbound-rtp' && s.kind === 'video') video = { framesEncoded: s.framesEncoded || 0 };
      });
    }
    return {
      done: window.exampleDone,
      state: pc ? pc.connectionState : null,
      video,
      width: window.exampleVideo.videoWidth,
      shown: window.shown,
    };
  });
}

async function main() {
  const blocks = jsBlocks(fs.readFileSync(docPath, 'utf8'));
  const pick = (what, marker) => {
    const found = blocks.filter((b) => b.includes(marker));
    check(found.length === 1, `exactly one ${what} example`, found.length);
    return found[0];
  };
  const examples = {
    broadcaster: pick('broadcaster', "'stream:offer'"),
    viewer: pick('viewer', "'stream:join'"),
    chat: pick('chat', "'join-livestream'"),
  };
  check(blocks.length === 3, 'three JavaScript examples in the page', blocks.length);
  const sent = /message: '([^']+)'/.exec(examples.chat);
  check(sent, 'the chat example sends a literal message', examples.chat);

  const vars = (who) => ({ serverUrl: cfg.base, token: cfg.tokens[who], streamId: cfg.streamId, streamKey: cfg.streamKey });
  const pageServer = await startPageServer();
  const origin = `http://127.0.0.1:${pageServer.address().port}/`;
  const browser = await launch();
  try {
    out({ step: 'browser', version: browser.version });
    const caster = await openPage(browser.context, origin, 'broadcaster');
    await runExample(caster, examples.broadcaster, vars('broadcaster'));
    await waitUntil('the broadcaster example connected', async () => {
      const s = await pageState(caster);
      return { ok: s.done === 'ok' && s.state === 'connected', s };
    }, 30000);
    const live = await (await fetch(`${cfg.base}/api/livestream/${cfg.streamId}`)).json();
    check(live.status === 'live', 'live after the broadcaster example', live);
    out({ step: 'broadcasting' });

    const viewer = await openPage(browser.context, origin, 'viewer');
    await runExample(viewer, examples.viewer, vars('viewer'));
    const watched = await waitUntil('the viewer example decoding video', async () => {
      const s = await pageState(viewer);
      return { ok: s.done === 'ok' && s.video && s.video.framesDecoded >= cfg.minFrames && s.width > 0, s };
    }, 60000);
    out({ step: 'watching', decoded: watched.s.video.framesDecoded, width: watched.s.width });

    const chatter = await openPage(browser.context, origin, 'chatter');
    await runExample(chatter, examples.chat, vars('chatter'));
    const chatted = await waitUntil('the chat example seeing its message', async () => {
      const s = await pageState(chatter);
      return { ok: s.done === 'ok' && s.shown.some((m) => m.message === sent[1]), s };
    }, 15000);
    out({ step: 'chat', shown: chatted.s.shown });
    out({ summary: { ok: true, decoded: watched.s.video.framesDecoded, width: watched.s.width, shown: chatted.s.shown } });
  } finally {
    await browser.close();
    pageServer.close();
  }
}

try {
  await main();
  process.exit(0);
} catch (e) {
  out({ error: e.message, stack: e.stack });
  process.exit(1);
}
