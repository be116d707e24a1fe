//! A certificate authority of the test's own (rcgen, made when the test
//! runs) and the server certificates it signs, as PEM files in a
//! temporary directory removed when dropped; clients that trust it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use ringcast_tls::CertFiles;
use rustls::pki_types::CertificateDer;

/// A CA of the test's own, and the certificates it signs as PEM files in
/// a directory of their own, removed when dropped.
pub struct Pki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate: its files, its DER (to recognise it when a
/// client is shown it) and its key in PEM.
pub struct Cert {
    pub files: CertFiles,
    pub der: CertificateDer<'static>,
    pub key_pem: String,
}

impl Pki {
    pub fn new() -> Pki {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ringcast-tests-pki-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: a client trusting another test CA must find
        // no issuer of that name (an unknown issuer, not a bad signature).
        let name = format!("ringcast test CA {}-{n}", std::process::id());
        (params.distinguished_name).push(rcgen::DnType::CommonName, name);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki { dir, ca }
    }

    /// A path in the directory (the file need not exist).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.file(name);
        std::fs::write(&path, contents).expect("written");
        path
    }

    /// A certificate for `names` (DNS names or IP addresses), valid from
    /// 1975 to 4096, written as `NAME.pem` and `NAME.key`.
    pub fn server(&self, name: &str, names: &[&str]) -> Cert {
        self.server_with(name, names, |_| {})
    }

    /// [`Pki::server`] with its parameters changed by `tweak` (validity).
    pub fn server_with(
        &self,
        name: &str,
        names: &[&str],
        tweak: impl FnOnce(&mut CertificateParams),
    ) -> Cert {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        tweak(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let key_pem = key.serialize_pem();
        Cert {
            files: CertFiles {
                cert: self.write(&format!("{name}.pem"), &cert.pem()),
                key: self.write(&format!("{name}.key"), &key_pem),
            },
            der: cert.der().clone(),
            key_pem,
        }
    }

    /// This CA's certificate as a PEM file (a `ca_file`, `--tls-ca`).
    pub fn ca_file(&self) -> PathBuf {
        self.write("ca.pem", &self.ca.pem())
    }

    /// Roots holding only this CA.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("a usable CA");
        roots
    }

    /// A client that trusts this CA alone.
    pub fn client(&self) -> Arc<rustls::ClientConfig> {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.roots())
            .with_no_client_auth();
        Arc::new(config)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}
