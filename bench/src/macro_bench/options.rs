//! `bench macro` options.

use std::path::PathBuf;

use super::server::ServerKind;

pub const USAGE: &str = "\
usage: bench macro [OPTIONS]

Starts each server in turn in the rc-srv network namespace (bench/netns/setup.sh) pinned to the
shard cores, drives it with the same loadgen workload from rc-cli pinned to the next cores, and
reports egress packets/s, server CPU per million egress packets, RSS per subscriber, latency and
loss. Needs root, `ip netns`, release builds of signaling and loadgen, and Janus
(scripts/install-bench-deps.sh).

  --duration SECS          measured window per run (default 20)
  --publishers N           publishers (default 1)
  --subscribers N          subscribers per publisher (default 50; the first step with --saturate)
  --video-bitrate BPS      video bitrate of each publisher (default 1000000)
  --servers LIST           comma-separated: ringcast,janus (default both)
  --shards N               Ringcast shards, and cores given to each server (default 1)
  --io uring|mmsg          Ringcast's I/O backend (default: the server's own default)
  --loadgen-threads N      loadgen worker threads, one core each after the shard cores (default 1)
  --saturate               raise subscribers (x --step) until loss > 0.5 %, then measure at half
  --step F                 growth factor per saturation step (default 1.5)
  --max-steps N            saturation steps at most (default 10)
  --max-subscribers N      stop raising past this many subscriber streams (default 20000)
  --ramp N                 joins per second (default 100)
  --settle SECS            warm-up after the last join before measuring (default 4)
  --seed N                 loadgen seed (default 1)
  --json FILE              write the report as JSON
  --out-dir DIR            server logs and loadgen reports (default $TMPDIR/ringcast-macro)
  -- ARGS...               passed to every loadgen run (e.g. -- --audio)

Scaling across many cores: `bench macro --shards 8 --loadgen-threads 8 --saturate` on a
16-core machine gives Ringcast cores 0-7 and the loadgen cores 8-15 (Janus gets the same 8).";

/// Parsed options.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Options {
    pub duration: f64,
    pub publishers: usize,
    pub subscribers: usize,
    pub video_bitrate: u64,
    pub servers: Vec<ServerKind>,
    pub shards: usize,
    /// Ringcast's `--io` (None: the server's default).
    pub io: Option<String>,
    pub loadgen_threads: usize,
    pub saturate: bool,
    pub step: f64,
    pub max_steps: usize,
    pub max_subscribers: usize,
    pub ramp: f64,
    pub settle: f64,
    pub seed: u64,
    pub json: Option<PathBuf>,
    pub out_dir: Option<PathBuf>,
    pub loadgen_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            duration: 20.0,
            publishers: 1,
            subscribers: 50,
            video_bitrate: 1_000_000,
            servers: vec![ServerKind::Ringcast, ServerKind::Janus],
            shards: 1,
            io: None,
            loadgen_threads: 1,
            saturate: false,
            step: 1.5,
            max_steps: 10,
            max_subscribers: 20_000,
            ramp: 100.0,
            settle: 4.0,
            seed: 1,
            json: None,
            out_dir: None,
            loadgen_args: Vec::new(),
        }
    }
}

impl Options {
    /// Parses the arguments after `macro`; `Ok(None)` for `--help`.
    pub fn parse(args: &[String]) -> Result<Option<Options>, String> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut val = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
                v.parse().map_err(|_| format!("bad value {v:?} for {name}"))
            }
            match a.as_str() {
                "-h" | "--help" => return Ok(None),
                "--duration" => o.duration = num(a, val(a)?)?,
                "--publishers" => o.publishers = num(a, val(a)?)?,
                "--subscribers" => o.subscribers = num(a, val(a)?)?,
                "--video-bitrate" => o.video_bitrate = num(a, val(a)?)?,
                "--shards" => o.shards = num(a, val(a)?)?,
                "--loadgen-threads" => o.loadgen_threads = num(a, val(a)?)?,
                "--io" => {
                    let v = val(a)?;
                    if v != "uring" && v != "mmsg" {
                        return Err(format!("bad value {v:?} for --io (uring, mmsg)"));
                    }
                    o.io = Some(v);
                }
                "--saturate" => o.saturate = true,
                "--step" => o.step = num(a, val(a)?)?,
                "--max-steps" => o.max_steps = num(a, val(a)?)?,
                "--max-subscribers" => o.max_subscribers = num(a, val(a)?)?,
                "--ramp" => o.ramp = num(a, val(a)?)?,
                "--settle" => o.settle = num(a, val(a)?)?,
                "--seed" => o.seed = num(a, val(a)?)?,
                "--json" => o.json = Some(PathBuf::from(val(a)?)),
                "--out-dir" => o.out_dir = Some(PathBuf::from(val(a)?)),
                "--servers" => {
                    o.servers = val(a)?
                        .split(',')
                        .map(|s| {
                            ServerKind::parse(s).ok_or_else(|| format!("unknown server {s:?}"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--" => {
                    o.loadgen_args = it.by_ref().cloned().collect();
                }
                other => return Err(format!("unknown option {other}")),
            }
        }
        if o.publishers == 0 || o.subscribers == 0 || o.shards == 0 || o.loadgen_threads == 0 {
            return Err(
                "--publishers, --subscribers, --shards, --loadgen-threads must be >= 1".into(),
            );
        }
        if !(o.duration > 0.0 && o.ramp > 0.0 && o.step > 1.0 && o.settle >= 0.0) {
            return Err("--duration and --ramp must be positive, --step above 1".into());
        }
        if o.servers.is_empty() {
            return Err("--servers names no server".into());
        }
        Ok(Some(o))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests an unwrap is an assertion
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Option<Options>, String> {
        Options::parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_parse_with_defaults_and_passthrough() {
        let o = parse(&[
            "--servers",
            "janus",
            "--shards",
            "4",
            "--saturate",
            "--json",
            "x.json",
            "--",
            "--audio",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(o.servers, vec![ServerKind::Janus]);
        assert_eq!((o.shards, o.loadgen_threads, o.saturate), (4, 1, true));
        assert_eq!(o.loadgen_args, vec!["--audio".to_string()]);
        assert_eq!(o.duration, 20.0);
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--servers", "mediasoup"]).is_err());
        assert!(parse(&["--shards", "0"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}
