#!/usr/bin/env node
// Chromium WHIP publisher / WHEP viewer for Ringcast.
//
// Drives Debian's /usr/bin/chromium (headless, fake camera and microphone) through playwright-core.
// One Chromium process hosts every peer of a run, one page each. The page owns the
// RTCPeerConnection; this script does the WHIP/WHEP HTTP exchange itself (no CORS involved) and
// prints one JSON object per line on stdout:
//   {"type":"peer",  "peer":"view-0", "role":"view", "stream":"s", "status":201, "location":"..."}
//   {"type":"state", "peer":"view-0", "t":1.2, "pc":"connected", "ice":"connected"}
//   {"type":"stats", "peer":"view-0", "t":2.0, "video":{...}, "audio":{...}, "pair":{...}}
//   {"type":"layers","peer":"publish-0","t":3.1, "layers":{"1":{"active":["q"],"inactive":["h","f"]}},
//    "applied":{"1":{"q":true,"h":false,"f":false}}}   (publishers following the WHIP layers resource)
//   {"type":"error", "peer":"view-0", "message":"..."}
//   {"type":"done",  "peer":"view-0", "delete_status":200}
//   {"type":"summary", "ok":true, "peers":[...]}
// Diagnostics go to stderr. Exit status: 0 when every peer got its answer and ran to the end,
// 1 when any peer failed, 2 on bad usage.
//
// Usage:
//   node peer.mjs --server http://127.0.0.1:8080 [options] ROLE:STREAM [ROLE:STREAM ...]
//     ROLE is publish (WHIP, POST /whip/STREAM) or view (WHEP, POST /whep/STREAM), or for the
//     stream service (STREAM is a stream_id from POST /stream/start; --token is the user's JWT):
//     share (WHIP, POST /stream/STREAM/whip) or watch (POST /stream/watch, the server's offer is
//     answered by PUT to its answer_url; the session ends with DELETE there).
//     Peers start in the order given, each once the previous one has its answer (+ --stagger).
//   node peer.mjs offer publish|view     print an offer SDP from Chromium and exit (no server)
//   node peer.mjs loopback               publisher page -> viewer page directly (no server): a
//                                        self-test of the browser, the fake devices and the stats
//   node peer.mjs demo --server URL [--stream NAME] [--duration S] [--linger S]
//                                        the server's own demo page (GET /) opened twice, driven
//                                        by its buttons like a person would: one page clicks
//                                        "Publish camera", the other "Watch"; the watcher's
//                                        <video> is sampled every --interval, both Stop buttons
//                                        are clicked after --duration, then the browser stays
//                                        open --linger seconds (default 5) before exiting
// Options:
//   --server URL       base URL of the server (default http://127.0.0.1:8080)
//   --duration S       seconds to run once the last peer has started (default 10)
//   --stagger MS       pause between starting two peers (default 500)
//   --interval MS      getStats sampling period (default 1000)
//   --token T          send "Authorization: Bearer T" on WHIP/WHEP requests
//   --no-delete        end the run by closing the peer connections without DELETE (the server
//                      sees the sessions end by themselves: DTLS close, ICE consent)
//   --width W --height H --fps F   capture constraints for publishers (default 640x480@30)
//   --chromium PATH    browser binary (default $CHROMIUM or /usr/bin/chromium)
//   --connect-timeout S  give up on a peer whose connection is not up after S seconds (default 15)
//   --simulcast        publishers send three simulcast encodings, rids q/h/f scaled down by 4/2/1
//   --scalability MODE publishers send one encoding in this SVC mode (e.g. L3T3_KEY, with
//                      --codec vp9 or av1)
//   --codec NAME       publishers offer only this video codec (vp8, vp9, av1, h264; H.264 in
//                      packetization-mode 1), via RTCRtpTransceiver.setCodecPreferences; viewers
//                      always offer everything Chromium can receive
//   --quality NAME     view peers ask for this quality preset (POST /whep/STREAM?quality=NAME)
//   --no-follow-layers publishers ignore the WHIP layers resource (Link rel
//                      "urn:ringcast:whip:layers"); by default they follow its event stream and
//                      switch simulcast encodings on and off with RTCRtpSender.setParameters

import { chromium } from 'playwright-core';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const T0 = performance.now();
const now = () => Math.round(performance.now() - T0) / 1000;
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const warn = (...a) => process.stderr.write(`[peer.mjs ${now().toFixed(2)}] ${a.join(' ')}\n`);

