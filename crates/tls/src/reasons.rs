//! Why a TLS handshake failed, in words an operator acts on: rustls says
//! `invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))`, a
//! log line should say "a CA certificate used as the server's".
//!
//! Only the failures an operator meets when a relay's target or origin is
//! set up wrong get words of their own (an untrusted issuer, another
//! name, expiry, a CA served as a leaf, a port that does not speak TLS);
//! anything else keeps rustls' own text.

use rustls::pki_types::ServerName;
use rustls::{CertificateError, Error, InvalidMessage};

/// How an untrusted certificate is described: callers that know how to
/// trust one (`[tls] ca_file`, `--tls-ca`) find it by this and add so.
pub const UNKNOWN_ISSUER: &str = "certificate not trusted (unknown issuer)";

/// How many of a certificate's names a reason lists: the peer chose them,
/// and one log line must stay one line.
pub const NAMES_SHOWN_MAX: usize = 4;

/// `error` in words for a log line.
pub fn describe(error: &Error) -> String {
    match error {
        Error::InvalidCertificate(certificate) => describe_certificate(certificate),
        // A TLS record starts with its content type (20..=24); a plain
        // RTMP server's first byte is its version, 3.
        Error::InvalidMessage(InvalidMessage::InvalidContentType) => {
            "the peer does not speak TLS (what came are not TLS records: a plain rtmp:// port?)"
                .to_owned()
        }
        other => other.to_string(),
    }
}

fn describe_certificate(error: &CertificateError) -> String {
    match error {
        CertificateError::UnknownIssuer => {
            format!("{UNKNOWN_ISSUER}: signed by no CA trusted here")
        }
        CertificateError::NotValidForName => "certificate is for other names".to_owned(),
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            format!(
                "certificate is for other names: {} asked for, it names {}",
                shown(expected),
                listed(presented)
            )
        }
        CertificateError::Expired => "certificate expired".to_owned(),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "certificate expired {} ago",
            ago(time.as_secs().saturating_sub(not_after.as_secs()))
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet (check the clock here and on the server)".to_owned()
        }
        CertificateError::Revoked => "certificate revoked".to_owned(),
        CertificateError::BadSignature => {
            "certificate signature does not verify (a forged or damaged chain)".to_owned()
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate is not for TLS servers (its extended key usage)".to_owned()
        }
        CertificateError::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(webpki::Error::CaUsedAsEndEntity) => {
                "a CA certificate used as the server's: the server must serve a certificate \
                 its CA issued, not the CA itself"
                    .to_owned()
            }
            Some(webpki::Error::EndEntityUsedAsCa) => {
                "a server's certificate used as a CA in the chain".to_owned()
            }
            _ => format!("invalid certificate: {other}"),
        },
        other => format!("invalid certificate: {other}"),
    }
}

fn shown(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(name) => name.as_ref().to_owned(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// The first [`NAMES_SHOWN_MAX`] of `names` (as webpki shows them,
/// `DnsName("example.com")`), bare, and how many more.
fn listed(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    let bare = |name: &str| match name.split_once('(') {
        Some((_, inner)) => inner
            .strip_suffix(')')
            .unwrap_or(inner)
            .trim_matches('"')
            .to_owned(),
        None => name.to_owned(),
    };
    let mut text = (names.iter().take(NAMES_SHOWN_MAX))
        .map(|name| bare(name).chars().take(64).collect::<String>())
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMES_SHOWN_MAX {
        text.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN_MAX));
    }
    text
}

