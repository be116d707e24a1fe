//! Certificates: the server's (each a PEM chain and its key, checked when
//! loaded, chosen by the name a client asks for) and the roots clients
//! trust (the public web's, and a private CA if one is given); for the
//! load generator alone, a client that trusts any certificate.
//!
//! Every error names the file and what to do about it: an operator reads
//! it at startup or on a reload, which keeps the certificates in force.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};
use x509_parser::extensions::GeneralName;
use x509_parser::time::ASN1Time;

/// A certificate chain (PEM, the server's own first) and its private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why certificates could not be loaded: the file, what is wrong and
/// what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {problem}; {fix}")]
pub struct CertError {
    pub file: PathBuf,
    pub problem: String,
    pub fix: &'static str,
}

impl CertError {
    fn new(file: &Path, problem: impl Into<String>, fix: &'static str) -> CertError {
        CertError {
            file: file.to_owned(),
            problem: problem.into(),
            fix,
        }
    }
}

/// The crypto both sides use: aws-lc-rs's, with rustls' safe defaults
/// (TLS 1.2 and 1.3, AEAD ciphers only; TLS 1.2 renegotiation refused).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// One loaded certificate, as an operator would recognise it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub files: CertFiles,
    /// The DNS names it is valid for (its subject alternative names).
    pub names: Vec<String>,
    /// When it expires, as the certificate says it.
    pub not_after: String,
    chain: Vec<CertificateDer<'static>>,
}

/// The server's certificates, loaded and checked, and the rustls config
/// that serves them: a client naming one of a certificate's names (SNI)
/// gets that one; any other client gets the first.
#[derive(Clone)]
pub struct ServerTls {
    identities: Vec<Identity>,
    config: Arc<rustls::ServerConfig>,
}

impl ServerTls {
    /// Loads and checks each of `files` (readable PEM, a certificate and
    /// a key that belong together, valid at `now`); the first is served
    /// to clients that name none of the others.
    pub fn load(files: &[CertFiles], now: SystemTime) -> Result<ServerTls, CertError> {
        let provider = provider();
        let mut identities = Vec::new();
        let mut by_name = ByName::default();
        for files in files {
            let (identity, key) = load_identity(files, &provider, now)?;
            by_name.keys.push((identity.names.clone(), key));
            identities.push(identity);
        }
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| {
                let file = files.first().map_or(Path::new(""), |f| f.cert.as_path());
                CertError::new(
                    file,
                    e.to_string(),
                    "this build's crypto provider is broken",
                )
            })?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(by_name));
        Ok(ServerTls {
            identities,
            config: Arc::new(config),
        })
    }

    /// What a new connection's handshake is made with.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.config.clone()
    }

    /// The certificates, in the order given.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }
}

/// Two loads are the same when they read the same files with the same
/// certificates in them: a reload that changed neither changes nothing.
impl PartialEq for ServerTls {
    fn eq(&self, other: &ServerTls) -> bool {
        self.identities == other.identities
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.identities.iter().map(|i| (&i.files.cert, &i.names)))
            .finish()
    }
}