function usage(msg) {
  if (msg) process.stderr.write(`peer.mjs: ${msg}\n`);
  process.stderr.write('usage: node peer.mjs [--server URL] [--duration S] [--stagger MS] publish:STREAM view:STREAM ...\n' +
    '       node peer.mjs offer publish|view\n       node peer.mjs loopback [--duration S]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    server: 'http://127.0.0.1:8080', duration: 10, stagger: 500, interval: 1000, token: null,
    width: 640, height: 480, fps: 30, chromium: process.env.CHROMIUM || '/usr/bin/chromium',
    connectTimeout: 15, mode: 'run', peers: [], offerRole: null, codec: null, stream: 'demo', linger: 5,
    simulcast: false, scalability: null, noDelete: false, quality: null, followLayers: true,
  };
  const num = (v, name) => { const n = Number(v); if (!Number.isFinite(n) || n < 0) usage(`bad ${name}: ${v}`); return n; };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
    switch (a) {
      case '--server': o.server = val().replace(/\/+$/, ''); break;
      case '--duration': o.duration = num(val(), a); break;
      case '--stagger': o.stagger = num(val(), a); break;
      case '--interval': o.interval = Math.max(100, num(val(), a)); break;
      case '--token': o.token = val(); break;
      case '--no-delete': o.noDelete = true; break;
      case '--width': o.width = num(val(), a); break;
      case '--height': o.height = num(val(), a); break;
      case '--fps': o.fps = num(val(), a); break;
      case '--chromium': o.chromium = val(); break;
      case '--stream': o.stream = val(); break;
      case '--linger': o.linger = num(val(), a); break;
      case '--simulcast': o.simulcast = true; break;
      case '--quality': o.quality = val(); break;
      case '--no-follow-layers': o.followLayers = false; break;
      case '--scalability': o.scalability = val(); break;
      case '--codec': {
        const c = val().toLowerCase();
        if (!['vp8', 'vp9', 'av1', 'h264'].includes(c)) usage(`--codec takes vp8, vp9, av1 or h264, not ${c}`);
        o.codec = c; break;
      }
      case '--connect-timeout': o.connectTimeout = num(val(), a); break;
      case '-h': case '--help': usage();
      // fallthrough: usage() exits
      default:
        if (a.startsWith('--')) usage(`unknown option ${a}`);
        if (o.peers.length === 0 && (a === 'offer' || a === 'loopback' || a === 'demo') && o.mode === 'run') { o.mode = a; break; }
        if (o.mode === 'offer') {
          if (a !== 'publish' && a !== 'view') usage(`offer takes publish or view, not ${a}`);
          o.offerRole = a; break;
        }
        {
          const m = /^(publish|view|share|watch):(.+)$/.exec(a);
          if (!m) usage(`bad peer ${a} (want publish:STREAM, view:STREAM, share:STREAM_ID or watch:STREAM_ID)`);
          o.peers.push({ role: m[1], stream: m[2] });
        }
    }
  }
  if (o.mode === 'run' && o.peers.length === 0) usage('no peers given');
  if (o.mode === 'offer' && !o.offerRole) o.offerRole = 'publish';
  return o;
}

const opts = parseArgs(process.argv.slice(2));

