//! How players over TLS (`rtmps://`, `https://`, `wss://`) check the
//! server's certificate, and the client configuration they share.
//!
//! Every player makes a full handshake: session resumption is off, since
//! each player stands for a viewer of its own, whose first connection
//! costs the server a full handshake (a key exchange and a signature),
//! not a resumption a shared session cache would give all but the first.

use std::path::PathBuf;
use std::sync::Arc;

use ringcast_client::Disconnect;
use ringcast_tls::ClientTls;
use rustls::pki_types::ServerName;

/// Whose certificates players accept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Trust {
    /// Certificates that chain to a public root (Mozilla's list, built
    /// in), valid for the URL's host now.
    #[default]
    PublicRoots,
    /// Those, and those of a private CA (its certificates in a PEM
    /// file): `--tls-ca FILE`, to bench a test server.
    Ca(PathBuf),
    /// Any certificate, for benchmarking only: `--tls-insecure`
    /// ([`ClientTls::insecure`]; the server must still prove it holds the
    /// key of the certificate it sends).
    Insecure,
}

/// What players over TLS connect with: the client configuration they
/// share, and the name the server's certificate must be valid for.
#[derive(Clone, Debug)]
pub struct Secure {
    pub config: Arc<rustls::ClientConfig>,
    pub name: ServerName<'static>,
    trust: Trust,
}

/// The line `ringcast bench` prints on stderr when players do not verify
/// certificates.
pub const INSECURE_WARNING: &str = "warning: --tls-insecure: players accept any certificate, \
     so anyone on the path could impersonate the server; for benchmarking only";

impl Trust {
    /// The flag that chose this trust, if one did.
    pub fn flag(&self) -> Option<&'static str> {
        match self {
            Trust::PublicRoots => None,
            Trust::Ca(_) => Some("--tls-ca"),
            Trust::Insecure => Some("--tls-insecure"),
        }
    }

    /// The configuration players of `host` connect with: `Err` names the
    /// flag at fault and why (a CA file that cannot be read, a host that
    /// is no server name).
    pub(crate) fn secure(&self, host: &str) -> Result<Secure, (&'static str, String)> {
        let client = match self {
            Trust::PublicRoots => ClientTls::load(None),
            Trust::Ca(file) => ClientTls::load(Some(file)),
            Trust::Insecure => ClientTls::insecure(),
        }
        .map_err(|e| (self.flag().unwrap_or("--url"), e.to_string()))?;
        let mut config = (*client.config()).clone();
        config.resumption = rustls::client::Resumption::disabled();
        let name = ringcast_tls::server_name(host).map_err(|reason| ("--url", reason))?;
        Ok(Secure {
            config: Arc::new(config),
            name,
            trust: self.clone(),
        })
    }
}

impl Secure {
    /// A failed handshake in a player's words: a certificate from an
    /// issuer the players do not trust says so, and how to trust it.
    /// Other failures (a name the certificate is not for, an expired
    /// one, no TLS at all) keep ringcast-tls' words, which say what they
    /// are.
    pub(crate) fn explain(&self, error: Disconnect) -> Disconnect {
        // The typed error stays inside the client's socket; its words
        // are ringcast-tls' own.
        if !error.contains(ringcast_tls::reasons::UNKNOWN_ISSUER) {
            return error;
        }
        let whose = match &self.trust {
            Trust::Ca(file) => format!("neither {} nor a public root", file.display()),
            _ => "not a public root; --tls-ca FILE trusts a private CA, \
                  --tls-insecure any certificate, for benchmarking only"
                .to_owned(),
        };
        format!("{error}: the server's certificate is not trusted (its issuer is {whose})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_issuer_is_explained_naming_the_fix() {
        let secure = Trust::PublicRoots.secure("127.0.0.1").expect("secure");
        let error = format!(
            "tls handshake: {}: signed by no CA trusted here",
            ringcast_tls::reasons::UNKNOWN_ISSUER
        );
        let explained = secure.explain(error.clone());
        assert!(explained.starts_with(&error), "{explained}");
        assert!(explained.contains("not trusted"), "{explained}");
        assert!(explained.contains("--tls-ca FILE"), "{explained}");
        let ca = Trust::Ca(PathBuf::from("/nonexistent/ca.pem"));
        assert_eq!(ca.flag(), Some("--tls-ca"));
        let other = "tls handshake: certificate not valid for name \"h\"".to_owned();
        assert_eq!(secure.explain(other.clone()), other);
    }

    #[test]
    fn a_ca_file_that_cannot_be_read_names_the_flag_and_file() {
        let (flag, reason) = Trust::Ca(PathBuf::from("/nonexistent/ca.pem"))
            .secure("h")
            .expect_err("no file");
        assert_eq!(flag, "--tls-ca");
        assert!(reason.contains("/nonexistent/ca.pem"), "{reason}");
    }

    #[test]
    fn players_make_full_handshakes() {
        for trust in [Trust::PublicRoots, Trust::Insecure] {
            let secure = trust.secure("localhost").expect("secure");
            let resumption = format!("{:?}", secure.config.resumption);
            assert!(
                resumption.contains("NoClientSessionStorage") && resumption.contains("Disabled"),
                "{resumption}"
            );
            assert_eq!(
                secure.name,
                ServerName::try_from("localhost").expect("name")
            );
        }
    }
}