fn load_identity(
    files: &CertFiles,
    provider: &CryptoProvider,
    now: SystemTime,
) -> Result<(Identity, Arc<CertifiedKey>), CertError> {
    let chain = read_certificates(&files.cert)?;
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        CertError::new(
            &files.key,
            format!("no private key found ({e})"),
            "give the certificate's key in PEM (PKCS#8, PKCS#1 or SEC1)",
        )
    })?;
    let signing_key = provider.key_provider.load_private_key(key).map_err(|e| {
        CertError::new(
            &files.key,
            format!("the key cannot sign ({e})"),
            "use an RSA, ECDSA (P-256, P-384) or Ed25519 key",
        )
    })?;
    let leaf = chain.first().ok_or_else(|| no_certificate(&files.cert))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|e| {
        CertError::new(
            &files.cert,
            format!("the first certificate is not valid X.509 ({e})"),
            "give the full chain in PEM, the server's certificate first",
        )
    })?;
    let validity = parsed.validity();
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let at = ASN1Time::from_timestamp(seconds).map_err(|e| {
        CertError::new(
            &files.cert,
            format!("the clock is odd ({e})"),
            "set the clock",
        )
    })?;
    let not_after = validity.not_after.to_string();
    if at > validity.not_after {
        return Err(CertError::new(
            &files.cert,
            format!("the certificate expired on {not_after}"),
            "renew it (and reload)",
        ));
    }
    if at < validity.not_before {
        return Err(CertError::new(
            &files.cert,
            format!(
                "the certificate is not valid before {}",
                validity.not_before
            ),
            "check the clock, or use a certificate valid now",
        ));
    }
    let names = match parsed.subject_alternative_name() {
        Ok(Some(san)) => (san.value.general_names.iter())
            .filter_map(|name| match name {
                GeneralName::DNSName(name) => Some(name.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let key = CertifiedKey::new(chain.clone(), signing_key);
    key.keys_match().map_err(|_| {
        CertError::new(
            &files.key,
            format!("this is not the key of {}", files.cert.display()),
            "give the key the certificate was issued for",
        )
    })?;
    let identity = Identity {
        files: files.clone(),
        names,
        not_after,
        chain,
    };
    Ok((identity, Arc::new(key)))
}

fn read(file: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(file).map_err(|e| {
        CertError::new(
            file,
            format!("cannot be read ({e})"),
            "check the path and that ringcast's user may read it",
        )
    })
}

fn no_certificate(file: &Path) -> CertError {
    CertError::new(
        file,
        "no certificate found",
        "give the full chain in PEM (-----BEGIN CERTIFICATE-----), the server's certificate first",
    )
}

/// Every certificate in a PEM file, in order; none is an error.
fn read_certificates(file: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let pem = read(file)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            CertError::new(
                file,
                format!("bad PEM ({e})"),
                "give the full chain in PEM, the server's certificate first",
            )
        })?;
    if chain.is_empty() {
        return Err(no_certificate(file));
    }
    Ok(chain)
}

/// Picks the certificate by the name the client asked for.
#[derive(Debug, Default)]
struct ByName {
    keys: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let named = hello.server_name().and_then(|wanted| {
            (self.keys.iter()).find(|(names, _)| names.iter().any(|name| matches(name, wanted)))
        });
        named.or(self.keys.first()).map(|(_, key)| key.clone())
    }
}

/// `wanted` (as the client sent it, lowercase ASCII per RFC 6066) is
/// `name`, or one label under a `*.` wildcard `name`.
fn matches(name: &str, wanted: &str) -> bool {
    let wanted = wanted.to_ascii_lowercase();
    match name.strip_prefix("*.") {
        Some(parent) => wanted
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => name == wanted,
    }
}

/// What a client (a relay, a hook, the load generator's players) trusts
/// in the servers it connects to: the public web's roots (Mozilla's list,
/// built in) and a private CA's certificates if given; or, for
/// benchmarking only, any certificate ([`ClientTls::insecure`]). Cloned
/// cheaply (shared, counted): every hook call carries one.
#[derive(Clone)]
pub struct ClientTls {
    ca_file: Option<Arc<Path>>,
    ca: Arc<[CertificateDer<'static>]>,
    /// Made by [`ClientTls::insecure`]: no certificate is verified.
    insecure: bool,
    config: Arc<rustls::ClientConfig>,
}

impl ClientTls {
    pub fn load(ca_file: Option<&Path>) -> Result<ClientTls, CertError> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let ca = match ca_file {
            Some(file) => read_certificates(file)?,
            None => Vec::new(),
        };
        if let Some(file) = ca_file {
            for cert in &ca {
                roots.add(cert.clone()).map_err(|e| {
                    CertError::new(
                        file,
                        format!("a certificate is not a usable CA ({e})"),
                        "give the CA's certificates in PEM",
                    )
                })?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| {
                CertError::new(
                    ca_file.unwrap_or(Path::new("")),
                    e.to_string(),
                    "this build's crypto provider is broken",
                )
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ClientTls {
            ca_file: ca_file.map(Arc::from),
            ca: ca.into(),
            insecure: false,
            config: Arc::new(config),
        })
    }

    /// A client that accepts **any** certificate from any server: no
    /// chain to a trusted root, no name, no expiry is checked, so anyone
    /// on the path can impersonate the server. For benchmarking only (the
    /// load generator's `--tls-insecure`, against a server whose
    /// certificate it has no CA for); never for relays or anything that
    /// carries real streams or keys.
    ///
    /// The handshake itself is still TLS: the server must prove it holds
    /// the private key of the certificate it sent (its handshake
    /// signature is verified against that certificate's public key), the
    /// versions and ciphers are rustls' safe defaults, and the records
    /// are sealed as on any connection, so what it costs the server is
    /// what a verifying client costs it.
    pub fn insecure() -> Result<ClientTls, CertError> {
        let provider = provider();
        let verifier = AnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| {
                CertError::new(
                    Path::new(""),
                    e.to_string(),
                    "this build's crypto provider is broken",
                )
            })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(ClientTls {
            ca_file: None,
            ca: Arc::new([]),
            insecure: true,
            config: Arc::new(config),
        })
    }

    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    /// The private CA file, if any.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// Made by [`ClientTls::insecure`]: certificates are not verified.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }
}

impl PartialEq for ClientTls {
    fn eq(&self, other: &ClientTls) -> bool {
        self.ca_file == other.ca_file && self.ca == other.ca && self.insecure == other.insecure
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca_file", &self.ca_file)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

/// [`ClientTls::insecure`]'s verifier: every certificate is taken as
/// valid for every name, but the handshake signatures are checked, with
/// the provider's algorithms, against the certificate the server sent.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `host` as the name a server's certificate must be valid for (a DNS
/// name or an IP address).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|e| format!("{host:?} is not a server name: {e}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rcgen::date_time_ymd;

    use super::*;
    use crate::record::{Tls, TlsError};
    use crate::testing::{Ca, Failed, Leaf, Recorder, TempDir, connected, recording_client};
    use bytes::BytesMut;
    use rustls::CertificateError;
    use rustls::pki_types::PrivatePkcs8KeyDer;

    fn load(files: &[CertFiles]) -> Result<ServerTls, CertError> {
        ServerTls::load(files, SystemTime::now())
    }

    /// The certificate a client asking for `name` is shown (none asked
    /// for when `name` is an IP address).
    fn shown_for(server: &ServerTls, name: &str) -> CertificateDer<'static> {
        let recorder = Arc::new(Recorder::default());
        let (_, tls) = connected(recording_client(recorder.clone()), server.config(), name)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let asked = crate::server_name(name).unwrap();
        let sni = matches!(asked, ServerName::DnsName(_)).then_some(name);
        assert_eq!(tls.server_name(), sni, "{name}");
        let mut shown = recorder.shown.lock().unwrap();
        assert_eq!(shown.len(), 1, "{name}");
        shown.remove(0)
    }

