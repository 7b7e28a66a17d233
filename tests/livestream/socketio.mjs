// Socket.IO scenarios against Ringcast's livestream service with the unmodified socket.io-client.
// Usage: node socketio.mjs <scenario> '<json config>'
//   signaling config: {base, tokens: {alice, bob, carol, dave, erin, mallory, moderator},
//                      offerSdp: <path>, chatLimit, maxViewers}; the server's admin is `moderator`
//   stream-limit config: {base, tokens: {alice, bob, carol}}
// Prints one JSON line per step ({"step": ...}) and a final {"summary": ...}; any failed check
// prints {"error": ...} and exits 1.

import { readFileSync } from 'node:fs';
import { io } from 'socket.io-client';
import { answerFor } from './sdp.mjs';

const [scenario, rawConfig] = process.argv.slice(2);
const cfg = JSON.parse(rawConfig || '{}');
const base = cfg.base;
const sockets = [];

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function check(cond, what, detail) {
  if (!cond) {
    const e = new Error(`check failed: ${what}${detail === undefined ? '' : ' ' + JSON.stringify(detail)}`);
    e.check = true;
    throw e;
  }
}

async function rest(method, path, token, body, extraHeaders = {}) {
  const headers = { ...extraHeaders };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = text; }
  return { status: r.status, body: json };
}

