//! An S3-compatible object store for the recording tests: s3s-fs (built by
//! scripts/install-test-deps.sh into .tools/bin), serving a temporary directory on a free
//! loopback port and checking AWS SigV4 signatures with fixed test credentials.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The store's access key (`RECORDING_ACCESS_KEY`).
pub const ACCESS_KEY: &str = "ringcast-test";
/// The store's secret key (`RECORDING_SECRET_KEY`).
pub const SECRET_KEY: &str = "ringcast-test-secret-0123456789";

/// A running s3s-fs, killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct S3Server {
    child: Option<Child>,
    addr: SocketAddr,
    dir: PathBuf,
}

/// The s3s-fs binary; panics with the install command when it is missing.
pub fn binary() -> PathBuf {
    let bin = crate::paths::workspace_root().join(".tools/bin/s3s-fs");
    assert!(
        bin.is_file(),
        "the S3 test server is missing: {} does not exist; run scripts/install-test-deps.sh \
         (it builds s3s-fs with cargo install)",
        bin.display()
    );
    bin
}

impl S3Server {
    /// Starts s3s-fs over a fresh temporary directory; panics when it does not listen.
    pub fn start() -> S3Server {
        let bin = binary();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringcast-s3-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("create the store's directory");
        for _ in 0..5 {
            // A port freed just before the server binds it may be taken in between: try again.
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let log = std::fs::File::create(dir.join("s3s-fs.log")).expect("log file");
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(&data)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return S3Server {
                        child: Some(child),
                        addr,
                        dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.join("s3s-fs.log")).unwrap_or_default();
        panic!("s3s-fs did not start listening; its log:\n{log}");
    }

    /// `RECORDING_STORAGE` naming this store and `bucket`.
    pub fn storage_url(&self, bucket: &str) -> String {
        format!("minio://{}/{bucket}", self.addr)
    }

    /// The store's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory the store serves: a bucket is a folder in it, an object a file.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Where an object is kept on disk (s3s-fs stores `bucket/key` as a file).
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.data_dir().join(bucket).join(key)
    }

    /// Stops the store (its directory stays until drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