    #[test]
    fn sni_picks_the_certificate_whose_name_matches_and_the_first_otherwise() {
        let dir = TempDir::new();
        let ca = Ca::new("sni test CA");
        let default = ca.leaf(&["default.example.test"]);
        let a = ca.leaf(&["a.example.test", "alias.example.test"]);
        let b = ca.leaf(&["*.b.example.test"]);
        let server = load(&[
            dir.write_leaf("default", &default),
            dir.write_leaf("a", &a),
            dir.write_leaf("b", &b),
        ])
        .unwrap();
        let names: Vec<&[String]> = (server.identities().iter()).map(|i| &i.names[..]).collect();
        assert_eq!(
            names,
            [
                &["default.example.test".to_owned()][..],
                &["a.example.test".to_owned(), "alias.example.test".to_owned()],
                &["*.b.example.test".to_owned()],
            ]
        );
        let cases: [(&str, &Leaf); 9] = [
            ("a.example.test", &a),
            ("alias.example.test", &a),
            ("default.example.test", &default),
            // One label under the wildcard, any label.
            ("x.b.example.test", &b),
            ("live-1.b.example.test", &b),
            // Not the wildcard's parent, nor two labels under it.
            ("b.example.test", &default),
            ("y.x.b.example.test", &default),
            // Unknown, and none asked for.
            ("c.example.test", &default),
            ("127.0.0.1", &default),
        ];
        for (name, expected) in cases {
            assert!(shown_for(&server, name) == expected.der, "{name}");
        }
    }

    #[test]
    fn wildcards_match_one_label_only_and_names_ignore_case() {
        assert!(matches("*.b.example", "x.b.example"));
        assert!(matches("*.b.example", "X.B.Example"));
        assert!(!matches("*.b.example", "b.example"));
        assert!(!matches("*.b.example", ".b.example"));
        assert!(!matches("*.b.example", "y.x.b.example"));
        assert!(!matches("*.b.example", "x.c.example"));
        assert!(matches("a.example", "A.Example"));
        assert!(!matches("a.example", "x.a.example"));
        // A literal `*` in what the client sent is no wildcard.
        assert!(!matches("a.example", "*.example"));
    }

