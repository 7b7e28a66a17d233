//! Certificate fingerprints as carried in SDP `a=fingerprint` (RFC 8122 §5).

use std::fmt;

/// A certificate fingerprint: hash function name (lower case, e.g. `sha-256`) and digest bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    pub algorithm: String,
    pub digest: Vec<u8>,
}

/// Why an `a=fingerprint` value could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FingerprintError {
    #[error("fingerprint has no hash function name")]
    MissingAlgorithm,
    #[error("fingerprint digest is not colon-separated hex bytes")]
    BadDigest,
    #[error("unsupported fingerprint hash function {0:?}")]
    UnsupportedAlgorithm(String),
}

impl Fingerprint {
    /// The SHA-256 fingerprint of a DER certificate.
    pub fn sha256_of(der: &[u8]) -> Self {
        use sha2::Digest;
        Fingerprint { algorithm: "sha-256".into(), digest: sha2::Sha256::digest(der).to_vec() }
    }

    /// Parses `sha-256 AB:CD:...` (the value of `a=fingerprint`).
    pub fn parse(value: &str) -> Result<Self, FingerprintError> {
        let mut parts = value.split_whitespace();
        let algorithm = parts.next().ok_or(FingerprintError::MissingAlgorithm)?.to_ascii_lowercase();
        let hex = parts.next().ok_or(FingerprintError::BadDigest)?;
        if parts.next().is_some() {
            return Err(FingerprintError::BadDigest);
        }
        let digest = hex
            .split(':')
            .map(|b| if b.len() == 2 { u8::from_str_radix(b, 16).ok() } else { None })
            .collect::<Option<Vec<u8>>>()
            .ok_or(FingerprintError::BadDigest)?;
        let expected = match algorithm.as_str() {
            "sha-256" => 32,
            "sha-384" => 48,
            "sha-512" => 64,
            "sha-1" => 20,
            _ => return Err(FingerprintError::UnsupportedAlgorithm(algorithm)),
        };
        if digest.len() != expected {
            return Err(FingerprintError::BadDigest);
        }
        Ok(Fingerprint { algorithm, digest })
    }

    /// Whether `der` hashes to this fingerprint.
    pub fn matches(&self, der: &[u8]) -> bool {
        use sha2::Digest;
        let got: Vec<u8> = match self.algorithm.as_str() {
            "sha-256" => sha2::Sha256::digest(der).to_vec(),
            "sha-384" => sha2::Sha384::digest(der).to_vec(),
            "sha-512" => sha2::Sha512::digest(der).to_vec(),
            "sha-1" => {
                use sha1::Digest as _;
                sha1::Sha1::digest(der).to_vec()
            }
            _ => return false,
        };
        subtle::ConstantTimeEq::ct_eq(got.as_slice(), self.digest.as_slice()).into()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.algorithm)?;
        for (i, b) in self.digest.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trips_through_sdp_text() {
        let fp = Fingerprint::sha256_of(b"certificate");
        let text = fp.to_string();
        assert!(text.starts_with("sha-256 "));
        assert_eq!(Fingerprint::parse(&text).unwrap(), fp);
        assert!(fp.matches(b"certificate"));
        assert!(!fp.matches(b"another"));
    }

    #[test]
    fn fingerprint_rejects_malformed_values() {
        assert_eq!(Fingerprint::parse(""), Err(FingerprintError::MissingAlgorithm));
        assert_eq!(Fingerprint::parse("sha-256 zz:00"), Err(FingerprintError::BadDigest));
        assert_eq!(Fingerprint::parse("sha-256 00:11"), Err(FingerprintError::BadDigest));
        assert!(matches!(Fingerprint::parse("md5 00"), Err(FingerprintError::UnsupportedAlgorithm(_))));
    }
}
