//! The Opus mix of a voice channel: each input (a participant's Opus stream) is buffered by RTP
//! timestamp ([`JitterBuffer`]), decoded to 48 kHz mono (concealing losses, recovering them from
//! in-band FEC when the next packet carries it), and every 20 ms tick the inputs are summed; each
//! output (one per set of excluded inputs: a listener does not hear itself, listeners who publish
//! nothing share one) subtracts its excluded inputs, is limited ([`Limiter`]) and encoded. Every
//! buffer is allocated when an input or output is added; a tick and a packet allocate nothing.

use opus::{Application, Bitrate, Channels, Decoder, Encoder};
use slab::Slab;

use super::audio_level::level_of;
use super::jitter_buffer::{JitterBuffer, JitterError, Next};
use super::limiter::Limiter;
use crate::TrackId;

/// The mix's sample rate.
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples per 20 ms tick (mono).
pub const FRAME: usize = 960;
/// Most samples one Opus packet decodes to (120 ms).
const MAX_PACKET_SAMPLES: usize = 5760;
/// Largest encoded packet.
pub const MAX_ENCODED: usize = 1275;

/// Why the mixer refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    #[error("Opus: {0}")]
    Opus(String),
    #[error("track {0:?} is already an input")]
    DuplicateInput(TrackId),
    #[error("no output {0}")]
    NoOutput(usize),
}

fn opus_err(e: opus::Error) -> MixError {
    MixError::Opus(e.to_string())
}

/// Tunables of a [`Mixer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixerConfig {
    /// Bit rate of each encoded output.
    pub bitrate: i32,
    /// Jitter-buffer slots per input (20 ms each).
    pub jitter_slots: usize,
    /// Packets an input collects before it plays (its delay, 20 ms each).
    pub prebuffer: usize,
}

impl Default for MixerConfig {
    fn default() -> Self {
        MixerConfig {
            bitrate: 32_000,
            jitter_slots: 10,
            prebuffer: 2,
        }
    }
}

/// The figures of one input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MixInputStats {
    /// 20 ms ticks played from a packet, concealed (or recovered by FEC), and silent.
    pub played: u64,
    pub concealed: u64,
    pub silent: u64,
    /// Packets dropped: late, duplicate, or not decodable.
    pub dropped: u64,
}

/// One participant's stream.
#[derive(Debug)]
struct Input {
    track: TrackId,
    decoder: Decoder,
    jb: JitterBuffer,
    /// Decoded samples not yet mixed.
    fifo: Box<[i16]>,
    fifo_len: usize,
    /// This tick's samples (valid when `live`).
    frame: Box<[i16; FRAME]>,
    live: bool,
    stats: MixInputStats,
}

/// One encoded mix.
#[derive(Debug)]
struct Output {
    /// Inputs left out (sorted).
    exclude: Vec<TrackId>,
    users: usize,
    encoder: Encoder,
    limiter: Limiter,
    pcm: Box<[i16; FRAME]>,
    packet: Box<[u8; MAX_ENCODED]>,
    len: usize,
    /// The level of the last frame, in -dBov.
    level: u8,
}

/// The mix of one channel on one shard.
#[derive(Debug)]
pub struct Mixer {
    cfg: MixerConfig,
    inputs: Vec<Input>,
    outputs: Slab<Output>,
    total: Box<[i32; FRAME]>,
    acc: Box<[i32; FRAME]>,
    scratch: Box<[i16; MAX_PACKET_SAMPLES]>,
    /// Ticks mixed.
    pub ticks: u64,
}

impl Mixer {
    pub fn new(cfg: MixerConfig) -> Self {
        Mixer {
            cfg,
            inputs: Vec::with_capacity(16),
            outputs: Slab::with_capacity(4),
            total: Box::new([0; FRAME]),
            acc: Box::new([0; FRAME]),
            scratch: Box::new([0; MAX_PACKET_SAMPLES]),
            ticks: 0,
        }
    }