// ------------------------------------------------------------------------------------------------
// In-page code. Runs inside Chromium; must be self-contained.
function pageSetup() {
  window.rc = {
    pc: null,
    stream: null,
    states: [],
    async makePeer(role, media) {
      const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
      this.pc = pc;
      const log = () => this.states.push({ pc: pc.connectionState, ice: pc.iceConnectionState });
      pc.addEventListener('connectionstatechange', log);
      pc.addEventListener('iceconnectionstatechange', log);
      if (role === 'watch') {
        // The server offers; the page answers in setOffer().
        this.attachSinks(pc);
        return null;
      }
      if (role === 'publish' || role === 'share') {
        const stream = await navigator.mediaDevices.getUserMedia({
          audio: true,
          video: { width: { ideal: media.width }, height: { ideal: media.height }, frameRate: { ideal: media.fps } },
        });
        this.stream = stream;
        for (const track of stream.getTracks()) {
          const init = { direction: 'sendonly', streams: [stream] };
          if (track.kind === 'video' && media.scalability) {
            init.sendEncodings = [{ scalabilityMode: media.scalability }];
          }
          if (track.kind === 'video' && media.simulcast) {
            init.sendEncodings = [
              { rid: 'q', scaleResolutionDownBy: 4 },
              { rid: 'h', scaleResolutionDownBy: 2 },
              { rid: 'f', scaleResolutionDownBy: 1 },
            ];
          }
          const tr = pc.addTransceiver(track, init);
          if (track.kind === 'video' && media.codec) this.preferCodec(tr, media.codec);
        }
      } else {
        pc.addTransceiver('audio', { direction: 'recvonly' });
        const video = pc.addTransceiver('video', { direction: 'recvonly' });
        // Offer the AV1 dependency descriptor, which Chromium leaves out of recvonly offers by
        // default (AV1 SVC cannot be decoded without it).
        if (video.getHeaderExtensionsToNegotiate) {
          const dd = 'https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension';
          const exts = video.getHeaderExtensionsToNegotiate()
            .map((e) => (e.uri === dd && e.direction === 'stopped' ? { ...e, direction: 'recvonly' } : e));
          try { video.setHeaderExtensionsToNegotiate(exts); } catch (e) { /* older Chromium */ }
        }
        this.attachSinks(pc);
      }
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      // Non-trickle WHIP/WHEP: wait for gathering to finish (bounded; the server is ICE-lite and
      // learns our address from our checks anyway).
      if (pc.iceGatheringState !== 'complete') {
        await new Promise((resolve) => {
          const t = setTimeout(resolve, 3000);
          pc.addEventListener('icegatheringstatechange', () => {
            if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
          });
        });
      }
      return pc.localDescription.sdp;
    },
    /**
     * Restricts a sending video transceiver to one codec (plus RTX): the offer then lists only
     * that codec, so the answer cannot pick another. H.264 is limited to packetization-mode=1
     * (what the server accepts), constrained baseline 42e01f first.
     */
    preferCodec(transceiver, codec) {
      const want = `video/${codec}`.toLowerCase();
      const caps = RTCRtpSender.getCapabilities('video').codecs;
      let chosen = caps.filter((c) => c.mimeType.toLowerCase() === want);
      if (want === 'video/h264') {
        chosen = chosen.filter((c) => /packetization-mode=1/.test(c.sdpFmtpLine || ''));
        const rank = (c) => (/profile-level-id=42e01f/.test(c.sdpFmtpLine || '') ? 0 : 1);
        chosen.sort((a, b) => rank(a) - rank(b));
      }
      if (chosen.length === 0) {
        const have = [...new Set(caps.map((c) => c.mimeType))].join(', ');
        throw new Error(`this Chromium cannot send ${codec}: RTCRtpSender.getCapabilities('video') lists only ${have}`);
      }
      const rtx = caps.filter((c) => c.mimeType.toLowerCase() === 'video/rtx');
      transceiver.setCodecPreferences([...chosen, ...rtx]);
    },
    /** Keeps received tracks attached to media elements, as a real player would. */
    attachSinks(pc) {
      pc.addEventListener('track', (ev) => {
        const el = document.createElement(ev.track.kind === 'video' ? 'video' : 'audio');
        el.muted = true; el.autoplay = true; el.playsInline = true;
        el.srcObject = new MediaStream([ev.track]);
        document.body.appendChild(el);
        el.play().catch(() => {});
      });
    },
    async setAnswer(sdp) { await this.pc.setRemoteDescription({ type: 'answer', sdp }); },
    async setOffer(sdp) {
      await this.pc.setRemoteDescription({ type: 'offer', sdp });
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription(answer);
      return this.pc.localDescription.sdp;
    },
    /**
     * Dynacast: turns simulcast encodings on and off as the server's layers object says
     * ({mid: {active: [rid...], inactive: [rid...]}}); returns {mid: {rid: active}} as applied.
     */
    async applyLayers(layers) {
      const out = {};
      for (const tr of this.pc.getTransceivers()) {
        const want = layers[tr.mid];
        if (!want || !tr.sender || !tr.sender.track) continue;
        const params = tr.sender.getParameters();
        if (!params.encodings || params.encodings.length < 2) continue;
        let changed = false;
        for (const e of params.encodings) {
          if (!e.rid) continue;
          const active = want.active.includes(e.rid) ? true : (want.inactive.includes(e.rid) ? false : e.active);
          if (e.active !== active) { e.active = active; changed = true; }
        }
        if (changed) await tr.sender.setParameters(params);
        out[tr.mid] = Object.fromEntries(tr.sender.getParameters().encodings.map((e) => [e.rid, e.active]));
      }
      return out;
    },
    takeStates() { const s = this.states; this.states = []; return s; },
    state() { return this.pc ? { pc: this.pc.connectionState, ice: this.pc.iceConnectionState } : null; },
    async sample() {
      const report = await this.pc.getStats();
      const byId = new Map();
      report.forEach((s) => byId.set(s.id, s));
      const out = {};
      const pick = (s, keys) => { const o = {}; for (const k of keys) if (s[k] !== undefined) o[k] = s[k]; return o; };
      const codecOf = (s) => (s.codecId && byId.get(s.codecId) ? byId.get(s.codecId).mimeType : undefined);
      let pairId = null;
      report.forEach((s) => {
        if (s.type === 'inbound-rtp') {
          const keys = s.kind === 'video'
            ? ['ssrc', 'packetsReceived', 'packetsLost', 'bytesReceived', 'framesReceived', 'framesDecoded',
              'keyFramesDecoded', 'framesDropped', 'framesPerSecond', 'frameWidth', 'frameHeight', 'nackCount',
              'pliCount', 'firCount', 'jitter', 'decoderImplementation', 'freezeCount', 'totalFreezesDuration']
            : ['ssrc', 'packetsReceived', 'packetsLost', 'bytesReceived', 'jitter', 'totalSamplesReceived',
              'concealedSamples', 'audioLevel'];
          out[s.kind] = { ...pick(s, keys), codec: codecOf(s) };
        } else if (s.type === 'outbound-rtp') {
          const keys = s.kind === 'video'
            ? ['ssrc', 'packetsSent', 'bytesSent', 'framesEncoded', 'framesSent', 'keyFramesEncoded',
              'framesPerSecond', 'frameWidth', 'frameHeight', 'nackCount', 'pliCount', 'firCount',
              'retransmittedPacketsSent', 'qualityLimitationReason', 'encoderImplementation', 'targetBitrate',
              'scalabilityMode', 'active', 'rid']
            : ['ssrc', 'packetsSent', 'bytesSent', 'retransmittedPacketsSent', 'targetBitrate'];
          out[s.kind] = { ...pick(s, keys), codec: codecOf(s) };
          // Simulcast: one outbound-rtp per encoding, also listed by rid.
          if (s.rid) { out.encodings = out.encodings || {}; out.encodings[s.rid] = pick(s, keys); }
        } else if (s.type === 'transport' && s.selectedCandidatePairId) {
          pairId = s.selectedCandidatePairId;
        }
      });
      if (!pairId) report.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pairId = s.id; });
      const pair = pairId ? byId.get(pairId) : null;
      if (pair) {
        const cand = (id) => { const c = byId.get(id); return c ? pick(c, ['address', 'port', 'protocol', 'candidateType']) : null; };
        out.pair = {
          state: pair.state, local: cand(pair.localCandidateId), remote: cand(pair.remoteCandidateId),
          currentRoundTripTime: pair.currentRoundTripTime, bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived,
        };
      }
      return out;
    },
    close() { if (this.stream) this.stream.getTracks().forEach((t) => t.stop()); if (this.pc) this.pc.close(); },
  };
}

