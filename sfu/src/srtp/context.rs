//! One direction of SRTP/SRTCP protection (RFC 3711 §3.3, §3.4): session keys derived once, per-SSRC
//! roll-over counters, SRTCP indices and replay windows in fixed-capacity tables, and in-place
//! protect/unprotect that never allocates.

use super::aes_cm::{self, AesCmKey};
use super::error::SrtpError;
use super::gcm::{self, GcmKey};
use super::header::{RTCP_CLEAR, parse_rtcp_ssrc, parse_rtp};
use super::kdf::{Label, MasterKey, wipe};
use super::profile::SrtpProfile;
use super::replay::ReplayWindow;
use super::rollover::{MAX_INDEX, estimate_index};
use super::ssrc_table::SsrcTable;

/// SSRCs one context tracks, separately for SRTP and SRTCP, unless built with
/// [`SrtpContext::with_max_ssrcs`].
pub const DEFAULT_MAX_SSRCS: usize = 64;
/// Replay window of SRTP packets per SSRC (RFC 3711 §3.3.2 asks for at least 64).
pub const SRTP_REPLAY_WINDOW: u64 = RtpWindow::SIZE;
/// Replay window of SRTCP packets per SSRC.
pub const SRTCP_REPLAY_WINDOW: u64 = RtcpWindow::SIZE;

type RtpWindow = ReplayWindow<8>;
type RtcpWindow = ReplayWindow<2>;

/// Largest SRTCP index (31 bits).
const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;
/// The E flag of the SRTCP index word.
const E_FLAG: u32 = 0x8000_0000;

/// Per-SSRC SRTP state. Sending uses only the highest index (for the roll-over counter);
/// receiving also uses the window.
#[derive(Debug, Clone)]
struct RtpStream {
    window: RtpWindow,
}

impl RtpStream {
    fn starting_at(index: u64) -> Self {
        let mut window = RtpWindow::new();
        window.accept(index);
        RtpStream { window }
    }

    /// The index of `seq` on this stream (RFC 3711 §3.3.1).
    fn index_of(&self, seq: u16) -> u64 {
        match self.window.highest() {
            Some(highest) => estimate_index(highest, seq),
            None => u64::from(seq),
        }
    }
}

/// Per-SSRC SRTCP state: the next index to send, and the received indices.
#[derive(Debug, Clone, Default)]
struct RtcpStream {
    next_index: u32,
    window: RtcpWindow,
}

/// The session keys of one profile, for SRTP and for SRTCP.
// The variants differ in size, but a context holds exactly one and is not moved per packet;
// boxing would only add a pointer chase to every packet.
#[allow(clippy::large_enum_variant)]
enum Transform {
    Gcm { rtp: GcmKey, rtcp: GcmKey },
    AesCm { rtp: AesCmKey, rtcp: AesCmKey },
}

/// One direction of an SRTP association: either protects what we send or unprotects what we
/// receive (RFC 3711 §3.2: a cryptographic context per direction).
pub struct SrtpContext {
    profile: SrtpProfile,
    transform: Transform,
    rtp: SsrcTable<RtpStream>,
    rtcp: SsrcTable<RtcpStream>,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("profile", &self.profile)
            .field("rtp_ssrcs", &self.rtp.len())
            .field("rtcp_ssrcs", &self.rtcp.len())
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// Derives the session keys from a master key and salt (RFC 3711 §4.3, key derivation rate 0),
    /// tracking up to [`DEFAULT_MAX_SSRCS`] SSRCs for SRTP and as many for SRTCP.
    pub fn new(
        profile: SrtpProfile,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        Self::with_max_ssrcs(profile, master_key, master_salt, DEFAULT_MAX_SSRCS)
    }

