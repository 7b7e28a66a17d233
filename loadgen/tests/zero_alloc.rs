//! The media path allocates nothing in steady state: a publisher's packets, a subscriber's
//! accounting, feedback both ways and the histograms, under a counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime};

use loadgen::client::{Outgoing, Publisher, PublisherConfig, Subscriber, SubscriberConfig};
use loadgen::media::{AudioConfig, Clock, VideoConfig};
use loadgen::sdp::{ExtIds, MediaPlan, TrackPlan};
use loadgen::stats::{Counters, Histogram};
use sfu::wire::rtp::RtpHeader;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the thread-local counter is a plain Cell with a
// const initializer, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn plan() -> MediaPlan {
    let ext = ExtIds {
        audio_level: Some(1),
        transport_cc: Some(3),
        mid: Some(4),
        rid: None,
        repaired_rid: None,
    };
    MediaPlan {
        video: Some(TrackPlan {
            mid: "0".into(),
            pt: 96,
            rtx_pt: Some(97),
            clock_rate: 90_000,
            ssrc: Some(11),
            rtx_ssrc: Some(12),
            ext,
            rids: Vec::new(),
        }),
        audio: Some(TrackPlan {
            mid: "1".into(),
            pt: 111,
            rtx_pt: None,
            clock_rate: 48_000,
            ssrc: Some(13),
            rtx_ssrc: None,
            ext,
            rids: Vec::new(),
        }),
    }
}

/// A publisher wired to a subscriber; every 37th video packet is lost once.
struct Rig {
    p: Publisher,
    s: Subscriber,
    pm: Counters,
    sm: Counters,
    lat: Histogram,
    total: Histogram,
    buf: [u8; 1500],
}

impl Rig {
    fn step(&mut self, now: Instant, count: bool) {
        COUNTING.with(|c| c.set(count));
        while let Some(o) = self.p.poll_transmit(now, &mut self.buf, &mut self.pm) {
            if let Outgoing::Rtp(n) = o {
                let lost = RtpHeader::parse(&self.buf[..n])
                    .is_ok_and(|h| h.ssrc.0 == 11 && h.seq.0 % 37 == 0);
                if !lost {
                    self.s
                        .handle_rtp(now, &mut self.buf[..n], &mut self.sm, &mut self.lat);
                }
            }
        }
        while let Some(Outgoing::Rtcp(n)) = self.s.poll_transmit(now, &mut self.buf, &mut self.sm) {
            self.p.handle_rtcp(&self.buf[..n], &mut self.pm);
        }
        self.total.merge(&self.lat);
        self.lat.reset();
        COUNTING.with(|c| c.set(false));
    }
}

#[test]
fn publishing_receiving_and_feedback_allocate_nothing_in_steady_state() {
    let t0 = Instant::now();
    let clock = Clock::new(t0);
    let p = Publisher::new(
        PublisherConfig {
            video: Some(VideoConfig::default()),
            audio: Some(AudioConfig::default()),
            plan: plan(),
            cname: "p".into(),
            seed: 5,
            ring_slots: 1024,
        },
        clock,
        t0,
        SystemTime::now(),
    );
    let s = Subscriber::new(
        SubscriberConfig {
            plan: plan(),
            rtcp_ssrc: 99,
            cname: "s".into(),
        },
        clock,
        t0,
    );
    let mut r = Rig {
        p,
        s,
        pm: Counters::default(),
        sm: Counters::default(),
        lat: Histogram::latency_ns(),
        total: Histogram::latency_ns(),
        buf: [0u8; 1500],
    };
    // Warm up (first reports, first NACKs) without counting.
    let mut now = t0;
    while now < t0 + Duration::from_secs(2) {
        r.step(now, false);
        now += Duration::from_millis(1);
    }
    let before = (
        r.sm.rtp_received,
        r.pm.rtx_sent,
        r.sm.receiver_reports_sent,
        r.sm.twcc_feedback_sent,
    );
    while now < t0 + Duration::from_secs(8) {
        r.step(now, true);
        now += Duration::from_millis(1);
    }
    assert!(
        r.sm.rtp_received - before.0 > 1000,
        "media flowed: {:?}",
        r.sm
    );
    assert!(r.pm.rtx_sent > before.1, "NACKs were answered: {:?}", r.pm);
    assert!(r.sm.receiver_reports_sent > before.2);
    assert!(
        r.sm.twcc_feedback_sent - before.3 > 100,
        "transport-wide feedback every 50 ms"
    );
    assert!(r.pm.twcc_feedback_received > 100);
    let e = r.s.video_experience(now).unwrap();
    assert!(e.frames.rendered > 100, "{e:?}");
    assert!(r.total.count() > 1000);
    assert_eq!(ALLOCS.with(Cell::get), 0, "allocations on the media path");
}

