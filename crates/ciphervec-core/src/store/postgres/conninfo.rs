//! Connection strings as libpq takes them (URL or `key=value` form), with libpq's `sslmode`
//! honoured.
//!
//! tokio-postgres parses the rest, but knows only `sslmode=disable|prefer|require` and no
//! `sslrootcert`, and its TLS layer always verifies what it verifies. So the TLS keys are
//! taken out here and turn into a rustls verifier with libpq's meaning:
//!
//! | sslmode | TLS | certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow`, `prefer` (default) | if the server offers it | no (encryption only) |
//! | `require` | always | no; with `sslrootcert` given, as `verify-ca` (libpq's rule) |
//! | `verify-ca` | always | chain to the roots |
//! | `verify-full` | always | chain to the roots and the host name |
//!
//! The roots are the PEM file `sslrootcert`, or the system's (when it is absent or `system`).
//! Client certificates (`sslcert`, `sslkey`) are not supported yet and are refused, as is
//! anything the string cannot mean, with `ERR_INVALID_ARGUMENT` (the message never repeats
//! the string, which may hold a password).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A parsed connection string.
pub(crate) struct ConnInfo {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) ssl: SslMode,
    /// The `sslrootcert` file, unless the system roots are meant.
    root_cert: Option<String>,
}

impl std::fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnInfo").field("ssl", &self.ssl).finish_non_exhaustive()
    }
}

fn invalid(why: impl std::fmt::Display) -> Error {
    Error::invalid(format!("storage.url is not a valid PostgreSQL connection string: {why}"))
}

/// Percent-decodes a URL query value.
fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(hex.ok_or_else(|| invalid("a bad %-escape in a parameter"))?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| invalid("a parameter is not UTF-8"))
}

/// Splits `key=value` form into pairs (values may be single-quoted, with `\'` and `\\`).
fn split_key_values(s: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(invalid(format!("'{key}' has no value")));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.push(chars.next().ok_or_else(|| invalid("an unfinished escape"))?),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(invalid("an unclosed quote")),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())));
        }
        out.push((key, value));
    }
}

fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl ConnInfo {
    /// Parses `url` (`postgres://...` or `host=... dbname=...`).
    pub(crate) fn parse(url: &str) -> Result<ConnInfo> {
        let mut ssl = None;
        let mut root_cert = None;
        let mut take = |key: &str, value: &str| -> Result<bool> {
            match key {
                "sslmode" => {
                    ssl = Some(match value {
                        "disable" => SslMode::Disable,
                        "allow" | "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        other => return Err(invalid(format!("unknown sslmode '{other}'"))),
                    })
                }
                "sslrootcert" => root_cert = Some(value.to_string()),
                "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                    return Err(Error::invalid(format!(
                        "storage.url: '{key}' is not supported yet (client certificates and CRLs); \
                         use password authentication over sslmode=verify-full"
                    )))
                }
                _ => return Ok(false),
            }
            Ok(true)
        };
        let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (base, query) = url.split_once('?').unwrap_or((url, ""));
            let mut kept = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                if !take(k, &percent_decode(v)?)? {
                    kept.push(pair);
                }
            }
            if kept.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        } else {
            let mut kept = Vec::new();
            for (k, v) in split_key_values(url)? {
                if !take(&k, &v)? {
                    kept.push(format!("{k}={}", quote(&v)));
                }
            }
            kept.join(" ")
        };
        let mut ssl = ssl.unwrap_or(SslMode::Prefer);
        if ssl == SslMode::Require && root_cert.is_some() {
            ssl = SslMode::VerifyCa;
        }
        if root_cert.as_deref() == Some("system") {
            root_cert = None;
        }
        let mut config: tokio_postgres::Config =
            rest.parse().map_err(|e: tokio_postgres::Error| invalid(e.to_string()))?;
        config.ssl_mode(match ssl {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        if config.get_hosts().is_empty() {
            return Err(invalid("it names no host"));
        }
        Ok(ConnInfo { config, ssl, root_cert })
    }

    /// The TLS connector for this string's `sslmode` (unused with `disable`).
    pub(crate) fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = match self.ssl {
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let mut roots = RootCertStore::empty();
                match &self.root_cert {
                    Some(path) => {
                        let certs = CertificateDer::pem_file_iter(path)
                            .map_err(|e| Error::invalid(format!("sslrootcert '{path}' cannot be read: {e}")))?;
                        for cert in certs {
                            let cert =
                                cert.map_err(|e| Error::invalid(format!("sslrootcert '{path}' is not PEM: {e}")))?;
                            roots.add(cert).map_err(|e| {
                                Error::invalid(format!("sslrootcert '{path}' holds a bad certificate: {e}"))
                            })?;
                        }
                    }
                    None => {
                        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                    }
                }
                if roots.is_empty() {
                    return Err(Error::invalid(
                        "no root certificate to verify the database with: set sslrootcert in storage.url",
                    ));
                }
                let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| Error::invalid(format!("the root certificates cannot verify: {e}")))?;
                Verifier { inner: Some(inner), check_name: self.ssl == SslMode::VerifyFull, provider: provider.clone() }
            }
            _ => Verifier { inner: None, check_name: false, provider: provider.clone() },
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Internal(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

/// libpq's certificate checks (see the module docs).
#[derive(Debug)]
struct Verifier {
    /// `None`: encryption only, no check (`prefer`, `require`).
    inner: Option<Arc<WebPkiServerVerifier>>,
    /// `verify-full`: the name must match too.
    check_name: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(inner) = &self.inner else { return Ok(ServerCertVerified::assertion()) };
        match inner.verify_server_cert(end_entity, intermediates, name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_sslmodes_map_and_tls_keys_are_taken_out() {
        let cases = [
            ("postgres://u:p@h:5/db", SslMode::Prefer),
            ("postgres://u:p@h/db?sslmode=disable", SslMode::Disable),
            ("postgresql://h/db?sslmode=allow&application_name=x", SslMode::Prefer),
            ("postgres://h/db?sslmode=require", SslMode::Require),
            ("postgres://h/db?sslmode=require&sslrootcert=%2Ftmp%2Fca.pem", SslMode::VerifyCa),
            ("postgres://h/db?sslmode=verify-full&sslrootcert=system", SslMode::VerifyFull),
            ("host=h port=5 user=u password='a b\\'c' sslmode=verify-ca", SslMode::VerifyCa),
        ];
        for (url, mode) in cases {
            let info = ConnInfo::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(info.ssl, mode, "{url}");
        }
        let info = ConnInfo::parse("postgres://h/db?sslmode=require&sslrootcert=%2Ftmp%2Fca.pem").unwrap();
        assert_eq!(info.root_cert.as_deref(), Some("/tmp/ca.pem"));
        let info = ConnInfo::parse("host=h user=u password='a b\\'c'").unwrap();
        assert_eq!(info.config.get_password(), Some(&b"a b'c"[..]));
        assert_eq!(ConnInfo::parse("postgres://h/db?sslmode=verify-full&sslrootcert=system").unwrap().root_cert, None);
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_without_repeating_the_string() {
        for url in [
            "postgres://u:secret@h/db?sslmode=sometimes",
            "postgres://u:secret@h/db?sslcert=/c.pem",
            "host=h password=secret sslkey=/k",
            "host=h password='secret",
            "postgres://u:secret@h/db?x=%zz",
            "password=secret",
        ] {
            let err = ConnInfo::parse(url).unwrap_err();
            assert_eq!(err.code(), "ERR_INVALID_ARGUMENT", "{url}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }
}