/// `seconds` as the largest whole unit people use.
fn ago(seconds: u64) -> String {
    match seconds {
        0..120 => format!("{seconds} s"),
        120..7200 => format!("{} min", seconds / 60),
        7200..172_800 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, SystemTime};

    use bytes::BytesMut;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    use super::*;
    use crate::{CertFiles, ClientTls, ServerTls, Tls, TlsError, server_name};

    /// Files in a directory of their own, removed when dropped.
    struct Dir(PathBuf);

    impl Dir {
        fn new() -> Dir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("ringcast-tls-reasons-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A CA: its certificate in `dir` as `NAME.pem`, and what signs with it.
    struct Ca {
        file: PathBuf,
        issuer: Issuer<'static, KeyPair>,
        key_pem: String,
    }

    fn ca(dir: &Dir, name: &str) -> Ca {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        // CAs are found by name: two of one name would be one CA with a
        // signature that does not verify.
        (params.distinguished_name).push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let key_pem = key.serialize_pem();
        Ca {
            file: dir.write(&format!("{name}.pem"), &cert.pem()),
            issuer: Issuer::new(params, key),
            key_pem,
        }
    }

    /// A server certificate for `names` that `ca` issued, valid
    /// `from`..`until` (rcgen's defaults, 1975..4096, when `None`).
    fn leaf(dir: &Dir, ca: &Ca, names: &[&str], valid: Option<(i32, i32)>) -> CertFiles {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        if let Some((from, until)) = valid {
            params.not_before = rcgen::date_time_ymd(from, 1, 1);
            params.not_after = rcgen::date_time_ymd(until, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca.issuer).unwrap();
        CertFiles {
            cert: dir.write("leaf.pem", &cert.pem()),
            key: dir.write("leaf.key", &key.serialize_pem()),
        }
    }

    fn year(year: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs((year - 1970) * 365 * 86_400 + 100 * 86_400)
    }

    /// Runs a handshake in memory, a client trusting `ca_file` asking
    /// for `name`: the client's failure in words.
    fn refusal(served: &CertFiles, now: SystemTime, ca_file: Option<&Path>, name: &str) -> String {
        let server = ServerTls::load(std::slice::from_ref(served), now).unwrap();
        let roots = ClientTls::load(ca_file).unwrap();
        let mut server = Tls::server(server.config()).unwrap();
        let mut client = Tls::client(roots.config(), server_name(name).unwrap()).unwrap();
        let mut plaintext = BytesMut::new();
        for _ in 0..8 {
            if let Some(records) = client.take_records() {
                server.receive(&records, &mut plaintext).unwrap();
            }
            if let Some(records) = server.take_records() {
                if let Err(error) = client.receive(&records, &mut plaintext) {
                    return error.to_string();
                }
            }
            assert!(
                client.is_handshaking(),
                "the handshake with {name} succeeded"
            );
        }
        panic!("the handshake neither failed nor finished");
    }

    #[test]
    fn a_certificate_of_the_trusted_ca_for_the_name_asked_for_is_accepted() {
        let dir = Dir::new();
        let ca = ca(&dir, "ca");
        let served = leaf(&dir, &ca, &["localhost"], None);
        let server = ServerTls::load(&[served], SystemTime::now()).unwrap();
        let roots = ClientTls::load(Some(&ca.file)).unwrap();
        let mut server = Tls::server(server.config()).unwrap();
        let mut client = Tls::client(roots.config(), server_name("localhost").unwrap()).unwrap();
        let mut plaintext = BytesMut::new();
        while client.is_handshaking() || server.is_handshaking() {
            if let Some(records) = client.take_records() {
                server.receive(&records, &mut plaintext).unwrap();
            }
            if let Some(records) = server.take_records() {
                client.receive(&records, &mut plaintext).unwrap();
            }
        }
        assert_eq!(server.server_name(), Some("localhost"), "SNI was sent");
    }

    #[test]
    fn an_unknown_issuer_is_named_as_such() {
        let dir = Dir::new();
        let ca = ca(&dir, "ca");
        let served = leaf(&dir, &ca, &["localhost"], None);
        // The public roots only; then another private CA.
        let other = self::ca(&dir, "other");
        for trusted in [None, Some(other.file.as_path())] {
            let text = refusal(&served, SystemTime::now(), trusted, "localhost");
            assert!(
                text.starts_with("certificate not trusted (unknown issuer)"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_certificate_for_other_names_lists_them() {
        let dir = Dir::new();
        let ca = ca(&dir, "ca");
        let served = leaf(&dir, &ca, &["example.test", "www.example.test"], None);
        let text = refusal(&served, SystemTime::now(), Some(&ca.file), "127.0.0.1");
        assert_eq!(
            text,
            "certificate is for other names: 127.0.0.1 asked for, it names \
             example.test, www.example.test"
        );
        let text = refusal(&served, SystemTime::now(), Some(&ca.file), "localhost");
        assert!(text.contains("localhost asked for"), "{text}");
    }

    #[test]
    fn an_expired_certificate_says_how_long_ago() {
        let dir = Dir::new();
        let ca = ca(&dir, "ca");
        let served = leaf(&dir, &ca, &["localhost"], Some((2019, 2020)));
        // Loaded while it was valid; verified now.
        let text = refusal(&served, year(2019), Some(&ca.file), "localhost");
        assert!(text.starts_with("certificate expired "), "{text}");
        assert!(text.ends_with(" days ago"), "{text}");
    }

    #[test]
    fn a_ca_served_as_the_server_certificate_is_named_as_such() {
        let dir = Dir::new();
        let ca = ca(&dir, "ca");
        let served = CertFiles {
            cert: ca.file.clone(),
            key: dir.write("ca.key", &ca.key_pem),
        };
        let text = refusal(&served, SystemTime::now(), Some(&ca.file), "localhost");
        assert!(
            text.starts_with("a CA certificate used as the server's"),
            "{text}"
        );
    }

    #[test]
    fn a_plain_rtmp_answer_to_a_client_hello_is_not_tls() {
        let roots = ClientTls::load(None).unwrap();
        let mut client = Tls::client(roots.config(), server_name("localhost").unwrap()).unwrap();
        assert!(client.take_records().is_some(), "a ClientHello");
        // S0 (version 3) and the start of S1.
        let mut answer = vec![3u8];
        answer.extend_from_slice(&[0; 1536]);
        let error = client
            .receive(&answer, &mut BytesMut::new())
            .expect_err("not TLS");
        assert!(matches!(error, TlsError::Protocol(_)), "{error:?}");
        assert!(
            error.to_string().starts_with("the peer does not speak TLS"),
            "{error}"
        );
    }

    #[test]
    fn long_name_lists_and_durations_stay_short() {
        let mut names: Vec<String> = (0..10).map(|i| format!("DnsName(\"n{i}.test\")")).collect();
        names[1] = "IpAddress(127.0.0.1)".to_owned();
        assert_eq!(
            listed(&names),
            "n0.test, 127.0.0.1, n2.test, n3.test and 6 more"
        );
        assert_eq!(listed(&[]), "none");
        assert_eq!(
            [59, 600, 7200, 200_000].map(ago),
            ["59 s", "10 min", "2 h", "2 days"]
        );
    }
}
