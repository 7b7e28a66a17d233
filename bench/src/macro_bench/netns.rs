//! The namespace pair of bench/netns/setup.sh: set up (idempotently) before a run, and entered
//! by the benchmark's own thread so that its signaling checks and the load generator it starts
//! live in the client namespace.

use std::path::Path;
use std::process::Command;

/// Names and addresses of the pair.
#[derive(Debug, Clone)]
pub struct Netns {
    pub srv: String,
    pub cli: String,
    pub srv_ip: String,
    pub cli_ip: String,
    /// The server side's interface (its TX counter is the servers' egress).
    pub srv_iface: String,
}

impl Default for Netns {
    fn default() -> Self {
        Netns {
            srv: "rc-srv".into(),
            cli: "rc-cli".into(),
            srv_ip: "10.77.0.1".into(),
            cli_ip: "10.77.0.2".into(),
            srv_iface: "rc-veth-srv".into(),
        }
    }
}

impl Netns {
    /// Runs bench/netns/setup.sh.
    pub fn setup(&self, root: &Path) -> Result<(), String> {
        let script = root.join("bench/netns/setup.sh");
        let st = Command::new("bash")
            .arg(&script)
            .status()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        if st.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed ({st}); the macro benchmark needs root and `ip netns`",
                script.display()
            ))
        }
    }

    /// Moves the calling thread (and every process it starts afterwards) into the client
    /// namespace.
    pub fn enter_client(&self) -> Result<(), String> {
        let path = format!("/var/run/netns/{}", self.cli);
        let f = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a valid namespace file descriptor we own.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if r != 0 {
            return Err(format!(
                "setns({path}): {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }
}
