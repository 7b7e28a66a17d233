// Chromium against Ringcast's livestream service: a broadcaster page and two viewer pages over
// Socket.IO (socket.io-client's browser bundle, unmodified, inside the pages), and a WHEP viewer
// page; the pages chat over Socket.IO. Drives Debian's /usr/bin/chromium through playwright-core
// (headless, fake camera and microphone; see chromium.mjs). The Socket.IO pages handle the
// server's offer, answer and candidates in their event handlers, as the seed's clients do.
//
// Usage: node browser.mjs '<json config>'
//   config: {base, streamId, streamKey, tokens: {alice, v1, v2, w}, chatLimit, minFrames}
// Prints JSON lines ({"step": ...}) and a final {"summary": ...}; a failed check prints
// {"error": ...} and exits 1.

import { launch, openPage, startPageServer, waitUntil } from './chromium.mjs';

const cfg = JSON.parse(process.argv[2] || '{}');
const base = cfg.base;

function out(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }
function check(cond, what, detail) {
  if (!cond) throw new Error(`check failed: ${what}${detail === undefined ? '' : ' ' + JSON.stringify(detail)}`);
}

// ------------------------------------------------------------------------------------------------
// In-page code: self-contained, runs inside Chromium.
function pageSetup() {
  window.ls = {
    socket: null,
    pc: null,
    events: [],
    chat: [],
    errors: [],
    candidatesAdded: 0,
    connect(base, auth) {
      return new Promise((resolve, reject) => {
        // eslint-disable-next-line no-undef
        const s = io(base, { auth, transports: ['websocket'], reconnection: false, forceNew: true });
        this.socket = s;
        s.onAny((event, data) => this.events.push({ event, data }));
        s.on('chat:message', (m) => this.chat.push(m));
        s.on('stream:error', (e) => this.errors.push(e));
        s.on('connect', () => resolve(s.id));
        s.on('connect_error', (e) => reject(new Error(`connect_error ${e.message}`)));
      });
    },
    ack(event, data) { return this.socket.timeout(10000).emitWithAck(event, data); },
    newPc() {
      const pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
      this.pc = pc;
      pc.addEventListener('track', (ev) => {
        const el = document.createElement(ev.track.kind === 'video' ? 'video' : 'audio');
        el.muted = true; el.autoplay = true; el.playsInline = true;
        el.srcObject = ev.streams[0] || new MediaStream([ev.track]);
        document.body.appendChild(el);
        el.play().catch(() => {});
      });
      return pc;
    },
    async gathered(pc) {
      if (pc.iceGatheringState === 'complete') return;
      await new Promise((resolve) => {
        const t = setTimeout(resolve, 3000);
        pc.addEventListener('icegatheringstatechange', () => {
          if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
        });
      });
    },
    /** Both ways of stream:ice-candidate: ours trickled to the server (ICE-lite: it accepts
     * them), the server's (stream:ice-candidate:received) added to `pc`. */
    trickle(pc, streamId) {
      pc.addEventListener('icecandidate', (ev) => {
        if (ev.candidate) this.socket.emit('stream:ice-candidate', { streamId, candidate: ev.candidate.toJSON() });
      });
      this.socket.on('stream:ice-candidate:received', ({ candidate }) => {
        pc.addIceCandidate(candidate)
          .then(() => { this.candidatesAdded += 1; })
          .catch((e) => this.errors.push({ addIceCandidate: e.message }));
      });
    },
    /** The broadcaster: camera and microphone, the offer over Socket.IO, the server's answer
     * applied in its event handler. */
    async broadcast(streamId, streamKey) {
      const pc = this.newPc();
      const media = await navigator.mediaDevices.getUserMedia({
        audio: true, video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } },
      });
      for (const t of media.getTracks()) pc.addTransceiver(t, { direction: 'sendonly', streams: [media] });
      this.trickle(pc, streamId);
      const answered = new Promise((resolve, reject) => this.socket.once('stream:answer:received', ({ answer }) => {
        pc.setRemoteDescription(answer).then(resolve, reject);
      }));
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      const ack = await this.ack('stream:offer', { streamId, streamKey, offer: { type: 'offer', sdp: pc.localDescription.sdp } });
      if (!ack.success) throw new Error(`stream:offer refused: ${JSON.stringify(ack)}`);
      await answered;
      return ack;
    },
    /** A viewer: stream:join; the server's offer answered in its event handler. */
    async watch(streamId) {
      const pc = this.newPc();
      this.trickle(pc, streamId);
      const answered = new Promise((resolve, reject) => this.socket.once('stream:offer:received', async ({ offer }) => {
        try {
          await pc.setRemoteDescription(offer);
          await pc.setLocalDescription(await pc.createAnswer());
          resolve(await this.ack('stream:answer', { streamId, answer: { type: 'answer', sdp: pc.localDescription.sdp } }));
        } catch (e) { reject(e); }
      }));
      const ack = await this.ack('stream:join', { streamId });
      if (!ack.success) throw new Error(`stream:join refused: ${JSON.stringify(ack)}`);
      const a = await answered;
      if (!a.success) throw new Error(`stream:answer refused: ${JSON.stringify(a)}`);
      return ack;
    },
    /** A WHEP viewer's offer (recvonly audio and video); the answer comes from the Node side. */
    async whepOffer() {
      const pc = this.newPc();
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
      await pc.setLocalDescription(await pc.createOffer());
      await this.gathered(pc);
      return pc.localDescription.sdp;
    },
    async setAnswer(sdp) { await this.pc.setRemoteDescription({ type: 'answer', sdp }); },
    async video() {
      if (!this.pc) return null;
      const r = await this.pc.getStats();
      let v = null;
      r.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          v = { framesDecoded: s.framesDecoded || 0, width: s.frameWidth, height: s.frameHeight, packets: s.packetsReceived };
        }
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          v = { framesEncoded: s.framesEncoded || 0, packetsSent: s.packetsSent };
        }
      });
      return { state: this.pc.connectionState, video: v };
    },
    seen(event) { return this.events.filter((e) => e.event === event).map((e) => e.data); },
  };
}

