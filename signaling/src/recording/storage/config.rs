//! Where recordings are stored: the RECORDING_STORAGE URL, the region and the credentials, taken
//! from values the caller reads (environment, config file).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use super::StorageError;

/// The RECORDING_STORAGE forms [`StorageConfig::parse`] accepts.
pub const ACCEPTED_FORMS: &str = "minio://host:port[/bucket] or s3+http://host:port[/bucket] \
     (plain HTTP), minio+https://host[:port][/bucket], s3+https://host[:port][/bucket] or \
     https://host[:port][/bucket] (HTTPS), http://host:port[/bucket], s3://bucket (Amazon S3 in \
     RECORDING_REGION), file:///absolute/dir (a local directory); key:secret@ may precede the \
     host";

/// The bucket when the URL names none.
pub const DEFAULT_BUCKET: &str = "recordings";

/// The region when RECORDING_REGION is not set (what MinIO expects by default).
pub const DEFAULT_REGION: &str = "us-east-1";

/// Where objects are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// An S3-compatible object store, addressed path-style: `<endpoint>/<bucket>/<key>`.
    S3 {
        /// `http://host:port/` or `https://host:port/`.
        endpoint: Url,
        bucket: String,
    },
    /// A local directory; an object is the file at `<dir>/<key>`.
    Local { dir: PathBuf },
}

/// An access key and its secret. `Debug` does not show the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageCredentials {
    pub access_key: String,
    pub secret_key: String,
}

impl fmt::Debug for StorageCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageCredentials")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// How often and how patiently transient failures (connection errors, timeouts, 5xx answers)
/// are retried within one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first one included (at least 1).
    pub attempts: u32,
    /// The wait before the first retry; it doubles after each one.
    pub initial_backoff: Duration,
    /// The longest wait between two tries.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed try number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Everything [`super::RecordingStorage::new`] needs.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub location: StorageLocation,
    /// The SigV4 signing region.
    pub region: String,
    /// Required for an object store, ignored for a local directory.
    pub credentials: Option<StorageCredentials>,
    pub retry: RetryPolicy,
    /// How long to wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// How long one request may take, body upload included (a part is at most a few tens of MiB).
    pub request_timeout: Duration,
}

/// Credential variable pairs, first set pair wins.
const CREDENTIAL_VARS: [(&str, &str); 3] = [
    ("RECORDING_ACCESS_KEY", "RECORDING_SECRET_KEY"),
    ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"),
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
];

impl StorageConfig {
    /// Parses a RECORDING_STORAGE value. The region is [`DEFAULT_REGION`]; credentials are the
    /// URL's `key:secret@` userinfo if it has one (percent-decoded), else `None`.
    ///
    /// Ports: `minio://` and `minio+https://` default to 9000 (MinIO's), the others to 80/443.
    pub fn parse(value: &str) -> Result<Self, StorageError> {
        let (location, credentials) = parse_location(value)?;
        Ok(StorageConfig {
            location,
            region: DEFAULT_REGION.to_owned(),
            credentials,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(300),
        })
    }

