//! The cluster's certificates and the admin kubeconfig.
//!
//! On first start a CA and a serving certificate (SANs: 127.0.0.1, ::1, localhost, the
//! host name, `kubernetes`, `kubernetes.default`, `kubernetes.default.svc`,
//! `kubernetes.default.svc.cluster.local`, plus any extra names) are generated with rcgen
//! and kept in `DATA_DIR/tls/`; later starts reuse them, so kubeconfigs stay valid.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading or writing {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("generating certificates")]
    Generate(#[from] rcgen::Error),
    #[error("loading certificates into rustls")]
    Rustls(#[from] rustls::Error),
    #[error("no private key in {0}")]
    NoKey(PathBuf),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The cluster CA and the API server's serving certificate, as PEM.
pub struct Pki {
    pub ca_cert: String,
    pub serving_cert: String,
    pub serving_key: String,
}

fn read(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a file readable by its owner only (keys and tokens live next to it).
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(contents.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn ca_params() -> Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "rkube-ca");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

/// Loads the PKI from `dir`, creating what is missing.
pub fn load_or_create(dir: &Path, extra_names: &[String]) -> Result<Pki> {
    let ca_cert_path = dir.join("ca.crt");
    let ca_key_path = dir.join("ca.key");
    let cert_path = dir.join("serving.crt");
    let key_path = dir.join("serving.key");
    let (ca_cert, ca_key) = match (read(&ca_cert_path)?, read(&ca_key_path)?) {
        (Some(c), Some(k)) => (c, KeyPair::from_pem(&k)?),
        _ => {
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            write_private(&ca_key_path, &key.serialize_pem())?;
            write_private(&ca_cert_path, &cert.pem())?;
            // A new CA invalidates any serving certificate signed by an old one.
            let _ = std::fs::remove_file(&cert_path);
            (cert.pem(), key)
        }
    };
    if let (Some(serving_cert), Some(serving_key)) = (read(&cert_path)?, read(&key_path)?) {
        return Ok(Pki {
            ca_cert,
            serving_cert,
            serving_key,
        });
    }
    let mut names: Vec<String> = [
        "localhost",
        "127.0.0.1",
        "::1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "10.43.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_string());
        }
    }
    names.extend(extra_names.iter().cloned());
    names.dedup();
    let mut params = CertificateParams::new(names)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kube-apiserver");
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let issuer = Issuer::new(ca_params()?, ca_key);
    let cert = params.signed_by(&key, &issuer)?;
    write_private(&key_path, &key.serialize_pem())?;
    write_private(&cert_path, &cert.pem())?;
    Ok(Pki {
        ca_cert,
        serving_cert: cert.pem(),
        serving_key: key.serialize_pem(),
    })
}

/// A rustls server configuration offering HTTP/2 and HTTP/1.1 (kubectl uses HTTP/2).
pub fn server_config(pki: &Pki) -> Result<Arc<rustls::ServerConfig>> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut pki.serving_cert.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|source| Error::Io {
            path: "serving.crt".into(),
            source,
        })?;
    let key = rustls_pemfile::private_key(&mut pki.serving_key.as_bytes())
        .map_err(|source| Error::Io {
            path: "serving.key".into(),
            source,
        })?
        .ok_or_else(|| Error::NoKey("serving.key".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// An admin kubeconfig for `server` with a bearer token.
pub fn kubeconfig(server: &str, ca_pem: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: rkube
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: admin
  user:
    token: {token}
contexts:
- name: rkube
  context:
    cluster: rkube
    user: admin
current-context: rkube
preferences: {{}}
"
    )
}

/// A random token of 32 hex characters' worth of entropy per half (128 bits each).
pub fn random_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// A node join token: `K10<sha256 of the CA PEM, hex>::<secret>`.
pub fn join_token(ca_pem: &str, secret: &str) -> String {
    format!("K10{}::{secret}", sha256_hex(ca_pem.as_bytes()))
}

/// The SHA-256 of `data` in lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Splits a join token into the CA hash and the secret; a plain secret has no hash.
pub fn parse_join_token(token: &str) -> (Option<&str>, &str) {
    match token.strip_prefix("K10").and_then(|t| t.split_once("::")) {
        Some((hash, secret)) => (Some(hash), secret),
        None => (None, token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create(dir.path(), &[]).expect("create");
        let b = load_or_create(dir.path(), &[]).expect("reload");
        assert_eq!(a.ca_cert, b.ca_cert);
        assert_eq!(a.serving_cert, b.serving_cert);
        server_config(&b).expect("rustls accepts it");
    }

    #[test]
    fn join_tokens_carry_the_ca_hash() {
        let t = join_token("PEM", "secret");
        assert_eq!(t.len(), 3 + 64 + 2 + 6);
        assert_eq!(parse_join_token(&t), (Some(&t[3..67]), "secret"));
        assert_eq!(parse_join_token("plain"), (None, "plain"));
    }
}
