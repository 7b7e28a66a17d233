//! RTP header extensions (RFC 8285): the one-byte (0xBEDE) and two-byte (0x100X) forms, in-place
//! id remapping, and the values of audio level (RFC 6464), abs-send-time and transport-wide
//! sequence numbers (draft-holmer-rmcat-transport-wide-cc-extensions-01).

use super::{RtpError, RtpHeader};
use crate::types::SeqNo;

/// Profile of the one-byte header form.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// Profile of the two-byte header form (the low 4 bits are application bits).
pub const TWO_BYTE_PROFILE: u16 = 0x1000;

/// The header extension block of an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtBlock {
    /// The 16-bit "defined by profile" field.
    pub profile: u16,
    /// Offset of the first byte of extension data (after the 4-byte block header).
    pub offset: usize,
    /// Length of the extension data in bytes (a multiple of 4).
    pub len: usize,
}

/// The element encoding of an extension block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtForm {
    /// RFC 8285 §4.2: ids 1..=14, 1..=16 data bytes.
    OneByte,
    /// RFC 8285 §4.3: ids 1..=255, 0..=255 data bytes.
    TwoByte,
    /// Some other profile; its elements are opaque.
    Other,
}

impl ExtBlock {
    /// Which form the elements use.
    pub fn form(&self) -> ExtForm {
        if self.profile == ONE_BYTE_PROFILE {
            ExtForm::OneByte
        } else if self.profile & 0xfff0 == TWO_BYTE_PROFILE {
            ExtForm::TwoByte
        } else {
            ExtForm::Other
        }
    }

    /// The extension data inside `buf` (empty when `buf` is too short).
    pub fn data<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.offset..self.offset.saturating_add(self.len))
            .unwrap_or(&[])
    }
}

/// Iterator over `(id, data)` extension elements; padding bytes are skipped and iteration stops
/// at a malformed element or at id 15 in the one-byte form (RFC 8285 §4.2).
#[derive(Debug, Clone)]
pub struct ExtIter<'a> {
    form: ExtForm,
    data: &'a [u8],
    pos: usize,
}

impl<'a> ExtIter<'a> {
    pub(super) fn new(form: ExtForm, data: &'a [u8]) -> Self {
        ExtIter { form, data, pos: 0 }
    }
}

/// One element found in an extension block: where its header starts, its id, where its data
/// starts and ends.
struct Element {
    start: usize,
    id: u8,
    data_start: usize,
    end: usize,
}

/// Result of scanning for the next element at `pos`.
enum Scan {
    Element(Element),
    /// Nothing more (end of data, id 15) or malformed from this offset on.
    Stop {
        malformed_from: Option<usize>,
    },
}

fn next_element(form: ExtForm, data: &[u8], mut pos: usize) -> Scan {
    loop {
        let Some(&b) = data.get(pos) else {
            return Scan::Stop {
                malformed_from: None,
            };
        };
        if b == 0 {
            pos += 1;
            continue;
        }
        let (id, data_start, len) = match form {
            ExtForm::OneByte => {
                let id = b >> 4;
                if id == 15 {
                    return Scan::Stop {
                        malformed_from: Some(pos),
                    };
                }
                (id, pos + 1, usize::from(b & 0x0f) + 1)
            }
            ExtForm::TwoByte => match data.get(pos + 1) {
                Some(&l) => (b, pos + 2, usize::from(l)),
                None => {
                    return Scan::Stop {
                        malformed_from: Some(pos),
                    };
                }
            },
            ExtForm::Other => {
                return Scan::Stop {
                    malformed_from: None,
                };
            }
        };
        let end = data_start + len;
        if end > data.len() {
            return Scan::Stop {
                malformed_from: Some(pos),
            };
        }
        return Scan::Element(Element {
            start: pos,
            id,
            data_start,
            end,
        });
    }
}

impl<'a> Iterator for ExtIter<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        match next_element(self.form, self.data, self.pos) {
            Scan::Element(e) => {
                self.pos = e.end;
                Some((e.id, &self.data[e.data_start..e.end]))
            }
            Scan::Stop { .. } => {
                self.pos = self.data.len();
                None
            }
        }
    }
}

