//! CPU time of this process (getrusage(2)) and of another one (`/proc/PID/stat`, proc(5)), so a
//! run can show whether the load generator itself was the bottleneck.

use std::time::Duration;

/// User and system CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTimes {
    /// User plus system.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }

    /// CPU time from `earlier` to `self`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    /// This process, all threads.
    pub fn process() -> CpuTimes {
        rusage(libc::RUSAGE_SELF)
    }

    /// The calling thread.
    pub fn thread() -> CpuTimes {
        rusage(libc::RUSAGE_THREAD)
    }

    /// Another process, from `/proc/PID/stat` (fields 14 and 15, in clock ticks).
    pub fn of_pid(pid: u32) -> std::io::Result<CpuTimes> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        parse_proc_stat(&stat, clock_ticks()).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "unparsable /proc stat")
        })
    }
}

/// CPU times of a process and of each of its threads at one moment.
#[derive(Debug, Clone, Default)]
pub struct ProcSample {
    pub total: CpuTimes,
    /// (thread id, thread name, CPU times).
    pub threads: Vec<(u32, String, CpuTimes)>,
}

impl ProcSample {
    /// Reads `/proc/PID/stat` and `/proc/PID/task/*/stat`.
    pub fn of_pid(pid: u32) -> std::io::Result<ProcSample> {
        let total = CpuTimes::of_pid(pid)?;
        let ticks = clock_ticks();
        let mut threads = Vec::new();
        for e in std::fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let Some(tid) = e.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            let name = stat
                .find('(')
                .zip(stat.rfind(')'))
                .map(|(a, b)| stat[a + 1..b].to_string())
                .unwrap_or_default();
            if let Some(t) = parse_proc_stat(&stat, ticks) {
                threads.push((tid, name, t));
            }
        }
        Ok(ProcSample { total, threads })
    }

    /// The thread that used the most CPU between `earlier` and `self`: its name and CPU time.
    pub fn busiest_since(&self, earlier: &ProcSample) -> Option<(String, CpuTimes)> {
        self.threads
            .iter()
            .map(|(tid, name, t)| {
                let before = earlier
                    .threads
                    .iter()
                    .find(|(e, _, _)| e == tid)
                    .map(|(_, _, t)| *t)
                    .unwrap_or_default();
                (name.clone(), t.since(&before))
            })
            .max_by_key(|(_, t)| t.total())
    }
}

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

fn rusage(who: libc::c_int) -> CpuTimes {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own; `who` is RUSAGE_SELF or RUSAGE_THREAD.
    let rc = unsafe { libc::getrusage(who, &mut ru) };
    if rc != 0 {
        return CpuTimes::default();
    }
    CpuTimes {
        user: tv(ru.ru_utime),
        system: tv(ru.ru_stime),
    }
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// Reads utime and stime from a `/proc/PID/stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_proc_stat(stat: &str, ticks_per_sec: u64) -> Option<CpuTimes> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let d = |t: u64| Duration::from_nanos(t * 1_000_000_000 / ticks_per_sec.max(1));
    Some(CpuTimes {
        user: d(utime),
        system: d(stime),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_are_read_after_the_command_name() {
        let line = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 \
                    3 0 12345 1000000 100 18446744073709551615";
        let t = parse_proc_stat(line, 100).unwrap();
        assert_eq!(t.user, Duration::from_millis(2500));
        assert_eq!(t.system, Duration::from_millis(500));
        assert!(parse_proc_stat("garbage", 100).is_none());
    }

    #[test]
    fn burning_cpu_shows_in_process_and_thread_times() {
        let p0 = CpuTimes::process();
        let t0 = CpuTimes::thread();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(60) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(CpuTimes::thread().since(&t0).total() >= Duration::from_millis(20));
        assert!(CpuTimes::process().since(&p0).total() >= Duration::from_millis(20));
        let me = CpuTimes::of_pid(std::process::id()).unwrap();
        assert!(me.total() > Duration::ZERO);
        let a = ProcSample::of_pid(std::process::id()).unwrap();
        assert!(!a.threads.is_empty());
        let b = ProcSample::of_pid(std::process::id()).unwrap();
        assert!(b.busiest_since(&a).is_some());
    }
}
