//! Unit tests of the whole config layer: file, flags, validation, CPU lists.

use super::test_support::TempFile;
use super::*;

mod sections;

const FULL: &str = r#"
listen = ["127.0.0.1:1936", "[::1]:1936"]
shards = 3
cpus = "0,2-3"
chunk_size = 8192
connections_max = 500
connections_per_ip_max = 20
publishers_max = 10
streams_max = 40
http_listen = ["127.0.0.1:8081"]
admin = "[::1]:9090"
admin_origins = ["https://dash.example.com"]
metrics_streams_max = 500
drain_ms = 30000
drain_redirect = "rtmp://edge2.example:1936/live"
log_format = "json"

[limits]
message_size_max = 1048576
partial_bytes_max = 2097152
chunk_streams_max = 16
streams_per_connection_max = 4

[stream]
gop_cache_bytes_max = 1000000
gop_cache_duration_ms_max = 4000
takeover = "replace"
timestamp_correction = false

[http]
allow_origin = "https://www.example.com"
player_page = "/player/"
play_wait_ms = 2000

[player]
queue_bytes_max = 3000000
slow_disconnect_ms = 2500
write_batch_bytes_max = 65536
write_window_ms = 100

[timeouts]
handshake_ms = 1500
idle_ms = 30000
shutdown_ms = 250

[relay]
origins = ["rtmp://o1:1936", "rtmp://o2/live"]
push = ["rtmp://backup/live/{name}"]
idle_stop_ms = 2000
connect_timeout_ms = 1000
backoff_ms_max = 4000
pulls_max = 100
pulls_per_connection_max = 3
ping_ms = 2500

[access]
publish_keys = ["pk1", "pk2"]
play_keys = []
publish_allow = ["10.0.0.0/8", "192.0.2.7"]
publish_deny = ["10.9.0.0/16"]
play_allow = []
play_deny = ["2001:db8::/32"]
hook_format = "nginx"
on_connect = "http://127.0.0.1:9000/connect"
on_publish = ["http://auth.local/publish", "HTTPS://auth2.local:8443/publish?s=1"]
on_play = ""
on_publish_done = ["http://127.0.0.1:9000/done"]
on_play_done = []
on_done = "http://127.0.0.1:9000/any_done"
on_update = ["http://127.0.0.1:9000/update"]
on_close = ["http://127.0.0.1:9000/close"]
on_record_done = "http://127.0.0.1:9000/recorded"
hook_timeout_ms = 500
hook_fail_open = true
update_interval_ms = 10000

[hls]
enabled = false
segment_ms = 4000
part_ms = 500
segments = 8
idle_ms = 20000
blocked_per_ip_max = 64

[record]
enabled = true
path = "/srv/rec/{app}/{stream}-{start:%Y%m%d-%H%M%S}.mp4"
format = "mp4"
max_duration_ms = 600000
max_bytes = 1073741824

[app.news]
origins = ["rtmp://o3/master"]
push = []
hls = true
exec_publish = ["ffmpeg", "-i", "rtmp://127.0.0.1:{port}/{app}/{name}", "-f", "null", "-"]

[app.news.access]
publish_keys = ["newsroom"]
hook_format = "srs"
on_publish = ""

[app.news.stream]
gop_cache_bytes_max = 0

[app.news.record]
enabled = false
path = "/srv/news/{stream}.flv"
format = "flv"
"#;

/// `[app.news] exec_publish` of [`FULL`].
fn news_exec() -> ExecCommand {
    let argv = [
        "ffmpeg",
        "-i",
        "rtmp://127.0.0.1:{port}/{app}/{name}",
        "-f",
        "null",
        "-",
    ];
    ExecCommand::parse("exec_publish", &argv.map(String::from)).unwrap()
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("test.toml"))
}

/// The whole message as `main` prints it, sources included.
fn parse_err(text: &str) -> String {
    error_report(&parse(text).expect_err("the file is rejected"))
}

#[test]
fn defaults_are_valid_and_listen_on_1935() {
    let config = Config::default();
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(config.listen, vec![SocketAddr::from(([0, 0, 0, 0], 1935))]);
    assert_eq!(config.chunk_size, limits::CHUNK_SIZE_OUT_DEFAULT);
}