/// Rewrites extension ids in place: each element with id `old` gets id `map[old]`; where that is
/// 0, or does not fit the block's form (15 and above in the one-byte form), the element's header
/// and data are overwritten with zero bytes, which are padding, so the packet keeps its length.
/// A malformed tail (and anything after id 15 in the one-byte form) is blanked too. Blocks of
/// another profile are left alone.
pub fn remap_extensions(buf: &mut [u8], hdr: &RtpHeader, map: &[u8; 256]) {
    let Some(ext) = hdr.ext else { return };
    let form = ext.form();
    let Some(data) = buf.get_mut(ext.offset..ext.offset.saturating_add(ext.len)) else {
        return;
    };
    let mut pos = 0;
    loop {
        match next_element(form, data, pos) {
            Scan::Element(e) => {
                let new = map[usize::from(e.id)];
                let fits = match form {
                    ExtForm::OneByte => (1..=14).contains(&new),
                    _ => new != 0,
                };
                if !fits {
                    data[e.start..e.end].fill(0);
                } else if form == ExtForm::OneByte {
                    data[e.start] = (new << 4) | (data[e.start] & 0x0f);
                } else {
                    data[e.start] = new;
                }
                pos = e.end;
            }
            Scan::Stop { malformed_from } => {
                if let Some(from) = malformed_from {
                    data[from..].fill(0);
                }
                return;
            }
        }
    }
}

/// Audio level of an audio packet (RFC 6464).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AudioLevel {
    /// The V flag: the sender believes the packet holds voice activity.
    pub voice: bool,
    /// Level in -dBov, 0 (loudest) ..= 127 (silence).
    pub level: u8,
}

impl AudioLevel {
    /// Parses the extension data (one byte; trailing bytes are ignored).
    pub fn parse(data: &[u8]) -> Result<AudioLevel, RtpError> {
        let &b = data.first().ok_or(RtpError::ExtensionValueLength)?;
        Ok(AudioLevel {
            voice: b & 0x80 != 0,
            level: b & 0x7f,
        })
    }

    /// The extension data byte (level clamped to 127).
    pub fn to_byte(self) -> u8 {
        (if self.voice { 0x80 } else { 0 }) | self.level.min(127)
    }
}

/// Absolute send time: a 24-bit, 6.18 fixed-point number of seconds, wrapping every 64 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AbsSendTime(pub u32);

impl AbsSendTime {
    /// One wrap of the 24-bit clock, in microseconds.
    pub const WRAP_MICROS: u64 = 64_000_000;

    /// Parses the 3-byte extension data.
    pub fn parse(data: &[u8]) -> Result<AbsSendTime, RtpError> {
        match *data {
            [a, b, c] => Ok(AbsSendTime(u32::from_be_bytes([0, a, b, c]))),
            _ => Err(RtpError::ExtensionValueLength),
        }
    }

    /// The 3-byte extension data.
    pub fn to_bytes(self) -> [u8; 3] {
        let b = self.0.to_be_bytes();
        [b[1], b[2], b[3]]
    }

    /// The value for a send time of `micros` (on any clock; only its position within the 64 s
    /// cycle matters), rounded to the nearest 1/2^18 s.
    pub fn from_micros(micros: u64) -> AbsSendTime {
        let within = micros % Self::WRAP_MICROS;
        let v = ((within << 18) + 500_000) / 1_000_000;
        AbsSendTime((v & 0x00ff_ffff) as u32)
    }

    /// Position within the 64 s cycle, in microseconds (rounded).
    pub fn as_micros(self) -> u64 {
        (u64::from(self.0 & 0x00ff_ffff) * 1_000_000 + (1 << 17)) >> 18
    }
}

/// Parses the transport-wide sequence number extension (2 bytes).
pub fn parse_transport_cc_seq(data: &[u8]) -> Result<SeqNo, RtpError> {
    match *data {
        [a, b] => Ok(SeqNo(u16::from_be_bytes([a, b]))),
        _ => Err(RtpError::ExtensionValueLength),
    }
}
