//! Both directions of one DTLS-SRTP association, keyed from the DTLS exporter (RFC 5764 §4.2).

use super::context::SrtpContext;
use super::error::SrtpError;
use super::profile::SrtpProfile;

/// Both directions of one DTLS-SRTP association: `tx` protects what we send, `rx` unprotects
/// what we receive.
#[derive(Debug)]
pub struct SrtpSession {
    pub tx: SrtpContext,
    pub rx: SrtpContext,
}

impl SrtpSession {
    /// Splits the RFC 5764 §4.2 exporter output (client key, server key, client salt, server
    /// salt) and keys each direction: the DTLS client sends with the client's key and salt.
    pub fn from_dtls_keying_material(
        profile: SrtpProfile,
        material: &[u8],
        local_is_client: bool,
    ) -> Result<Self, SrtpError> {
        if material.len() != profile.keying_material_len() {
            return Err(SrtpError::BadKeyLength {
                expected: profile.keying_material_len(),
                actual: material.len(),
            });
        }
        let (k, s) = (profile.key_len(), profile.salt_len());
        let client_key = &material[..k];
        let server_key = &material[k..2 * k];
        let client_salt = &material[2 * k..2 * k + s];
        let server_salt = &material[2 * k + s..];
        let client = SrtpContext::new(profile, client_key, client_salt)?;
        let server = SrtpContext::new(profile, server_key, server_salt)?;
        Ok(if local_is_client {
            SrtpSession {
                tx: client,
                rx: server,
            }
        } else {
            SrtpSession {
                tx: server,
                rx: client,
            }
        })
    }
}