#[test]
fn full_file_sets_every_field() {
    let config = parse(FULL).expect("valid file");
    let net = |text: &str| text.parse::<Network>().unwrap();
    let hook = |text: &str| vec![text.parse::<HookUrl>().unwrap()];
    let default_policy = AccessPolicy {
        publish: Rule {
            keys: vec!["pk1".into(), "pk2".into()],
            allow: vec![net("10.0.0.0/8"), net("192.0.2.7/32")],
            deny: vec![net("10.9.0.0/16")],
        },
        play: Rule {
            keys: vec![],
            allow: vec![],
            deny: vec![net("2001:db8::/32")],
        },
        hooks: HookUrls {
            on_connect: hook("http://127.0.0.1:9000/connect"),
            on_publish: [
                hook("http://auth.local/publish"),
                hook("https://auth2.local:8443/publish?s=1"),
            ]
            .concat(),
            on_play: vec![],
            on_publish_done: hook("http://127.0.0.1:9000/done"),
            on_play_done: vec![],
            on_done: hook("http://127.0.0.1:9000/any_done"),
            on_update: hook("http://127.0.0.1:9000/update"),
            on_close: hook("http://127.0.0.1:9000/close"),
            on_record_done: hook("http://127.0.0.1:9000/recorded"),
        },
        hook_format: HookFormat::Nginx,
    };
    let record = RecordSettings {
        enabled: true,
        path: "/srv/rec/{app}/{stream}-{start:%Y%m%d-%H%M%S}.mp4"
            .parse()
            .unwrap(),
        format: RecordFormat::Mp4,
        max_duration: Duration::from_secs(600),
        max_bytes: 1 << 30,
    };
    let expected = Config {
        listen: vec![
            "127.0.0.1:1936".parse().unwrap(),
            "[::1]:1936".parse().unwrap(),
        ],
        shards: Some(3),
        cpus: Some(vec![0, 2, 3]),
        chunk_size: 8192,
        connections_max: 500,
        connections_per_ip_max: 20,
        publishers_max: 10,
        streams_max: 40,
        limits: ProtocolLimits {
            message_size_max: 1_048_576,
            partial_bytes_max: 2_097_152,
            chunk_streams_max: 16,
            streams_per_connection_max: 4,
        },
        stream: StreamConfig {
            gop_cache_bytes_max: 1_000_000,
            gop_cache_duration_max: Duration::from_millis(4000),
            takeover: Takeover::Replace,
            timestamp_correction: false,
        },
        app_streams: BTreeMap::from([(
            "news".to_owned(),
            StreamConfig {
                gop_cache_bytes_max: 0,
                gop_cache_duration_max: Duration::from_millis(4000),
                takeover: Takeover::Replace,
                timestamp_correction: false,
            },
        )]),
        player: PlayerConfig {
            queue_bytes_max: 3_000_000,
            slow_disconnect_after: Duration::from_millis(2500),
            write_batch_bytes_max: 65_536,
            write_window: Duration::from_millis(100),
        },
        http: HttpConfig {
            listen: vec!["127.0.0.1:8081".parse().unwrap()],
            allow_origin: "https://www.example.com".into(),
            player_page: Some("/player/".into()),
            play_wait: Duration::from_millis(2000),
        },
        hls: HlsConfig {
            enabled: false,
            apps: [("news".to_owned(), true)].into(),
            segment: Duration::from_millis(4000),
            part: Duration::from_millis(500),
            segments: 8,
            idle: Duration::from_millis(20000),
            blocked_per_ip_max: 64,
        },
        record: RecordConfig {
            default: record.clone(),
            apps: BTreeMap::from([(
                "news".to_owned(),
                RecordSettings {
                    enabled: false,
                    path: "/srv/news/{stream}.flv".parse().unwrap(),
                    format: RecordFormat::Flv,
                    ..record
                },
            )]),
        },
        exec_publish: [("news".to_owned(), news_exec())].into(),
        tls: TlsConfig::default(),
        timeouts: Timeouts {
            handshake: Duration::from_millis(1500),
            idle: Duration::from_secs(30),
            shutdown: Duration::from_millis(250),
        },
        relay: RelayConfig {
            origins: vec![url("rtmp://o1:1936"), url("rtmp://o2/live")],
            push: vec![url("rtmp://backup/live/{name}")],
            apps: BTreeMap::from([(
                "news".to_owned(),
                AppRelay {
                    origins: Some(vec![url("rtmp://o3/master")]),
                    push: Some(vec![]),
                },
            )]),
            timing: RelayTiming {
                idle_stop: Duration::from_millis(2000),
                connect_timeout: Duration::from_millis(1000),
                backoff_max: Duration::from_millis(4000),
                ping: Duration::from_millis(2500),
            },
            pulls_max: 100,
            pulls_per_connection_max: 3,
        },
        access: AccessConfig {
            default: default_policy.clone(),
            apps: BTreeMap::from([(
                "news".to_owned(),
                AccessPolicy {
                    publish: Rule {
                        keys: vec!["newsroom".into()],
                        ..default_policy.publish.clone()
                    },
                    hooks: HookUrls {
                        on_publish: vec![],
                        ..default_policy.hooks.clone()
                    },
                    hook_format: HookFormat::Srs,
                    ..default_policy.clone()
                },
            )]),
            hook_timeout: Duration::from_millis(500),
            hook_fail_open: true,
            update_interval: Duration::from_secs(10),
        },
        admin: Some("[::1]:9090".parse().unwrap()),
        admin_origins: vec!["https://dash.example.com".into()],
        admin_token: None,
        metrics_streams_max: 500,
        drain: DrainConfig {
            wait: Duration::from_secs(30),
            redirect: Some(url("rtmp://edge2.example:1936/live")),
        },
        log_format: LogFormat::Json,
    };
    assert_eq!(config, expected);
}

