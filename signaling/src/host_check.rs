//! Host settings that would limit the media plane, checked once at start: socket buffer limits
//! below what the shards ask for, a small netdev backlog, a locked-memory limit too low for the
//! io_uring rings, and CPU governors other than `performance`. Each finding is logged as one
//! warning naming the tuning script that fixes it (docs/tuning.md explains them all).

use std::path::Path;

use sfu::io::IoConfig;

/// `net.core.netdev_max_backlog` below this is reported (what `tuning/sysctl.sh` sets).
pub const WANT_NETDEV_BACKLOG: u64 = 30_000;

/// Capability bits in `/proc/self/status` `CapEff`.
const CAP_NET_ADMIN: u32 = 12;
const CAP_IPC_LOCK: u32 = 14;

/// A resource limit: a number of bytes, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Bytes(u64),
    Unlimited,
}

/// What was read from the host. `None`: the setting could not be read (and is not judged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    pub rmem_max: Option<u64>,
    pub wmem_max: Option<u64>,
    pub netdev_max_backlog: Option<u64>,
    /// Soft RLIMIT_MEMLOCK of this process.
    pub memlock: Option<Limit>,
    /// Effective capability mask of this process.
    pub cap_effective: Option<u64>,
    /// `(cpu, governor)` for every CPU with cpufreq; empty without frequency scaling.
    pub governors: Vec<(usize, String)>,
}

/// What the media plane will ask of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// SO_RCVBUF each shard requests.
    pub recv_buffer: u64,
    /// SO_SNDBUF each shard requests.
    pub send_buffer: u64,
    /// Shards that will open io_uring (0 with the mmsg backend).
    pub uring_shards: u64,
    /// Locked memory one io_uring shard needs.
    pub uring_locked_bytes: u64,
}

impl Needs {
    /// The needs of `shards` shards with I/O configuration `io`, `uring` when they use io_uring.
    pub fn of(io: &IoConfig, shards: usize, uring: bool) -> Needs {
        Needs {
            recv_buffer: io.socket.recv_buffer as u64,
            send_buffer: io.socket.send_buffer as u64,
            uring_shards: if uring { shards as u64 } else { 0 },
            uring_locked_bytes: uring_locked_bytes(io),
        }
    }
}

/// Memory one shard's io_uring setup pins or has charged to RLIMIT_MEMLOCK on kernels that do
/// (before 5.12 every ring; pinned buffer rings and registered buffers on later ones), close to
/// the kernel's own sizing (about 270 KiB with the default configuration): the
/// submission queue entries and index array, the completion queue (sized as the uring backend
/// sizes it: twice the submission entries, or room for every receive buffer and transmit slot,
/// rounded up to a power of two) and the provided-buffer ring's entries, each page-rounded.
pub fn uring_locked_bytes(io: &IoConfig) -> u64 {
    const PAGE: u64 = 4096;
    let pages = |b: u64| b.div_ceil(PAGE) * PAGE;
    let sq = io.uring_entries as u64;
    let cq = (sq * 2)
        .max(io.rx_buffers as u64 + (io.tx_batches * io.tx_batch) as u64 + 64)
        .next_power_of_two()
        .min(1 << 20);
    pages(sq * 64) + pages(sq * 4 + 64) + pages(cq * 16 + 64) + pages(io.rx_buffers as u64 * 16)
}

/// One host setting that would limit the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// An unprivileged process gets at most `net.core.rmem_max` of receive buffer.
    RecvBufferCapped { max: u64, want: u64 },
    /// An unprivileged process gets at most `net.core.wmem_max` of send buffer.
    SendBufferCapped { max: u64, want: u64 },
    /// Packets a CPU queues before the stack processes them.
    BacklogSmall { have: u64, want: u64 },
    /// RLIMIT_MEMLOCK below what the io_uring shards need.
    MemlockLow { have: u64, need: u64 },
    /// CPUs whose frequency governor is not `performance`.
    Governor { cpus: Vec<(usize, String)> },
}

