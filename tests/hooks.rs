//! Hooks in each family's words, end to end: a service written for SRS
//! (its JSON fields and event names, `{"code":403}` denying, `0` and
//! `{"code":0}` allowing), one written for nginx-rtmp (its form fields and
//! `call=` names), several URLs per hook, `https://` hooks verified against
//! `[tls] ca_file`, `on_close` and `on_update` (a refusal ends the client).
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::hooks::{Answer, HookService, Request};
use common::media::avc_header;
use common::pki::Pki;
use common::{Client, start_server};
use ringcast::config::HookFormat;
use ringcast::server::ServerHandle;
use ringcast::shard::stats::ShardSnapshot;
use ringcast_tls::ClientTls;
use serde_json::{Value, json};

const START: &str = "NetStream.Publish.Start";
const BAD_NAME: &str = "NetStream.Publish.BadName";
const PLAY_START: &str = "NetStream.Play.Start";

fn totals(server: &ServerHandle) -> ShardSnapshot {
    server.stats().into_iter().sum()
}

fn connect(server: &ServerHandle, app: &str) -> Client {
    Client::connect(server.local_addrs()[0], app)
}

/// The names of a form's fields, in order.
fn form_names(request: &Request) -> Vec<&str> {
    (request.body.split('&'))
        .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
        .collect()
}