fn url(text: &str) -> RtmpUrl {
    RtmpUrl::parse(text).unwrap()
}

#[test]
fn origins_and_push_targets_resolve_per_app() {
    let config = parse(FULL).expect("valid file");
    let relay = &config.relay;
    // Global origins: one for any app, one for "live" only.
    let live: Vec<String> = relay
        .origins_for("live")
        .iter()
        .map(|u| format!("{}/{}", u.host, u.path))
        .collect();
    assert_eq!(live, vec!["o1/live", "o2/live"]);
    let other: Vec<String> = relay
        .origins_for("other")
        .iter()
        .map(|u| format!("{}/{}", u.host, u.path))
        .collect();
    assert_eq!(other, vec!["o1/other"]);
    // An app with its own list, and its own (empty) push list.
    assert_eq!(relay.origins_for("news")[0].path, "master");
    assert!(relay.push_for("news").is_empty());
    assert_eq!(
        relay.push_for("live")[0].stream().as_deref(),
        Some("{name}")
    );
}

#[test]
fn a_bad_origin_url_in_the_file_is_named() {
    let err = parse_err("[app.live]\norigins = [\"rtmp//nope\"]\n");
    assert!(err.contains("app.live.origins"), "{err}");
    assert!(err.contains("rtmp//nope"), "{err}");
}

#[test]
fn the_example_in_the_module_doc_parses_and_shows_the_defaults() {
    let source = include_str!("../mod.rs");
    let example: String = source
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .skip_while(|line| line.trim() != "```toml")
        .skip(1)
        .take_while(|line| line.trim() != "```")
        .map(|line| format!("{}\n", line.strip_prefix(' ').unwrap_or(line)))
        .collect();
    assert!(
        example.contains("[timeouts]"),
        "found the example:\n{example}"
    );
    let config = parse(&example).expect("the documented example is valid");
    let expected = Config {
        listen: vec![
            "0.0.0.0:1935".parse().unwrap(),
            "[::]:1935".parse().unwrap(),
        ],
        shards: Some(4),
        cpus: Some(vec![0, 2, 3]),
        ..Config::default()
    };
    assert_eq!(config, expected);
}

#[test]
fn empty_file_is_the_defaults() {
    assert_eq!(parse("").expect("valid"), Config::default());
}

#[test]
fn partial_file_keeps_defaults_for_missing_keys() {
    let config = parse("chunk_size = 1024\n[stream]\ntakeover = \"replace\"\n").unwrap();
    let expected = Config {
        chunk_size: 1024,
        stream: StreamConfig {
            takeover: Takeover::Replace,
            ..StreamConfig::default()
        },
        ..Config::default()
    };
    assert_eq!(config, expected);
}

