//! An exclusive, machine-wide lock for tests that measure media (frame rates, loss).
//!
//! Encoding and decoding real video is CPU-bound; two such tests at once on a small machine would
//! measure each other, not the server. Tests that assert on frame rates hold this lock for their
//! whole run. It is an `flock(2)` on a file in the temp directory, so it also serialises test
//! processes running side by side; the kernel drops it if the holder dies.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Held while alive.
#[derive(Debug)]
pub struct MediaLock {
    _file: File,
    /// How long acquiring it waited.
    pub waited: Duration,
}

/// Blocks until the lock is free (up to 20 minutes), then holds it until the guard drops.
pub fn media_lock() -> MediaLock {
    let path = std::env::temp_dir().join("ringcast-e2e-media.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open lock file {}: {e}", path.display()));
    let start = Instant::now();
    let mut announced = false;
    loop {
        // SAFETY: flock(2) on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return MediaLock {
                _file: file,
                waited: start.elapsed(),
            };
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            panic!("flock {}: {err}", path.display());
        }
        if !announced {
            eprintln!(
                "[ringcast-tests] waiting for another media test to finish ({})",
                path.display()
            );
            announced = true;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1200),
            "media lock {} held for over 20 minutes",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
