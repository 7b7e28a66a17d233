//! Ringcast benchmarks.

pub mod thread_cpu {
    //! CPU time of one thread of this process, read from procfs: `schedstat` for nanosecond
    //! on-CPU time, `stat` for the user/system split (in clock ticks). Used to charge a shard
    //! thread's CPU to the packets it forwarded, from another thread.

    use std::io;

    /// CPU time a thread has used so far.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct ThreadTimes {
        /// Time on a CPU, nanoseconds (schedstat; falls back to user + system).
        pub on_cpu_ns: u64,
        /// Time in user mode, nanoseconds (tick resolution).
        pub user_ns: u64,
        /// Time in the kernel, nanoseconds (tick resolution).
        pub system_ns: u64,
    }

    impl ThreadTimes {
        /// The time used between `earlier` and `self`.
        pub fn since(&self, earlier: &ThreadTimes) -> ThreadTimes {
            ThreadTimes {
                on_cpu_ns: self.on_cpu_ns.saturating_sub(earlier.on_cpu_ns),
                user_ns: self.user_ns.saturating_sub(earlier.user_ns),
                system_ns: self.system_ns.saturating_sub(earlier.system_ns),
            }
        }
    }

    /// The id of this process's thread named `name` (as `/proc/self/task/*/comm` shows it,
    /// at most 15 bytes), if there is one.
    pub fn find_thread(name: &str) -> Option<i32> {
        let dir = std::fs::read_dir("/proc/self/task").ok()?;
        for entry in dir.flatten() {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            if comm.trim_end() == name {
                return entry.file_name().to_str()?.parse().ok();
            }
        }
        None
    }

    /// The CPU time thread `tid` of this process has used.
    pub fn thread_times(tid: i32) -> io::Result<ThreadTimes> {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))?;
        let (utime, stime) = parse_stat(&stat).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected /proc/<tid>/stat format",
            )
        })?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let tick_ns = 1_000_000_000 / hz;
        let (user_ns, system_ns) = (utime * tick_ns, stime * tick_ns);
        let on_cpu_ns = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
            .ok()
            .and_then(|s| parse_schedstat(&s))
            .unwrap_or(user_ns + system_ns);
        Ok(ThreadTimes {
            on_cpu_ns,
            user_ns,
            system_ns,
        })
    }

    /// `utime` and `stime` (fields 14 and 15, clock ticks) of a `stat` line. The command name
    /// (field 2) is parenthesised and may itself hold spaces and parentheses, so fields are
    /// counted from the last `)`.
    pub fn parse_stat(line: &str) -> Option<(u64, u64)> {
        let rest = &line[line.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace();
        // After the name: state is field 3, so utime (14) is the 12th field here.
        let utime = fields.nth(11)?.parse().ok()?;
        let stime = fields.next()?.parse().ok()?;
        Some((utime, stime))
    }

    /// On-CPU nanoseconds, the first field of a `schedstat` line.
    pub fn parse_schedstat(line: &str) -> Option<u64> {
        line.split_whitespace().next()?.parse().ok()
    }

    /// CPU nanoseconds the calling thread has used (CLOCK_THREAD_CPUTIME_ID).
    pub fn current_thread_cpu_ns() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux knows.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if rc != 0 {
            return 0;
        }
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn stat_fields_are_counted_after_a_name_with_spaces_and_parens() {
            let line = "4242 (shard (0) x) R 1 2 3 4 5 6 7 8 9 10 321 123 0 0 20 0 1 0";
            assert_eq!(parse_stat(line), Some((321, 123)));
        }

        #[test]
        fn truncated_stat_is_rejected() {
            assert_eq!(parse_stat("1 (x) R 1 2 3"), None);
            assert_eq!(parse_stat("no parenthesis"), None);
        }

        #[test]
        fn schedstat_gives_on_cpu_nanoseconds() {
            assert_eq!(parse_schedstat("123456789 2000 17\n"), Some(123_456_789));
            assert_eq!(parse_schedstat(""), None);
        }

        #[test]
        fn a_busy_thread_is_found_by_name_and_its_time_grows() {
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let s = stop.clone();
            let t = std::thread::Builder::new()
                .name("cpu-probe-test".into())
                .spawn(move || {
                    let mut x = 0u64;
                    while !s.load(std::sync::atomic::Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                })
                .expect("thread starts");
            let tid = (0..200)
                .find_map(|_| {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    find_thread("cpu-probe-test")
                })
                .expect("thread is listed");
            let a = thread_times(tid).expect("readable");
            std::thread::sleep(std::time::Duration::from_millis(50));
            let b = thread_times(tid).expect("readable");
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            t.join().expect("thread ends");
            assert!(b.since(&a).on_cpu_ns > 0, "{a:?} then {b:?}");
        }
    }
}