    /// The error loading `files` gives, as text, naming `file`.
    fn error(files: &[CertFiles], file: &Path) -> String {
        let error = load(files).map(|_| "loaded").unwrap_err();
        assert_eq!(error.file, file, "{error}");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("{}: ", file.display())),
            "names the file first: {text}"
        );
        text
    }

    #[test]
    fn load_errors_name_the_file_the_problem_and_the_fix() {
        let dir = TempDir::new();
        let ca = Ca::new("load test CA");
        let good = dir.write_leaf("good", &ca.leaf(&["good.example.test"]));
        let other = dir.write_leaf("other", &ca.leaf(&["other.example.test"]));
        let with = |cert: &Path, key: &Path| {
            [CertFiles {
                cert: cert.to_owned(),
                key: key.to_owned(),
            }]
        };
        assert!(load(&with(&good.cert, &good.key)).is_ok());

        let missing = dir.path().join("missing.pem");
        let text = error(&with(&missing, &good.key), &missing);
        assert!(text.contains("cannot be read (No such file"), "{text}");
        assert!(text.contains("check the path"), "{text}");
        let text = error(&with(&good.cert, &missing), &missing);
        assert!(text.contains("cannot be read (No such file"), "{text}");

        // Root reads any file whatever its mode (the tests run as root):
        // a directory is a path that cannot be read as a file.
        let text = error(&with(dir.path(), &good.key), dir.path());
        assert!(text.contains("cannot be read (Is a directory"), "{text}");
        assert!(text.contains("ringcast's user may read it"), "{text}");

        // The key file where the certificate should be, and the reverse.
        let text = error(&with(&good.key, &good.key), &good.key);
        assert!(text.contains("no certificate found"), "{text}");
        assert!(text.contains("-----BEGIN CERTIFICATE-----"), "{text}");
        let text = error(&with(&good.cert, &good.cert), &good.cert);
        assert!(text.contains("no private key found"), "{text}");
        assert!(text.contains("PKCS#8"), "{text}");
        let empty = dir.write("empty.pem", "not PEM at all\n");
        let text = error(&with(&empty, &good.key), &empty);
        assert!(text.contains("no certificate found"), "{text}");

        // Another certificate's key: the key file is named.
        let text = error(&with(&good.cert, &other.key), &other.key);
        assert!(
            text.contains(&format!("this is not the key of {}", good.cert.display())),
            "{text}"
        );
        assert!(
            text.contains("the key the certificate was issued for"),
            "{text}"
        );

        let expired = dir.write_leaf(
            "expired",
            &ca.leaf_with(&["old.example.test"], |p| {
                p.not_before = date_time_ymd(2000, 1, 1);
                p.not_after = date_time_ymd(2001, 1, 1);
            }),
        );
        let text = error(std::slice::from_ref(&expired), &expired.cert);
        assert!(text.contains("the certificate expired on Jan  1"), "{text}");
        assert!(text.contains("2001"), "{text}");
        assert!(text.contains("renew it"), "{text}");

        let early = dir.write_leaf(
            "early",
            &ca.leaf_with(&["new.example.test"], |p| {
                p.not_before = date_time_ymd(2090, 1, 1);
            }),
        );
        let text = error(std::slice::from_ref(&early), &early.cert);
        assert!(text.contains("is not valid before Jan  1"), "{text}");
        assert!(text.contains("2090"), "{text}");
        assert!(text.contains("check the clock"), "{text}");

        // The first bad one of several is named.
        let text = error(&[good.clone(), expired.clone()], &expired.cert);
        assert!(text.contains("expired"), "{text}");
        // And the clock given is the one checked against.
        let in_2000 = UNIX_EPOCH + std::time::Duration::from_secs(946_684_800 + 86_400);
        assert!(ServerTls::load(&[expired], in_2000).is_ok());
    }

    #[test]
    fn a_private_ca_verifies_its_own_servers_and_no_others() {
        let dir = TempDir::new();
        let ours = Ca::new("our CA");
        let theirs = Ca::new("their CA");
        let ca_file = dir.write("ca.pem", &ours.pem());
        let client = ClientTls::load(Some(&ca_file)).unwrap();
        assert_eq!(client.ca_file(), Some(ca_file.as_path()));
        let signed_by = |ca: &Ca, name: &str| {
            let files = dir.write_leaf(name, &ca.leaf(&["origin.example.test"]));
            load(&[files]).unwrap()
        };
        let trusted = signed_by(&ours, "trusted");
        assert!(connected(client.config(), trusted.config(), "origin.example.test").is_ok());
        // The right CA, the wrong name.
        match connected(client.config(), trusted.config(), "other.example.test") {
            Err(Failed::Client(error)) => {
                assert!(
                    error.to_string().contains("certificate is for other names"),
                    "{error}"
                );
            }
            other => panic!("{:?}", other.map(|_| "connected")),
        }
        let stranger = signed_by(&theirs, "stranger");
        match connected(client.config(), stranger.config(), "origin.example.test") {
            Err(Failed::Client(error)) => {
                assert!(
                    error
                        .to_string()
                        .contains("certificate not trusted (unknown issuer)"),
                    "{error}"
                );
            }
            other => panic!("{:?}", other.map(|_| "connected")),
        }
        // The public roots alone know neither.
        let public = ClientTls::load(None).unwrap();
        assert!(connected(public.config(), trusted.config(), "origin.example.test").is_err());

        let missing = dir.path().join("missing-ca.pem");
        let error = ClientTls::load(Some(&missing))
            .map(|_| "loaded")
            .unwrap_err();
        assert_eq!(error.file, missing);
        assert!(error.problem.contains("cannot be read"), "{error}");
        let no_ca = dir.write("no-ca.pem", "nothing here\n");
        let error = ClientTls::load(Some(&no_ca)).map(|_| "loaded").unwrap_err();
        assert!(error.problem.contains("no certificate found"), "{error}");
    }

    /// A self-signed certificate for `names` and its key.
    fn self_signed(names: &[&str]) -> (CertificateDer<'static>, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().expect("a key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .expect("params")
            .self_signed(&key)
            .expect("signed");
        (cert.der().clone(), key)
    }

    /// A server presenting `cert` and signing its handshakes with `key`
    /// (which need not be `cert`'s: the impostor case), speaking only
    /// `versions`.
    fn server(
        cert: CertificateDer<'static>,
        key: &rcgen::KeyPair,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ServerConfig> {
        let provider = provider();
        let der = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = provider.key_provider.load_private_key(der).expect("key");
        let resolver = ByName {
            keys: vec![(Vec::new(), Arc::new(CertifiedKey::new(vec![cert], signing)))],
        };
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        Arc::new(config)
    }

    /// Runs a handshake in memory, then sends `hello` from the client:
    /// what the server received, or the first error (whichever side).
    fn connect(
        client: &ClientTls,
        name: &str,
        server: Arc<rustls::ServerConfig>,
    ) -> Result<BytesMut, TlsError> {
        let mut client = Tls::client(client.config(), server_name(name).expect("name"))?;
        let mut server = Tls::server(server)?;
        let (mut to_client, mut to_server) = (BytesMut::new(), BytesMut::new());
        for _ in 0..8 {
            if let Some(records) = client.take_records() {
                server.receive(&records, &mut to_server)?;
            }
            if let Some(records) = server.take_records() {
                client.receive(&records, &mut to_client)?;
            }
            if !client.is_handshaking() && !server.is_handshaking() {
                assert_eq!(client.seal(b"hello"), 5);
                let records = client.take_records().expect("sealed");
                assert!(!records.windows(5).any(|w| w == b"hello"), "encrypted");
                server.receive(&records, &mut to_server)?;
                return Ok(to_server);
            }
        }
        panic!("the handshake did not finish");
    }

    fn is_cert_error(result: Result<BytesMut, TlsError>, want: &CertificateError) -> bool {
        matches!(
            result,
            Err(TlsError::Protocol(rustls::Error::InvalidCertificate(ref e))) if e == want
        )
    }

    const BOTH: &[&rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];

    #[test]
    fn insecure_client_accepts_a_self_signed_certificate_for_another_name() {
        let (cert, key) = self_signed(&["elsewhere.example"]);
        let insecure = ClientTls::insecure().expect("insecure");
        assert!(insecure.is_insecure());
        for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12]] {
            let received = connect(&insecure, "127.0.0.1", server(cert.clone(), &key, versions))
                .expect("accepted");
            assert_eq!(&received[..], b"hello");
        }
    }

    #[test]
    fn verifying_client_refuses_the_same_certificate_as_untrusted() {
        let (cert, key) = self_signed(&["localhost"]);
        let verifying = ClientTls::load(None).expect("public roots");
        assert!(!verifying.is_insecure());
        assert!(is_cert_error(
            connect(&verifying, "localhost", server(cert, &key, BOTH)),
            &CertificateError::UnknownIssuer
        ));
        assert_ne!(verifying, ClientTls::insecure().expect("insecure"));
    }

    #[test]
    fn insecure_client_still_checks_handshake_signatures() {
        // The server sends one certificate but signs with another key: it
        // cannot prove it holds the certificate's key, under either
        // version's signature.
        let (cert, _) = self_signed(&["localhost"]);
        let (_, other_key) = self_signed(&["localhost"]);
        let insecure = ClientTls::insecure().expect("insecure");
        for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12]] {
            let result = connect(
                &insecure,
                "localhost",
                server(cert.clone(), &other_key, versions),
            );
            assert!(
                is_cert_error(result, &CertificateError::BadSignature),
                "{versions:?}"
            );
        }
    }
}
