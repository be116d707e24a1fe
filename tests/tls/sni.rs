//! SNI: `[[tls.certificates]]` in the config file add certificates, each
//! served to the clients that name one of its names; the others get
//! `tls.cert`.

use ringcast_tls::ClientTls;

use super::*;

/// A client that takes any certificate, so that it can ask for any name
/// and see which certificate came.
fn accept_any() -> Arc<rustls::ClientConfig> {
    ClientTls::insecure().unwrap().config()
}

#[test]
fn sni_serves_each_name_its_certificate_and_tls_cert_to_unknown_names_and_none() {
    let pki = Pki::new();
    let default = pki.server("default", &LOOPBACK);
    let a = pki.server("a", &["a.example.test"]);
    let b = pki.server("b", &["*.b.example.test"]);
    let file = format!(
        r#"
listen = ["127.0.0.1:0"]
http_listen = ["127.0.0.1:0"]
admin = "127.0.0.1:0"
shards = 2

[tls]
listen = ["127.0.0.1:0"]
http_listen = ["127.0.0.1:0"]
cert = "{}"
key = "{}"

[[tls.certificates]]
cert = "{}"
key = "{}"

[[tls.certificates]]
cert = "{}"
key = "{}"
"#,
        text(&default.files.cert),
        text(&default.files.key),
        text(&a.files.cert),
        text(&a.files.key),
        text(&b.files.cert),
        text(&b.files.key),
    );
    let config = Config::from_toml(&file, Path::new("sni.toml")).expect("a valid config");
    let server = start_config(config);
    let cases: [(&str, &Cert); 7] = [
        ("a.example.test", &a),
        // One label under the wildcard.
        ("x.b.example.test", &b),
        ("live-7.b.example.test", &b),
        // Two labels under it, and an unknown name: the default.
        ("y.x.b.example.test", &default),
        ("c.example.test", &default),
        // No SNI at all (rustls sends none for an IP address).
        ("127.0.0.1", &default),
        ("localhost", &default),
    ];
    for addr in [rtmps(&server), https(&server)] {
        for (name, expected) in &cases {
            let stream = tls_connect(addr, name, accept_any()).expect("a handshake");
            assert!(shown(&stream) == expected.der, "{addr} as {name}");
        }
    }
    // A client that verifies accepts each: the chain and names hold.
    for name in [
        "a.example.test",
        "x.b.example.test",
        "127.0.0.1",
        "localhost",
    ] {
        tls_connect(https(&server), name, pki.client()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // And refuses a name no certificate has.
    let refused = tls_connect(https(&server), "c.example.test", pki.client())
        .map(|_| "connected")
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("not valid for name \"c.example.test\""),
        "{refused}"
    );
    // A client that leaves for a bad certificate is the client's doing:
    // counted by the server as a TLS failure (it sent an alert).
    common::wait_until("the refusing client's close is counted", || {
        metric(&server, "ringcast_tls_failures_total") == 1
    });
    server.shutdown();
}
