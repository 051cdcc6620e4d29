//! TLS for the HTTPS listener: certificates from the Ingresses' TLS Secrets, chosen per
//! connection by SNI from the latest routing snapshot, and a self-signed default for
//! everything else (like ingress-nginx's "fake certificate").

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use super::routes::Routes;

/// Why a TLS Secret or the listener's TLS setup is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("secret not found")]
    SecretMissing,
    #[error("secret has no {0}")]
    MissingKey(&'static str),
    #[error("tls.crt is not valid PEM")]
    CertPem(#[source] std::io::Error),
    #[error("tls.crt holds no certificate")]
    NoCertificate,
    #[error("tls.key is not valid PEM")]
    KeyPem(#[source] std::io::Error),
    #[error("tls.key holds no private key")]
    NoKey,
    #[error("certificate and key do not make a usable pair")]
    LoadKeyPair(#[source] rustls::Error),
    #[error("generating the default certificate failed")]
    GenerateDefault(#[source] rcgen::Error),
    #[error("building the TLS server configuration failed")]
    ServerConfig(#[source] rustls::Error),
}

/// TLS hosts -> certificate; the first (oldest Ingress) to claim a host keeps it.
#[derive(Debug, Default)]
pub(crate) struct Certs {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.suffix` keyed by `suffix`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl Certs {
    pub(crate) fn insert(&mut self, host: &str, cert: Arc<CertifiedKey>) {
        let host = host.to_ascii_lowercase();
        if let Some(suffix) = host.strip_prefix("*.") {
            self.wildcard.entry(suffix.to_string()).or_insert(cert);
        } else if !host.is_empty() {
            self.exact.entry(host).or_insert(cert);
        }
    }

    /// `host` already normalized (lowercase, no port).
    pub(crate) fn lookup(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.exact
            .get(host)
            .or_else(|| self.wildcard.get(host.split_once('.')?.1))
            .cloned()
    }
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The certificate chain and key of a `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`),
/// checked to belong together. Any bad input is an error, never a panic.
pub(crate) fn certified_key(secret: Option<&Secret>) -> Result<Arc<CertifiedKey>, TlsError> {
    let data = secret
        .ok_or(TlsError::SecretMissing)?
        .data
        .as_ref()
        .ok_or(TlsError::MissingKey("tls.crt"))?;
    let crt = data.get("tls.crt").ok_or(TlsError::MissingKey("tls.crt"))?;
    let key = data.get("tls.key").ok_or(TlsError::MissingKey("tls.key"))?;
    let chain = rustls_pemfile::certs(&mut crt.0.as_slice())
        .collect::<Result<Vec<CertificateDer<'static>>, _>>()
        .map_err(TlsError::CertPem)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = rustls_pemfile::private_key(&mut key.0.as_slice())
        .map_err(TlsError::KeyPem)?
        .ok_or(TlsError::NoKey)?;
    let certified =
        CertifiedKey::from_der(chain, key, &provider()).map_err(TlsError::LoadKeyPair)?;
    Ok(Arc::new(certified))
}

/// A fresh self-signed certificate for `ingress.local`, served when no Ingress has a
/// certificate for the requested name (or no name was sent).
pub(crate) fn default_certificate() -> Result<Arc<CertifiedKey>, TlsError> {
    let mut params = rcgen::CertificateParams::new(vec!["ingress.local".to_string()])
        .map_err(TlsError::GenerateDefault)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::CommonName,
        "rkube Ingress default certificate",
    );
    params.distinguished_name = dn;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().map_err(TlsError::GenerateDefault)?;
    let cert = params
        .self_signed(&key)
        .map_err(TlsError::GenerateDefault)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let certified = CertifiedKey::from_der(vec![cert.der().clone()], key, &provider())
        .map_err(TlsError::LoadKeyPair)?;
    Ok(Arc::new(certified))
}

/// Picks the certificate per handshake from the latest routes.
struct SniResolver {
    routes: watch::Receiver<Arc<Routes>>,
    fallback: Arc<CertifiedKey>,
}

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SniResolver").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let found = hello
            .server_name()
            .and_then(|name| self.routes.borrow().certificate(name));
        Some(found.unwrap_or_else(|| self.fallback.clone()))
    }
}

/// The HTTPS listener's configuration: SNI-selected certificates, HTTP/2 and HTTP/1.1.
/// The default certificate is generated here, once per `serve`.
pub(crate) fn server_config(
    routes: watch::Receiver<Arc<Routes>>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let resolver = SniResolver {
        routes,
        fallback: default_certificate()?,
    };
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::ServerConfig)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