    /// Adds a participant's stream.
    pub fn add_input(&mut self, track: TrackId) -> Result<(), MixError> {
        if self.inputs.iter().any(|i| i.track == track) {
            return Err(MixError::DuplicateInput(track));
        }
        let decoder = Decoder::new(SAMPLE_RATE, Channels::Mono).map_err(opus_err)?;
        self.inputs.push(Input {
            track,
            decoder,
            jb: JitterBuffer::new(self.cfg.jitter_slots, self.cfg.prebuffer),
            fifo: vec![0; MAX_PACKET_SAMPLES + FRAME].into_boxed_slice(),
            fifo_len: 0,
            frame: Box::new([0; FRAME]),
            live: false,
            stats: MixInputStats::default(),
        });
        Ok(())
    }

    /// Removes a participant's stream; false when it was not an input.
    pub fn remove_input(&mut self, track: TrackId) -> bool {
        let before = self.inputs.len();
        self.inputs.retain(|i| i.track != track);
        self.inputs.len() != before
    }

    pub fn has_input(&self, track: TrackId) -> bool {
        self.inputs.iter().any(|i| i.track == track)
    }

    pub fn input_count(&self) -> usize {
        self.inputs.len()
    }

    /// An input's figures.
    pub fn input_stats(&self, track: TrackId) -> Option<MixInputStats> {
        self.inputs.iter().find(|i| i.track == track).map(|i| {
            let mut s = i.stats;
            s.dropped += i.jb.late;
            s
        })
    }

    /// An output without the inputs in `exclude`: an existing one with the same exclusions is
    /// shared. Returns its id.
    pub fn add_output(&mut self, exclude: &[TrackId]) -> Result<usize, MixError> {
        let mut exclude = exclude.to_vec();
        exclude.sort();
        exclude.dedup();
        if let Some((id, o)) = self.outputs.iter_mut().find(|(_, o)| o.exclude == exclude) {
            o.users += 1;
            return Ok(id);
        }
        let mut encoder =
            Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip).map_err(opus_err)?;
        encoder
            .set_bitrate(Bitrate::Bits(self.cfg.bitrate))
            .map_err(opus_err)?;
        Ok(self.outputs.insert(Output {
            exclude,
            users: 1,
            encoder,
            limiter: Limiter::default(),
            pcm: Box::new([0; FRAME]),
            packet: Box::new([0; MAX_ENCODED]),
            len: 0,
            level: 127,
        }))
    }

    /// Releases one use of an output; it goes with its last user.
    pub fn remove_output(&mut self, id: usize) -> Result<(), MixError> {
        let o = self.outputs.get_mut(id).ok_or(MixError::NoOutput(id))?;
        o.users -= 1;
        if o.users == 0 {
            self.outputs.remove(id);
        }
        Ok(())
    }

    pub fn output_count(&self) -> usize {
        self.outputs.len()
    }

    /// Takes a packet of input `track` (its RTP timestamp at 48 kHz and its Opus payload).
    /// Returns false when the track is not an input or the packet was not kept.
    pub fn push(&mut self, track: TrackId, rtp_ts: u32, payload: &[u8]) -> bool {
        let Some(i) = self.inputs.iter_mut().find(|i| i.track == track) else {
            return false;
        };
        match i.jb.push(rtp_ts, payload) {
            Ok(()) => true,
            Err(JitterError::Late) => false,
            Err(_) => {
                i.stats.dropped += 1;
                false
            }
        }
    }

    /// Mixes one 20 ms tick: decodes every input's next frame, sums them, and encodes every
    /// output. Read the results with [`Mixer::output`].
    pub fn tick(&mut self) {
        self.ticks += 1;
        let scratch = &mut self.scratch[..];
        self.total.fill(0);
        for input in &mut self.inputs {
            input.decode_frame(scratch);
            if input.live {
                for (t, &s) in self.total.iter_mut().zip(input.frame.iter()) {
                    *t += i32::from(s);
                }
            }
        }
        for (_, out) in self.outputs.iter_mut() {
            self.acc.copy_from_slice(&self.total[..]);
            for track in &out.exclude {
                if let Some(input) = self.inputs.iter().find(|i| i.track == *track && i.live) {
                    for (a, &s) in self.acc.iter_mut().zip(input.frame.iter()) {
                        *a -= i32::from(s);
                    }
                }
            }
            out.limiter.process(&self.acc[..], &mut out.pcm[..]);
            let energy: f64 = out.pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
            let rms = (energy / FRAME as f64).sqrt() / 32_768.0;
            out.level = level_of(rms as f32);
            out.len = out
                .encoder
                .encode(&out.pcm[..], &mut out.packet[..])
                .unwrap_or(0);
        }
    }

    /// Output `id`'s packet of the last tick (empty when encoding failed), and its level in
    /// -dBov (RFC 6464).
    pub fn output(&self, id: usize) -> Option<(&[u8], u8)> {
        let o = self.outputs.get(id)?;
        Some((&o.packet[..o.len], o.level))
    }
}

