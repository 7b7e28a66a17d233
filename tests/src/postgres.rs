//! A throwaway PostgreSQL server for tests: Debian's `postgresql` binaries (initdb, postgres,
//! createdb, psql) on a loopback port with its data in a temporary directory, trust auth, fsync
//! off. As root it runs as the `postgres` user (the server refuses to run as root). A missing
//! binary fails the test with the install command; nothing is skipped.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running server with database `ringcast`; stopped and its directory removed on drop.
#[derive(Debug)]
pub struct PgServer {
    child: Child,
    dir: PathBuf,
    bin: PathBuf,
    ids: Option<(u32, u32)>,
    pub port: u16,
}

/// The newest installed server's `bin` directory.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).unwrap_or_else(|| {
        panic!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: install Debian's \
             postgresql package (scripts/install-test-deps.sh)"
        )
    })
}

/// uid and gid of `name` from /etc/passwd.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// Binary `name` of `bin`, run as `ids` (the `postgres` user when running as root).
fn command(bin: &Path, ids: Option<(u32, u32)>, name: &str) -> Command {
    let mut c = Command::new(bin.join(name));
    if let Some((uid, gid)) = ids {
        c.uid(uid).gid(gid);
    }
    c
}

impl PgServer {
    /// Initialises a cluster, starts it, and creates database `ringcast`; returns once that
    /// database accepts connections.
    pub fn start() -> PgServer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let bin = bin_dir();
        // SAFETY: geteuid has no preconditions.
        let ids = (unsafe { libc::geteuid() } == 0).then(|| {
            user_ids("postgres").unwrap_or_else(|| {
                panic!("running as root needs the `postgres` user (Debian's postgresql package)")
            })
        });
        let dir = std::env::temp_dir().join(format!(
            "ringcast-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the temp dir");
        }
        let port = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("an ephemeral loopback port");
        let data = dir.join("data");
        let out = command(&bin, ids, "initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::File::create(dir.join("server.log")).expect("log file");
        let child = command(&bin, ids, "postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=100"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        let mut pg = PgServer {
            child,
            dir,
            bin,
            ids,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Ok(Some(status)) = pg.child.try_wait() {
                panic!("postgres exited with {status}: {}", pg.log());
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not listen within 60 s: {}",
                pg.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        pg.create_database("ringcast");
        pg
    }

    fn command(&self, name: &str) -> Command {
        command(&self.bin, self.ids, name)
    }

    /// `-h 127.0.0.1 -p PORT -U postgres`.
    fn connect_args(&self) -> [String; 6] {
        [
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ]
        .map(String::from)
    }

    /// Creates database `name` (retrying while the server finishes starting up); its URL.
    pub fn create_database(&self, name: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self
                .command("createdb")
                .args(self.connect_args())
                .arg(name)
                .output()
                .expect("createdb runs");
            if out.status.success() {
                return self.url_of(name);
            }
            assert!(
                Instant::now() < deadline,
                "createdb {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// URL of database `ringcast` as the superuser.
    pub fn url(&self) -> String {
        self.url_of("ringcast")
    }

    /// URL of database `db` as the superuser.
    pub fn url_of(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// `psql -At -c sql` against database `ringcast`: the rows, `|`-separated.
    pub fn query(&self, sql: &str) -> String {
        let out = self
            .command("psql")
            .args(self.connect_args())
            .args(["-At", "-d", "ringcast", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown.
        // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