    /// [`StorageConfig::parse`], then the region from `RECORDING_REGION` and, when the URL has
    /// no userinfo, credentials from the first pair that `env` has: `RECORDING_ACCESS_KEY`/
    /// `RECORDING_SECRET_KEY`, `MINIO_ROOT_USER`/`MINIO_ROOT_PASSWORD`,
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`. Empty values count as unset; half a pair is
    /// an error. `env` is e.g. `&|k| std::env::var(k).ok()`.
    pub fn from_env(
        value: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, StorageError> {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        let mut cfg = Self::parse(value)?;
        if let Some(region) = get("RECORDING_REGION") {
            if let StorageLocation::S3 { endpoint, .. } = &mut cfg.location
                && *endpoint == aws_endpoint(DEFAULT_REGION)
            {
                *endpoint = aws_endpoint(&region);
            }
            cfg.region = region;
        }
        if cfg.credentials.is_none() && matches!(cfg.location, StorageLocation::S3 { .. }) {
            for (key_var, secret_var) in CREDENTIAL_VARS {
                match (get(key_var), get(secret_var)) {
                    (Some(access_key), Some(secret_key)) => {
                        cfg.credentials = Some(StorageCredentials {
                            access_key,
                            secret_key,
                        });
                        break;
                    }
                    (None, None) => {}
                    (Some(_), None) => {
                        return Err(StorageError::MissingCredentials {
                            reason: format!("{key_var} is set but {secret_var} is not"),
                        });
                    }
                    (None, Some(_)) => {
                        return Err(StorageError::MissingCredentials {
                            reason: format!("{secret_var} is set but {key_var} is not"),
                        });
                    }
                }
            }
        }
        Ok(cfg)
    }
}

fn parse_location(
    value: &str,
) -> Result<(StorageLocation, Option<StorageCredentials>), StorageError> {
    let bad = |reason: String| StorageError::BadUrl {
        value: mask_secret(value),
        reason,
    };
    let url = Url::parse(value.trim()).map_err(|e| bad(format!("not a URL ({e})")))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a query string or fragment has no meaning here".into()));
    }
    let (scheme, default_port) = match url.scheme() {
        "file" => return parse_file(&url).map_err(bad).map(|l| (l, None)),
        "s3" => return parse_aws(&url).map_err(bad),
        "minio" => ("http", 9000),
        "minio+https" => ("https", 9000),
        "s3+http" | "http" => ("http", 80),
        "s3+https" | "https" => ("https", 443),
        other => return Err(bad(format!("unsupported scheme {other:?}"))),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host".into()))?;
    let port = url.port().unwrap_or(default_port);
    let endpoint = Url::parse(&format!("{scheme}://{host}:{port}/"))
        .map_err(|e| bad(format!("bad host {host:?} ({e})")))?;

    let path = url.path().trim_start_matches('/');
    let path = path.strip_suffix('/').unwrap_or(path);
    let bucket = if path.is_empty() {
        DEFAULT_BUCKET.to_owned()
    } else if path.contains('/') {
        return Err(bad(format!(
            "the path must be a bucket name alone, found {:?}",
            url.path()
        )));
    } else {
        check_bucket(path).map_err(|why| bad(format!("bucket {path:?} {why}")))?;
        path.to_owned()
    };

    let credentials = match (url.username(), url.password()) {
        ("", None) => None,
        (user, Some(pass)) if !user.is_empty() && !pass.is_empty() => Some(StorageCredentials {
            access_key: decode(user),
            secret_key: decode(pass),
        }),
        _ => {
            return Err(bad(
                "credentials in the URL must be a key and a secret: key:secret@host".into(),
            ));
        }
    };
    Ok((StorageLocation::S3 { endpoint, bucket }, credentials))
}

/// `s3://bucket`: Amazon S3 (path-style on the regional endpoint, set by
/// [`StorageConfig::from_env`] from `RECORDING_REGION`).
fn parse_aws(url: &Url) -> Result<(StorageLocation, Option<StorageCredentials>), String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err("s3://bucket takes its credentials from the environment".into());
    }
    let bucket = url.host_str().unwrap_or_default();
    check_bucket(bucket).map_err(|why| format!("bucket {bucket:?} {why}"))?;
    if !matches!(url.path(), "" | "/") || url.port().is_some() {
        return Err("s3://bucket names a bucket alone".into());
    }
    Ok((
        StorageLocation::S3 {
            endpoint: aws_endpoint(DEFAULT_REGION),
            bucket: bucket.to_owned(),
        },
        None,
    ))
}

/// Amazon S3's endpoint in `region`.
fn aws_endpoint(region: &str) -> Url {
    // A region that cannot be part of a host name gets the global endpoint (whose requests are
    // then refused with S3's own error about the region).
    Url::parse(&format!("https://s3.{region}.amazonaws.com/")).unwrap_or_else(|_| {
        Url::parse("https://s3.amazonaws.com/").unwrap_or_else(|_| unreachable!("a literal URL"))
    })
}

fn parse_file(url: &Url) -> Result<StorageLocation, String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a file:// URL takes no credentials".into());
    }
    let dir = url
        .to_file_path()
        .map_err(|()| "a local directory is file:///absolute/dir (three slashes)".to_owned())?;
    if dir.parent().is_none() {
        return Err("the directory must not be the file system root".into());
    }
    Ok(StorageLocation::Local { dir })
}

/// S3 bucket naming rules: 3-63 characters of `a-z`, `0-9`, `.` and `-`, starting and ending
/// with a letter or digit, no `..`.
fn check_bucket(name: &str) -> Result<(), &'static str> {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(3..=63).contains(&name.len()) {
        Err("must be 3 to 63 characters long")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        Err("may hold only a-z, 0-9, '.' and '-'")
    } else if !alnum(name.chars().next()) || !alnum(name.chars().last()) || name.contains("..") {
        Err("must start and end with a letter or digit and have no '..'")
    } else {
        Ok(())
    }
}