#[test]
fn an_srs_service_denies_with_a_code_and_allows_with_zero() {
    let service = HookService::start(|call| match call["stream"].as_str() {
        Some("denied") => Answer::Body(200, r#"{"code":403,"data":"no"}"#),
        Some("zero") => Answer::Body(200, "0"),
        Some("object") => Answer::Body(200, r#"{"code":0}"#),
        Some("empty") => Answer::Status(200),
        _ => Answer::Body(200, "0"),
    });
    let server = start_server(1, |c| {
        let policy = &mut c.access.default;
        policy.hook_format = HookFormat::Srs;
        policy.hooks.on_publish = vec![service.url("/api/v1/streams")];
        policy.hooks.on_publish_done = vec![service.url("/api/v1/streams")];
        policy.hooks.on_play = vec![service.url("/api/v1/sessions")];
        policy.hooks.on_play_done = vec![service.url("/api/v1/sessions")];
    });
    let mut publisher = connect(&server, "live");
    assert_eq!(
        publisher.publish_status("denied"),
        BAD_NAME,
        "{{\"code\":403}}"
    );
    assert_eq!(
        publisher.publish_status("empty"),
        BAD_NAME,
        "200 with no body"
    );
    assert_eq!(publisher.publish_status("zero?key=a%2Bb"), START);
    let mut other = connect(&server, "live");
    assert_eq!(other.publish_status("object"), START);
    assert_eq!(totals(&server).auth_denials, 2);
    assert_eq!(totals(&server).hook_failures, 0, "a refusal is no failure");

    let asked = service.wait_for("on_publish", Some("zero"));
    let addr = server.local_addrs()[0];
    for (field, value) in [
        ("vhost", json!("__defaultVhost__")),
        ("app", json!("live")),
        ("param", json!("?key=a%2Bb")),
        ("ip", json!("127.0.0.1")),
        ("tcUrl", json!(format!("rtmp://{addr}/live"))),
        ("stream_url", json!("/live/zero")),
        ("stream_id", json!("live/zero")),
    ] {
        assert_eq!(asked[field], value, "{field}: {asked}");
    }
    for field in ["server_id", "service_id", "client_id"] {
        assert!(
            asked[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}: {asked}"
        );
    }
    assert!(asked.get("args").is_none(), "SRS has param, not args");

    let mut player = connect(&server, "live");
    assert_eq!(player.play_status("zero"), PLAY_START);
    assert_eq!(service.wait_for("on_play", Some("zero"))["pageUrl"], "");
    drop(player);
    service.wait_for("on_stop", Some("zero"));
    drop(publisher);
    service.wait_for("on_unpublish", Some("zero"));
    let actions: Vec<Value> = service
        .calls()
        .iter()
        .map(|c| c["action"].clone())
        .collect();
    assert!(
        !actions.contains(&json!("on_publish_done")) && !actions.contains(&json!("on_play_done")),
        "SRS's names only: {actions:?}"
    );
}

#[test]
fn an_nginx_service_sees_its_form_fields_and_call_names() {
    let service = HookService::start(|call| match call["name"].as_str() {
        Some("denied") => Answer::Status(403),
        Some("moved") => Answer::Redirect("renamed"),
        _ => Answer::Status(200),
    });
    let server = start_server(1, |c| {
        let policy = &mut c.access.default;
        policy.hook_format = HookFormat::Nginx;
        let hooks = &mut policy.hooks;
        hooks.on_connect = vec![service.url("/connect")];
        hooks.on_publish = vec![service.url("/publish")];
        hooks.on_play = vec![service.url("/play")];
        hooks.on_publish_done = vec![service.url("/publish_done")];
        hooks.on_play_done = vec![service.url("/play_done")];
        hooks.on_done = vec![service.url("/done")];
    });
    let addr = server.local_addrs()[0];
    let mut publisher = connect(&server, "live");
    assert_eq!(publisher.publish_status("denied"), BAD_NAME, "403");
    assert_eq!(publisher.publish_status("cam?token=a%2Bb&x=1"), START);
    let session = [
        "app", "flashver", "swfurl", "tcurl", "pageurl", "addr", "clientid",
    ];
    let tc_url = format!("rtmp://{addr}/live");
    let publish = service.wait_for_request("publish of cam", |r| r.fields["name"] == "cam");
    assert_eq!(publish.path, "/publish");
    assert_eq!(publish.content_type, "application/x-www-form-urlencoded");
    assert_eq!(
        form_names(&publish),
        [&session[..], &["call", "name", "type", "token", "x"]].concat()
    );
    let fields = &publish.fields;
    assert_eq!(
        (
            &fields["call"],
            &fields["app"],
            &fields["tcurl"],
            &fields["addr"]
        ),
        (
            &json!("publish"),
            &json!("live"),
            &json!(tc_url),
            &json!("127.0.0.1")
        )
    );
    assert_eq!(
        (&fields["type"], &fields["token"]),
        (&json!("live"), &json!("a+b"))
    );
    assert!(
        publish.body.ends_with("&type=live&token=a%2Bb&x=1"),
        "the client's query as sent: {}",
        publish.body
    );
    let connect_call = service.wait_for_call("connect", |c| c["call"] == "connect");
    assert_eq!(
        connect_call["epoch"]
            .as_str()
            .map(|e| e.parse::<u32>().is_ok()),
        Some(true)
    );

    let mut player = connect(&server, "live");
    assert_eq!(player.play_status("moved"), PLAY_START, "a 3xx renames");
    let play = service.wait_for_request("play", |r| r.fields["call"] == "play");
    assert_eq!(
        form_names(&play),
        [&session[..], &["call", "name"]].concat()
    );
    drop(player);
    for call in ["play_done", "done"] {
        let done = service.wait_for_request(call, |r| r.fields["call"] == call);
        assert_eq!(
            form_names(&done),
            [&session[..], &["call", "name"]].concat()
        );
        assert_eq!(done.fields["name"], "renamed");
    }
    drop(publisher);
    let done = service.wait_for_request("publish_done", |r| r.fields["call"] == "publish_done");
    assert_eq!(done.fields["name"], "cam");
    service.wait_for_call("done of the publish", |c| {
        c["call"] == "done" && c["name"] == "cam"
    });
}

#[test]
fn every_url_of_a_hook_must_allow_and_every_one_is_told() {
    let allowing = HookService::start(|_| Answer::Status(200));
    let picky = HookService::start(|call| match call["stream"].as_str() {
        Some("vetoed") => Answer::Status(403),
        _ => Answer::Status(204),
    });
    let server = start_server(1, |c| {
        let hooks = &mut c.access.default.hooks;
        hooks.on_publish = vec![allowing.url("/publish"), picky.url("/publish")];
        hooks.on_publish_done = vec![allowing.url("/done"), picky.url("/done")];
    });
    let mut publisher = connect(&server, "live");
    assert_eq!(publisher.publish_status("vetoed"), BAD_NAME, "one refuses");
    allowing.wait_for("on_publish", Some("vetoed"));
    assert_eq!(publisher.publish_status("cam"), START);
    drop(publisher);
    for service in [&allowing, &picky] {
        service.wait_for("on_publish_done", Some("cam"));
    }
    assert_eq!(totals(&server).auth_denials, 1);
}

#[test]
fn https_hooks_are_verified_against_the_ca_file() {
    let pki = Pki::new();
    let service = HookService::start_tls(&pki.server("hooks", &["127.0.0.1"]), |_| {
        Answer::Status(200)
    });
    let url = service.url("/publish");
    assert!(url.to_string().starts_with("https://127.0.0.1:"), "{url}");
    let ca = ClientTls::load(Some(&pki.ca_file())).expect("the test CA");
    let server = start_server(1, |c| {
        c.access.default.hooks.on_publish = vec![url.clone()];
        c.tls.relay_ca = Some(ca);
    });
    let mut publisher = connect(&server, "live");
    assert_eq!(publisher.publish_status("cam"), START);
    service.wait_for("on_publish", Some("cam"));

    // Without the CA, the public roots do not know the service's issuer.
    let untrusted = start_server(1, |c| c.access.default.hooks.on_publish = vec![url]);
    let mut publisher = connect(&untrusted, "live");
    assert_eq!(publisher.publish_status("cam2"), BAD_NAME);
    assert_eq!(totals(&untrusted).hook_failures, 1);
    assert_eq!(
        service
            .calls()
            .iter()
            .filter(|c| c["stream"] == "cam2")
            .count(),
        0,
        "no request went over an unverified connection"
    );
}

#[test]
fn on_close_comes_after_the_done_notices_with_the_bytes() {
    let service = HookService::start(|_| Answer::Status(200));
    let server = start_server(1, |c| {
        let hooks = &mut c.access.default.hooks;
        hooks.on_publish_done = vec![service.url("/done")];
        hooks.on_close = vec![service.url("/close")];
    });
    let mut publisher = connect(&server, "live");
    let id = publisher.publish("cam?key=k");
    publisher.send(id, &avc_header());
    publisher.flush();
    drop(publisher);
    let close = service.wait_for("on_close", None);
    assert_eq!(close["app"], "live");
    assert!(close.get("stream").is_none(), "{close}");
    assert!(close["bytes_in"].as_u64().unwrap() > 1536, "{close}");
    assert!(close["bytes_out"].as_u64().unwrap() > 1536, "{close}");
    service.wait_for("on_publish_done", Some("cam"));
    // Both are told, the close after the done; they travel on connections
    // of their own, so they may arrive either way round.
    assert_eq!(service.calls().len(), 2);

    // A connection that never connected to an app is not told.
    let silent = std::net::TcpStream::connect(server.local_addrs()[0]).unwrap();
    drop(silent);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(service.calls().len(), 2);
}

#[test]
fn a_refused_update_ends_the_client_and_a_failed_one_does_not() {
    let revoked = Arc::new(AtomicBool::new(false));
    let revoking = revoked.clone();
    let service = HookService::start(move |call| match call["call"].as_str() {
        Some("update_play") if revoking.load(Ordering::Relaxed) => Answer::Status(403),
        _ => Answer::Status(200),
    });
    let server = start_server(1, |c| {
        c.access.update_interval = Duration::from_secs(1);
        let policy = &mut c.access.default;
        policy.hook_format = HookFormat::Nginx;
        policy.hooks.on_update = vec![service.url("/update")];
    });
    let mut publisher = connect(&server, "live");
    let id = publisher.publish("cam");
    publisher.send(id, &avc_header());
    let mut player = connect(&server, "live");
    player.play("cam?token=t");
    let first = service.wait_for_request("an update", |r| r.fields["call"] == "update_play");
    assert_eq!(
        form_names(&first),
        [
            "app", "flashver", "swfurl", "tcurl", "pageurl", "addr", "clientid", "call", "time",
            "name",
        ]
    );
    assert_eq!(
        (&first.fields["name"], &first.fields["time"]),
        (&json!("cam"), &json!("1"))
    );
    service.wait_for_call("the publisher's update", |c| c["call"] == "update_publish");
    revoked.store(true, Ordering::Relaxed);
    player.read_until_closed();
    assert_eq!(totals(&server).auth_denials, 1);
    // The publisher's updates go on being allowed.
    let updates = || {
        (service.calls().iter())
            .filter(|c| c["call"] == "update_publish")
            .count()
    };
    let before = updates();
    service.wait_for_call("another publisher update", |_| updates() > before);
    publisher.pump(Duration::from_millis(50));

    // A hook that cannot be reached fails the update: counted, not kicked.
    let unreachable = start_server(1, |c| {
        c.access.update_interval = Duration::from_secs(1);
        c.access.hook_timeout = Duration::from_millis(200);
        c.access.default.hooks.on_update = vec!["http://127.0.0.1:9/update".parse().unwrap()];
    });
    let mut player = connect(&unreachable, "live");
    player.play("cam");
    common::wait_until("an update failed", || {
        totals(&unreachable).hook_failures > 0
    });
    // Still connected: a read that finds the connection closed panics.
    player.pump(Duration::from_millis(50));
    assert_eq!(totals(&unreachable).auth_denials, 0);
}
