//! The process DTLS certificate: one self-signed ECDSA P-256 certificate whose SHA-256 fingerprint
//! goes into every SDP answer (`a=fingerprint`, RFC 8122; WebRTC use per RFC 8827 §6.5).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use rtc_dtls::crypto_provider::RTCCryptoProvider;

use super::{DtlsError, Fingerprint};

/// How far back the certificate's validity starts, so peers with a slow clock still accept it.
pub const VALID_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How far forward the certificate stays valid; far beyond any process lifetime.
pub const VALID_AFTER: Duration = Duration::from_secs(365 * 24 * 3600);

/// A self-signed ECDSA P-256 certificate and its private key, generated once per process and
/// shared (behind an `Arc`) by every DTLS connection. Its fingerprint is stable for its lifetime.
pub struct DtlsCert {
    der: Vec<u8>,
    fingerprint: Fingerprint,
    /// The same certificate and key in the DTLS engine's form.
    engine_cert: rtc_dtls::crypto::Certificate,
    /// The crypto provider (ring) that holds the imported key and runs the handshake crypto.
    provider: Arc<dyn RTCCryptoProvider>,
}

impl DtlsCert {
    /// Generates a fresh key pair and a self-signed certificate valid from 30 days ago to one year
    /// from now, with a random 128-bit serial (Firefox rejects certificates that reuse an issuer
    /// and serial it has seen before).
    pub fn generate() -> Result<Self, DtlsError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| DtlsError::Certificate(e.to_string()))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| DtlsError::Certificate(e.to_string()))?;
        let mut name = rcgen::DistinguishedName::new();
        name.push(rcgen::DnType::CommonName, "ringcast");
        params.distinguished_name = name;
        params.is_ca = rcgen::IsCa::NoCa;
        let now = SystemTime::now();
        let (y, m, d) = utc_date(now.checked_sub(VALID_BEFORE).unwrap_or(UNIX_EPOCH));
        params.not_before = rcgen::date_time_ymd(y, m, d);
        let (y, m, d) = utc_date(now + VALID_AFTER);
        params.not_after = rcgen::date_time_ymd(y, m, d);
        let mut serial: [u8; 16] = rand::random();
        // A positive DER INTEGER: clear the top bit.
        serial[0] &= 0x7f;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let cert = params
            .self_signed(&key)
            .map_err(|e| DtlsError::Certificate(e.to_string()))?;
        let der = cert.der().to_vec();
        let fingerprint = Fingerprint::sha256_of(&der);
        let provider = rtc_dtls::crypto_provider::default_provider()
            .map_err(|e| DtlsError::Certificate(e.to_string()))?;
        let private_key =
            rtc_dtls::crypto::CryptoPrivateKey::from_key_pair(&key, provider.crypto())
                .map_err(|e| DtlsError::Certificate(e.to_string()))?;
        let engine_cert = rtc_dtls::crypto::Certificate {
            certificate: vec![cert.der().clone()],
            private_key,
        };
        Ok(DtlsCert {
            der,
            fingerprint,
            engine_cert,
            provider,
        })
    }

    /// The SHA-256 fingerprint of the certificate, as written in `a=fingerprint`.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint.clone()
    }

    /// The certificate in DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub(crate) fn engine_cert(&self) -> &rtc_dtls::crypto::Certificate {
        &self.engine_cert
    }

    pub(crate) fn provider(&self) -> Arc<dyn RTCCryptoProvider> {
        self.provider.clone()
    }
}

impl fmt::Debug for DtlsCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsCert")
            .field("fingerprint", &self.fingerprint.to_string())
            .finish_non_exhaustive()
    }
}

/// The UTC calendar day `t` falls on (certificate validity needs no finer grain).
fn utc_date(t: SystemTime) -> (i32, u8, u8) {
    let days = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0);
    civil_from_days(days as i64)
}

/// Gregorian (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year as i32, month as u8, day as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn certificate_fingerprint_is_sha256_of_der_and_stable() {
        let cert = DtlsCert::generate().expect("generation works on any host with a CSPRNG");
        let fp = cert.fingerprint();
        assert_eq!(fp.algorithm, "sha-256");
        assert!(fp.matches(cert.der()));
        assert_eq!(cert.fingerprint(), fp);
        let other = DtlsCert::generate().expect("generation works on any host with a CSPRNG");
        assert_ne!(other.fingerprint(), fp);
    }
}
