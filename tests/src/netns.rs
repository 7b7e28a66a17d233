//! A network namespace of the test's own, joined to the host by a veth pair, with a token-bucket
//! (tbf) limit on the host side: what the host sends into the namespace — a viewer's downlink
//! when the server runs on the host and the viewer inside — goes through it. Created with a
//! unique name for each test and removed on drop (processes still inside are killed first).
//! Needs root (CAP_NET_ADMIN), `ip` (iproute2) and `tc`; a missing tool fails the test.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::HarnessError;

static NEXT: AtomicU32 = AtomicU32::new(0);

fn run(args: &[&str]) -> Result<String, HarnessError> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|source| HarnessError::Spawn {
            what: args.join(" "),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HarnessError::MissingDependency {
            what: format!(
                "`{}` failed ({}): {} (network namespaces need root and iproute2)",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// Fails unless `ip netns` and `tc` work here (root, iproute2, the tbf qdisc).
pub fn check_netns() -> Result<(), HarnessError> {
    run(&["ip", "netns", "list"])?;
    run(&["tc", "qdisc", "show", "dev", "lo"])?;
    Ok(())
}

/// Panics with a clear message unless network namespaces can be made.
#[track_caller]
pub fn require_netns() {
    if let Err(e) = check_netns() {
        panic!("{e}");
    }
}

/// A namespace with one veth to the host: `host_ip()` on the host side, `ns_ip()` inside.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    host_if: String,
    host_ip: Ipv4Addr,
    ns_ip: Ipv4Addr,
}

impl NetNs {
    /// Makes a fresh namespace `ringcast-<pid>-<n>` with a /30 from 10.201.0.0/16 that no host
    /// interface uses yet.
    pub fn create() -> Result<NetNs, HarnessError> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let name = format!("ringcast-{pid}-{n}");
        // Interface names are at most 15 bytes.
        let tag = format!("{:x}", (pid << 4) ^ n);
        let host_if = format!("rch{tag}");
        let ns_if = format!("rcn{tag}");
        let used = run(&["ip", "-4", "-o", "addr", "show"])?;
        let subnet = (0..16_384u32)
            .map(|i| (pid.wrapping_mul(31).wrapping_add(n * 97 + i)) % 16_384)
            .find(|s| {
                let host = Ipv4Addr::from(0x0ac9_0000 | (s << 2) | 1);
                !used.contains(&format!(" {host}/"))
            })
            .ok_or_else(|| HarnessError::Ports("no free /30 in 10.201.0.0/16".into()))?;
        let host_ip = Ipv4Addr::from(0x0ac9_0000 | (subnet << 2) | 1);
        let ns_ip = Ipv4Addr::from(0x0ac9_0000 | (subnet << 2) | 2);
        run(&["ip", "netns", "add", &name])?;
        let ns = NetNs {
            name,
            host_if,
            host_ip,
            ns_ip,
        };
        // From here on, drop removes whatever was made.
        let (h, i) = (&ns.host_if, &ns_if);
        run(&["ip", "link", "add", h, "type", "veth", "peer", "name", i])?;
        run(&["ip", "link", "set", i, "netns", &ns.name])?;
        run(&["ip", "addr", "add", &format!("{host_ip}/30"), "dev", h])?;
        run(&["ip", "link", "set", h, "up"])?;
        let ns_cmd = |args: &[&str]| {
            let mut a = vec!["ip", "-n", ns.name.as_str()];
            a.extend_from_slice(args);
            run(&a)
        };
        ns_cmd(&["addr", "add", &format!("{ns_ip}/30"), "dev", i])?;
        ns_cmd(&["link", "set", i, "up"])?;
        ns_cmd(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host side of the veth: where a server on the host is reached from inside.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.host_ip
    }

    /// The namespace's address.
    pub fn ns_ip(&self) -> Ipv4Addr {
        self.ns_ip
    }

    /// `["ip", "netns", "exec", NAME]`: runs a command inside.
    pub fn exec_prefix(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }

    /// Limits what the host sends into the namespace to `kbit` kbit/s, like the bottleneck
    /// link of a DSL line: a token bucket of two full-size packets, a peak rate bucket of one
    /// packet at 3 % over the rate (so packets leave spaced as a link of that rate would
    /// serialize them, never as a burst), and a queue of 200 ms at that rate (tail drop beyond
    /// it). Without the peak rate a token bucket lets a small probe cluster through at the
    /// veth's speed, and a send-side estimator then measures the burst instead of the link
    /// (measured at 600 kbit/s: probe results of 0.9–1.4 Mbit/s with a 1.6 or 16 kB bucket).
    pub fn limit_downlink(&self, kbit: u32) -> Result<(), HarnessError> {
        run(&[
            "tc",
            "qdisc",
            "replace",
            "dev",
            &self.host_if,
            "root",
            "tbf",
            "rate",
            &format!("{kbit}kbit"),
            "burst",
            "3200",
            "latency",
            "200ms",
            "peakrate",
            &format!("{}kbit", kbit + kbit.div_ceil(33)),
            "mtu",
            "1600",
        ])?;
        Ok(())
    }

    /// Removes the limit.
    pub fn clear_limit(&self) -> Result<(), HarnessError> {
        run(&["tc", "qdisc", "del", "dev", &self.host_if, "root"])?;
        Ok(())
    }

    /// `tc -s qdisc` of the host side (sent, dropped, overlimits), for test logs.
    pub fn qdisc_stats(&self) -> String {
        run(&["tc", "-s", "qdisc", "show", "dev", &self.host_if]).unwrap_or_default()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Processes left inside (a peer that outlived its test) would keep the namespace alive.
        if let Ok(pids) = run(&["ip", "netns", "pids", &self.name]) {
            for pid in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                // SAFETY: kill(2) on a pid `ip netns pids` listed for our own namespace.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        // Deleting one end of a veth deletes both.
        let _ = run(&["ip", "link", "del", &self.host_if]);
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_reaches_the_host_and_is_gone_after_drop() {
        require_netns();
        let ns = NetNs::create().expect("namespace");
        let name = ns.name().to_string();
        // A TCP connection from inside to a listener on the host side.
        let listener = std::net::TcpListener::bind((ns.host_ip(), 0)).expect("listener");
        let addr = listener.local_addr().expect("address");
        let script = format!("exec 3<>/dev/tcp/{}/{}", addr.ip(), addr.port());
        let connected = Command::new("ip")
            .args(["netns", "exec", &name, "bash", "-c", &script])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(connected, "TCP to {addr} from {name}");
        let (_, peer) = listener.accept().expect("the connection arrives");
        assert_eq!(peer.ip(), std::net::IpAddr::V4(ns.ns_ip()));
        ns.limit_downlink(600).expect("tbf");
        assert!(ns.qdisc_stats().contains("tbf"), "{}", ns.qdisc_stats());
        ns.clear_limit().expect("no tbf");
        drop(ns);
        let list = run(&["ip", "netns", "list"]).expect("ip netns list");
        assert!(
            !list
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name.as_str()))
        );
    }
}