#[test]
fn a_simulcast_publisher_allocates_nothing_in_steady_state() {
    use sfu::wire::rtcp;
    use sfu::{SeqNo, Ssrc};
    let t0 = Instant::now();
    let mut plan = plan();
    plan.audio = None;
    if let Some(v) = plan.video.as_mut() {
        v.ext.rid = Some(10);
        v.ext.repaired_rid = Some(11);
        v.rids = vec!["q".into(), "h".into(), "f".into()];
    }
    let mut p = Publisher::new(
        PublisherConfig {
            video: Some(VideoConfig::default()),
            audio: None,
            plan,
            cname: "p".into(),
            seed: 5,
            ring_slots: 1024,
        },
        Clock::new(t0),
        t0,
        SystemTime::now(),
    );
    let ssrcs: Vec<u32> = p.video_ssrcs().collect();
    let mut pm = Counters::default();
    let mut buf = [0u8; 1500];
    // Feedback built up front: a NACK and a PLI per encoding.
    let mut feedback = Vec::new();
    for &ssrc in &ssrcs {
        let mut fb = [0u8; 64];
        let n = rtcp::write_nack(&mut fb, Ssrc(9), Ssrc(ssrc), &[SeqNo(0)]).unwrap();
        feedback.push(fb[..n].to_vec());
        let n = rtcp::write_pli(&mut fb, Ssrc(9), Ssrc(ssrc)).unwrap();
        feedback.push(fb[..n].to_vec());
    }
    let mut sent = [0u64; 3];
    let mut now = t0;
    let mut k = 0;
    while now < t0 + Duration::from_secs(6) {
        let count = now >= t0 + Duration::from_secs(1);
        COUNTING.with(|c| c.set(count));
        while let Some(o) = p.poll_transmit(now, &mut buf, &mut pm) {
            if let (Outgoing::Rtp(n), true) = (o, count)
                && let Ok(h) = RtpHeader::parse(&buf[..n])
                && let Some(i) = ssrcs.iter().position(|s| *s == h.ssrc.0)
            {
                sent[i] += 1;
            }
        }
        if now.duration_since(t0).as_millis().is_multiple_of(250) {
            p.handle_rtcp(&feedback[k % feedback.len()], &mut pm);
            k += 1;
        }
        COUNTING.with(|c| c.set(false));
        now += Duration::from_millis(1);
    }
    assert!(
        sent.iter().all(|&n| n > 100),
        "every encoding sent: {sent:?}"
    );
    assert!(pm.plis_received > 5 && pm.nacks_received > 5, "{pm:?}");
    assert_eq!(
        ALLOCS.with(Cell::get),
        0,
        "allocations on the simulcast media path"
    );
}

#[test]
fn a_rate_limited_downlink_allocates_nothing_in_steady_state() {
    use loadgen::relay::{Admit, Downlink, DownlinkConfig};
    let t0 = Instant::now();
    let clock = Clock::new(t0);
    let mut p = Publisher::new(
        PublisherConfig {
            video: Some(VideoConfig {
                bitrate_bps: 1_000_000,
                ..VideoConfig::default()
            }),
            audio: Some(AudioConfig::default()),
            plan: plan(),
            cname: "p".into(),
            seed: 5,
            ring_slots: 1024,
        },
        clock,
        t0,
        SystemTime::now(),
    );
    let mut s = Subscriber::new(
        SubscriberConfig {
            plan: plan(),
            rtcp_ssrc: 99,
            cname: "s".into(),
        },
        clock,
        t0,
    );
    // 1 Mbit/s of video and audio into a 600 kbit/s downlink: it queues and drops.
    let mut d = Downlink::new(
        DownlinkConfig {
            rate_bps: 600_000,
            burst: 1500,
            queue: Duration::from_millis(200),
        },
        t0,
    );
    let (mut pm, mut sm) = (Counters::default(), Counters::default());
    let mut lat = Histogram::latency_ns();
    let mut buf = [0u8; 1500];
    let mut out = [0u8; 2048];
    let mut now = t0;
    let mut delivered = 0u64;
    while now < t0 + Duration::from_secs(8) {
        let count = now >= t0 + Duration::from_secs(2);
        COUNTING.with(|c| c.set(count));
        while let Some(o) = p.poll_transmit(now, &mut buf, &mut pm) {
            if let Outgoing::Rtp(n) = o
                && d.admit(now, &buf[..n]) == Admit::Now
            {
                s.handle_rtp(now, &mut buf[..n], &mut sm, &mut lat);
                delivered += 1;
            }
        }
        while let Some((at, n)) = d.pop_due(now, &mut out) {
            s.handle_rtp(at, &mut out[..n], &mut sm, &mut lat);
            delivered += 1;
        }
        while let Some(Outgoing::Rtcp(n)) = s.poll_transmit(now, &mut buf, &mut sm) {
            p.handle_rtcp(&buf[..n], &mut pm);
        }
        lat.reset();
        COUNTING.with(|c| c.set(false));
        now += Duration::from_millis(1);
    }
    let st = d.stats();
    assert!(st.drops > 100 && st.delayed > 100, "{st:?}");
    assert!(delivered > 400, "delivered {delivered}");
    assert!(sm.twcc_feedback_sent > 100);
    assert_eq!(
        ALLOCS.with(Cell::get),
        0,
        "allocations on the rate-limited receive path"
    );
}
