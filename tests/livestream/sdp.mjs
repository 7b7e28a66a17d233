// SDP helpers for signaling tests without a WebRTC stack: a well-formed viewer answer to the
// server's offer (what a browser would answer, minus the media: recvonly, a=setup:active, its
// own ICE credentials and a certificate fingerprint).

const HEX = '0123456789ABCDEF';

function randomToken(n) {
  const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let s = '';
  for (let i = 0; i < n; i++) s += chars[Math.floor(Math.random() * chars.length)];
  return s;
}

function fakeFingerprint() {
  const bytes = [];
  for (let i = 0; i < 32; i++) {
    const b = Math.floor(Math.random() * 256);
    bytes.push(HEX[b >> 4] + HEX[b & 15]);
  }
  return 'sha-256 ' + bytes.join(':');
}

/** A viewer's answer to `offerSdp` (the server's sendonly offer). */
export function answerFor(offerSdp) {
  const ufrag = randomToken(8);
  const pwd = randomToken(24);
  const fp = fakeFingerprint();
  const out = [];
  for (const line of offerSdp.split(/\r?\n/)) {
    if (!line) continue;
    if (line === 'a=ice-lite' || line === 'a=end-of-candidates') continue;
    if (line.startsWith('a=candidate:') || line.startsWith('a=ssrc') || line.startsWith('a=msid:')) continue;
    if (line.startsWith('a=ice-ufrag:')) { out.push('a=ice-ufrag:' + ufrag); continue; }
    if (line.startsWith('a=ice-pwd:')) { out.push('a=ice-pwd:' + pwd); continue; }
    if (line.startsWith('a=fingerprint:')) { out.push('a=fingerprint:' + fp); continue; }
    if (line === 'a=setup:actpass') { out.push('a=setup:active'); continue; }
    if (line === 'a=sendonly') { out.push('a=recvonly'); continue; }
    out.push(line);
  }
  return out.join('\r\n') + '\r\n';
}