impl Finding {
    /// The setting concerned.
    pub fn setting(&self) -> &'static str {
        match self {
            Finding::RecvBufferCapped { .. } => "net.core.rmem_max",
            Finding::SendBufferCapped { .. } => "net.core.wmem_max",
            Finding::BacklogSmall { .. } => "net.core.netdev_max_backlog",
            Finding::MemlockLow { .. } => "RLIMIT_MEMLOCK",
            Finding::Governor { .. } => "scaling_governor",
        }
    }

    /// What to run (or change) to fix it.
    pub fn fix(&self) -> &'static str {
        match self {
            Finding::RecvBufferCapped { .. }
            | Finding::SendBufferCapped { .. }
            | Finding::BacklogSmall { .. } => "sudo tuning/sysctl.sh",
            Finding::MemlockLow { .. } => {
                "raise the limit of the server's process: sudo tuning/memlock.sh --unit <service> (LimitMEMLOCK), or ulimit -l in its shell"
            }
            Finding::Governor { .. } => "sudo tuning/cpu.sh",
        }
    }

    /// What is wrong and what it costs, in one sentence.
    pub fn message(&self) -> String {
        match self {
            Finding::RecvBufferCapped { max, want } => format!(
                "receive buffers are capped at {max} bytes, below the {want} each shard asks for (without CAP_NET_ADMIN it cannot exceed the limit): bursts will be dropped by the kernel"
            ),
            Finding::SendBufferCapped { max, want } => format!(
                "send buffers are capped at {max} bytes, below the {want} each shard asks for (without CAP_NET_ADMIN it cannot exceed the limit): fan-out bursts will fail with ENOBUFS"
            ),
            Finding::BacklogSmall { have, want } => format!(
                "netdev backlog is {have} packets per CPU (tuned: {want}): receive bursts beyond it are dropped before any socket sees them"
            ),
            Finding::MemlockLow { have, need } => format!(
                "locked-memory limit is {have} bytes, below the {need} the io_uring shards need: io_uring setup may fail and shards fall back to recvmmsg/sendmmsg"
            ),
            Finding::Governor { cpus } => {
                let list: Vec<String> = cpus.iter().map(|(c, g)| format!("cpu{c}={g}")).collect();
                format!(
                    "CPU frequency governor is not `performance` ({}): shards pay the clock ramp-up at every burst",
                    list.join(" ")
                )
            }
        }
    }
}

fn has_cap(caps: Option<u64>, bit: u32) -> bool {
    caps.is_some_and(|c| c & (1 << bit) != 0)
}

/// Decides which settings would limit a server with `needs` on a host with `facts`.
pub fn evaluate(facts: &HostFacts, needs: &Needs) -> Vec<Finding> {
    let mut out = Vec::new();
    // With CAP_NET_ADMIN the shards force their buffer sizes past the limits.
    if !has_cap(facts.cap_effective, CAP_NET_ADMIN) {
        if let Some(max) = facts.rmem_max
            && max < needs.recv_buffer
        {
            out.push(Finding::RecvBufferCapped {
                max,
                want: needs.recv_buffer,
            });
        }
        if let Some(max) = facts.wmem_max
            && max < needs.send_buffer
        {
            out.push(Finding::SendBufferCapped {
                max,
                want: needs.send_buffer,
            });
        }
    }
    if let Some(have) = facts.netdev_max_backlog
        && have < WANT_NETDEV_BACKLOG
    {
        out.push(Finding::BacklogSmall {
            have,
            want: WANT_NETDEV_BACKLOG,
        });
    }
    // CAP_IPC_LOCK exempts the process from the locked-memory limit.
    let need = needs.uring_shards * needs.uring_locked_bytes;
    if need > 0
        && !has_cap(facts.cap_effective, CAP_IPC_LOCK)
        && let Some(Limit::Bytes(have)) = facts.memlock
        && have < need
    {
        out.push(Finding::MemlockLow { have, need });
    }
    let slow: Vec<(usize, String)> = facts
        .governors
        .iter()
        .filter(|(_, g)| g != "performance")
        .cloned()
        .collect();
    if !slow.is_empty() {
        out.push(Finding::Governor { cpus: slow });
    }
    out
}

impl HostFacts {
    /// Reads the running host.
    pub fn read() -> HostFacts {
        Self::read_from(Path::new("/proc"), Path::new("/sys"))
    }