impl Input {
    /// Fills `frame` with the next 20 ms: from packets in timestamp order, concealing what is
    /// lost; silence (not live) while the stream has nothing to play.
    fn decode_frame(&mut self, scratch: &mut [i16]) {
        while self.fifo_len < FRAME {
            let (n, was_packet) = match self.jb.next_to_play() {
                Next::Packet(p) => match self.decoder.decode(p, scratch, false) {
                    Ok(n) => (n, true),
                    Err(_) => {
                        self.stats.dropped += 1;
                        (conceal(&mut self.decoder, scratch, None), false)
                    }
                },
                Next::Lost { following } => {
                    let n = conceal(&mut self.decoder, scratch, Some(following));
                    (n, false)
                }
                Next::Empty => break,
            };
            if n == 0 {
                // Nothing could be decoded: treat this tick's slot as silence.
                self.jb.advance(FRAME as u32, false);
                break;
            }
            self.jb.advance(n as u32, was_packet);
            if was_packet {
                self.stats.played += 1;
            } else {
                self.stats.concealed += 1;
            }
            let room = self.fifo.len() - self.fifo_len;
            let n = n.min(room);
            self.fifo[self.fifo_len..self.fifo_len + n].copy_from_slice(&scratch[..n]);
            self.fifo_len += n;
        }
        if self.fifo_len < FRAME {
            self.live = false;
            self.stats.silent += 1;
            return;
        }
        self.frame.copy_from_slice(&self.fifo[..FRAME]);
        self.fifo.copy_within(FRAME..self.fifo_len, 0);
        self.fifo_len -= FRAME;
        self.live = true;
    }
}

