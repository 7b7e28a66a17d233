//! A thin epoll(7) wrapper: level-triggered readiness of many sockets keyed by a u64 token, and
//! a wait with nanosecond timeouts (epoll_pwait2, Linux 5.11; millisecond epoll_wait otherwise).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// An epoll instance with a fixed event buffer.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
    events: Box<[libc::epoll_event]>,
    has_pwait2: bool,
}

impl Epoll {
    /// A new instance returning up to `max_events` per wait.
    pub fn new(max_events: usize) -> io::Result<Self> {
        // SAFETY: plain epoll_create1 call; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll {
            // SAFETY: `fd` is a fresh descriptor that nothing else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            events: vec![libc::epoll_event { events: 0, u64: 0 }; max_events.max(1)]
                .into_boxed_slice(),
            has_pwait2: true,
        })
    }

    /// Watches `fd` for input, reporting `token`.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: registers a live descriptor with a live epoll instance.
        if unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stops watching `fd`.
    pub fn remove(&self, fd: RawFd) {
        // SAFETY: EPOLL_CTL_DEL ignores the event argument; errors (not registered) are harmless.
        unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }

    /// Waits until some descriptor is ready or `timeout` passes (`None`: no limit); returns the
    /// number of ready entries, read with [`token`](Self::token).
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let efd = self.fd.as_raw_fd();
        let max = self.events.len() as i32;
        if self.has_pwait2 {
            let ts = timeout.map(|t| libc::timespec {
                tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: t.subsec_nanos() as libc::c_long,
            });
            let tsp = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `events` is a live buffer of `max` entries; `tsp` is null or points to `ts`.
            let n = unsafe {
                libc::epoll_pwait2(efd, self.events.as_mut_ptr(), max, tsp, std::ptr::null())
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOSYS) => self.has_pwait2 = false,
                Some(libc::EINTR) => return Ok(0),
                _ => return Err(e),
            }
        }
        // Millisecond resolution: round up so a deadline is never returned early.
        let ms = timeout.map_or(-1, |t| {
            t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
        });
        // SAFETY: `events` is a live buffer of `max` entries.
        let n = unsafe { libc::epoll_wait(efd, self.events.as_mut_ptr(), max, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::EINTR) {
                Ok(0)
            } else {
                Err(e)
            };
        }
        Ok(n as usize)
    }

    /// The token of ready entry `i` of the last wait.
    pub fn token(&self, i: usize) -> u64 {
        self.events[i].u64
    }
}
