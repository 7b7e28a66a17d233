#!/usr/bin/env python3
"""aiortc WHIP publisher / WHEP viewer for Ringcast: an independent WebRTC stack to test against.

Publishers send a synthetic moving test pattern (a bright vertical bar sweeping over a gradient,
30 fps by default) and a 440 Hz tone; viewers decode what they receive and count video frames,
audio frames and how many distinct bar positions they saw (proof that the picture moves).

Output: one JSON object per line on stdout, in the same shapes as tests/browser/peer.mjs:
  {"type":"peer",  "peer":"view-0", "role":"view", "stream":"s", "status":201, "location":"..."}
  {"type":"state", "peer":"view-0", "t":1.2, "pc":"connected", "ice":"completed"}
  {"type":"stats", "peer":"view-0", "t":2.0, "video":{"framesDecoded":..}, "audio":{..}}
  {"type":"error", "peer":"view-0", "message":"..."}
  {"type":"done",  "peer":"view-0", "delete_status":200}
  {"type":"summary", "ok":true, "peers":[...]}
Diagnostics go to stderr. Exit status 0 when every peer got its answer, connected and ran to the
end; 1 otherwise; 2 on bad usage.

Usage:
  aiortc_peer.py [--server URL] [options] ROLE:STREAM [ROLE:STREAM ...]   (ROLE: publish | view)
  aiortc_peer.py offer publish|view      print an offer SDP (no server needed)
  aiortc_peer.py loopback                publisher -> viewer directly, no server (self-test)
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import logging
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import aioice
import aioice.ice
import aiortc
import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

# aioice leaves 127.0.0.1 out of its host candidates; the server under test listens on loopback
# (and the host's other addresses), so put loopback first.
_original_get_host_addresses = aioice.ice.get_host_addresses


def _host_addresses_with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    addresses = _original_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    if use_ipv4 and "127.0.0.1" not in addresses:
        addresses.insert(0, "127.0.0.1")
    return addresses


aioice.ice.get_host_addresses = _host_addresses_with_loopback

T0 = time.monotonic()


def now() -> float:
    return round(time.monotonic() - T0, 3)


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def warn(msg: str) -> None:
    sys.stderr.write(f"[aiortc_peer {now():.2f}] {msg}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------------- media sources

VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
AUDIO_PTIME = 0.020
BAR_STEP = 8  # pixels the bar moves per frame


class PatternVideoTrack(MediaStreamTrack):
    """A moving test pattern in yuv420p: gradient background, bright bar moving right."""

    kind = "video"

    def __init__(self, width: int, height: int, fps: float) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.frames = 0
        self._start: float | None = None
        y = np.tile(np.linspace(16, 160, width, dtype=np.uint8), (height, 1))
        self._y = y
        self._uv = np.full((height // 2, width), 128, dtype=np.uint8)
        self._bar = max(8, width // 16)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self.frames / self.fps - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        yuv = np.vstack([self._y, self._uv])
        x = (self.frames * BAR_STEP) % (self.width - self._bar)
        yuv[: self.height, x : x + self._bar] = 235
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = int(self.frames * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.frames += 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A 440 Hz sine, mono s16 at 48 kHz, in 20 ms frames."""

    kind = "audio"

    def __init__(self, freq: float = 440.0) -> None:
        super().__init__()
        self.freq = freq
        self.frames = 0
        self._start: float | None = None
        self._samples = int(AUDIO_RATE * AUDIO_PTIME)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self.frames * AUDIO_PTIME - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        n0 = self.frames * self._samples
        t = (np.arange(n0, n0 + self._samples) / AUDIO_RATE).astype(np.float64)
        pcm = (0.3 * 32767 * np.sin(2 * math.pi * self.freq * t)).astype("<i2")
        frame = av.AudioFrame(format="s16", layout="mono", samples=self._samples)
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate = AUDIO_RATE
        frame.pts = n0
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self.frames += 1
        return frame


# --------------------------------------------------------------------------------- peers