// ------------------------------------------------------------------------------------------------
// Node side.

/** A page origin that counts as a secure context (http://127.0.0.1), needed for getUserMedia. */
function startPageServer() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><html><head><title>ringcast peer</title></head><body></body></html>');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function launch() {
  if (!fs.existsSync(opts.chromium)) {
    throw new Error(`Chromium not found at ${opts.chromium}: run scripts/install-test-deps.sh (or set --chromium/CHROMIUM)`);
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-chromium-'));
  const args = [
    '--no-sandbox', '--disable-gpu', '--allow-loopback-in-peer-connection',
    `--use-fake-device-for-media-stream=fps=${opts.fps}`, '--use-fake-ui-for-media-stream',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
    '--no-first-run',
    // Hidden/background pages must not be throttled: every peer page runs at once.
    '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows',
  ];
  // launchPersistentContext is how playwright takes an explicit --user-data-dir; the directory is
  // fresh for every run and removed at the end. Granting camera/microphone also keeps viewers'
  // host candidates as real addresses instead of mDNS names. (No --disable-features here:
  // Chromium keeps only the last one, which would drop playwright's own list.)
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.chromium, headless: true, args, chromiumSandbox: false,
    permissions: ['camera', 'microphone'], handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
  });
  const version = context.browser() ? context.browser().version() : 'unknown';
  warn(`launched ${opts.chromium} (${version}) profile ${userDataDir}`);
  return {
    context, version,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

async function newPeerPage(context, origin, name) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') warn(`${name} console.${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => warn(`${name} pageerror: ${e.message}`));
  await page.goto(origin);
  await page.evaluate(pageSetup);
  return page;
}

