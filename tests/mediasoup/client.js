// The page side of the mediasoup-client test, bundled by run.mjs with esbuild into `window.ringcast`.
// It uses Ringcast's /sessions API exactly as an application built on mediasoup-client would:
// load the Device with the router's capabilities, create transports from the session, answer the
// transports' 'connect' and 'produce' events with POST /sessions/{id}/connect and /publish, and
// consume with POST /sessions/{id}/subscribe.

import { Device } from 'mediasoup-client';

const state = { producers: [], consumers: [], transports: [], events: [] };

async function api(o, method, path, body) {
  const headers = { authorization: `Bearer ${o.token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(o.server + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function session(o) {
  const body = { type: o.type || 'video', channel_id: o.channel, user_id: o.user };
  if (o.audioQuality) body.audio_quality = o.audioQuality;
  const s = await api(o, 'POST', '/sessions', body);
  const device = new Device();
  await device.load({ routerRtpCapabilities: s.router_rtp_capabilities });
  return { s, device };
}

function wire(o, s, transport) {
  transport.on('connect', ({ dtlsParameters }, ok, fail) => {
    api(o, 'POST', `/sessions/${s.session_id}/connect`, {
      transport_id: transport.id, dtls_parameters: dtlsParameters,
    }).then(() => ok(), fail);
  });
  transport.on('connectionstatechange', (st) => state.events.push({ transport: transport.direction, state: st, at: Date.now() }));
  state.transports.push(transport);
}

/** Creates a session, produces the fake camera and microphone on its send transport. */
export async function publish(o) {
  const { s, device } = await session(o);
  const transport = device.createSendTransport({ ...s.send_transport, iceServers: s.ice_servers });
  wire(o, s, transport);
  transport.on('produce', ({ kind, rtpParameters }, ok, fail) => {
    api(o, 'POST', `/sessions/${s.session_id}/publish`, { kind, rtp_parameters: rtpParameters })
      .then((r) => ok({ id: r.id }), fail);
  });
  const media = await navigator.mediaDevices.getUserMedia({
    audio: true, video: { width: o.width || 640, height: o.height || 480 },
  });
  const video = await transport.produce({ track: media.getVideoTracks()[0] });
  // The session's audio preset, as codec options for the producer.
  const audio = await transport.produce({ track: media.getAudioTracks()[0], codecOptions: s.audio_codec_options });
  state.producers.push(video, audio);
  state.session = s;
  return {
    session_id: s.session_id, video: video.id, audio: audio.id,
    audio_codec_options: s.audio_codec_options, can_produce_video: device.canProduce('video'),
  };
}

/** Creates a session and consumes `o.tracks` on its receive transport, playing them. */
export async function consume(o) {
  const { s, device } = await session(o);
  const transport = device.createRecvTransport({ ...s.recv_transport, iceServers: s.ice_servers });
  wire(o, s, transport);
  const answers = [];
  for (const track of o.tracks) {
    const c = await api(o, 'POST', `/sessions/${s.session_id}/subscribe`, {
      track_id: track, rtp_capabilities: device.rtpCapabilities,
    });
    answers.push(c);
    const consumer = await transport.consume({
      id: c.id, producerId: c.producerId, kind: c.kind, rtpParameters: c.rtpParameters,
    });
    state.consumers.push(consumer);
  }
  const el = document.createElement('video');
  el.muted = true; el.autoplay = true; el.playsInline = true;
  el.srcObject = new MediaStream(state.consumers.map((c) => c.track));
  document.body.appendChild(el);
  await el.play().catch(() => {});
  state.session = s;
  return {
    session_id: s.session_id,
    consumers: answers.map((c) => ({ id: c.id, kind: c.kind, codec: c.rtpParameters.codecs[0] })),
  };
}

function pick(report, type) {
  const out = [];
  report.forEach((r) => { if (r.type === type) out.push(r); });
  return out;
}

/** The page's RTP figures: what its producers send and its consumers receive. */
export async function sample() {
  const out = { producers: [], consumers: [], transports: state.transports.map((t) => ({ direction: t.direction, state: t.connectionState })) };
  for (const p of state.producers) {
    for (const r of pick(await p.getStats(), 'outbound-rtp')) {
      out.producers.push({
        kind: p.kind, id: p.id, packetsSent: r.packetsSent, bytesSent: r.bytesSent,
        frameWidth: r.frameWidth, framesEncoded: r.framesEncoded,
      });
    }
  }
  for (const c of state.consumers) {
    for (const r of pick(await c.getStats(), 'inbound-rtp')) {
      out.consumers.push({
        kind: c.kind, id: c.id, producerId: c.producerId, packetsReceived: r.packetsReceived,
        bytesReceived: r.bytesReceived, packetsLost: r.packetsLost, jitter: r.jitter,
        framesDecoded: r.framesDecoded, frameWidth: r.frameWidth, frameHeight: r.frameHeight,
        totalSamplesReceived: r.totalSamplesReceived,
      });
    }
  }
  return out;
}

/** Deletes the session, then closes the transports. */
export async function close(o) {
  const deleted = state.session ? await api(o, 'DELETE', `/sessions/${state.session.session_id}`) : null;
  for (const t of state.transports) t.close();
  return { deleted, events: state.events };
}
