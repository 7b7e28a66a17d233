//! Bearer-token authentication for the stream service: a JWT (RFC 7519) in
//! `Authorization: Bearer` (RFC 6750), signed with HS256 (a shared secret) or RS256 (an RSA public
//! key in a PEM file). The user is the token's `sub` claim; `exp` is required.

use std::path::Path;

use axum::http::{HeaderMap, header};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
const LEEWAY_S: u64 = 5;

/// The authenticated user: the token's `sub`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(pub String);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a request is not authenticated (every variant answers 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send Authorization: Bearer <JWT>")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not yet valid")]
    NotYetValid,
    #[error("the token's signature does not verify with the configured key")]
    BadSignature,
    #[error("tokens signed with {0} are not accepted here")]
    UnsupportedAlgorithm(String),
    #[error("the token has no `sub` claim naming the user")]
    NoSubject,
}

/// Why the verifier could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("cannot read JWT_PUBLIC_KEY_FILE {path}: {source}")]
    ReadKey {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("JWT_PUBLIC_KEY_FILE {path} is not an RSA public key in PEM: {reason}")]
    BadKey { path: String, reason: String },
    #[error("JWT_SECRET is empty")]
    EmptySecret,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
}

/// Verifies bearer JWTs against the configured keys.
pub struct JwtVerifier {
    hs256: Option<DecodingKey>,
    rs256: Option<DecodingKey>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("hs256", &self.hs256.is_some())
            .field("rs256", &self.rs256.is_some())
            .finish()
    }
}

impl JwtVerifier {
    /// A verifier for HS256 with `secret` and/or RS256 with the PEM public key at
    /// `public_key_file`. `None` when neither is configured.
    pub fn from_config(
        secret: Option<&str>,
        public_key_file: Option<&Path>,
    ) -> Result<Option<Self>, AuthConfigError> {
        let hs256 = match secret {
            Some("") => return Err(AuthConfigError::EmptySecret),
            Some(s) => Some(DecodingKey::from_secret(s.as_bytes())),
            None => None,
        };
        let rs256 = match public_key_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| AuthConfigError::ReadKey {
                    path: path.display().to_string(),
                    source,
                })?;
                Some(
                    DecodingKey::from_rsa_pem(&pem).map_err(|e| AuthConfigError::BadKey {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?,
                )
            }
            None => None,
        };
        if hs256.is_none() && rs256.is_none() {
            return Ok(None);
        }
        Ok(Some(JwtVerifier { hs256, rs256 }))
    }

    /// Verifies `token` and returns its user.
    pub fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| classify(e.kind()))?;
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.as_ref(),
            Algorithm::RS256 => self.rs256.as_ref(),
            _ => None,
        }
        .ok_or_else(|| AuthError::UnsupportedAlgorithm(format!("{:?}", header.alg)))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_S;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| classify(e.kind()))?;
        match data.claims.sub {
            Some(sub) if !sub.trim().is_empty() => Ok(UserId(sub)),
            _ => Err(AuthError::NoSubject),
        }
    }

    /// Reads `Authorization: Bearer <token>` and verifies it.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<UserId, AuthError> {
        self.verify(bearer_token(headers)?)
    }
}

/// The token of an `Authorization: Bearer` header (scheme case-insensitive, RFC 7235 §2.1).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?
        .to_str()
        .map_err(|_| AuthError::Malformed("the Authorization header is not ASCII".into()))?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(|| {
        AuthError::Malformed("the Authorization header is not `Bearer <token>`".into())
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Malformed(
            "the Authorization header is not `Bearer <token>`".into(),
        ));
    }
    Ok(token.trim())
}

fn classify(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::UnsupportedAlgorithm("this algorithm".into())
        }
        ErrorKind::MissingRequiredClaim(c) => AuthError::Malformed(format!("no `{c}` claim")),
        other => AuthError::Malformed(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn hs(secret: &str, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("HS256 signing cannot fail")
    }

    fn verifier() -> JwtVerifier {
        JwtVerifier::from_config(Some("s3cret"), None)
            .expect("valid config")
            .expect("configured")
    }

    #[test]
    fn valid_hs256_token_names_its_subject() {
        let t = hs(
            "s3cret",
            serde_json::json!({"sub": "alice", "exp": now() + 60}),
        );
        assert_eq!(verifier().verify(&t), Ok(UserId("alice".into())));
    }

    #[test]
    fn expired_wrong_key_and_garbage_tokens_are_refused() {
        let v = verifier();
        let expired = hs(
            "s3cret",
            serde_json::json!({"sub": "a", "exp": now() - 3600}),
        );
        assert_eq!(v.verify(&expired), Err(AuthError::Expired));
        let wrong = hs("other", serde_json::json!({"sub": "a", "exp": now() + 60}));
        assert_eq!(v.verify(&wrong), Err(AuthError::BadSignature));
        assert!(matches!(
            v.verify("not.a.jwt"),
            Err(AuthError::Malformed(_))
        ));
        let no_exp = hs("s3cret", serde_json::json!({"sub": "a"}));
        assert!(matches!(v.verify(&no_exp), Err(AuthError::Malformed(_))));
        let no_sub = hs("s3cret", serde_json::json!({"exp": now() + 60}));
        assert_eq!(v.verify(&no_sub), Err(AuthError::NoSubject));
    }

    #[test]
    fn rs256_token_is_refused_without_a_public_key() {
        // A token claiming RS256 where only a secret is configured.
        let header = base64_url(br#"{"alg":"RS256","typ":"JWT"}"#);
        let body = base64_url(format!(r#"{{"sub":"a","exp":{}}}"#, now() + 60).as_bytes());
        let t = format!("{header}.{body}.c2ln");
        assert!(matches!(
            verifier().verify(&t),
            Err(AuthError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn bearer_header_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), Err(AuthError::Missing));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().expect("ascii"));
        assert!(matches!(bearer_token(&h), Err(AuthError::Malformed(_))));
        h.insert(
            header::AUTHORIZATION,
            "bearer  tok ".parse().expect("ascii"),
        );
        assert_eq!(bearer_token(&h), Ok("tok"));
    }

    fn base64_url(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }
}