async function httpExchange(method, url, body, contentType = 'application/sdp') {
  const headers = {};
  if (body !== undefined) headers['content-type'] = contentType;
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(10000) });
  const text = await res.text();
  return { status: res.status, location: res.headers.get('location'), link: res.headers.get('link'), contentType: res.headers.get('content-type'), text };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The target of the Link header entry with relation `rel`, resolved against `base`. */
function linkTarget(link, rel, base) {
  if (!link) return null;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    const rels = m ? m[2].split(';').map((x) => x.trim()).filter((x) => /^rel=/i.test(x)) : [];
    if (rels.some((x) => x.slice(4).replace(/"/g, '').split(/\s+/).includes(rel))) return new URL(m[1], base).toString();
  }
  return null;
}

/**
 * Follows a publisher's WHIP layers resource (server-sent events): applies every object to the
 * page's senders and reports it. Runs until `signal` aborts or the server ends the stream.
 */
async function followLayers(peer, url, signal) {
  const headers = { accept: 'text/event-stream' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  try {
    const res = await fetch(url, { headers, signal });
    if (res.status !== 200) throw new Error(`GET ${url} -> ${res.status}: ${(await res.text()).slice(0, 300)}`);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, '\n');
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const lines = block.split('\n');
        const event = (lines.find((l) => l.startsWith('event:')) || 'event: message').slice(6).trim();
        const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
        if (event !== 'layers' || !data) continue;
        const layers = JSON.parse(data);
        const applied = await peer.page.evaluate((l) => window.rc.applyLayers(l), layers);
        emit({ type: 'layers', peer: peer.name, t: now(), layers, applied });
      }
    }
  } catch (e) {
    if (!signal.aborted) emit({ type: 'error', peer: peer.name, t: now(), message: `layers: ${e.message}` });
  }
}

async function waitConnected(peer, timeoutS) {
  const deadline = performance.now() + timeoutS * 1000;
  while (performance.now() < deadline) {
    const st = await peer.page.evaluate(() => window.rc.state());
    if (st && st.pc === 'connected') return true;
    if (st && (st.pc === 'failed' || st.pc === 'closed')) return false;
    await sleep(100);
  }
  return false;
}

/** Stream-service viewer: POST /stream/watch, answer the server's offer, PUT the answer. */
async function watchStream(peer, spec) {
  const watchUrl = `${opts.server}/stream/watch`;
  const res = await httpExchange('POST', watchUrl, JSON.stringify({ stream_id: spec.stream }), 'application/json');
  if (res.status !== 200) throw new Error(`POST ${watchUrl} -> ${res.status} ${res.contentType || ''}: ${res.text.slice(0, 500)}`);
  const body = JSON.parse(res.text);
  const answer = await peer.page.evaluate((sdp) => window.rc.setOffer(sdp), body.sdp_offer);
  const answerUrl = new URL(body.answer_url, watchUrl).toString();
  const put = await httpExchange('PUT', answerUrl, answer);
  peer.location = new URL(body.session_url, watchUrl).toString();
  emit({ type: 'peer', peer: peer.name, role: spec.role, stream: spec.stream, t: now(), status: put.status, location: peer.location, session_id: body.session_id, offer_status: res.status });
  if (put.status !== 204) throw new Error(`PUT ${answerUrl} -> ${put.status} ${put.contentType || ''}: ${put.text.slice(0, 500)}`);
}