    /// Reads a host whose procfs and sysfs are mounted at `proc` and `sys`.
    pub fn read_from(proc: &Path, sys: &Path) -> HostFacts {
        let num = |rel: &str| -> Option<u64> {
            std::fs::read_to_string(proc.join(rel))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        let limits = std::fs::read_to_string(proc.join("self/limits")).unwrap_or_default();
        let status = std::fs::read_to_string(proc.join("self/status")).unwrap_or_default();
        HostFacts {
            rmem_max: num("sys/net/core/rmem_max"),
            wmem_max: num("sys/net/core/wmem_max"),
            netdev_max_backlog: num("sys/net/core/netdev_max_backlog"),
            memlock: parse_memlock(&limits),
            cap_effective: parse_cap_eff(&status),
            governors: read_governors(sys),
        }
    }
}

/// The soft "Max locked memory" limit of a `/proc/<pid>/limits` file.
pub fn parse_memlock(limits: &str) -> Option<Limit> {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))?;
    let soft = line
        .strip_prefix("Max locked memory")?
        .split_whitespace()
        .next()?;
    if soft == "unlimited" {
        Some(Limit::Unlimited)
    } else {
        soft.parse().ok().map(Limit::Bytes)
    }
}

/// The `CapEff` mask of a `/proc/<pid>/status` file.
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

fn read_governors(sys: &Path) -> Vec<(usize, String)> {
    let Ok(dir) = std::fs::read_dir(sys.join("devices/system/cpu")) else {
        return Vec::new();
    };
    let mut out: Vec<(usize, String)> = dir
        .flatten()
        .filter_map(|e| {
            let cpu: usize = e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok()?;
            let g = std::fs::read_to_string(e.path().join("cpufreq/scaling_governor")).ok()?;
            Some((cpu, g.trim().to_string()))
        })
        .collect();
    out.sort();
    out
}

