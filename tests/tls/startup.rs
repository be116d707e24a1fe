//! The command line: startup refuses certificates that cannot serve (exit
//! status 2, naming the file and the fix), and `ringcast doctor` says
//! how TLS records are sealed.

use std::process::Command;
use std::time::Duration;

use super::common::ffmpeg::run_bounded;
use super::*;

/// `ringcast ARGS`, killed if it runs 20 s: its exit status and stderr.
fn ringcast(args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ringcast"));
    command.args(args).env("RUST_LOG", "warn");
    let output = run_bounded(command, Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stdout, stderr)
}

#[test]
fn startup_refuses_certificates_that_cannot_serve_naming_the_file_and_the_fix() {
    let pki = Pki::new();
    let good = pki.server("good", &LOOPBACK);
    let other = pki.server("other", &LOOPBACK);
    let expired = pki.server_with("expired", &LOOPBACK, |p| {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
    });
    let missing = pki.file("missing.pem");
    // Root reads any file whatever its mode (the tests run as root): a
    // directory is a path that cannot be read as a file.
    let unreadable = pki.file("");
    let cases: [(&str, &Path, &Path, &Path, &[&str]); 4] = [
        (
            "a missing certificate",
            &missing,
            &good.files.key,
            &missing,
            &["cannot be read (No such file", "check the path"],
        ),
        (
            "an unreadable certificate",
            &unreadable,
            &good.files.key,
            &unreadable,
            &[
                "cannot be read (Is a directory",
                "that ringcast's user may read it",
            ],
        ),
        (
            "an expired certificate",
            &expired.files.cert,
            &expired.files.key,
            &expired.files.cert,
            &[
                "the certificate expired on Jan  1 00:00:00 2001",
                "renew it",
            ],
        ),
        (
            "another certificate's key",
            &good.files.cert,
            &other.files.key,
            &other.files.key,
            &[
                "this is not the key of",
                "give the key the certificate was issued for",
            ],
        ),
    ];
    for (what, cert, key, blamed, parts) in cases {
        let (status, _, stderr) = ringcast(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "off",
            "--admin",
            "off",
            "--listen-tls",
            "127.0.0.1:0",
            "--tls-cert",
            text(cert),
            "--tls-key",
            text(key),
        ]);
        assert_eq!(status, Some(2), "{what}: {stderr}");
        assert!(stderr.contains("--tls-cert/--tls-key"), "{what}: {stderr}");
        assert!(
            stderr.contains(text(blamed)),
            "{what} names the file: {stderr}"
        );
        for part in parts {
            assert!(stderr.contains(part), "{what}: {part:?} in {stderr}");
        }
    }

    let (status, _, stderr) = ringcast(&["serve", "--listen-tls", "127.0.0.1:0"]);
    assert_eq!(status, Some(2), "{stderr}");
    for part in [
        "--listen-tls",
        "needs a certificate: set tls.cert and tls.key (or --tls-cert and --tls-key)",
    ] {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }

    // The same from a config file: the file and the key in it named.
    let config = pki.write(
        "missing.toml",
        &format!(
            "[tls]\nlisten = [\"127.0.0.1:0\"]\ncert = \"{}\"\nkey = \"{}\"\n",
            text(&missing),
            text(&good.files.key)
        ),
    );
    let (status, _, stderr) = ringcast(&["serve", "--config", text(&config)]);
    assert_eq!(status, Some(2), "{stderr}");
    for part in [text(&config), "tls.cert", text(&missing), "cannot be read"] {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }
}

#[test]
fn doctor_says_whether_the_kernel_offers_kernel_tls_and_that_records_are_sealed_in_userspace() {
    let pki = Pki::new();
    let cert = pki.server("server", &LOOPBACK);
    let (status, report, stderr) = ringcast(&[
        "doctor",
        "--shards",
        "1",
        "--admin",
        "off",
        "--listen-tls",
        "127.0.0.1:0",
        "--tls-cert",
        text(&cert.files.cert),
        "--tls-key",
        text(&cert.files.key),
    ]);
    assert!(matches!(status, Some(0 | 1)), "{stderr}");
    let line = (report.lines())
        .find(|l| l.contains("kernel TLS"))
        .unwrap_or_else(|| panic!("no kernel TLS line in\n{report}"));
    let ulp = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp").unwrap_or_default();
    let offered = ulp.split_whitespace().any(|p| p == "tls");
    let expected = if offered {
        "ok    kernel TLS: offered by this kernel (tls in net.ipv4.tcp_available_ulp), not used by ringcast; \
         TLS listeners seal records in userspace (rustls)"
    } else {
        "ok    kernel TLS: not offered by this kernel (no tls in net.ipv4.tcp_available_ulp); \
         TLS listeners seal records in userspace (rustls)"
    };
    assert_eq!(line, expected, "this kernel offers {ulp:?}");
}