async function runPeers() {
  const pageServer = await startPageServer();
  const origin = `http://127.0.0.1:${pageServer.address().port}/`;
  let browser = null;
  const peers = [];
  let failed = false;
  let stopping = false;
  const shutdown = async (code) => {
    if (stopping) return; stopping = true;
    if (browser) await browser.close();
    pageServer.close();
    process.exit(code);
  };
  process.on('SIGTERM', () => { warn('SIGTERM'); shutdown(1); });
  process.on('SIGINT', () => { warn('SIGINT'); shutdown(1); });

  try {
    browser = await launch();
    emit({ type: 'browser', version: browser.version, chromium: opts.chromium });
    const counts = { publish: 0, view: 0, share: 0, watch: 0 };
    for (const spec of opts.peers) {
      const name = `${spec.role}-${counts[spec.role]++}`;
      const peer = { name, ...spec, page: null, location: null, ok: false, connected: false, samples: 0 };
      peers.push(peer);
      try {
        peer.page = await newPeerPage(browser.context, origin, name);
        const offer = await peer.page.evaluate(({ role, media }) => window.rc.makePeer(role, media),
          { role: spec.role, media: { width: opts.width, height: opts.height, fps: opts.fps, codec: opts.codec, simulcast: opts.simulcast, scalability: opts.scalability } });
        if (spec.role === 'watch') {
          await watchStream(peer, spec);
          peer.ok = true;
          continue;
        }
        let url = spec.role === 'share'
          ? `${opts.server}/stream/${encodeURIComponent(spec.stream)}/whip`
          : `${opts.server}/${spec.role === 'publish' ? 'whip' : 'whep'}/${encodeURIComponent(spec.stream)}`;
        if (spec.role === 'view' && opts.quality) url += `?quality=${encodeURIComponent(opts.quality)}`;
        const res = await httpExchange('POST', url, offer);
        peer.location = res.location ? new URL(res.location, url).toString() : null;
        emit({ type: 'peer', peer: name, role: spec.role, stream: spec.stream, t: now(), status: res.status, location: peer.location, link: res.link, content_type: res.contentType });
        if (res.status !== 201) throw new Error(`POST ${url} -> ${res.status} ${res.contentType || ''}: ${res.text.slice(0, 500)}`);
        await peer.page.evaluate((sdp) => window.rc.setAnswer(sdp), res.text);
        peer.ok = true;
        const layersUrl = linkTarget(res.link, 'urn:ringcast:whip:layers', url);
        if (layersUrl && opts.followLayers && (spec.role === 'publish' || spec.role === 'share')) {
          peer.layersAbort = new AbortController();
          peer.layersDone = followLayers(peer, layersUrl, peer.layersAbort.signal);
        }
      } catch (e) {
        failed = true;
        emit({ type: 'error', peer: name, t: now(), message: String(e && e.message ? e.message : e) });
      }
      // Stagger between peers, not after the last one: sampling starts right after it joined.
      if (opts.stagger > 0 && peers.length < opts.peers.length) await sleep(opts.stagger);
    }

    // Sample every peer until the run ends; report state changes as they happen.
    const end = performance.now() + opts.duration * 1000;
    const connectDeadline = performance.now() + opts.connectTimeout * 1000;
    while (performance.now() < end) {
      const tick = performance.now();
      await Promise.all(peers.filter((p) => p.ok).map(async (p) => {
        try {
          const states = await p.page.evaluate(() => window.rc.takeStates());
          for (const s of states) {
            emit({ type: 'state', peer: p.name, t: now(), ...s });
            if (s.pc === 'connected') p.connected = true;
          }
          const sample = await p.page.evaluate(() => window.rc.sample());
          p.samples++;
          emit({ type: 'stats', peer: p.name, role: p.role, t: now(), ...sample });
        } catch (e) {
          emit({ type: 'error', peer: p.name, t: now(), message: `getStats: ${e.message}` });
        }
      }));
      if (performance.now() > connectDeadline) {
        for (const p of peers) {
          if (p.ok && !p.connected && !p.timedOut) {
            p.timedOut = true; failed = true;
            emit({ type: 'error', peer: p.name, t: now(), message: `not connected after ${opts.connectTimeout}s` });
          }
        }
      }
      await sleep(Math.max(0, opts.interval - (performance.now() - tick)));
    }

    for (const p of peers) {
      if (p.layersAbort) { p.layersAbort.abort(); await p.layersDone; }
    }
    for (const p of peers) {
      if (!p.ok) continue;
      let deleteStatus = null;
      if (p.location && !opts.noDelete) {
        try { deleteStatus = (await httpExchange('DELETE', p.location)).status; } catch (e) { deleteStatus = String(e.message); }
      }
      await p.page.evaluate(() => window.rc.close()).catch(() => {});
      emit({ type: 'done', peer: p.name, t: now(), delete_status: deleteStatus });
    }
  } catch (e) {
    failed = true;
    emit({ type: 'error', peer: null, t: now(), message: String(e && e.stack ? e.stack : e) });
  }
  emit({
    type: 'summary', ok: !failed, t: now(),
    peers: peers.map((p) => ({ peer: p.name, role: p.role, stream: p.stream, answered: p.ok, connected: p.connected, samples: p.samples, location: p.location })),
  });
  await shutdown(failed ? 1 : 0);
}

