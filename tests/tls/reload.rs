//! Certificates reload (SIGHUP, `POST /api/v1/reload`) under playing
//! clients: they keep every frame, new connections get the new
//! certificate, and a broken one is refused with the old kept.

use std::sync::atomic::{AtomicBool, AtomicU32};

use ringcast::session::Media;

use super::common::admin;
use super::common::feeder::Feeder;
use super::common::media::frame_number;
use super::common::served::Served;
use super::common::web::WebPlayer;
use super::*;

/// Installs `cert` as the files the server was told to serve, replacing
/// them the way certbot does: a new file renamed over the old.
fn install(pki: &Pki, cert_pem: &Path, key_pem: &str, live: &CertFiles) {
    let cert = std::fs::read_to_string(cert_pem).expect("the certificate");
    let staged = pki.write("staged.pem", &cert);
    std::fs::rename(staged, &live.cert).expect("renamed");
    let staged = pki.write("staged.key", key_pem);
    std::fs::rename(staged, &live.key).expect("renamed");
}

/// Asserts `frames` (media the feeder numbered, 30 fps, one every 33 ms)
/// run on from their first keyframe with no frame missing and no gap in
/// their timestamps: how many, and their first and last numbers.
fn assert_no_gap(frames: &[Media], who: &str) -> (usize, u32, u32) {
    let numbered: Vec<(u32, u32)> = (frames.iter())
        .filter_map(|m| Some((frame_number(m)?, m.timestamp.0)))
        .skip_while(|(n, _)| n % 10 != 0)
        .collect();
    let (first, last) = (numbered[0].0, numbered[numbered.len() - 1].0);
    for pair in numbered.windows(2) {
        let ((n, t), (next, next_t)) = (pair[0], pair[1]);
        assert_eq!(next, n + 1, "{who}: frame {next} follows {n}");
        assert_eq!(next_t - t, 33, "{who}: {t} ms then {next_t} ms");
    }
    assert_eq!(numbered.len() as u32, last - first + 1, "{who}");
    (numbered.len(), first, last)
}

/// Sets its flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn certificates_reload_under_playing_clients_with_no_gap_and_a_broken_one_is_refused() {
    let pki = Pki::new();
    let first = pki.server("first", &LOOPBACK);
    let live = CertFiles {
        cert: pki.file("live.pem"),
        key: pki.file("live.key"),
    };
    install(&pki, &first.files.cert, &first.key_pem, &live);
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--shards",
        "2",
        "--admin",
        "127.0.0.1:0",
        "--listen-tls",
        "127.0.0.1:0",
        "--http-tls",
        "127.0.0.1:0",
        "--tls-cert",
        text(&live.cert),
        "--tls-key",
        text(&live.key),
    ];
    let mut served = Served::start(&args);
    let (rtmps, https) = (served.rtmps.unwrap(), served.https.unwrap());
    let api = served.admin.unwrap();
    let _feeder = Feeder::start(&[served.addr], "cam");
    let config = pki.client();
    let certificate_now = || shown(&tls_connect(rtmps, "127.0.0.1", config.clone()).unwrap());

    let mut rtmps_player = rtmps_client(rtmps, config.clone(), "live");
    rtmps_player.play("cam");
    assert!(shown(&rtmps_player.socket) == first.der);
    let stream = tls_connect(https, "127.0.0.1", config.clone()).unwrap();
    let mut flv = WebPlayer::get_over(stream, &https.to_string(), "/live/cam.flv").expect("200");

    // Both play on their own threads while the certificates change; each
    // says the next frame number it waits for.
    let stop = AtomicBool::new(false);
    let next = [AtomicU32::new(0), AtomicU32::new(0)];
    let saw = |player: usize, media: &Media| {
        if let Some(n) = frame_number(media) {
            next[player].fetch_max(n + 1, Ordering::Relaxed);
        }
    };
    // Waits until both players have read `frames` more frames.
    let play_on = |frames: u32| {
        let behind = || {
            next.iter()
                .map(|n| n.load(Ordering::Relaxed))
                .min()
                .unwrap()
        };
        let mark = behind();
        common::wait_until("both players read on", || behind() >= mark + frames);
        mark
    };
    let (rtmps_frames, flv_frames, marks) = std::thread::scope(|s| {
        let rtmps_thread = s.spawn(|| {
            let mut got = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for media in rtmps_player.collect_media(1) {
                    saw(0, &media);
                    got.push(media);
                }
            }
            got
        });
        let flv_thread = s.spawn(|| {
            let mut got = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let media = flv.next_tag();
                saw(1, &media);
                got.push(media);
            }
            got
        });
        // Stops the players however this thread ends: a failed
        // assertion must not leave the scope waiting for them.
        let stopper = StopOnDrop(&stop);
        // Half a second of play (15 frames) before, between and after.
        play_on(15);
        let second = pki.server("second", &LOOPBACK);
        install(&pki, &second.files.cert, &second.key_pem, &live);
        served.signal(libc::SIGHUP);
        served.wait_for_line("configuration reloaded");
        // What is in force now, for the operator: the file, its names and
        // its expiry.
        let line = served.wait_for_line("TLS certificate");
        for part in [text(&live.cert), "localhost", "not_after="] {
            assert!(line.contains(part), "{part} in {line}");
        }
        let reloaded = play_on(0);
        // The shards take the new configuration from their inboxes just
        // after that line: new connections get the new certificate, on
        // whichever shard they land, from then on.
        common::wait_until("new connections get the new certificate", || {
            (0..6).all(|_| certificate_now() == second.der)
        });
        play_on(15);

        // The key of another certificate: refused, naming the key file,
        // by the API and by SIGHUP; the second certificate stays.
        let third = pki.server("third", &LOOPBACK);
        std::fs::write(&live.key, &third.key_pem).expect("written");
        let (status, body) = admin::request(api, "POST", "/api/v1/reload");
        assert_eq!(status, 400, "{body}");
        for part in [
            "configuration not reloaded",
            "--tls-cert/--tls-key",
            text(&live.key),
            &format!("this is not the key of {}", live.cert.display()),
            "give the key the certificate was issued for",
        ] {
            assert!(body.contains(part), "{part:?} in {body}");
        }
        served.signal(libc::SIGHUP);
        let line = served.wait_for_line("SIGHUP");
        assert!(line.contains("ERROR"), "{line}");
        assert!(line.contains("this is not the key of"), "{line}");
        assert!(certificate_now() == second.der, "the old certificate kept");
        let refused = play_on(15);
        drop(stopper);
        let frames = (rtmps_thread.join().unwrap(), flv_thread.join().unwrap());
        (frames.0, frames.1, (reloaded, refused))
    });
    // Every frame from before the reload to after the refused one, and
    // no gap in their timestamps.
    let (reloaded, refused) = marks;
    for (frames, who) in [(&rtmps_frames, "rtmps"), (&flv_frames, "https-flv")] {
        let (count, first, last) = assert_no_gap(frames, who);
        assert!(
            first < reloaded && last >= refused + 15,
            "{who}: frames {first} to {last}, reloaded at {reloaded}, refused at {refused}"
        );
        eprintln!(
            "{who}: {count} frames, {first} to {last} (reloaded at {reloaded}, refused at {refused}), no gap"
        );
    }
    assert!(served.is_running());
    // SIGINT: shut down now (SIGTERM would drain, waiting for the feeder).
    served.signal(libc::SIGINT);
    assert!(served.wait().0.success());
}