    /// Like [`new`](Self::new) with a chosen SSRC limit (for SRTP and, separately, SRTCP). All the
    /// per-SSRC storage is reserved here, so no packet ever allocates.
    pub fn with_max_ssrcs(
        profile: SrtpProfile,
        master_key: &[u8],
        master_salt: &[u8],
        max_ssrcs: usize,
    ) -> Result<Self, SrtpError> {
        let key: &[u8; 16] = master_key.try_into().map_err(|_| SrtpError::BadKeyLength {
            expected: profile.key_len(),
            actual: master_key.len(),
        })?;
        if master_salt.len() != profile.salt_len() {
            return Err(SrtpError::BadKeyLength {
                expected: profile.salt_len(),
                actual: master_salt.len(),
            });
        }
        let master = MasterKey::new(key, master_salt);
        let transform = match profile {
            SrtpProfile::AeadAes128Gcm => {
                let mut k = master.derive_array::<16>(Label::SrtpEncryption);
                let s = master.derive_array::<{ gcm::SALT_LEN }>(Label::SrtpSalt);
                let rtp = GcmKey::new(&k, &s);
                wipe(&mut k);
                let mut k = master.derive_array::<16>(Label::SrtcpEncryption);
                let s = master.derive_array::<{ gcm::SALT_LEN }>(Label::SrtcpSalt);
                let rtcp = GcmKey::new(&k, &s);
                wipe(&mut k);
                Transform::Gcm { rtp, rtcp }
            }
            SrtpProfile::Aes128CmHmacSha1_80 => {
                let derive = |enc, auth, salt| {
                    let mut k = master.derive_array::<16>(enc);
                    let mut a = master.derive_array::<{ aes_cm::AUTH_KEY_LEN }>(auth);
                    let s = master.derive_array::<{ aes_cm::SALT_LEN }>(salt);
                    let key = AesCmKey::new(&k, &a, &s);
                    wipe(&mut k);
                    wipe(&mut a);
                    key
                };
                Transform::AesCm {
                    rtp: derive(
                        Label::SrtpEncryption,
                        Label::SrtpAuthentication,
                        Label::SrtpSalt,
                    ),
                    rtcp: derive(
                        Label::SrtcpEncryption,
                        Label::SrtcpAuthentication,
                        Label::SrtcpSalt,
                    ),
                }
            }
        };
        Ok(Self::from_transform(profile, transform, max_ssrcs))
    }

    fn from_transform(profile: SrtpProfile, transform: Transform, max_ssrcs: usize) -> Self {
        SrtpContext {
            profile,
            transform,
            rtp: SsrcTable::with_capacity(max_ssrcs),
            rtcp: SsrcTable::with_capacity(max_ssrcs),
        }
    }

    /// A context using already derived session keys (the form RFC 7714's test vectors take).
    #[cfg(test)]
    pub(crate) fn from_gcm_session_keys(key: &[u8; 16], salt: &[u8; 12]) -> Self {
        let transform = Transform::Gcm {
            rtp: GcmKey::new(key, salt),
            rtcp: GcmKey::new(key, salt),
        };
        Self::from_transform(SrtpProfile::AeadAes128Gcm, transform, DEFAULT_MAX_SSRCS)
    }

    /// Makes the next SRTCP packet from `ssrc` carry `index` (RFC 7714's vectors start at 0x5d4).
    #[cfg(test)]
    pub(crate) fn set_next_srtcp_index(&mut self, ssrc: u32, index: u32) {
        let slot = match self.rtcp.find(ssrc) {
            Some(slot) => slot,
            None => self
                .rtcp
                .insert(ssrc, RtcpStream::default())
                .expect("room for a test SSRC"),
        };
        self.rtcp.state_mut(slot).next_index = index;
    }

    /// The protection profile.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// The roll-over counter of `ssrc`'s SRTP stream, if the context has seen it.
    pub fn rollover_counter(&self, ssrc: u32) -> Option<u32> {
        let highest = self.rtp.get(ssrc)?.window.highest()?;
        Some((highest >> 16) as u32)
    }

    /// Forgets all state of `ssrc` (its roll-over counter, SRTCP index and replay windows),
    /// freeing its slot. Only for SSRCs that will not be used again with these keys: a
    /// returning SSRC would start over at roll-over counter 0 and SRTCP index 0.
    pub fn remove_ssrc(&mut self, ssrc: u32) {
        self.rtp.remove(ssrc);
        self.rtcp.remove(ssrc);
    }