async function runOffer() {
  const pageServer = await startPageServer();
  const browser = await launch();
  try {
    const page = await newPeerPage(browser.context, `http://127.0.0.1:${pageServer.address().port}/`, 'offer');
    const sdp = await page.evaluate(({ role, media }) => window.rc.makePeer(role, media),
      { role: opts.offerRole, media: { width: opts.width, height: opts.height, fps: opts.fps, codec: opts.codec } });
    process.stdout.write(sdp);
  } finally {
    await browser.close();
    pageServer.close();
  }
}

/** Publisher page straight into a viewer page, no server: checks browser, fake devices and stats. */
async function runLoopback() {
  const pageServer = await startPageServer();
  const origin = `http://127.0.0.1:${pageServer.address().port}/`;
  const browser = await launch();
  let ok = true;
  try {
    emit({ type: 'browser', version: browser.version, chromium: opts.chromium });
    const media = { width: opts.width, height: opts.height, fps: opts.fps, codec: opts.codec, scalability: opts.scalability };
    const pub = await newPeerPage(browser.context, origin, 'publish-0');
    const view = await newPeerPage(browser.context, origin, 'view-0');
    const offer = await pub.evaluate(({ media }) => window.rc.makePeer('publish', media), { media });
    // The viewer answers the publisher's offer (a viewer page with no transceivers of its own).
    await view.evaluate(() => {
      const pc = new RTCPeerConnection({ iceServers: [] });
      window.rc.pc = pc;
      window.rc.attachSinks(pc);
      pc.addEventListener('connectionstatechange', () => window.rc.states.push({ pc: pc.connectionState, ice: pc.iceConnectionState }));
    });
    const answer = await view.evaluate((sdp) => window.rc.setOffer(sdp), offer);
    await pub.evaluate((sdp) => window.rc.setAnswer(sdp), answer);
    const peers = [{ name: 'publish-0', page: pub }, { name: 'view-0', page: view }];
    for (const p of peers) {
      const c = await waitConnected(p, opts.connectTimeout);
      emit({ type: 'state', peer: p.name, t: now(), connected: c });
      if (!c) ok = false;
    }
    const end = performance.now() + opts.duration * 1000;
    while (performance.now() < end) {
      const tick = performance.now();
      for (const p of peers) emit({ type: 'stats', peer: p.name, role: p.name.split('-')[0], t: now(), ...(await p.page.evaluate(() => window.rc.sample())) });
      await sleep(Math.max(0, opts.interval - (performance.now() - tick)));
    }
  } catch (e) {
    ok = false;
    emit({ type: 'error', peer: null, t: now(), message: String(e && e.stack ? e.stack : e) });
  } finally {
    await browser.close();
    pageServer.close();
  }
  emit({ type: 'summary', ok, t: now() });
  process.exit(ok ? 0 : 1);
}

// ------------------------------------------------------------------------------------------------
// Demo page mode: the page does its own WHIP/WHEP; this script only clicks and watches.