// ------------------------------------------------------------------------------------------------
// Node side.

async function newPage(context, origin, name) {
  const page = await openPage(context, origin, name);
  await page.evaluate(pageSetup);
  return page;
}

async function rest(method, p, token, body, contentType = 'application/json') {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = contentType;
  const res = await fetch(base + p, { method, headers, body, signal: AbortSignal.timeout(15000) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

/** Reads a text/event-stream into `sink` ({event, data}) until `signal` aborts. */
async function readEvents(url, sink, signal) {
  try {
    const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal });
    sink.status = res.status;
    sink.contentType = res.headers.get('content-type');
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) { sink.closed = true; return; }
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i); buf = buf.slice(i + 2);
        let event = 'message'; const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trim());
        }
        if (data.length) sink.events.push({ event, data: JSON.parse(data.join('\n')), t: Date.now() });
      }
    }
  } catch (e) {
    if (!signal.aborted) sink.error = e.message;
  }
}

async function main() {
  const t = cfg.tokens;
  const { streamId, streamKey } = cfg;
  const minFrames = cfg.minFrames || 60;
  const pageServer = await startPageServer();
  const origin = `http://127.0.0.1:${pageServer.address().port}/`;
  const browser = await launch();
  const abort = new AbortController();
  try {
    out({ step: 'browser', version: browser.version });
    const caster = await newPage(browser.context, origin, 'broadcaster');
    await caster.evaluate(([b, tok]) => window.ls.connect(b, { token: tok }), [base, t.alice]);
    const offerAck = await caster.evaluate(([id, key]) => window.ls.broadcast(id, key), [streamId, streamKey]);
    out({ step: 'broadcasting', offerAck });

    const viewers = [];
    for (const name of ['v1', 'v2']) {
      const p = await newPage(browser.context, origin, name);
      const sid = await p.evaluate(([b, tok]) => window.ls.connect(b, { token: tok }), [base, t[name]]);
      const ack = await p.evaluate((id) => window.ls.watch(id), streamId);
      check(ack.viewerId === sid, `${name} viewerId is its socket id`, ack);
      viewers.push(p);
      out({ step: 'viewer_joined', name, viewerCount: ack.viewerCount });
    }

    // The WHEP viewer: its SDP exchange from here, the media in its page.
    const whep = await newPage(browser.context, origin, 'w');
    const offer = await whep.evaluate(() => window.ls.whepOffer());
    const r = await rest('POST', `/api/livestream/${streamId}/whep`, t.w, offer, 'application/sdp');
    check(r.status === 201, 'WHEP 201', { status: r.status, body: r.text });
    const location = new URL(r.headers.get('location'), base).toString();
    const link = r.headers.get('link') || '';
    const sseRel = /<([^>]+)>;\s*rel="urn:ietf:params:whep:ext:core:server-sent-events";\s*events="([^"]+)"/.exec(link);
    check(sseRel && sseRel[2].split(',').includes('viewercount'), 'SSE link with viewercount', link);
    await whep.evaluate((sdp) => window.ls.setAnswer(sdp), r.text);
    const sub = await rest('POST', new URL(sseRel[1], base).pathname, t.w, JSON.stringify(['viewercount', 'active', 'inactive']));
    check(sub.status === 201 && sub.headers.get('location'), 'SSE subscription 201', { status: sub.status, body: sub.text });
    const sse = { events: [] };
    const sseDone = readEvents(new URL(sub.headers.get('location'), base).toString(), sse, abort.signal);
    out({ step: 'whep_viewer', location });

    // Every viewer decodes video.
    const all = [...viewers, whep];
    const frames = await waitUntil('every viewer decoding video', async () => {
      const stats = await Promise.all(all.map((p) => p.evaluate(() => window.ls.video())));
      const decoded = stats.map((s) => (s && s.video && s.video.framesDecoded) || 0);
      return { ok: decoded.every((f) => f >= minFrames), decoded, stats };
    }, 60000);
    const casterStats = await caster.evaluate(() => window.ls.video());
    out({ step: 'video', decoded: frames.decoded, sizes: frames.stats.map((s) => s.video && `${s.video.width}x${s.video.height}`), broadcaster: casterStats });
    // stream:ice-candidate:received reached every Socket.IO page and each candidate was added.
    for (const p of [caster, ...viewers]) {
      const c = await p.evaluate(() => ({ added: window.ls.candidatesAdded, errors: window.ls.errors }));
      check(c.added >= 1 && c.errors.length === 0, `${p.name} added the server's candidates`, c);
    }
    const joined = await caster.evaluate(() => window.ls.seen('stream:viewer:joined'));
    check(joined.length === 3 && joined.filter((j) => j.client === 'whep').length === 1, 'broadcaster heard two Socket.IO viewers and the WHEP viewer join', joined);

    // Chat among the broadcaster and the two viewers; v1 floods past the limit.
    for (const p of [caster, ...viewers]) {
      const j = await p.evaluate((id) => window.ls.ack('join-livestream', { streamId: id }), streamId);
      check(j.success, `${p.name} joined the chat`, j);
    }
    const limit = cfg.chatLimit;
    const flood = await viewers[0].evaluate(([id, n]) => Promise.all(
      Array.from({ length: n }, (_, i) => window.ls.ack('chat:message', { streamId: id, message: `v1 says ${i}` })),
    ), [streamId, limit + 3]);
    const accepted = flood.filter((a) => a.success).length;
    const limited = flood.filter((a) => !a.success);
    check(accepted === limit && limited.length === 3 && limited.every((a) => a.code === 'rate_limited'), 'flood limited', flood);
    for (const i of [0, 1]) {
      const a = await viewers[1].evaluate(([id, k]) => window.ls.ack('chat:message', { streamId: id, message: `v2 says ${k}` }), [streamId, i]);
      check(a.success, 'v2 chats', a);
    }
    const total = limit + 2;
    const chats = await waitUntil('every member has every message', async () => {
      const lists = await Promise.all([caster, ...viewers].map((p) => p.evaluate(() => window.ls.chat.map((m) => m.id))));
      return { ok: lists.every((l) => l.length >= total), lists };
    }, 15000);
    const hist = JSON.parse((await rest('GET', `/api/livestream/${streamId}/chat?limit=100`, t.alice)).text);
    const stored = hist.messages.map((m) => m.id);
    for (const l of chats.lists) check(JSON.stringify(l) === JSON.stringify(stored), 'same order as stored', { l, stored });
    const v1Errors = await viewers[0].evaluate(() => window.ls.errors.filter((e) => e.code === 'rate_limited').length);
    check(v1Errors === 3, 'v1 got three rate_limited stream:error', v1Errors);
    out({ step: 'chat', accepted, limited: limited.length, delivered: chats.lists.map((l) => l.length), stored: stored.length, error: limited[0].error });

    // SSE: the viewer count reached 3 while everyone watched, and the broadcaster was active.
    await waitUntil('SSE viewercount 3', async () => ({ ok: sse.events.some((e) => e.event === 'viewercount' && e.data.viewercount === 3), events: sse.events }), 10000);
    check(sse.events.some((e) => e.event === 'active'), 'SSE active', sse.events);

    // Leaving: v2 leaves over Socket.IO, the WHEP viewer DELETEs its session.
    const left = await viewers[1].evaluate((id) => window.ls.ack('stream:leave', { streamId: id }), streamId);
    check(left.success, 'v2 left', left);
    await waitUntil('broadcaster hears v2 leave', async () => {
      const l = await caster.evaluate(() => window.ls.seen('stream:viewer:left'));
      return { ok: l.length === 1 && l[0].viewerCount === 2, l };
    }, 10000);
    const del = await rest('DELETE', new URL(location).pathname, t.w);
    check(del.status === 200, 'WHEP DELETE', del.status);
    await waitUntil('broadcaster hears the WHEP viewer leave', async () => {
      const l = await caster.evaluate(() => window.ls.seen('stream:viewer:left'));
      return { ok: l.length === 2 && l[1].client === 'whep' && l[1].viewerCount === 1, l };
    }, 10000);
    await waitUntil('SSE viewercount 1', async () => ({ ok: sse.events.some((e) => e.event === 'viewercount' && e.data.viewercount === 1), events: sse.events }), 10000);

    // The end: v1 hears stream:ended; the key rotates.
    const ended = await caster.evaluate((id) => window.ls.ack('stream:end', { streamId: id, recordingUrl: 'https://rec.example/browser.webm' }), streamId);
    check(ended.success && ended.streamKey && ended.streamKey !== streamKey, 'ended, new key', ended);
    await waitUntil('v1 hears stream:ended', async () => {
      const e = await viewers[0].evaluate(() => window.ls.seen('stream:ended'));
      return { ok: e.length === 1, e };
    }, 10000);
    // The WHEP event stream: viewercount 0, inactive, and it closes.
    await waitUntil('SSE inactive and closed', async () => ({ ok: sse.closed === true && sse.events.length > 0 && sse.events[sse.events.length - 1].event === 'inactive', events: sse.events, closed: sse.closed }), 10000);
    out({ step: 'ended', sse: sse.events.map((e) => (e.event === 'viewercount' ? `viewercount=${e.data.viewercount}` : e.event)), sseClosed: sse.closed });
    out({ summary: { ok: true, decoded: frames.decoded, chatAccepted: accepted, chatLimited: limited.length, newKey: ended.streamKey } });
  } finally {
    abort.abort();
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
