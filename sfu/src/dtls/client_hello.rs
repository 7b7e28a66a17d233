//! A read-only look at a DTLS 1.2 ClientHello (RFC 6347 §4.2.2) for the SRTP protection profiles
//! it offers in `use_srtp` (RFC 5764 §4.1.1), so the server can apply its own preference order.

use crate::srtp::SrtpProfile;

/// DTLS record content type `handshake`.
const CONTENT_HANDSHAKE: u8 = 22;
/// Handshake message type `client_hello`.
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Extension type `use_srtp`.
const EXT_USE_SRTP: u16 = 14;
/// DTLS record header: type(1) version(2) epoch(2) sequence(6) length(2).
const RECORD_HEADER_LEN: usize = 13;
/// Handshake header: type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3).
const HANDSHAKE_HEADER_LEN: usize = 12;

/// What a ClientHello offers that the server cares about before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientHelloOffer {
    /// The client offered AEAD_AES_128_GCM.
    pub aead_aes_128_gcm: bool,
    /// The client offered AES_CM_128_HMAC_SHA1_80.
    pub aes_128_cm_sha1_80: bool,
}

impl ClientHelloOffer {
    /// The profile the server picks, in [`SrtpProfile::PREFERENCE`] order, or `None` when the
    /// client offers none that Ringcast implements.
    pub fn preferred(self) -> Option<SrtpProfile> {
        SrtpProfile::PREFERENCE.into_iter().find(|p| match p {
            SrtpProfile::AeadAes128Gcm => self.aead_aes_128_gcm,
            SrtpProfile::Aes128CmHmacSha1_80 => self.aes_128_cm_sha1_80,
        })
    }
}

/// What a datagram says about the ClientHello it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientHelloPeek {
    /// A complete ClientHello and what it offers (a ClientHello without `use_srtp` offers nothing).
    Offer(ClientHelloOffer),
    /// Part of a ClientHello fragmented across datagrams: its offer cannot be read here.
    Fragment,
}

/// Looks for a ClientHello in `datagram`. Returns `None` when the datagram holds no ClientHello
/// or what it holds does not parse.
pub fn peek_client_hello(datagram: &[u8]) -> Option<ClientHelloPeek> {
    let mut rest = datagram;
    while rest.len() >= RECORD_HEADER_LEN {
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        let body = rest.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len)?;
        let epoch = u16::from_be_bytes([rest[3], rest[4]]);
        if rest[0] == CONTENT_HANDSHAKE
            && epoch == 0
            && let Some(offer) = parse_handshake(body)
        {
            return Some(offer);
        }
        rest = &rest[RECORD_HEADER_LEN + len..];
    }
    None
}

fn parse_handshake(record: &[u8]) -> Option<ClientHelloPeek> {
    let hdr = record.get(..HANDSHAKE_HEADER_LEN)?;
    if hdr[0] != HANDSHAKE_CLIENT_HELLO {
        return None;
    }
    let length = u24(&hdr[1..4]);
    let offset = u24(&hdr[6..9]);
    let frag_len = u24(&hdr[9..12]);
    if frag_len > length || offset + frag_len > length {
        return None;
    }
    if offset != 0 || frag_len != length {
        record.get(HANDSHAKE_HEADER_LEN..HANDSHAKE_HEADER_LEN + frag_len)?;
        return Some(ClientHelloPeek::Fragment);
    }
    let body = record.get(HANDSHAKE_HEADER_LEN..HANDSHAKE_HEADER_LEN + length)?;
    parse_client_hello_body(body).map(ClientHelloPeek::Offer)
}