class Peer:
    """One RTCPeerConnection with its role, counters and WHIP/WHEP resource."""

    def __init__(self, name: str, role: str, stream: str, args: argparse.Namespace) -> None:
        self.name, self.role, self.stream, self.args = name, role, stream, args
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.location: str | None = None
        self.answered = False
        self.connected = False
        self.failed = False
        self.video_track: PatternVideoTrack | None = None
        self.audio_track: ToneAudioTrack | None = None
        # viewer counters
        self.video_frames = 0
        self.audio_frames = 0
        self.width = 0
        self.height = 0
        self.bar_positions: set[int] = set()
        self._consumers: list[asyncio.Task] = []
        # video codec in use: what the sender was told to send / what the receiver got
        self.video_codec: str | None = None
        self.video_sender = None

        @self.pc.on("connectionstatechange")
        def _on_state() -> None:
            st = self.pc.connectionState
            emit({"type": "state", "peer": self.name, "t": now(), "pc": st, "ice": self.pc.iceConnectionState})
            if st == "connected":
                self.connected = True
            elif st == "failed":
                self.failed = True

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                for t in self.pc.getTransceivers():
                    if t.receiver.track is track:
                        self._watch_receiver(t.receiver)
            self._consumers.append(asyncio.ensure_future(self._consume(track)))

        if role == "publish":
            self.video_track = PatternVideoTrack(args.width, args.height, args.fps)
            self.audio_track = ToneAudioTrack()
            self.pc.addTransceiver(self.audio_track, direction="sendonly")
            self.video_transceiver = self.pc.addTransceiver(self.video_track, direction="sendonly")
            self._watch_sender(self.video_transceiver.sender)
        elif role == "view":
            self.pc.addTransceiver("audio", direction="recvonly")
            self.pc.addTransceiver("video", direction="recvonly")
        # role "answer" (loopback viewer) adds nothing: it answers an offer.

    def _watch_sender(self, sender: RTCRtpSender) -> None:
        """Notes the codec aiortc sends: the first of the negotiated send parameters."""
        self.video_sender = sender
        send = sender.send

        async def send_and_note(parameters):  # noqa: ANN001, ANN202 - aiortc's own types
            if parameters.codecs:
                self.video_codec = parameters.codecs[0].mimeType
            return await send(parameters)

        sender.send = send_and_note

    def _watch_receiver(self, receiver) -> None:  # noqa: ANN001 - aiortc's RTCRtpReceiver
        """Notes the codec of the RTP packets received (by payload type; RTX excluded), the
        equivalent of the inbound-rtp stats' codec in a browser. Hooks aiortc 1.16's private
        packet handler, looked up on the instance by the DTLS transport."""
        handle = receiver._handle_rtp_packet

        async def handle_and_note(packet, arrival_time_ms):  # noqa: ANN001, ANN202
            codecs = getattr(receiver, "_RTCRtpReceiver__codecs", {})
            codec = codecs.get(packet.payload_type)
            if codec is not None and codec.mimeType.lower() != "video/rtx":
                self.video_codec = codec.mimeType
            return await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = handle_and_note

    def encoder_implementation(self) -> str | None:
        """The video encoder aiortc created, e.g. `H264Encoder(libx264)` (None before the first
        frame)."""
        enc = getattr(self.video_sender, "_RTCRtpSender__encoder", None)
        if enc is None:
            return None
        ctx = getattr(enc, "codec", None)
        name = getattr(ctx, "name", None)
        return f"{type(enc).__name__}({name})" if name else type(enc).__name__

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.video_frames += 1
                    self.width, self.height = frame.width, frame.height
                    if self.video_frames % 5 == 0:
                        self.bar_positions.add(bar_position(frame))
                else:
                    self.audio_frames += 1
        except MediaStreamError:
            pass

    async def offer(self) -> str:
        if self.role == "publish" and self.args.codec:
            prefer_codec(self.video_transceiver, self.args.codec)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def sample(self) -> dict:
        out: dict = {}
        stats = await self.pc.getStats()
        for s in stats.values():
            if s.type == "inbound-rtp":
                keys = ("ssrc", "packetsReceived", "packetsLost", "jitter")
            elif s.type == "outbound-rtp" and self.role == "publish":
                keys = ("ssrc", "packetsSent", "bytesSent")
            else:
                continue
            out.setdefault(s.kind, {}).update({k: getattr(s, k) for k in keys if hasattr(s, k)})
        if self.role == "publish":
            v = out.setdefault("video", {})
            v["framesEncoded"] = self.video_track.frames if self.video_track else 0
            v["codec"] = self.video_codec
            v["encoderImplementation"] = self.encoder_implementation()
            out.setdefault("audio", {})["framesSent"] = self.audio_track.frames if self.audio_track else 0
        else:
            v = out.setdefault("video", {})
            v.update({"framesDecoded": self.video_frames, "frameWidth": self.width, "frameHeight": self.height,
                      "barPositions": len(self.bar_positions), "codec": self.video_codec})
            out.setdefault("audio", {})["framesDecoded"] = self.audio_frames
        pair = selected_pair(self.pc)
        if pair:
            out["pair"] = pair
        return out

    async def close(self) -> None:
        for t in self._consumers:
            t.cancel()
        await self.pc.close()