/** Installed in the watcher page: counts frames the compositor presents from a <video>. */
function demoVideoProbe(id) {
  const v = document.getElementById(id);
  window.rcProbe = window.rcProbe || {};
  const probe = { presented: 0, lastMediaTime: null };
  window.rcProbe[id] = probe;
  const onFrame = (_now, meta) => {
    probe.presented++;
    probe.lastMediaTime = meta.mediaTime;
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
}

/** Reads the state of a <video> element and the page's status line and buttons. */
function demoSample({ id, status, start, stop }) {
  const v = document.getElementById(id);
  const q = v.getVideoPlaybackQuality();
  const probe = (window.rcProbe || {})[id];
  const s = v.srcObject;
  return {
    video: {
      readyState: v.readyState, paused: v.paused, ended: v.ended, currentTime: v.currentTime,
      videoWidth: v.videoWidth, videoHeight: v.videoHeight,
      totalVideoFrames: q.totalVideoFrames, droppedVideoFrames: q.droppedVideoFrames,
      presentedFrames: probe ? probe.presented : null,
      error: v.error ? v.error.message || String(v.error.code) : null,
      tracks: s ? s.getTracks().map((t) => `${t.kind}:${t.readyState}`) : [],
    },
    status: document.getElementById(status).textContent,
    startDisabled: document.getElementById(start).disabled,
    stopDisabled: document.getElementById(stop).disabled,
  };
}

async function runDemo() {
  const url = `${opts.server}/`;
  let browser = null;
  let ok = true;
  const fail = (peer, message) => { ok = false; emit({ type: 'error', peer, t: now(), message }); };
  const sides = [
    { peer: 'demo-publish', input: '#pubStream', start: 'pubStart', stop: 'pubStop', status: 'pubStatus', video: 'pubVideo', page: null },
    { peer: 'demo-watch', input: '#viewStream', start: 'viewStart', stop: 'viewStop', status: 'viewStatus', video: 'viewVideo', page: null },
  ];
  const ids = (s) => ({ id: s.video, status: s.status, start: s.start, stop: s.stop });
  try {
    browser = await launch();
    emit({ type: 'browser', version: browser.version, chromium: opts.chromium });
    for (const side of sides) {
      const page = await browser.context.newPage();
      side.page = page;
      page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') warn(`${side.peer} console.${m.type()}: ${m.text()} (${m.location().url || '?'})`); });
      page.on('pageerror', (e) => fail(side.peer, `pageerror: ${e.message}`));
      // Every WHIP/WHEP request the page makes, with the server's answer.
      page.on('response', (res) => {
        const req = res.request();
        if (res.status() >= 400) warn(`${side.peer} ${req.method()} ${req.url()} -> ${res.status()}`);
        if (/\/(whip|whep)\//.test(new URL(req.url()).pathname)) {
          emit({ type: 'http', peer: side.peer, t: now(), method: req.method(), url: req.url(), status: res.status() });
        }
      });
      page.on('requestfailed', (req) => warn(`${side.peer} request failed: ${req.method()} ${req.url()} ${req.failure() && req.failure().errorText}`));
      const res = await page.goto(url);
      if (!res || res.status() !== 200) throw new Error(`GET ${url} -> ${res ? res.status() : 'no response'}`);
      await page.fill(side.input, opts.stream);
    }
    // Publish first, then watch: a person opening the page in a second tab.
    for (const side of sides) {
      await side.page.click(`#${side.start}`);
      const started = await side.page.waitForFunction(({ stop, status }) => {
        const st = document.getElementById(status).textContent;
        return !document.getElementById(stop).disabled || st.startsWith('error') ? st : false;
      }, { stop: side.stop, status: side.status }, { timeout: opts.connectTimeout * 1000 }).then((h) => h.jsonValue()).catch((e) => `timeout: ${e.message}`);
      const running = !(await side.page.$eval(`#${side.stop}`, (b) => b.disabled));
      emit({ type: 'peer', peer: side.peer, t: now(), stream: opts.stream, started: running, status_text: started });
      if (!running) fail(side.peer, `clicking #${side.start} did not start a session: ${started}`);
      if (side.peer === 'demo-watch') await side.page.evaluate(demoVideoProbe, side.video);
    }
    const end = performance.now() + opts.duration * 1000;
    while (performance.now() < end) {
      const tick = performance.now();
      for (const side of sides) {
        emit({ type: 'stats', peer: side.peer, t: now(), ...(await side.page.evaluate(demoSample, ids(side))) });
      }
      await sleep(Math.max(0, opts.interval - (performance.now() - tick)));
    }
    // Stop the watcher, then the publisher, with the page's own buttons.
    for (const side of [...sides].reverse()) {
      await side.page.click(`#${side.stop}`);
      const st = await side.page.waitForFunction((status) => document.getElementById(status).textContent === 'stopped',
        side.status, { timeout: 10000 }).then(() => 'stopped').catch(() => null);
      const sample = await side.page.evaluate(demoSample, ids(side));
      emit({ type: 'done', peer: side.peer, t: now(), stopped: st === 'stopped', ...sample });
      if (st !== 'stopped') fail(side.peer, `clicking #${side.stop} did not stop: status "${sample.status}"`);
    }
    emit({ type: 'stopped', t: now() });
    await sleep(opts.linger * 1000);
  } catch (e) {
    fail(null, String(e && e.stack ? e.stack : e));
  } finally {
    if (browser) await browser.close();
  }
  emit({ type: 'summary', ok, t: now() });
  process.exit(ok ? 0 : 1);
}

const main = { run: runPeers, offer: runOffer, loopback: runLoopback, demo: runDemo }[opts.mode];
main().catch((e) => { warn(e && e.stack ? e.stack : String(e)); process.exit(1); });