fn parse_client_hello_body(body: &[u8]) -> Option<ClientHelloOffer> {
    let mut r = Reader(body);
    r.skip(2 + 32)?; // client_version, random
    let n = r.u8()?;
    r.skip(usize::from(n))?; // session_id
    let n = r.u8()?;
    r.skip(usize::from(n))?; // cookie
    let n = r.u16()?;
    r.skip(usize::from(n))?; // cipher_suites
    let n = r.u8()?;
    r.skip(usize::from(n))?; // compression_methods
    let mut offer = ClientHelloOffer::default();
    if r.0.is_empty() {
        return Some(offer);
    }
    let n = r.u16()?;
    let mut exts = Reader(r.take(usize::from(n))?);
    while !exts.0.is_empty() {
        let ty = exts.u16()?;
        let n = exts.u16()?;
        let data = exts.take(usize::from(n))?;
        if ty == EXT_USE_SRTP {
            let mut e = Reader(data);
            let n = e.u16()?;
            let mut ids = Reader(e.take(usize::from(n))?);
            while !ids.0.is_empty() {
                match SrtpProfile::from_dtls_id(ids.u16()?) {
                    Some(SrtpProfile::AeadAes128Gcm) => offer.aead_aes_128_gcm = true,
                    Some(SrtpProfile::Aes128CmHmacSha1_80) => offer.aes_128_cm_sha1_80 = true,
                    None => {}
                }
            }
        }
    }
    Some(offer)
}

fn u24(b: &[u8]) -> usize {
    (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
}

/// A cursor over a byte slice that fails (returns `None`) instead of reading past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A minimal DTLS 1.2 ClientHello record offering `profiles` in `use_srtp`.
    fn client_hello(profiles: &[u16]) -> Vec<u8> {
        let mut body = vec![0xfe, 0xfd];
        body.extend([7u8; 32]);
        body.extend([0, 0]); // session_id, cookie
        body.extend([0, 2, 0xc0, 0x2b]); // one cipher suite
        body.extend([1, 0]); // null compression
        let mut srtp = Vec::new();
        srtp.extend(((profiles.len() * 2) as u16).to_be_bytes());
        for p in profiles {
            srtp.extend(p.to_be_bytes());
        }
        srtp.push(0); // no MKI
        let mut exts = Vec::new();
        exts.extend(23u16.to_be_bytes()); // extended_master_secret
        exts.extend(0u16.to_be_bytes());
        exts.extend(EXT_USE_SRTP.to_be_bytes());
        exts.extend((srtp.len() as u16).to_be_bytes());
        exts.extend(srtp);
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let len = body.len() as u32;
        let mut hs = vec![HANDSHAKE_CLIENT_HELLO];
        hs.extend(&len.to_be_bytes()[1..]);
        hs.extend([0, 0, 0, 0, 0]);
        hs.extend(&len.to_be_bytes()[1..]);
        hs.extend(body);
        let mut rec = vec![CONTENT_HANDSHAKE, 0xfe, 0xff, 0, 0, 0, 0, 0, 0, 0, 0];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    fn offer(datagram: &[u8]) -> ClientHelloOffer {
        match peek_client_hello(datagram) {
            Some(ClientHelloPeek::Offer(o)) => o,
            other => panic!("expected a complete ClientHello, got {other:?}"),
        }
    }

    #[test]
    fn server_preference_wins_over_client_order() {
        // Chromium's order: AES_CM first, then AES-256-GCM, then AES-128-GCM.
        assert_eq!(
            offer(&client_hello(&[0x0001, 0x0008, 0x0007])).preferred(),
            Some(SrtpProfile::AeadAes128Gcm)
        );
        assert_eq!(
            offer(&client_hello(&[0x0001])).preferred(),
            Some(SrtpProfile::Aes128CmHmacSha1_80)
        );
        assert_eq!(offer(&client_hello(&[0x0008, 0x0002])).preferred(), None);
    }

    #[test]
    fn fragmented_client_hello_is_recognised_but_not_read() {
        let mut ch = client_hello(&[0x0007]);
        // Declare a total length larger than this fragment: the first of several fragments.
        ch[RECORD_HEADER_LEN + 1] = 0x01;
        assert_eq!(peek_client_hello(&ch), Some(ClientHelloPeek::Fragment));
    }

    #[test]
    fn truncated_or_foreign_records_are_not_client_hellos() {
        let ch = client_hello(&[0x0007]);
        for cut in 0..ch.len() {
            assert_eq!(peek_client_hello(&ch[..cut]), None, "cut at {cut}");
        }
        let mut app = ch.clone();
        app[0] = 23;
        assert_eq!(peek_client_hello(&app), None);
    }

    proptest! {
        #[test]
        fn peek_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = peek_client_hello(&bytes);
        }
    }
}
