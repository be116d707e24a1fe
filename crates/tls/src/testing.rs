//! For this crate's tests: a private CA and its leaf certificates (made
//! with rcgen when the test runs), PEM files in a directory removed
//! afterwards, a client that records the certificate it was shown, and a
//! client and server pumping records in memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::{CertFiles, Tls, TlsError};

/// A certificate authority of the test's own.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key, in PEM.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `names` (DNS names or IP addresses), valid from 1975 to
    /// 4096 (rcgen's defaults).
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(names, |_| {})
    }

    /// [`Ca::leaf`] with its parameters changed by `tweak` (validity).
    pub fn leaf_with(&self, names: &[&str], tweak: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        tweak(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// A directory of its own under the system's temporary one, removed with
/// what is in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ringcast-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `name` in the directory: its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Writes `leaf`'s certificate and key as `NAME.pem` and `NAME.key`.
    pub fn write_leaf(&self, name: &str, leaf: &Leaf) -> CertFiles {
        CertFiles {
            cert: self.write(&format!("{name}.pem"), &leaf.cert_pem),
            key: self.write(&format!("{name}.key"), &leaf.key_pem),
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Accepts any certificate and keeps the ones it was shown: which one a
/// server chose, whatever name the client asked for.
#[derive(Debug, Default)]
pub struct Recorder {
    pub shown: Mutex<Vec<CertificateDer<'static>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.shown
            .lock()
            .unwrap()
            .push(end_entity.clone().into_owned());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client config that trusts whatever it is shown, recording it.
pub fn recording_client(recorder: Arc<Recorder>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(recorder)
        .with_no_client_auth();
    Arc::new(config)
}

/// Which side failed a handshake, and how (shown when a test fails).
#[derive(Debug)]
#[allow(dead_code)]
pub enum Failed {
    Client(TlsError),
    Server(TlsError),
}

/// Moves records between `client` and `server` until neither has any to
/// send; plaintext either receives is appended to its buffer.
pub fn pump(
    client: &mut Tls,
    server: &mut Tls,
    to_client: &mut BytesMut,
    to_server: &mut BytesMut,
) -> Result<(), Failed> {
    // A handshake takes two round trips; a quiet pair stops sooner.
    for _ in 0..8 {
        let mut moved = false;
        if let Some(records) = client.take_records() {
            moved = true;
            server
                .receive(&records, to_server)
                .map_err(Failed::Server)?;
        }
        if let Some(records) = server.take_records() {
            moved = true;
            client
                .receive(&records, to_client)
                .map_err(Failed::Client)?;
        }
        if !moved {
            return Ok(());
        }
    }
    panic!("records kept coming");
}

/// A client for `name` (no SNI when it is an IP address) and a server,
/// with the handshake done.
pub fn connected(
    client_config: Arc<rustls::ClientConfig>,
    server_config: Arc<rustls::ServerConfig>,
    name: &str,
) -> Result<(Tls, Tls), Failed> {
    let mut client = Tls::client(client_config, crate::server_name(name).unwrap()).unwrap();
    let mut server = Tls::server(server_config).unwrap();
    let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
    pump(&mut client, &mut server, &mut a, &mut b)?;
    assert!(!client.is_handshaking() && !server.is_handshaking());
    assert!(a.is_empty() && b.is_empty(), "no application data yet");
    Ok((client, server))
}