def prefer_codec(transceiver: RTCRtpTransceiver, codec: str) -> None:
    """Restricts a video transceiver to one codec (plus RTX), so the offer lists only that one."""
    caps = RTCRtpSender.getCapabilities("video").codecs
    want = f"video/{codec}".lower()
    chosen = [c for c in caps if c.mimeType.lower() == want]
    if want == "video/h264":
        chosen = [c for c in chosen if c.parameters.get("packetization-mode") == "1"]
        chosen.sort(key=lambda c: c.parameters.get("profile-level-id") != "42e01f")
    if not chosen:
        have = ", ".join(sorted({c.mimeType for c in caps}))
        raise RuntimeError(f"aiortc {aiortc.__version__} cannot send {codec}: its video codecs are {have}")
    transceiver.setCodecPreferences(chosen + [c for c in caps if c.mimeType.lower() == "video/rtx"])


def bar_position(frame: av.VideoFrame) -> int:
    """Column of the brightest vertical band of the luma plane, quantised to the bar's step."""
    y = frame.to_ndarray(format="gray")
    band = y[y.shape[0] // 4 : 3 * y.shape[0] // 4 : 4, :].astype(np.float32)
    return int(np.argmax(band.mean(axis=0))) // BAR_STEP


def selected_pair(pc: RTCPeerConnection) -> dict | None:
    """The nominated ICE pair of the bundle transport, as local/remote addresses."""
    try:
        # aiortc exposes no selected-pair stats; read aioice's nominated pair (component 1).
        conn = pc.getTransceivers()[0].sender.transport.transport._connection
        pair = conn._nominated.get(1)
        if pair is None:
            return None
        lc, rc = pair.local_candidate, pair.remote_candidate
        return {"local": {"address": lc.host, "port": lc.port, "candidateType": lc.type},
                "remote": {"address": rc.host, "port": rc.port, "candidateType": rc.type}}
    except (AttributeError, IndexError, KeyError):
        return None


# --------------------------------------------------------------------------------- HTTP


def _http(method: str, url: str, body: str | None, token: str | None) -> dict:
    headers = {}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/sdp"
        data = body.encode()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return {"status": res.status, "location": res.headers.get("Location"),
                    "content_type": res.headers.get("Content-Type"), "text": res.read().decode("utf-8", "replace")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "location": e.headers.get("Location"),
                "content_type": e.headers.get("Content-Type"), "text": e.read().decode("utf-8", "replace")}


async def http(method: str, url: str, body: str | None = None, token: str | None = None) -> dict:
    return await asyncio.to_thread(_http, method, url, body, token)


# --------------------------------------------------------------------------------- modes


async def sample_loop(peers: list[Peer], args: argparse.Namespace) -> None:
    end = time.monotonic() + args.duration
    connect_deadline = time.monotonic() + args.connect_timeout
    while time.monotonic() < end:
        tick = time.monotonic()
        for p in peers:
            if not p.answered:
                continue
            emit({"type": "stats", "peer": p.name, "role": p.role, "t": now(), **(await p.sample())})
            if not p.connected and not p.failed and time.monotonic() > connect_deadline:
                p.failed = True
                emit({"type": "error", "peer": p.name, "t": now(),
                      "message": f"not connected after {args.connect_timeout}s"})
        await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - tick)))


