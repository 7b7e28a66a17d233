//! Per-shard counters: the core counts locally on the packet path, the shard loop publishes them
//! to shared atomics that `/metrics` reads.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! drop_reasons {
    ($($variant:ident => $label:literal,)*) => {
        /// Why an incoming or outgoing packet was dropped. Every drop is counted by reason.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(usize)]
        pub enum DropReason { $($variant,)* }

        impl DropReason {
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            pub const COUNT: usize = Self::ALL.len();
            /// The Prometheus label value.
            pub fn label(self) -> &'static str {
                match self { $(DropReason::$variant => $label,)* }
            }
        }
    };
}

drop_reasons! {
    Empty => "empty",
    Truncated => "truncated",
    UnknownClass => "unknown_class",
    StunMalformed => "stun_malformed",
    StunNotRequest => "stun_not_request",
    StunUnknownUser => "stun_unknown_user",
    StunBadIntegrity => "stun_bad_integrity",
    StunBadFingerprint => "stun_bad_fingerprint",
    UnknownSource => "unknown_source",
    DtlsError => "dtls_error",
    NotConnected => "not_connected",
    RtpMalformed => "rtp_malformed",
    RtcpMalformed => "rtcp_malformed",
    SrtpAuth => "srtp_auth",
    SrtpReplay => "srtp_replay",
    UnknownSsrc => "unknown_ssrc",
    UnknownRid => "unknown_rid",
    UnknownPayloadType => "unknown_payload_type",
    CodecNotNegotiated => "codec_not_negotiated",
    CrossShardQueueFull => "cross_shard_queue_full",
    TxQueueFull => "tx_queue_full",
    FanoutOverrun => "fanout_overrun",
    PacerQueueFull => "pacer_queue_full",
    PacerOverrun => "pacer_overrun",
    SrtpProtect => "srtp_protect",
}

/// Counters owned by one shard's core; plain integers, bumped on the packet path.
#[derive(Debug, Clone, Default)]
pub struct CoreCounters {
    pub datagrams_in: u64,
    pub bytes_in: u64,
    pub rtp_in: u64,
    pub rtcp_in: u64,
    pub stun_in: u64,
    pub dtls_in: u64,
    pub rtp_out: u64,
    pub rtcp_out: u64,
    pub nacks_in: u64,
    pub nacks_out: u64,
    pub retransmits: u64,
    pub keyframe_requests_out: u64,
    pub cross_shard_out: u64,
    pub cross_shard_in: u64,
    /// Viewers moved from one simulcast encoding to another (or started on one).
    pub layer_switches: u64,
    pub drops: [u64; DropReason::COUNT],
}

impl CoreCounters {
    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }
}

/// Gauges a shard reports about its population.
#[derive(Debug, Clone, Copy, Default)]
pub struct Population {
    pub sessions: u64,
    pub publishers: u64,
    pub viewers: u64,
}

/// The shared copy of one shard's counters, written by the shard and read by `/metrics`.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    pub datagrams_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub datagrams_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub rtp_in: AtomicU64,
    pub rtcp_in: AtomicU64,
    pub stun_in: AtomicU64,
    pub dtls_in: AtomicU64,
    pub rtp_out: AtomicU64,
    pub rtcp_out: AtomicU64,
    pub nacks_in: AtomicU64,
    pub nacks_out: AtomicU64,
    pub retransmits: AtomicU64,
    pub keyframe_requests_out: AtomicU64,
    pub cross_shard_out: AtomicU64,
    pub cross_shard_in: AtomicU64,
    pub layer_switches: AtomicU64,
    pub send_errors: AtomicU64,
    pub sessions: AtomicU64,
    pub publishers: AtomicU64,
    pub viewers: AtomicU64,
    pub loop_iterations: AtomicU64,
    pub drops: [AtomicU64; DropReason::COUNT],
}

impl ShardMetrics {
    /// Publishes the shard's current totals (called by the shard loop a few times a second).
    pub fn publish(&self, c: &CoreCounters, io: &crate::io::IoStats, pop: Population) {
        let r = Ordering::Relaxed;
        self.datagrams_in.store(io.datagrams_in, r);
        self.bytes_in.store(io.bytes_in, r);
        self.datagrams_out.store(io.datagrams_out, r);
        self.bytes_out.store(io.bytes_out, r);
        self.send_errors.store(io.send_errors, r);
        self.rtp_in.store(c.rtp_in, r);
        self.rtcp_in.store(c.rtcp_in, r);
        self.stun_in.store(c.stun_in, r);
        self.dtls_in.store(c.dtls_in, r);
        self.rtp_out.store(c.rtp_out, r);
        self.rtcp_out.store(c.rtcp_out, r);
        self.nacks_in.store(c.nacks_in, r);
        self.nacks_out.store(c.nacks_out, r);
        self.retransmits.store(c.retransmits, r);
        self.keyframe_requests_out.store(c.keyframe_requests_out, r);
        self.cross_shard_out.store(c.cross_shard_out, r);
        self.cross_shard_in.store(c.cross_shard_in, r);
        self.layer_switches.store(c.layer_switches, r);
        self.sessions.store(pop.sessions, r);
        self.publishers.store(pop.publishers, r);
        self.viewers.store(pop.viewers, r);
        for (i, d) in self.drops.iter().enumerate() {
            let extra = if i == DropReason::Truncated as usize {
                io.truncated
            } else {
                0
            };
            d.store(c.drops[i] + extra, r);
        }
    }

    pub fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].load(Ordering::Relaxed)
    }
}