/// Percent-decodes URL userinfo (a secret may hold `/`, `+`, `@`, ... written as `%2F`, ...).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            )
        {
            // Two hex digits make at most 0xff.
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value with the secret of a `scheme://key:secret@host` userinfo replaced by `***`, for
/// error messages and logs.
fn mask_secret(value: &str) -> String {
    let Some(start) = value.find("://").map(|i| i + 3) else {
        return value.to_owned();
    };
    let authority_end = value[start..]
        .find(['/', '?', '#'])
        .map_or(value.len(), |i| start + i);
    let Some(at) = value[start..authority_end].rfind('@').map(|i| start + i) else {
        return value.to_owned();
    };
    match value[start..at].find(':').map(|i| start + i) {
        Some(colon) => format!("{}***{}", &value[..=colon], &value[at..]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn s3(value: &str) -> (String, String) {
        match StorageConfig::parse(value).unwrap().location {
            StorageLocation::S3 { endpoint, bucket } => (endpoint.to_string(), bucket),
            other => panic!("{value}: {other:?}"),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn minio_and_s3_http_urls_give_a_plain_http_endpoint() {
        assert_eq!(
            s3("minio://localhost:9000"),
            ("http://localhost:9000/".into(), "recordings".into())
        );
        assert_eq!(
            s3("minio://localhost"),
            ("http://localhost:9000/".into(), "recordings".into())
        );
        assert_eq!(
            s3("s3+http://127.0.0.1:9100/media"),
            ("http://127.0.0.1:9100/".into(), "media".into())
        );
        assert_eq!(
            s3("http://minio.internal:9000/rec-01/"),
            ("http://minio.internal:9000/".into(), "rec-01".into())
        );
        assert_eq!(s3("minio://[::1]:9000/b.c").0, "http://[::1]:9000/");
    }

    #[test]
    fn https_forms_give_an_https_endpoint() {
        assert_eq!(
            s3("minio+https://minio.example.com/recs"),
            ("https://minio.example.com:9000/".into(), "recs".into())
        );
        assert_eq!(
            s3("s3+https://s3.eu-west-1.amazonaws.com/recs"),
            ("https://s3.eu-west-1.amazonaws.com/".into(), "recs".into())
        );
        assert_eq!(
            s3("https://storage.example.com:8443"),
            (
                "https://storage.example.com:8443/".into(),
                "recordings".into()
            )
        );
    }

    #[test]
    fn file_urls_give_a_local_directory() {
        let cfg = StorageConfig::parse("file:///var/lib/ringcast/recordings").unwrap();
        assert_eq!(
            cfg.location,
            StorageLocation::Local {
                dir: "/var/lib/ringcast/recordings".into()
            }
        );
        assert!(StorageConfig::parse("file://relative/dir").is_err());
        assert!(StorageConfig::parse("file:///").is_err());
    }

    #[test]
    fn s3_names_an_amazon_bucket_in_the_configured_region() {
        let env = |k: &str| match k {
            "RECORDING_REGION" => Some("eu-west-1".to_owned()),
            "AWS_ACCESS_KEY_ID" => Some("AKIA".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".to_owned()),
            _ => None,
        };
        let cfg = StorageConfig::from_env("s3://my-recordings", &env).unwrap();
        match &cfg.location {
            StorageLocation::S3 { endpoint, bucket } => {
                assert_eq!(endpoint.as_str(), "https://s3.eu-west-1.amazonaws.com/");
                assert_eq!(bucket, "my-recordings");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(cfg.region, "eu-west-1");
        assert_eq!(cfg.credentials.unwrap().access_key, "AKIA");
        let cfg = StorageConfig::parse("s3://my-recordings").unwrap();
        assert!(
            matches!(cfg.location, StorageLocation::S3 { ref endpoint, .. }
            if endpoint.as_str() == "https://s3.us-east-1.amazonaws.com/")
        );
        for bad in [
            "s3://Bad_Bucket",
            "s3://bucket/key",
            "s3://bucket:9000",
            "s3://k:s@bucket",
        ] {
            assert!(StorageConfig::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unusable_values_are_refused_naming_the_accepted_forms() {
        for bad in [
            "",
            "localhost:9000",
            "s3://bucket/key",
            "ftp://host/b",
            "minio://host:9000/a/b",
            "minio://host:9000/Upper",
            "minio://host:9000/ab",
            "minio://host:9000/b?x=1",
            "minio://key@host:9000",
            "minio://:9000",
        ] {
            let err = StorageConfig::parse(bad).expect_err(bad);
            let msg = err.to_string();
            assert!(matches!(err, StorageError::BadUrl { .. }), "{bad}: {msg}");
            assert!(msg.contains("minio://host:port[/bucket]"), "{msg}");
            assert!(msg.contains("file:///absolute/dir"), "{msg}");
        }
    }

    #[test]
    fn secrets_in_a_refused_url_are_masked() {
        let err = StorageConfig::parse("minio://admin:hunter2@host:9000/a/b").unwrap_err();
        let msg = err.to_string();
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.contains("minio://admin:***@host:9000/a/b"), "{msg}");
    }

    #[test]
    fn userinfo_credentials_are_percent_decoded() {
        let cfg = StorageConfig::parse("minio://admin:p%2Fss%40w0rd@localhost:9000").unwrap();
        let creds = cfg.credentials.unwrap();
        assert_eq!(creds.access_key, "admin");
        assert_eq!(creds.secret_key, "p/ss@w0rd");
        assert!(!format!("{creds:?}").contains("w0rd"));
    }

    #[test]
    fn credentials_come_from_the_first_complete_variable_pair() {
        let all = env(&[
            ("RECORDING_ACCESS_KEY", "rec"),
            ("RECORDING_SECRET_KEY", "rec-secret"),
            ("MINIO_ROOT_USER", "minio"),
            ("MINIO_ROOT_PASSWORD", "minio-secret"),
            ("AWS_ACCESS_KEY_ID", "aws"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
        ]);
        let c = StorageConfig::from_env("minio://h:9000", &all).unwrap();
        assert_eq!(c.credentials.unwrap().access_key, "rec");

        let minio = env(&[
            ("RECORDING_ACCESS_KEY", ""),
            ("MINIO_ROOT_USER", "minio"),
            ("MINIO_ROOT_PASSWORD", "minio-secret"),
            ("AWS_ACCESS_KEY_ID", "aws"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
        ]);
        let c = StorageConfig::from_env("minio://h:9000", &minio).unwrap();
        assert_eq!(c.credentials.unwrap().secret_key, "minio-secret");

        let aws = env(&[
            ("AWS_ACCESS_KEY_ID", "aws"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
            ("RECORDING_REGION", "eu-west-1"),
        ]);
        let c = StorageConfig::from_env("s3+https://s3.eu-west-1.amazonaws.com/r3c", &aws).unwrap();
        assert_eq!(c.credentials.unwrap().access_key, "aws");
        assert_eq!(c.region, "eu-west-1");

        let c = StorageConfig::from_env("minio://h:9000", &env(&[])).unwrap();
        assert_eq!(c.credentials, None);
        assert_eq!(c.region, DEFAULT_REGION);
    }

    #[test]
    fn url_userinfo_wins_over_the_environment() {
        let e = env(&[
            ("RECORDING_ACCESS_KEY", "rec"),
            ("RECORDING_SECRET_KEY", "rec-secret"),
        ]);
        let c = StorageConfig::from_env("minio://url:url-secret@h:9000", &e).unwrap();
        assert_eq!(c.credentials.unwrap().access_key, "url");
    }

    #[test]
    fn half_a_credential_pair_is_an_error() {
        let e = env(&[
            ("MINIO_ROOT_USER", "minio"),
            ("AWS_ACCESS_KEY_ID", "aws"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
        ]);
        let err = StorageConfig::from_env("minio://h:9000", &e).unwrap_err();
        assert!(
            matches!(err, StorageError::MissingCredentials { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("MINIO_ROOT_PASSWORD"), "{err}");
    }

    #[test]
    fn a_local_directory_needs_no_credentials() {
        let e = env(&[("RECORDING_ACCESS_KEY", "only-half")]);
        let c = StorageConfig::from_env("file:///tmp/recordings", &e).unwrap();
        assert_eq!(c.credentials, None);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let p = RetryPolicy {
            attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        let waits: Vec<u128> = (1..=5).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(500));
    }
}