#[test]
fn unknown_top_level_key_is_named_with_the_file() {
    let message = parse_err("chunk_size = 1024\nchunksize = 4096\n");
    assert!(message.contains("test.toml"), "{message}");
    assert!(message.contains("unknown field `chunksize`"), "{message}");
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn unknown_key_in_a_section_is_named() {
    let message = parse_err("[player]\nqueue_bytes = 5\n");
    assert!(message.contains("unknown field `queue_bytes`"), "{message}");
    assert!(
        message.contains("queue_bytes_max"),
        "lists the valid keys: {message}"
    );
}

#[test]
fn unknown_section_is_named() {
    let message = parse_err("[relays]\norigins = [\"x\"]\n");
    assert!(message.contains("unknown field `relays`"), "{message}");
}

#[test]
fn syntax_error_shows_file_and_position() {
    let message = parse_err("chunk_size = \n");
    assert!(
        message.starts_with("cannot parse config file test.toml: "),
        "{message}"
    );
    assert!(message.contains("line 1"), "{message}");
}

#[test]
fn out_of_range_values_name_key_value_and_range() {
    let cases = [
        (
            "chunk_size = 0",
            "chunk_size = 0 is out of range 128..=16777215",
        ),
        (
            "chunk_size = 16777216",
            "chunk_size = 16777216 is out of range 128..=16777215",
        ),
        ("shards = 0", "shards = 0 is out of range 1..=1024"),
        (
            "[player]\nwrite_window_ms = 501",
            "player.write_window_ms = 501 is out of range 0..=500",
        ),
        (
            "connections_max = -5",
            "connections_max = -5 is out of range 1..=16777216",
        ),
        (
            "[limits]\nmessage_size_max = 99999999",
            "limits.message_size_max = 99999999 is out of range 4096..=16777215",
        ),
        (
            "[limits]\nchunk_streams_max = 7",
            "limits.chunk_streams_max = 7 is out of range 8..=65598",
        ),
        (
            "[stream]\ngop_cache_bytes_max = -1",
            "stream.gop_cache_bytes_max = -1 is out of range 0..=1073741824",
        ),
        (
            "[timeouts]\nidle_ms = 0",
            "timeouts.idle_ms = 0 is out of range 1..=86400000",
        ),
        (
            "[player]\nslow_disconnect_ms = 86400001",
            "player.slow_disconnect_ms = 86400001 is out of range 1..=86400000",
        ),
        (
            "[relay]\npulls_max = 0",
            "relay.pulls_max = 0 is out of range 1..=1048576",
        ),
        (
            "[relay]\npulls_per_connection_max = 0",
            "relay.pulls_per_connection_max = 0 is out of range 1..=1048576",
        ),
        (
            "[relay]\nping_ms = 0",
            "relay.ping_ms = 0 is out of range 1..=86400000",
        ),
        ("drain_ms = 0", "drain_ms = 0 is out of range 1..=600000"),
        (
            "drain_ms = 600001",
            "drain_ms = 600001 is out of range 1..=600000",
        ),
        (
            "metrics_streams_max = 10001",
            "metrics_streams_max = 10001 is out of range 0..=10000",
        ),
    ];
    for (text, expected) in cases {
        let message = parse_err(text);
        assert_eq!(
            message,
            format!("invalid config file test.toml: {expected}"),
            "{text}"
        );
    }
}

#[test]
fn relations_between_keys_are_checked() {
    let cases = [
        (
            "[limits]\nmessage_size_max = 65536\npartial_bytes_max = 65535",
            "limits.partial_bytes_max = 65535 must be at least limits.message_size_max (65536)",
        ),
        (
            "[relay]\npulls_max = 4\npulls_per_connection_max = 5",
            "relay.pulls_per_connection_max = 5 must be at most relay.pulls_max (4)",
        ),
        (
            "[player]\nqueue_bytes_max = 4194304",
            "stream.gop_cache_bytes_max = 4194304 must be less than \
             player.queue_bytes_max (4194304)",
        ),
        (
            "[stream]\ngop_cache_bytes_max = 16777216",
            "stream.gop_cache_bytes_max = 16777216 must be less than \
             player.queue_bytes_max (8388608)",
        ),
        (
            "[app.big.stream]\ngop_cache_bytes_max = 16777216",
            "app.big.stream.gop_cache_bytes_max = 16777216 must be less than \
             player.queue_bytes_max (8388608)",
        ),
        (
            "[player]\nqueue_bytes_max = 5000000\nwrite_batch_bytes_max = 5000001",
            "player.write_batch_bytes_max = 5000001 must be at most \
             player.queue_bytes_max (5000000)",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            parse_err(text),
            format!("invalid config file test.toml: {expected}")
        );
    }
}

#[test]
fn bad_takeover_value_names_the_choices() {
    let message = parse_err("[stream]\ntakeover = \"kick\"\n");
    assert!(message.contains("unknown variant `kick`"), "{message}");
    assert!(
        message.contains("`reject`") && message.contains("`replace`"),
        "{message}"
    );
}

#[test]
fn a_bad_log_format_names_the_key_and_the_choices() {
    let message = parse_err("log_format = \"xml\"\n");
    for part in [
        "log_format = \"xml\"",
        "unknown variant `xml`",
        "`text`",
        "`json`",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    assert_eq!("json".parse(), Ok(LogFormat::Json));
    let flag = "xml".parse::<LogFormat>().unwrap_err().to_string();
    assert_eq!(flag, "unknown variant `xml`, expected `text` or `json`");
}

#[test]
fn wrong_types_and_bad_addresses_are_parse_errors() {
    assert!(parse_err("chunk_size = \"big\"").contains("chunk_size"));
    assert!(parse_err("listen = [\"localhost:1935\"]").contains("invalid socket address"));
    assert!(parse_err("[stream]\ntimestamp_correction = 1").contains("timestamp_correction"));
}

#[test]
fn listen_must_be_non_empty_and_without_duplicates() {
    let message = parse_err("listen = []");
    assert!(
        message.ends_with("listen = [] must list at least one address"),
        "{message}"
    );
    let message = parse_err("listen = [\"0.0.0.0:1935\", \"0.0.0.0:1935\"]");
    assert!(
        message.ends_with("lists 0.0.0.0:1935 more than once"),
        "{message}"
    );
    // Both families on one port is the point of IPV6_V6ONLY.
    parse("listen = [\"0.0.0.0:1935\", \"[::]:1935\"]").expect("valid");
}

#[test]
fn cpus_in_the_file_are_parsed_and_named_on_error() {
    assert_eq!(
        parse("cpus = \"1, 3-4\"").unwrap().cpus,
        Some(vec![1, 3, 4])
    );
    let message = parse_err("cpus = \"3-1\"");
    assert_eq!(
        message,
        "invalid config file test.toml: cpus = \"3-1\" is not a CPU list: \
         range 3-1 is reversed; write 1-3"
    );
}

#[test]
fn validate_catches_what_only_code_can_build() {
    let mut config = Config {
        cpus: Some(vec![1, 1]),
        ..Config::default()
    };
    assert_eq!(
        config.validate().unwrap_err().rule,
        "lists CPU 1 more than once"
    );
    config.cpus = Some(vec![1024]);
    assert_eq!(
        config.validate().unwrap_err().rule,
        "names CPU 1024, above 1023"
    );
    config.cpus = Some(vec![]);
    assert_eq!(config.validate().unwrap_err().key, "cpus");
    config.cpus = None;
    config.timeouts.handshake = Duration::from_micros(500);
    let invalid = config.validate().unwrap_err();
    assert_eq!(
        invalid.to_string(),
        "timeouts.handshake_ms = 0 is out of range 1..=86400000"
    );
}

#[test]
fn load_without_file_or_flags_is_the_defaults() {
    let config = Config::load(None, &Overrides::default()).unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn load_applies_defaults_then_file_then_flags() {
    let file = TempFile::new("chunk_size = 8192\nshards = 2\n[timeouts]\nidle_ms = 5000\n");
    let overrides = Overrides {
        listen: vec!["127.0.0.1:1940".parse().unwrap()],
        chunk_size: Some(1024),
        ..Overrides::default()
    };
    let config = Config::load(Some(file.path()), &overrides).unwrap();
    assert_eq!(config.chunk_size, 1024, "flag beats file");
    assert_eq!(config.shards, Some(2), "file beats default");
    assert_eq!(
        config.timeouts.idle,
        Duration::from_secs(5),
        "file beats default"
    );
    assert_eq!(config.listen, overrides.listen, "flag beats default");
    assert_eq!(
        config.connections_max,
        limits::CONNECTIONS_MAX_DEFAULT,
        "default stays"
    );
}

#[test]
fn load_names_the_flag_that_is_out_of_range() {
    let overrides = Overrides {
        shards: Some(0),
        ..Overrides::default()
    };
    let err = Config::load(None, &overrides).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid --shards: shards = 0 is out of range 1..=1024"
    );
    let overrides = Overrides {
        cpus: Some(vec![2000]),
        ..Overrides::default()
    };
    let err = Config::load(None, &overrides).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid --cpus: cpus = \"2000\""),
        "{err}"
    );
}

#[test]
fn load_rejects_a_bad_file_even_when_a_flag_overrides_the_key() {
    let file = TempFile::new("chunk_size = 1\n");
    let overrides = Overrides {
        chunk_size: Some(4096),
        ..Overrides::default()
    };
    let err = Config::load(Some(file.path()), &overrides).unwrap_err();
    assert!(matches!(err, ConfigError::File { .. }), "{err}");
    assert!(
        err.to_string().contains(&file.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn load_names_a_missing_file() {
    let err = Config::load(
        Some(Path::new("/nonexistent/ringcast.toml")),
        &Overrides::default(),
    )
    .unwrap_err();
    let message = error_report(&err);
    assert!(
        message.starts_with("cannot read config file /nonexistent/ringcast.toml: "),
        "{message}"
    );
}