/** A socket that records every event it receives. */
function connect(name, auth, transports) {
  const s = io(base, { auth, forceNew: true, reconnection: false, transports: transports || ['polling', 'websocket'] });
  s.name = name;
  s.log = [];
  s.onAny((event, ...args) => s.log.push({ event, data: args[0] }));
  sockets.push(s);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name}: no connect within 10 s`)), 10000);
    s.on('connect', () => { clearTimeout(t); resolve(s); });
    s.on('connect_error', (e) => { clearTimeout(t); reject(new Error(`${name}: connect_error ${e.message}`)); });
  });
}

/** Waits until `s` has received `count` events named `event` matching `pred`; returns them. */
async function waitEvents(s, event, count = 1, pred = () => true, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = s.log.filter((e) => e.event === event && pred(e.data));
    if (got.length >= count) return got.map((e) => e.data);
    if (Date.now() > end) {
      throw new Error(`${s.name}: ${count} × ${event} not received within ${timeoutMs} ms (got ${got.length}; log ${JSON.stringify(s.log.map((e) => e.event))})`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

function ack(s, event, data) {
  return s.timeout(10000).emitWithAck(event, data);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function signaling() {
  const t = cfg.tokens;
  const offerSdp = readFileSync(cfg.offerSdp, 'utf8');
  const created = await rest('POST', '/api/livestream/create', t.alice, { title: 'Socket.IO test', recordingEnabled: false });
  check(created.status === 201, 'create 201', created);
  const streamId = created.body.streamId;
  const streamKey = created.body.streamKey;
  out({ step: 'created', streamId });

  // Not live yet: a viewer is refused.
  const early = await connect('early', { token: t.bob });
  const notLive = await ack(early, 'stream:join', { streamId });
  check(notLive.success === false && notLive.code === 'not_live' && notLive.status === 409, 'join before live refused', notLive);
  early.close();

  // Broadcaster: a wrong key is refused with stream:error and a negative ack.
  const caster = await connect('caster', { token: t.alice }, ['websocket']);
  const wrong = await ack(caster, 'stream:offer', { streamId, streamKey: 'lsk_wrong', offer: { type: 'offer', sdp: offerSdp } });
  check(wrong.success === false && wrong.code === 'invalid_key', 'wrong key refused', wrong);
  await waitEvents(caster, 'stream:error', 1, (d) => d.code === 'invalid_key');
  out({ step: 'wrong_key_refused', code: wrong.code });

  // The right key: the livestream goes live, the server answers.
  const ok = await ack(caster, 'stream:offer', { streamId, streamKey, offer: { type: 'offer', sdp: offerSdp } });
  check(ok.success === true, 'offer accepted', ok);
  const [offerAck] = await waitEvents(caster, 'stream:offer:ack');
  check(offerAck.streamId === streamId, 'offer ack names the stream', offerAck);
  const [answered] = await waitEvents(caster, 'stream:answer:received');
  check(answered.answer && answered.answer.type === 'answer' && answered.answer.sdp.includes('a=ice-lite'), 'answer is an ICE-lite SDP answer', answered);
  const cands = await waitEvents(caster, 'stream:ice-candidate:received');
  check(cands[0].candidate.candidate.startsWith('candidate:'), 'server candidate', cands[0]);
  const live = await rest('GET', `/api/livestream/${streamId}`);
  check(live.body.status === 'live', 'live after the offer', live.body);
  const iceAck = await ack(caster, 'stream:ice-candidate', { streamId, candidate: { candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0 } });
  check(iceAck.success === true, 'ice candidate accepted', iceAck);
  out({ step: 'broadcasting', candidates: cands.length });

  // A socket without a token cannot watch (JWT is configured).
  const anon = await connect('anon', {});
  const refused = await ack(anon, 'stream:join', { streamId });
  check(refused.success === false && refused.code === 'unauthorized', 'anonymous join refused', refused);
  out({ step: 'anonymous_refused' });

  // Two viewers: polling and websocket transports.
  const bob = await connect('bob', { token: t.bob }, ['polling']);
  const carol = await connect('carol', { token: t.carol }, ['websocket']);
  const joinedBob = await ack(bob, 'stream:join', { streamId });
  check(joinedBob.success === true && joinedBob.viewerCount === 1 && joinedBob.viewerId === bob.id, 'bob joined', joinedBob);
  const joinedCarol = await ack(carol, 'stream:join', streamId);
  check(joinedCarol.success === true && joinedCarol.viewerCount === 2, 'carol joined', joinedCarol);
  await waitEvents(bob, 'stream:join:ack');
  const [offerBob] = await waitEvents(bob, 'stream:offer:received');
  const [offerCarol] = await waitEvents(carol, 'stream:offer:received');
  check(offerBob.offer.type === 'offer' && offerBob.offer.sdp.includes('a=sendonly'), 'server offer', offerBob);
  // stream:ice-candidate both ways for viewers too: the server's candidates arrive, ours are taken.
  const [viewerCand] = await waitEvents(bob, 'stream:ice-candidate:received');
  check(viewerCand.streamId === streamId && viewerCand.candidate.candidate.startsWith('candidate:') && offerBob.offer.sdp.includes(`a=${viewerCand.candidate.candidate}`), 'viewer gets the offer\'s candidate', viewerCand);
  const viewerIce = await ack(carol, 'stream:ice-candidate', { streamId, candidate: { candidate: 'candidate:2 1 udp 2122260223 192.0.2.2 50001 typ host', sdpMid: '0', sdpMLineIndex: 0 } });
  check(viewerIce.success === true, 'viewer candidate accepted', viewerIce);
  const joinedEvents = await waitEvents(caster, 'stream:viewer:joined', 2);
  const joinedIds = joinedEvents.map((e) => e.viewerId).sort();
  check(JSON.stringify(joinedIds) === JSON.stringify([bob.id, carol.id].sort()), 'broadcaster told of both viewers', joinedEvents);
  out({ step: 'viewers_joined', viewerIds: joinedIds });

  // The viewer limit (LIVESTREAM_MAX_VIEWERS) holds for Socket.IO viewers.
  const dave = await connect('dave', { token: t.dave });
  const full = await ack(dave, 'stream:join', { streamId });
  check(full.success === false && full.code === 'viewer_limit' && full.status === 429 && full.limit === cfg.maxViewers, 'third viewer refused at the limit', full);
  await waitEvents(dave, 'stream:error', 1, (d) => d.code === 'viewer_limit');
  out({ step: 'viewer_limit', code: full.code });

  for (const [s, o] of [[bob, offerBob], [carol, offerCarol]]) {
    const a = await ack(s, 'stream:answer', { streamId, answer: { type: 'answer', sdp: answerFor(o.offer.sdp) } });
    check(a.success === true, `${s.name} answer accepted`, a);
  }
  const again = await ack(bob, 'stream:answer', { streamId, answer: { type: 'answer', sdp: answerFor(offerBob.offer.sdp) } });
  check(again.success === false && again.status === 409, 'second answer refused', again);
  const bad = await ack(carol, 'stream:answer', { streamId, answer: { type: 'answer', sdp: 'v=0\r\nnot sdp' } });
  check(bad.success === false, 'garbage answer refused', bad);
  out({ step: 'answers', secondAnswer: again.status, garbage: bad.status });

  // Chat: three members; bob floods past the limit; everyone sees the same stored messages.
  for (const [s, payload] of [[bob, { streamId }], [carol, streamId], [dave, { streamId }]]) {
    const j = await ack(s, 'join-livestream', payload);
    check(j.success === true, `${s.name} joined the chat`, j);
  }
  const limit = cfg.chatLimit;
  const flood = await Promise.all(Array.from({ length: limit + 3 }, (_, i) => ack(bob, 'chat:message', { streamId, message: `bob ${i}` })));
  const accepted = flood.filter((r) => r.success === true);
  const limited = flood.filter((r) => r.success === false);
  check(accepted.length === limit, `${limit} accepted`, flood);
  // Messages of one sender are handled in the order sent: the first ones pass, the last are refused.
  check(flood.slice(0, limit).every((r) => r.success === true) && flood.slice(limit).every((r) => r.success === false), 'first in, first served', flood);
  check(limited.length === 3 && limited.every((r) => r.code === 'rate_limited' && r.status === 429 && r.retryAfterMs > 0 && /at most \d+ messages per \d+ s/.test(r.error)), 'three rate-limited with a clear error', limited);
  await waitEvents(bob, 'stream:error', 3, (d) => d.code === 'rate_limited');
  for (const i of [0, 1]) {
    const r = await ack(carol, 'chat:message', { streamId, message: `carol ${i}` });
    check(r.success === true, 'carol chats', r);
  }
  const total = limit + 2;
  const seen = {};
  for (const s of [bob, carol, dave]) {
    const msgs = await waitEvents(s, 'chat:message', total);
    check(msgs.every((m) => m.id && m.userId && m.message && m.timestamp), 'message fields', msgs[0]);
    seen[s.name] = msgs.map((m) => m.id);
  }
  const history = await rest('GET', `/api/livestream/${streamId}/chat?limit=100`, t.dave);
  const stored = history.body.messages.map((m) => m.id);
  for (const name of Object.keys(seen)) {
    check(JSON.stringify(seen[name]) === JSON.stringify(stored), `${name} saw the stored order`, { seen: seen[name], stored });
  }
  out({ step: 'chat', accepted: accepted.length, limited: limited.length, delivered: Object.fromEntries(Object.entries(seen).map(([k, v]) => [k, v.length])), stored: stored.length });

  // The chat room: dave leaves it; erin joins and sends at once, without waiting for the join's
  // acknowledgement, and still gets her own message (the server handles a socket's chat events
  // in the order sent); members get it, dave does not.
  const daveLeft = await ack(dave, 'leave-livestream', { streamId });
  check(daveLeft.success === true, 'dave left the chat', daveLeft);
  const erin = await connect('erin', { token: t.erin });
  erin.emit('join-livestream', { streamId });
  const erinSent = await ack(erin, 'chat:message', { streamId, message: 'erin right after joining' });
  check(erinSent.success === true, 'erin chats', erinSent);
  const mine = (m) => m.message === 'erin right after joining';
  await waitEvents(erin, 'chat:message', 1, mine, 5000);
  for (const s of [bob, carol]) await waitEvents(s, 'chat:message', 1, mine, 5000);
  await sleep(300);
  check(dave.log.filter((e) => e.event === 'chat:message').length === total, 'nothing reaches dave after leave-livestream', dave.log.map((e) => e.event));
  // A moderator's deletion reaches the room as chat:deleted.
  const del = await rest('DELETE', `/api/livestream/${streamId}/chat/${erinSent.message.id}`, t.alice);
  check(del.status === 200, 'owner deletes a message', del);
  const [deleted] = await waitEvents(bob, 'chat:deleted', 1, (d) => d.id === erinSent.message.id);
  check(deleted.streamId === streamId, 'chat:deleted names the stream', deleted);
  out({ step: 'chat_room', erinSawOwn: true, daveAfterLeave: total, deleted: deleted.id });

  // Only the key holder or the owner ends it.
  const mallory = await connect('mallory', { token: t.mallory });
  const notYours = await ack(mallory, 'stream:end', { streamId });
  check(notYours.success === false && notYours.status === 403, 'mallory cannot end', notYours);

  // Carol leaves: the broadcaster hears of it.
  const left = await ack(carol, 'stream:leave', { streamId });
  check(left.success === true, 'carol left', left);
  const [leftEv] = await waitEvents(caster, 'stream:viewer:left');
  check(leftEv.viewerId === carol.id && leftEv.viewerCount === 1, 'viewer left event', leftEv);
  const analytics = await rest('GET', `/api/livestream/${streamId}/analytics`, t.alice);
  check(analytics.body.peakViewers === 2 && analytics.body.currentViewers === 1, 'analytics mid-stream', analytics.body);
  out({ step: 'carol_left', peak: analytics.body.peakViewers, current: analytics.body.currentViewers });

  // The end: every viewer and the chat room hear stream:ended; the key rotates.
  const ended = await ack(caster, 'stream:end', { streamId, recordingUrl: 'https://rec.example/socketio.webm' });
  check(ended.success === true && ended.streamKey && ended.streamKey !== streamKey, 'ended with a new key', ended);
  await waitEvents(bob, 'stream:ended', 1, (d) => d.streamId === streamId);
  // erin is only in the chat room.
  await waitEvents(erin, 'stream:ended', 1, (d) => d.streamId === streamId);
  const oldKey = await ack(caster, 'stream:offer', { streamId, streamKey, offer: { type: 'offer', sdp: offerSdp } });
  check(oldKey.success === false && oldKey.code === 'invalid_key', 'old key refused after the end', oldKey);
  const final = await rest('GET', `/api/livestream/${streamId}/analytics`, t.alice);
  check(final.body.status === 'ended' && final.body.currentViewers === 0 && final.body.viewers.every((v) => v.leftAt), 'rows closed at the end', final.body);
  out({ step: 'ended', newKey: ended.streamKey !== streamKey });

  // Peer-to-peer-model broadcaster: identifies with its key at connect and answers
  // stream:viewer:joined with stream:offer:viewer; the first such offer publishes, later ones get
  // the same answer; the viewer still gets the server's offer.
  const restarted = await rest('POST', `/api/livestream/${streamId}/start`, null, undefined, { 'x-stream-key': ended.streamKey });
  check(restarted.status === 200 && restarted.body.status === 'live', 'live again with the new key', restarted);
  const p2p = await connect('p2p', { streamId, streamKey: ended.streamKey });
  p2p.on('stream:viewer:joined', ({ viewerId }) => {
    p2p.emit('stream:offer:viewer', { viewerId, offer: { type: 'offer', sdp: offerSdp } });
  });
  const v1 = await connect('v1', { token: t.bob });
  const v2 = await connect('v2', { token: t.carol });
  await ack(v1, 'stream:join', { streamId });
  const [a1] = await waitEvents(p2p, 'stream:answer:received', 1);
  check(a1.viewerId === v1.id && a1.answer.sdp.includes('a=ice-lite'), 'p2p broadcaster answered for v1', a1);
  await ack(v2, 'stream:join', { streamId });
  const answers = await waitEvents(p2p, 'stream:answer:received', 2);
  check(answers[1].viewerId === v2.id && answers[1].answer.sdp === a1.answer.sdp, 'same answer for v2', answers[1]);
  await waitEvents(v2, 'stream:offer:received');
  out({ step: 'p2p_model', answers: answers.length });

  // A moderator (LIVESTREAM_ADMINS) ends it at once over Socket.IO: viewers hear why; the key
  // rotates, and the moderator does not learn the new one.
  const moderator = await connect('moderator', { token: t.moderator });
  const modEnd = await ack(moderator, 'stream:end', { streamId });
  check(modEnd.success === true && modEnd.streamKey === undefined, 'moderator ended it without learning the key', modEnd);
  const [modEnded] = await waitEvents(v1, 'stream:ended', 1, (d) => d.streamId === streamId);
  check(modEnded.reason === 'moderator', 'ended by a moderator', modEnded);
  const stale = await ack(p2p, 'stream:offer', { streamId, streamKey: ended.streamKey, offer: { type: 'offer', sdp: offerSdp } });
  check(stale.success === false && stale.code === 'invalid_key', 'the key rotated at the moderator\'s end', stale);
  out({ step: 'moderator_end', reason: modEnded.reason });

  out({ summary: { ok: true, streamId, chatAccepted: accepted.length, chatLimited: limited.length, delivered: total, peak: analytics.body.peakViewers } });
}

function pct(xs, p) {
  const a = [...xs].sort((x, y) => x - y);
  return a.length ? a[Math.min(a.length - 1, Math.floor((a.length - 1) * p))] : null;
}

/** Many viewers and one chat: join latency (server offer included) and chat fan-out latency. */
async function load() {
  const t = cfg.tokens;
  const n = cfg.viewers;
  const messages = cfg.messages;
  const created = await rest('POST', '/api/livestream/create', t.alice, { title: 'load' });
  check(created.status === 201, 'create', created);
  const { streamId, streamKey } = created.body;
  const started = await rest('POST', `/api/livestream/${streamId}/start`, null, undefined, { 'x-stream-key': streamKey });
  check(started.status === 200, 'start', started);
  const viewers = [];
  for (let i = 0; i < n; i++) viewers.push(await connect(`u${i}`, { token: t[`u${i}`] }, ['websocket']));
  // Joins, all at once: each is a viewer row, a placement and a server-written SDP offer.
  const t0 = performance.now();
  const joinMs = await Promise.all(viewers.map(async (s) => {
    const a = performance.now();
    const r = await ack(s, 'stream:join', { streamId });
    check(r.success === true, 'join', r);
    await waitEvents(s, 'stream:offer:received', 1, () => true, 30000);
    return performance.now() - a;
  }));
  const joinAll = performance.now() - t0;
  const info = await rest('GET', `/api/livestream/${streamId}`);
  check(info.body.viewerCount === n, 'every viewer counted', info.body);
  for (const s of viewers) {
    const j = await ack(s, 'join-livestream', { streamId });
    check(j.success === true, 'chat join', j);
  }
  // Chat fan-out: one sender, every viewer a receiver.
  const sender = viewers[0];
  const sentAt = new Map();
  const lat = [];
  for (const s of viewers) {
    s.on('chat:message', (m) => { const at = sentAt.get(m.message); if (at !== undefined) lat.push(performance.now() - at); });
  }
  const c0 = performance.now();
  for (let i = 0; i < messages; i++) {
    const text = `load ${i}`;
    sentAt.set(text, performance.now());
    const r = await ack(sender, 'chat:message', { streamId, message: text });
    check(r.success === true, 'chat accepted', r);
  }
  const deadline = Date.now() + 30000;
  while (lat.length < n * messages && Date.now() < deadline) await sleep(20);
  const chatAll = performance.now() - c0;
  check(lat.length === n * messages, 'every delivery arrived', { got: lat.length, want: n * messages });
  const analytics = await rest('GET', `/api/livestream/${streamId}/analytics`, t.alice);
  out({ summary: {
    viewers: n,
    peak: analytics.body.peakViewers,
    joinMs: { p50: pct(joinMs, 0.5), p95: pct(joinMs, 0.95), max: Math.max(...joinMs), all: joinAll },
    chat: { messages, deliveries: lat.length, p50: pct(lat, 0.5), p95: pct(lat, 0.95), max: Math.max(...lat), all: chatAll },
  } });
}

/**
 * A livestream's own viewer limit (`maxViewers` 1) over Socket.IO, next to one without: the
 * second viewer of the limited one is refused with `viewer_limit` and limit 1; the other admits
 * both.
 */
async function streamLimit() {
  const t = cfg.tokens;
  const live = async (body) => {
    const created = await rest('POST', '/api/livestream/create', t.alice, body);
    check(created.status === 201, 'create', created);
    check(created.body.maxViewers === (body.maxViewers ?? null), 'maxViewers shown', created.body);
    const { streamId, streamKey } = created.body;
    const started = await rest('POST', `/api/livestream/${streamId}/start`, null, undefined, { 'x-stream-key': streamKey });
    check(started.status === 200, 'start', started);
    return streamId;
  };
  const limited = await live({ title: 'one viewer', maxViewers: 1 });
  const open = await live({ title: 'open' });
  const bob = await connect('bob', { token: t.bob });
  const carol = await connect('carol', { token: t.carol });
  const first = await ack(bob, 'stream:join', { streamId: limited });
  check(first.success === true && first.viewerCount === 1, 'first viewer joins', first);
  const full = await ack(carol, 'stream:join', { streamId: limited });
  check(full.success === false && full.code === 'viewer_limit' && full.status === 429 && full.limit === 1, 'second viewer refused at the stream\'s limit', full);
  const [err] = await waitEvents(carol, 'stream:error', 1, (d) => d.code === 'viewer_limit');
  check(err.streamId === limited, 'stream:error names the stream', err);
  const counts = [];
  for (const s of [bob, carol]) {
    const r = await ack(s, 'stream:join', { streamId: open });
    check(r.success === true, `${s.name} joins the open stream`, r);
    counts.push(r.viewerCount);
  }
  out({ step: 'stream_limit', code: full.code, limit: full.limit, openCounts: counts });
  out({ summary: { ok: true, limited, open } });
}

const scenarios = { signaling, load, 'stream-limit': streamLimit };

try {
  const run = scenarios[scenario];
  if (!run) throw new Error(`unknown scenario ${scenario}`);
  await run();
  for (const s of sockets) s.close();
  await sleep(100);
  process.exit(0);
} catch (e) {
  out({ error: e.message, stack: e.check ? undefined : e.stack });
  for (const s of sockets) s.close();
  process.exit(1);
}