async def run_peers(args: argparse.Namespace) -> int:
    peers: list[Peer] = []
    counts = {"publish": 0, "view": 0}
    ok = True
    try:
        for role, stream in args.peers:
            name = f"{role}-{counts[role]}"
            counts[role] += 1
            p = Peer(name, role, stream, args)
            peers.append(p)
            url = f"{args.server}/{'whip' if role == 'publish' else 'whep'}/{urllib.parse.quote(stream, safe='')}"
            try:
                offer = await p.offer()
                res = await http("POST", url, offer, args.token)
                p.location = urllib.parse.urljoin(url, res["location"]) if res["location"] else None
                emit({"type": "peer", "peer": name, "role": role, "stream": stream, "t": now(),
                      "status": res["status"], "location": p.location, "content_type": res["content_type"]})
                if res["status"] != 201:
                    raise RuntimeError(f"POST {url} -> {res['status']} {res['content_type']}: {res['text'][:500]}")
                await p.pc.setRemoteDescription(RTCSessionDescription(sdp=res["text"], type="answer"))
                p.answered = True
            except Exception as e:  # noqa: BLE001 - every failure is reported, then the run goes on
                ok = False
                emit({"type": "error", "peer": name, "t": now(), "message": f"{type(e).__name__}: {e}"})
            if args.stagger > 0:
                await asyncio.sleep(args.stagger / 1000)
        await sample_loop(peers, args)
        for p in peers:
            if not p.answered:
                continue
            status = None
            if p.location:
                try:
                    status = (await http("DELETE", p.location, None, args.token))["status"]
                except Exception as e:  # noqa: BLE001
                    status = str(e)
            emit({"type": "done", "peer": p.name, "t": now(), "delete_status": status})
    finally:
        for p in peers:
            await p.close()
    ok = ok and all(p.answered and p.connected and not p.failed for p in peers)
    emit({"type": "summary", "ok": ok, "t": now(), "peers": [
        {"peer": p.name, "role": p.role, "stream": p.stream, "answered": p.answered, "connected": p.connected,
         "location": p.location, "video_frames": p.video_frames, "audio_frames": p.audio_frames,
         "bar_positions": len(p.bar_positions),
         "frames_sent": p.video_track.frames if p.video_track else None} for p in peers]})
    return 0 if ok else 1


async def run_offer(args: argparse.Namespace) -> int:
    p = Peer(f"{args.offer_role}-0", args.offer_role, "offer", args)
    try:
        sys.stdout.write(await p.offer())
    finally:
        await p.close()
    return 0


async def run_loopback(args: argparse.Namespace) -> int:
    pub = Peer("publish-0", "publish", "loopback", args)
    view = Peer("view-0", "answer", "loopback", args)
    try:
        offer = await pub.offer()
        await view.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await view.pc.setLocalDescription(await view.pc.createAnswer())
        await pub.pc.setRemoteDescription(view.pc.localDescription)
        pub.answered = view.answered = True
        await sample_loop([pub, view], args)
    finally:
        await pub.close()
        await view.close()
    ok = pub.connected and view.connected and view.video_frames > 0
    emit({"type": "summary", "ok": ok, "t": now(), "peers": [
        {"peer": "view-0", "video_frames": view.video_frames, "audio_frames": view.audio_frames,
         "bar_positions": len(view.bar_positions), "frames_sent": pub.video_track.frames}]})
    return 0 if ok else 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="http://127.0.0.1:8080", help="server base URL")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds to run after the last peer started")
    ap.add_argument("--stagger", type=float, default=500.0, help="ms between starting two peers")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between stats samples")
    ap.add_argument("--token", default=None, help="Bearer token for WHIP/WHEP")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--connect-timeout", type=float, default=15.0)
    ap.add_argument("--codec", type=str.lower, choices=("vp8", "vp9", "av1", "h264"), default=None,
                    help="publishers offer only this video codec (aiortc sends vp8 and h264 only: others fail)")
    ap.add_argument("--verbose", action="store_true", help="aiortc/aioice debug logs on stderr")
    ap.add_argument("items", nargs="+", help="ROLE:STREAM ... | offer publish|view | loopback")
    args = ap.parse_args(argv)
    args.server = args.server.rstrip("/")
    args.mode, args.peers, args.offer_role = "run", [], None
    items = args.items
    if items[0] == "offer":
        args.mode = "offer"
        args.offer_role = items[1] if len(items) > 1 else "publish"
        if args.offer_role not in ("publish", "view") or len(items) > 2:
            ap.error("offer takes publish or view")
    elif items[0] == "loopback":
        args.mode = "loopback"
        if len(items) > 1:
            ap.error("loopback takes no peers")
    else:
        for it in items:
            role, sep, stream = it.partition(":")
            if not sep or role not in ("publish", "view") or not stream:
                ap.error(f"bad peer {it!r} (want publish:STREAM or view:STREAM)")
            args.peers.append((role, stream))
    if args.width % 2 or args.height % 2:
        ap.error("width and height must be even (yuv420p)")
    return args


def main() -> int:
    args = parse_args(sys.argv[1:])
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    if args.mode != "offer":
        emit({"type": "stack", "aiortc": aiortc.__version__, "aioice": aioice.__version__, "av": av.__version__})
    mode = {"run": run_peers, "offer": run_offer, "loopback": run_loopback}[args.mode]
    try:
        return asyncio.run(mode(args))
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    sys.exit(main())