/// 20 ms of concealment: recovered from `following`'s in-band FEC when it has it, else the
/// decoder's packet-loss concealment. Returns the samples written (0 on failure).
fn conceal(decoder: &mut Decoder, scratch: &mut [i16], following: Option<&[u8]>) -> usize {
    let out = &mut scratch[..FRAME];
    if let Some(p) = following
        && let Ok(n) = decoder.decode(p, out, true)
    {
        return n;
    }
    decoder.decode(&[], out, false).unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    /// Encodes `seconds` of a sine tone at `freq` Hz (amplitude `amp` of full scale) into 20 ms
    /// Opus packets.
    pub(crate) fn tone_packets(freq: f32, amp: f32, seconds: usize) -> Vec<Vec<u8>> {
        let mut enc = Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip).unwrap();
        enc.set_bitrate(Bitrate::Bits(48_000)).unwrap();
        let mut out = Vec::new();
        let mut pcm = [0i16; FRAME];
        for f in 0..seconds * 50 {
            for (i, s) in pcm.iter_mut().enumerate() {
                let t = (f * FRAME + i) as f32 / SAMPLE_RATE as f32;
                *s = (amp * 32_767.0 * (2.0 * std::f32::consts::PI * freq * t).sin()) as i16;
            }
            let mut buf = [0u8; MAX_ENCODED];
            let n = enc.encode(&pcm, &mut buf).unwrap();
            out.push(buf[..n].to_vec());
        }
        out
    }

    /// The amplitude of the `freq` component of `x` (Goertzel), relative to full scale.
    pub(crate) fn goertzel(x: &[i16], freq: f32) -> f32 {
        let w = 2.0 * std::f32::consts::PI * freq / SAMPLE_RATE as f32;
        let c = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f32, 0.0f32);
        for &v in x {
            let s0 = f32::from(v) / 32_768.0 + c * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        let power = s1 * s1 + s2 * s2 - c * s1 * s2;
        2.0 * power.max(0.0).sqrt() / x.len() as f32
    }

    /// Runs `ticks` of the mixer feeding `inputs` (track, packets) one packet per tick, and
    /// decodes output `out` into PCM.
    fn run(
        mixer: &mut Mixer,
        inputs: &[(TrackId, &[Vec<u8>])],
        out: usize,
        ticks: usize,
    ) -> Vec<i16> {
        let mut dec = Decoder::new(SAMPLE_RATE, Channels::Mono).unwrap();
        let mut pcm = Vec::new();
        for k in 0..ticks {
            for (t, pkts) in inputs {
                mixer.push(*t, (k * FRAME) as u32, &pkts[k % pkts.len()]);
            }
            mixer.tick();
            let (p, _) = mixer.output(out).unwrap();
            let mut buf = [0i16; FRAME];
            let n = dec.decode(p, &mut buf, false).unwrap();
            pcm.extend_from_slice(&buf[..n]);
        }
        pcm
    }

    #[test]
    fn the_mix_decodes_to_both_tones_and_a_listener_does_not_hear_itself() {
        let (a, b) = (TrackId(1), TrackId(2));
        let tone_a = tone_packets(440.0, 0.3, 1);
        let tone_b = tone_packets(660.0, 0.3, 1);
        let mut m = Mixer::new(MixerConfig::default());
        m.add_input(a).unwrap();
        m.add_input(b).unwrap();
        let everyone = m.add_output(&[]).unwrap();
        let for_a = m.add_output(&[a]).unwrap();
        assert_eq!(m.add_output(&[]).unwrap(), everyone, "shared");
        let mut dec_all = Decoder::new(SAMPLE_RATE, Channels::Mono).unwrap();
        let mut dec_a = Decoder::new(SAMPLE_RATE, Channels::Mono).unwrap();
        let (mut all, mut heard_by_a) = (Vec::new(), Vec::new());
        for k in 0..150 {
            m.push(a, (k * FRAME) as u32, &tone_a[k % 50]);
            m.push(b, (k * FRAME) as u32, &tone_b[k % 50]);
            m.tick();
            let mut buf = [0i16; FRAME];
            let n = dec_all
                .decode(m.output(everyone).unwrap().0, &mut buf, false)
                .unwrap();
            all.extend_from_slice(&buf[..n]);
            let n = dec_a
                .decode(m.output(for_a).unwrap().0, &mut buf, false)
                .unwrap();
            heard_by_a.extend_from_slice(&buf[..n]);
        }
        // The last second, past the prebuffer and the codecs' start.
        let all = &all[all.len() - 48_000..];
        let heard = &heard_by_a[heard_by_a.len() - 48_000..];
        let (a440, a660, a550) = (
            goertzel(all, 440.0),
            goertzel(all, 660.0),
            goertzel(all, 550.0),
        );
        println!("mix: 440 Hz {a440:.3}, 660 Hz {a660:.3}, 550 Hz {a550:.4}");
        assert!(
            a440 > 0.2 && a660 > 0.2,
            "both tones at about 0.3: {a440} {a660}"
        );
        assert!(a550 < 0.02, "nothing between them: {a550}");
        let (h440, h660) = (goertzel(heard, 440.0), goertzel(heard, 660.0));
        println!("A's mix: 440 Hz {h440:.4}, 660 Hz {h660:.3}");
        assert!(h660 > 0.2, "A hears B: {h660}");
        assert!(h440 < 0.01, "A does not hear itself: {h440}");
        assert_eq!(m.input_stats(a).unwrap().concealed, 0);
    }

    #[test]
    fn loud_inputs_are_limited_not_wrapped() {
        let loud = tone_packets(440.0, 0.9, 1);
        let (a, b, c) = (TrackId(1), TrackId(2), TrackId(3));
        let mut m = Mixer::new(MixerConfig::default());
        for t in [a, b, c] {
            m.add_input(t).unwrap();
        }
        let out = m.add_output(&[]).unwrap();
        let pcm = run(&mut m, &[(a, &loud), (b, &loud), (c, &loud)], out, 100);
        let tail = &pcm[pcm.len() - 48_000..];
        let peak = tail.iter().map(|s| s.unsigned_abs()).max().unwrap();
        let a440 = goertzel(tail, 440.0);
        println!("three in-phase 0.9 tones: peak {peak}, 440 Hz {a440:.3}");
        // Summed they would reach 2.7 of full scale; limited, the tone stays clean near 1.
        assert!(a440 > 0.8 && a440 < 1.05, "{a440}");
        assert!(goertzel(tail, 880.0) < 0.05, "no clipping harmonics");
    }

    #[test]
    fn lost_packets_are_concealed_and_silence_is_silent() {
        let tone = tone_packets(440.0, 0.3, 1);
        let t = TrackId(1);
        let mut m = Mixer::new(MixerConfig::default());
        m.add_input(t).unwrap();
        let out = m.add_output(&[]).unwrap();
        let mut dec = Decoder::new(SAMPLE_RATE, Channels::Mono).unwrap();
        let mut pcm = Vec::new();
        for k in 0..100 {
            // Every fifth packet is lost.
            if k % 5 != 3 {
                m.push(t, (k * FRAME) as u32, &tone[k % 50]);
            }
            m.tick();
            let mut buf = [0i16; FRAME];
            let n = dec
                .decode(m.output(out).unwrap().0, &mut buf, false)
                .unwrap();
            pcm.extend_from_slice(&buf[..n]);
        }
        let s = m.input_stats(t).unwrap();
        assert!(s.concealed >= 15, "{s:?}");
        let tail = &pcm[pcm.len() - 48_000..];
        assert!(goertzel(tail, 440.0) > 0.15, "the tone survives 20 % loss");
        // The input stops: the mix goes silent (after the buffered packets).
        let mut quiet = Vec::new();
        for _ in 0..20 {
            m.tick();
            let mut buf = [0i16; FRAME];
            let n = dec
                .decode(m.output(out).unwrap().0, &mut buf, false)
                .unwrap();
            quiet.extend_from_slice(&buf[..n]);
        }
        let last = &quiet[quiet.len() - 4800..];
        assert!(last.iter().all(|s| s.unsigned_abs() < 50), "silent");
        assert_eq!(m.output(out).unwrap().1, 127, "its level is silence");
    }

    #[test]
    fn outputs_and_inputs_come_and_go() {
        let mut m = Mixer::new(MixerConfig::default());
        m.add_input(TrackId(1)).unwrap();
        assert_eq!(
            m.add_input(TrackId(1)),
            Err(MixError::DuplicateInput(TrackId(1)))
        );
        let o = m.add_output(&[TrackId(1)]).unwrap();
        let o2 = m.add_output(&[TrackId(1)]).unwrap();
        assert_eq!(o, o2);
        m.remove_output(o).unwrap();
        assert_eq!(m.output_count(), 1, "still used once");
        m.remove_output(o).unwrap();
        assert_eq!(m.output_count(), 0);
        assert!(m.remove_output(o).is_err());
        assert!(!m.push(TrackId(9), 0, &[1]), "not an input");
        assert!(m.remove_input(TrackId(1)));
        assert_eq!(m.input_count(), 0);
    }
}