/// Checks the host for a server with `shards` shards using `io` (io_uring when `uring`) and logs
/// one warning per finding. Returns the findings.
pub fn warn_about_host(io: &IoConfig, shards: usize, uring: bool) -> Vec<Finding> {
    let findings = evaluate(&HostFacts::read(), &Needs::of(io, shards, uring));
    for f in &findings {
        tracing::warn!(
            setting = f.setting(),
            fix = f.fix(),
            "host setting limits the media plane: {}",
            f.message()
        );
    }
    findings
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    fn tuned() -> HostFacts {
        HostFacts {
            rmem_max: Some(32 << 20),
            wmem_max: Some(32 << 20),
            netdev_max_backlog: Some(30_000),
            memlock: Some(Limit::Bytes(64 << 20)),
            cap_effective: Some(0),
            governors: vec![(0, "performance".into()), (1, "performance".into())],
        }
    }

    fn needs(shards: u64) -> Needs {
        Needs {
            recv_buffer: 16 << 20,
            send_buffer: 16 << 20,
            uring_shards: shards,
            uring_locked_bytes: 300 << 10,
        }
    }

    #[test]
    fn a_tuned_host_has_no_findings() {
        assert_eq!(evaluate(&tuned(), &needs(8)), vec![]);
    }

    #[test]
    fn stock_socket_buffer_limits_are_reported_for_an_unprivileged_server() {
        let facts = HostFacts {
            rmem_max: Some(212_992),
            wmem_max: Some(212_992),
            ..tuned()
        };
        let f = evaluate(&facts, &needs(1));
        assert_eq!(
            f,
            vec![
                Finding::RecvBufferCapped {
                    max: 212_992,
                    want: 16 << 20
                },
                Finding::SendBufferCapped {
                    max: 212_992,
                    want: 16 << 20
                },
            ]
        );
        assert!(f.iter().all(|x| x.fix() == "sudo tuning/sysctl.sh"));
    }

    #[test]
    fn cap_net_admin_lifts_the_buffer_limits() {
        let facts = HostFacts {
            rmem_max: Some(212_992),
            wmem_max: Some(212_992),
            cap_effective: Some(1 << CAP_NET_ADMIN),
            ..tuned()
        };
        assert_eq!(evaluate(&facts, &needs(1)), vec![]);
    }

    #[test]
    fn a_small_backlog_is_reported() {
        let facts = HostFacts {
            netdev_max_backlog: Some(1000),
            ..tuned()
        };
        assert_eq!(
            evaluate(&facts, &needs(1)),
            vec![Finding::BacklogSmall {
                have: 1000,
                want: WANT_NETDEV_BACKLOG
            }]
        );
    }

    #[test]
    fn memlock_is_judged_against_every_uring_shard() {
        let facts = HostFacts {
            memlock: Some(Limit::Bytes(1 << 20)),
            ..tuned()
        };
        // 3 shards of 300 KiB fit in 1 MiB; 4 do not.
        assert_eq!(evaluate(&facts, &needs(3)), vec![]);
        assert_eq!(
            evaluate(&facts, &needs(4)),
            vec![Finding::MemlockLow {
                have: 1 << 20,
                need: 4 * (300 << 10)
            }]
        );
        // The mmsg backend locks nothing; CAP_IPC_LOCK and no limit lift it.
        assert_eq!(evaluate(&facts, &needs(0)), vec![]);
        let privileged = HostFacts {
            cap_effective: Some(1 << CAP_IPC_LOCK),
            ..facts.clone()
        };
        assert_eq!(evaluate(&privileged, &needs(4)), vec![]);
        let unlimited = HostFacts {
            memlock: Some(Limit::Unlimited),
            ..facts
        };
        assert_eq!(evaluate(&unlimited, &needs(64)), vec![]);
    }

    #[test]
    fn governors_other_than_performance_are_listed() {
        let facts = HostFacts {
            governors: vec![
                (0, "performance".into()),
                (1, "powersave".into()),
                (2, "schedutil".into()),
            ],
            ..tuned()
        };
        let f = evaluate(&facts, &needs(1));
        assert_eq!(
            f,
            vec![Finding::Governor {
                cpus: vec![(1, "powersave".into()), (2, "schedutil".into())]
            }]
        );
        assert!(f[0].message().contains("cpu1=powersave cpu2=schedutil"));
        assert_eq!(f[0].fix(), "sudo tuning/cpu.sh");
    }

    #[test]
    fn unreadable_settings_are_not_judged() {
        let facts = HostFacts::default();
        assert_eq!(evaluate(&facts, &needs(64)), vec![]);
    }

    #[test]
    fn the_default_io_config_needs_about_a_quarter_mebibyte_per_shard() {
        // 1024 SQEs (64 KiB) + index array (4 KiB and a bit: 2 pages) + 8192 CQEs (128 KiB
        // and a bit: 33 pages) + 4096 buffer-ring entries (64 KiB).
        let b = uring_locked_bytes(&IoConfig::default());
        assert_eq!(b, (64 + 8 + 132 + 64) << 10);
    }

    #[test]
    fn limits_and_status_files_are_parsed() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max locked memory         8388608              8388608              bytes\n";
        assert_eq!(parse_memlock(limits), Some(Limit::Bytes(8 << 20)));
        let limits = "Max locked memory         unlimited            unlimited            bytes\n";
        assert_eq!(parse_memlock(limits), Some(Limit::Unlimited));
        assert_eq!(parse_memlock("Max open files 1024 1024 files"), None);
        let status = "Name:\tsignaling\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
    }

    #[test]
    fn a_fake_host_tree_is_read() {
        let root = std::env::temp_dir().join(format!("host-check-{}", std::process::id()));
        let (proc, sys) = (root.join("proc"), root.join("sys"));
        std::fs::create_dir_all(proc.join("sys/net/core")).unwrap();
        std::fs::create_dir_all(proc.join("self")).unwrap();
        for (k, v) in [
            ("rmem_max", "212992\n"),
            ("wmem_max", "4194304\n"),
            ("netdev_max_backlog", "1000\n"),
        ] {
            std::fs::write(proc.join("sys/net/core").join(k), v).unwrap();
        }
        std::fs::write(
            proc.join("self/limits"),
            "Max locked memory         65536                65536                bytes\n",
        )
        .unwrap();
        std::fs::write(proc.join("self/status"), "CapEff:\t0000000000000000\n").unwrap();
        for (c, g) in [(0, "performance"), (1, "powersave")] {
            let d = sys.join(format!("devices/system/cpu/cpu{c}/cpufreq"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("scaling_governor"), format!("{g}\n")).unwrap();
        }
        std::fs::create_dir_all(sys.join("devices/system/cpu/cpufreq")).unwrap();
        let facts = HostFacts::read_from(&proc, &sys);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            facts,
            HostFacts {
                rmem_max: Some(212_992),
                wmem_max: Some(4_194_304),
                netdev_max_backlog: Some(1000),
                memlock: Some(Limit::Bytes(65_536)),
                cap_effective: Some(0),
                governors: vec![(0, "performance".into()), (1, "powersave".into())],
            }
        );
        let settings: Vec<&str> = evaluate(&facts, &needs(2))
            .iter()
            .map(Finding::setting)
            .collect();
        assert_eq!(
            settings,
            [
                "net.core.rmem_max",
                "net.core.wmem_max",
                "net.core.netdev_max_backlog",
                "RLIMIT_MEMLOCK",
                "scaling_governor"
            ]
        );
    }
}
