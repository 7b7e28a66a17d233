// The page side of the voice test (tests/tests/media_server_voice.rs), bundled by voice.mjs with
// esbuild into `window.ringcast`. A participant of a voice channel: an `audio` session that
// publishes a WebAudio tone (optionally muted: track.enabled = false) with mediasoup-client, and
// may take the channel's Opus mix (`POST /sessions/{id}/subscribe` with `{"mix": true}`), whose
// decoded samples it measures with the Goertzel algorithm.

import { Device } from 'mediasoup-client';

const state = { transports: [], producer: null, consumer: null, analysis: null, blocks: 0, session: null };

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

function wire(o, s, transport) {
  transport.on('connect', ({ dtlsParameters }, ok, fail) => {
    api(o, 'POST', `/sessions/${s.session_id}/connect`, {
      transport_id: transport.id, dtls_parameters: dtlsParameters,
    }).then(() => ok(), fail);
  });
  state.transports.push(transport);
}

/** The amplitude of the `freq` component of `x` (Goertzel), relative to full scale. */
function goertzel(x, n, rate, freq) {
  const w = (2 * Math.PI * freq) / rate;
  const c = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s0 = x[i] + c * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - c * s1 * s2;
  return (2 * Math.sqrt(Math.max(power, 0))) / n;
}

const PROBES = [440, 550, 660, 880, 1000];

function analyse(x, n, rate) {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += x[i] * x[i];
  const out = { rms: Math.sqrt(sum / n), rate, at: Date.now() };
  for (const f of PROBES) out[`a${f}`] = goertzel(x, n, rate, f);
  return out;
}

/** Reads the decoded samples of `track` and analyses each second of them. */
function startAnalysis(track) {
  const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
  let buf = null;
  let n = 0;
  let tmp = new Float32Array(4096);
  (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const frames = value.numberOfFrames;
      if (!buf) buf = new Float32Array(value.sampleRate);
      if (tmp.length < frames) tmp = new Float32Array(frames);
      value.copyTo(tmp.subarray(0, frames), { planeIndex: 0, format: 'f32-planar' });
      const rate = value.sampleRate;
      value.close();
      for (let i = 0; i < frames; i++) {
        buf[n++] = tmp[i];
        if (n === buf.length) {
          state.analysis = analyse(buf, n, rate);
          state.blocks += 1;
          n = 0;
        }
      }
    }
  })().catch((e) => { state.analysisError = String(e); });
}

/** Joins the voice channel: an audio session, a tone producer and/or the mix. */
export async function join(o) {
  const s = await api(o, 'POST', '/sessions', { type: 'audio', channel_id: o.channel, user_id: o.user });
  state.session = s;
  const device = new Device();
  await device.load({ routerRtpCapabilities: s.router_rtp_capabilities });
  const out = { session_id: s.session_id, producer: null, mix: null };
  if (o.tone) {
    const ctx = new AudioContext({ sampleRate: 48000 });
    const osc = ctx.createOscillator();
    osc.frequency.value = o.tone;
    const gain = ctx.createGain();
    gain.gain.value = 0.5;
    const dest = ctx.createMediaStreamDestination();
    osc.connect(gain).connect(dest);
    osc.start();
    await ctx.resume();
    const track = dest.stream.getAudioTracks()[0];
    if (o.muted) track.enabled = false;
    const transport = device.createSendTransport({ ...s.send_transport, iceServers: s.ice_servers });
    wire(o, s, transport);
    transport.on('produce', ({ kind, rtpParameters }, ok, fail) => {
      api(o, 'POST', `/sessions/${s.session_id}/publish`, { kind, rtp_parameters: rtpParameters })
        .then((r) => ok({ id: r.id }), fail);
    });
    state.producer = await transport.produce({ track, codecOptions: s.audio_codec_options });
    out.producer = state.producer.id;
  }
  if (o.mix) {
    const transport = device.createRecvTransport({ ...s.recv_transport, iceServers: s.ice_servers });
    wire(o, s, transport);
    const c = await api(o, 'POST', `/sessions/${s.session_id}/subscribe`, {
      mix: true, rtp_capabilities: device.rtpCapabilities,
    });
    state.consumer = await transport.consume({
      id: c.id, producerId: c.producerId, kind: c.kind, rtpParameters: c.rtpParameters,
    });
    const el = document.createElement('audio');
    el.muted = true;
    el.autoplay = true;
    el.srcObject = new MediaStream([state.consumer.track]);
    document.body.appendChild(el);
    await el.play().catch(() => {});
    startAnalysis(state.consumer.track);
    out.mix = { id: c.id, track_id: c.track_id, kind: c.kind, codec: c.rtpParameters.codecs[0] };
  }
  return out;
}

/** What the page sends and receives, and the last second of the mix it decoded. */
export async function sample() {
  const out = { analysis: state.analysis, blocks: state.blocks, analysisError: state.analysisError || null };
  if (state.producer) {
    (await state.producer.getStats()).forEach((r) => {
      if (r.type === 'outbound-rtp') out.sent = { packetsSent: r.packetsSent, bytesSent: r.bytesSent };
    });
  }
  if (state.consumer) {
    (await state.consumer.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp') {
        out.received = {
          packetsReceived: r.packetsReceived, packetsLost: r.packetsLost,
          totalSamplesReceived: r.totalSamplesReceived, audioLevel: r.audioLevel,
        };
      }
    });
  }
  return out;
}

/** Deletes the session and closes the transports. */
export async function close(o) {
  const deleted = state.session ? await api(o, 'DELETE', `/sessions/${state.session.session_id}`) : null;
  for (const t of state.transports) t.close();
  return { deleted };
}