    /// Encrypts the RTP packet in `buf[..len]` in place and appends the tag; `buf` must have
    /// `profile.rtp_overhead()` bytes of room after `len`. Returns the new length.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let out_len = len + self.profile.rtp_overhead();
        if buf.len() < out_len {
            return Err(SrtpError::BufferTooSmall {
                needed: out_len,
                available: buf.len(),
            });
        }
        let f = parse_rtp(&buf[..len])?;
        let slot = match self.rtp.find(f.ssrc) {
            Some(slot) => slot,
            None => self.rtp.insert(
                f.ssrc,
                RtpStream {
                    window: RtpWindow::new(),
                },
            )?,
        };
        let stream = self.rtp.state_mut(slot);
        let index = stream.index_of(f.seq);
        if index > MAX_INDEX {
            return Err(SrtpError::IndexExhausted);
        }
        let buf = &mut buf[..out_len];
        match &self.transform {
            Transform::Gcm { rtp, .. } => rtp.seal_rtp(buf, f.header_len, len, f.ssrc, index)?,
            Transform::AesCm { rtp, .. } => rtp.seal_rtp(buf, f.header_len, len, f.ssrc, index),
        }
        // Advances the roll-over counter when the sequence number wrapped.
        stream.window.accept(index);
        Ok(out_len)
    }

    /// Authenticates, replay-checks and decrypts the SRTP packet `buf` in place; returns the
    /// plaintext length. State for a new SSRC is created only once a packet authenticated.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_overhead();
        let Some(rtp_len) = buf.len().checked_sub(tag_len) else {
            return Err(SrtpError::Malformed);
        };
        let f = parse_rtp(&buf[..rtp_len])?;
        let slot = self.rtp.find(f.ssrc);
        let index = match slot {
            Some(slot) => {
                let stream = self.rtp.state_mut(slot);
                let index = stream.index_of(f.seq);
                stream.window.check(index).map_err(SrtpError::Replay)?;
                index
            }
            None if self.rtp.is_full() => return Err(SrtpError::TooManySsrcs(self.rtp.capacity())),
            // A new stream starts at roll-over counter 0 (RFC 3711 §3.3.1).
            None => u64::from(f.seq),
        };
        if index > MAX_INDEX {
            return Err(SrtpError::IndexExhausted);
        }
        let len = match &self.transform {
            Transform::Gcm { rtp, .. } => rtp.open_rtp(buf, f.header_len, f.ssrc, index)?,
            Transform::AesCm { rtp, .. } => rtp.open_rtp(buf, f.header_len, f.ssrc, index)?,
        };
        match slot {
            Some(slot) => self.rtp.state_mut(slot).window.accept(index),
            None => {
                self.rtp.insert(f.ssrc, RtpStream::starting_at(index))?;
            }
        }
        Ok(len)
    }

    /// Encrypts the RTCP compound packet in `buf[..len]` in place and appends the SRTCP index
    /// (E=1) and tag; `buf` must have `profile.rtcp_overhead()` bytes of room after `len`.
    /// Returns the new length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let out_len = len + self.profile.rtcp_overhead();
        if buf.len() < out_len {
            return Err(SrtpError::BufferTooSmall {
                needed: out_len,
                available: buf.len(),
            });
        }
        let ssrc = parse_rtcp_ssrc(&buf[..len])?;
        let slot = match self.rtcp.find(ssrc) {
            Some(slot) => slot,
            None => self.rtcp.insert(ssrc, RtcpStream::default())?,
        };
        let stream = self.rtcp.state_mut(slot);
        let index = stream.next_index;
        if index > MAX_SRTCP_INDEX {
            return Err(SrtpError::IndexExhausted);
        }
        let buf = &mut buf[..out_len];
        let written = match &self.transform {
            Transform::Gcm { rtcp, .. } => rtcp.seal_rtcp(buf, len, ssrc, index)?,
            Transform::AesCm { rtcp, .. } => rtcp.seal_rtcp(buf, len, ssrc, index),
        };
        debug_assert_eq!(written, out_len);
        stream.next_index = index + 1;
        Ok(out_len)
    }

    /// Authenticates, replay-checks and (when its E flag is set) decrypts the SRTCP packet `buf`
    /// in place; returns the RTCP length. State for a new SSRC is created only once a packet
    /// authenticated.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_overhead();
        if buf.len() < RTCP_CLEAR + 4 + tag_len {
            return Err(SrtpError::Malformed);
        }
        let ssrc = parse_rtcp_ssrc(buf)?;
        let word_at = match self.transform {
            Transform::Gcm { .. } => buf.len() - 4,
            Transform::AesCm { .. } => buf.len() - 4 - tag_len,
        };
        let word = u32::from_be_bytes([
            buf[word_at],
            buf[word_at + 1],
            buf[word_at + 2],
            buf[word_at + 3],
        ]);
        let (encrypted, index) = (word & E_FLAG != 0, word & MAX_SRTCP_INDEX);
        let slot = self.rtcp.find(ssrc);
        match slot {
            Some(slot) => self
                .rtcp
                .state_mut(slot)
                .window
                .check(u64::from(index))
                .map_err(SrtpError::Replay)?,
            None if self.rtcp.is_full() => {
                return Err(SrtpError::TooManySsrcs(self.rtcp.capacity()));
            }
            None => {}
        }
        let len = match &self.transform {
            Transform::Gcm { rtcp, .. } => rtcp.open_rtcp(buf, ssrc, index, encrypted)?,
            Transform::AesCm { rtcp, .. } => rtcp.open_rtcp(buf, ssrc, index, encrypted)?,
        };
        let slot = match slot {
            Some(slot) => slot,
            None => self.rtcp.insert(ssrc, RtcpStream::default())?,
        };
        self.rtcp.state_mut(slot).window.accept(u64::from(index));
        Ok(len)
    }
}
