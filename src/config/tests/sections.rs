//! CPU lists, printed configurations, the admin and access sections,
//! hook URLs in logs, rtmps:// relays and their CA, and error reports.

use super::*;

#[test]
fn cpu_lists_parse_ranges_and_drop_duplicates_in_order() {
    assert_eq!(parse_cpu_list("0,2-3"), Ok(vec![0, 2, 3]));
    assert_eq!(parse_cpu_list("5"), Ok(vec![5]));
    assert_eq!(parse_cpu_list(" 3 , 1-2 ,2"), Ok(vec![3, 1, 2]));
    assert_eq!(parse_cpu_list("4-4"), Ok(vec![4]));
    assert_eq!(parse_cpu_list("0-1023").map(|cpus| cpus.len()), Ok(1024));
}

#[test]
fn cpu_lists_reject_garbage_reversed_and_huge() {
    assert_eq!(parse_cpu_list(""), Err(CpuListError::Empty));
    assert_eq!(parse_cpu_list("a"), Err(CpuListError::NotACpu("a".into())));
    assert_eq!(
        parse_cpu_list("1,,2"),
        Err(CpuListError::NotACpu("".into()))
    );
    assert_eq!(
        parse_cpu_list("-1"),
        Err(CpuListError::NotACpu("-1".into()))
    );
    assert_eq!(
        parse_cpu_list("1-2-3"),
        Err(CpuListError::NotACpu("1-2-3".into()))
    );
    assert_eq!(
        parse_cpu_list("+1"),
        Err(CpuListError::NotACpu("+1".into()))
    );
    assert_eq!(
        parse_cpu_list("3-1"),
        Err(CpuListError::Reversed { low: 1, high: 3 })
    );
    assert_eq!(
        parse_cpu_list("0-4000000000"),
        Err(CpuListError::TooHigh("4000000000".into()))
    );
    assert_eq!(
        parse_cpu_list("1024"),
        Err(CpuListError::TooHigh("1024".into()))
    );
}

#[test]
fn cpu_lists_format_runs_as_ranges() {
    assert_eq!(format_cpu_list(&[0, 1, 2, 5]), "0-2,5");
    assert_eq!(format_cpu_list(&[3]), "3");
    assert_eq!(format_cpu_list(&[]), "");
    assert_eq!(format_cpu_list(&[4, 3]), "4,3");
    assert_eq!(
        parse_cpu_list(&format_cpu_list(&[0, 2, 3, 7])),
        Ok(vec![0, 2, 3, 7])
    );
}

#[test]
fn printed_configs_read_back_the_same() {
    let off = Config {
        admin: None,
        cpus: Some(vec![3, 1]),
        ..Config::default()
    };
    for config in [Config::default(), parse(FULL).unwrap(), off] {
        let text = config.to_toml().expect("serializable");
        let back = parse(&text).unwrap_or_else(|e| panic!("{}\n{text}", error_report(&e)));
        assert_eq!(back, config, "{text}");
    }
}

#[test]
fn a_printed_config_shows_every_key_with_its_value() {
    let text = Config::default().to_toml().unwrap();
    for line in [
        "listen = [\"0.0.0.0:1935\"]",
        "chunk_size = 4096",
        "admin = \"127.0.0.1:1985\"",
        "http_listen = [\"0.0.0.0:8080\"]",
        "[http]",
        "allow_origin = \"*\"",
        "player_page = \"/\"",
        "play_wait_ms = 5000",
        "[stream]",
        "takeover = \"reject\"",
        "gop_cache_duration_ms_max = 10000",
        "[timeouts]",
        "idle_ms = 60000",
        "[relay]",
        "origins = []",
        "pulls_max = 512",
        "pulls_per_connection_max = 8",
        "ping_ms = 5000",
        "drain_ms = 10000",
        "log_format = \"text\"",
        "metrics_streams_max = 100",
        "hook_format = \"ringcast\"",
        "on_publish = []",
        "on_update = []",
        "on_close = []",
        "update_interval_ms = 30000",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(
        !text.contains("shards"),
        "automatic shards are left out:\n{text}"
    );
    let off = Config {
        admin: None,
        ..Config::default()
    };
    assert!(off.to_toml().unwrap().contains("admin = \"off\"\n"));
}

#[test]
fn the_drain_redirect_is_an_rtmp_url_with_a_port_and_prints_back() {
    let config = parse("drain_redirect = \"rtmp://edge2.example\"").unwrap();
    let redirect = config.drain.redirect.as_ref().expect("set");
    assert_eq!(
        (redirect.host.as_str(), redirect.port),
        ("edge2.example", 1935)
    );
    assert!(redirect.path.is_empty(), "no app: each publisher's own");
    let text = config.to_toml().unwrap();
    assert!(
        text.contains("drain_redirect = \"rtmp://edge2.example:1935\"\n"),
        "{text}"
    );
    assert_eq!(Config::default().drain.redirect, None);
    for (text, expected) in [
        (
            "drain_redirect = \"http://edge2/live\"",
            "drain_redirect = \"http://edge2/live\" is not an RTMP URL",
        ),
        (
            "drain_redirect = \"rtmp:///live\"",
            "drain_redirect = \"rtmp:///live\" is not an RTMP URL",
        ),
        (
            "drain_redirect = \"rtmp://edge2:0/live\"",
            "drain_redirect = \"rtmp://edge2:0/live\" must name a port publishers can connect to, not 0",
        ),
    ] {
        let message = parse_err(text);
        assert!(message.contains(expected), "{text}: {message}");
    }
}

#[test]
fn admin_in_the_file_is_an_address_or_off() {
    assert_eq!(parse("admin = \"off\"").unwrap().admin, None);
    assert_eq!(
        parse("admin = \"0.0.0.0:9000\"").unwrap().admin,
        Some("0.0.0.0:9000".parse().unwrap())
    );
    assert_eq!(
        parse_err("admin = \"localhost:8080\""),
        "invalid config file test.toml: admin = \"localhost:8080\" is not an address like \
         \"127.0.0.1:8080\" or \"[::1]:8080\", nor \"off\""
    );
    let message = parse_err("listen = [\"127.0.0.1:1985\"]");
    assert!(
        message.ends_with(
            "uses the port of listen address 127.0.0.1:1985; give the admin API a port of its own"
        ),
        "{message}"
    );
    let message = parse_err("http_listen = [\"127.0.0.1:1985\"]");
    assert!(
        message.ends_with(
            "uses the port of http_listen address 127.0.0.1:1985; give the admin API a port of \
             its own"
        ),
        "{message}"
    );
    // Other families or other addresses on one port do not clash.
    parse("listen = [\"127.0.0.2:9000\"]\nadmin = \"[::1]:9000\"").expect("valid");
}

#[test]
fn http_players_get_a_port_of_their_own_and_checked_settings() {
    assert_eq!(parse("http_listen = []").unwrap().http.listen, vec![]);
    let message = parse_err("listen = [\"0.0.0.0:8080\"]");
    assert!(
        message.ends_with(
            "http_listen = \"0.0.0.0:8080\" uses the port of listen address 0.0.0.0:8080; give \
             HTTP players a port of their own"
        ),
        "{message}"
    );
    for (text, key) in [
        ("allow_origin = \"example.com\"", "http.allow_origin"),
        ("player_page = \"player\"", "http.player_page"),
        ("player_page = \"/a/../b/\"", "http.player_page"),
        ("player_page = \"/a b/\"", "http.player_page"),
        ("play_wait_ms = 60001", "http.play_wait_ms"),
    ] {
        let message = parse_err(&format!("[http]\n{text}"));
        assert!(message.contains(&format!("{key} = ")), "{text}: {message}");
    }
    let http = parse("[http]\nallow_origin = \"https://a.example\"\nplayer_page = \"off\"")
        .unwrap()
        .http;
    assert_eq!(http.allow_origin, "https://a.example");
    assert_eq!(http.player_page, None);
}

#[test]
fn access_settings_resolve_per_app_over_the_default() {
    let config = parse(FULL).unwrap();
    assert_eq!(config.access.policy("live").publish.keys, ["pk1", "pk2"]);
    let news = config.access.policy("news");
    assert_eq!(news.publish.keys, ["newsroom"]);
    assert_eq!(news.publish.deny, config.access.default.publish.deny);
    assert_eq!(
        news.hooks.on_publish,
        [],
        "\"\" turns a hook off for the app"
    );
    assert_eq!(news.hooks.on_connect.len(), 1, "other hooks are inherited");
    assert_eq!(
        news.hooks.on_publish_done,
        config.access.default.hooks.on_publish_done
    );
    assert_eq!(config.stream_for("news").gop_cache_bytes_max, 0);
    assert_eq!(config.stream_for("live").gop_cache_bytes_max, 1_000_000);
}

#[test]
fn bad_access_values_name_their_key() {
    let message = parse_err("[access]\nhook_format = \"wowza\"");
    assert!(
        message.contains("hook_format = \"wowza\"")
            && message.contains("expected one of `ringcast`, `srs`, `nginx`"),
        "{message}"
    );
    let cases = [
        (
            "[access]\npublish_allow = [\"10.0.0.0/33\"]",
            "access.publish_allow = \"10.0.0.0/33\" is not an address or a block like 10.0.0.0/8",
        ),
        (
            "[app.tv.access]\nplay_deny = [\"example.com\"]",
            "app.tv.access.play_deny = \"example.com\" is not an address or a block like 10.0.0.0/8",
        ),
        (
            "[access]\non_publish = [\"http://a/p\", \"ftp://auth/p\"]",
            "access.on_publish = \"ftp://auth/p\" is not an http[s]://host[:port]/path URL",
        ),
        (
            "[access]\non_play = \"/relative\"",
            "access.on_play = \"/relative\" is not an http[s]://host[:port]/path URL",
        ),
        (
            "[app.tv.access]\non_close = [\"http://h/1\", \"http://h/2\", \"http://h/3\", \
             \"http://h/4\", \"http://h/5\", \"http://h/6\", \"http://h/7\", \"http://h/8\", \
             \"http://h/9\"]",
            "app.tv.access.on_close = 9 URLs lists more than 8 URLs",
        ),
        (
            "[access]\nupdate_interval_ms = 999",
            "access.update_interval_ms = 999 is out of range 1000..=86400000",
        ),
        (
            "[app.tv.access]\nupdate_interval_ms = 5000",
            "app.tv.access.update_interval_ms = 5000 is server-wide: set it in [access], not per app",
        ),
        (
            "[access]\nhook_timeout_ms = 0",
            "access.hook_timeout_ms = 0 is out of range 1..=60000",
        ),
        (
            "[app.tv.access]\nhook_fail_open = true",
            "app.tv.access.hook_fail_open = true is server-wide: set it in [access], not per app",
        ),
        (
            "[access]\nplay_keys = [\"a&b\"]",
            "access.play_keys = \"a&b\" is not a key a client can send: 1 to 1024 bytes \
             without &, ? or /",
        ),
        (
            "connections_per_ip_max = -1",
            "connections_per_ip_max = -1 is out of range 0..=16777216",
        ),
        (
            "[app.tv.stream]\ngop_cache_duration_ms_max = 600001",
            "app.tv.stream.gop_cache_duration_ms_max = 600001 is out of range 0..=600000",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            parse_err(text),
            format!("invalid config file test.toml: {expected}"),
            "{text}"
        );
    }
}

#[test]
fn record_settings_resolve_per_app_over_the_default() {
    let config = parse(FULL).unwrap();
    let live = config.record.for_app("live");
    assert!(live.enabled);
    assert_eq!(live.format, RecordFormat::Mp4);
    let news = config.record.for_app("news");
    assert!(!news.enabled);
    assert_eq!(news.format, RecordFormat::Flv);
    assert_eq!(
        news.max_duration,
        Duration::from_secs(600),
        "unset keys come from [record]"
    );
    let defaults = parse("").unwrap();
    let record = defaults.record.for_app("live");
    assert!(!record.enabled, "nothing is recorded unless asked");
    assert_eq!(
        (record.format, record.max_duration, record.max_bytes),
        (RecordFormat::Flv, Duration::ZERO, 0)
    );
    let text = defaults.to_toml().unwrap();
    for line in [
        "[record]",
        "enabled = false",
        "path = \"/var/lib/ringcast/{app}/{stream}-{start:%Y%m%dT%H%M%S}.flv\"",
        "format = \"flv\"",
        "max_duration_ms = 0",
        "max_bytes = 0",
        "on_record_done = []",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
}

#[test]
fn bad_record_values_name_their_key_and_the_rule() {
    let cases = [
        (
            "[record]\nmax_duration_ms = 500",
            "record.max_duration_ms = 500 must be 0 (no limit) or at least 1000",
        ),
        (
            "[app.tv.record]\nmax_bytes = 1000",
            "app.tv.record.max_bytes = 1000 must be 0 (no limit) or at least 262144",
        ),
        (
            "[record]\nmax_bytes = -1",
            "record.max_bytes = -1 is out of range 0..=1099511627776",
        ),
        (
            "[record]\nformat = \"mp4\"",
            "record.path = \"/var/lib/ringcast/{app}/{stream}-{start:%Y%m%dT%H%M%S}.flv\" \
             names .flv files, but record.format is \"mp4\": end it in .mp4",
        ),
        (
            "[app.tv.record]\npath = \"/rec/{who}.flv\"",
            "app.tv.record.path = \"/rec/{who}.flv\" has an unknown placeholder {who}: \
             they are {app}, {stream}, {start:FORMAT}",
        ),
        (
            "[access]\non_record_done = \"ftp://x/\"",
            "access.on_record_done = \"ftp://x/\" is not an http[s]://host[:port]/path URL",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            parse_err(text),
            format!("invalid config file test.toml: {expected}"),
            "{text}"
        );
    }
    let err = parse_err("[record]\nformat = \"avi\"");
    assert!(err.contains("unknown variant `avi`"), "{err}");
}

#[test]
fn exec_publish_is_per_app_and_its_errors_name_the_app_s_key() {
    let config = parse(FULL).unwrap();
    let news = config.exec_for("news").expect("news runs a program");
    let values = ExecValues {
        app: "news",
        name: "cam",
        args: "",
        port: 1936,
    };
    assert_eq!(
        news.argv(&values)[..3],
        ["ffmpeg", "-i", "rtmp://127.0.0.1:1936/news/cam"]
    );
    assert_eq!(config.exec_for("live"), None, "no app runs one by default");
    let cases = [
        (
            "[app.tv]\nexec_publish = []",
            "app.tv.exec_publish = [] must name a program, as [\"ffmpeg\", \"-i\", \
             \"rtmp://127.0.0.1:{port}/{app}/{name}\", …]",
        ),
        (
            "[app.tv]\nexec_publish = [\"ffmpeg\", \"-i\", \"rtmp://h/{app}/{key}\"]",
            "app.tv.exec_publish = \"rtmp://h/{app}/{key}\" has an unknown placeholder {key}: \
             the placeholders are {app}, {name}, {args} and {port} ({{ and }} write a brace)",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            parse_err(text),
            format!("invalid config file test.toml: {expected}"),
            "{text}"
        );
    }
    assert!(
        parse_err("exec_publish = [\"ffmpeg\"]").contains("unknown field `exec_publish`"),
        "per app only: a server-wide one would run for every app, copies included"
    );
}

#[test]
fn networks_take_blocks_and_single_addresses() {
    let block: Network = "10.1.2.3/8".parse().unwrap();
    assert_eq!(block.to_string(), "10.0.0.0/8");
    assert!(block.contains("10.200.0.1".parse().unwrap()));
    assert!(!block.contains("11.0.0.1".parse().unwrap()));
    assert!(
        block.contains("::ffff:10.0.0.1".parse().unwrap()),
        "IPv4-mapped peers"
    );
    let one: Network = "2001:db8::1".parse().unwrap();
    assert_eq!(one.to_string(), "2001:db8::1/128");
    assert!(one.contains("2001:db8::1".parse().unwrap()));
    assert!(!one.contains("2001:db8::2".parse().unwrap()));
}

#[test]
fn the_admin_token_comes_from_its_file_by_key_or_flag_and_prints_as_the_path() {
    let token = TempFile::new("0123456789abcdef0123\n");
    let path = token.path().display().to_string();
    let from_file = parse(&format!("admin_token_file = {path:?}")).unwrap();
    let read = from_file.admin_token.as_ref().expect("a token");
    assert!(read.matches(b"0123456789abcdef0123"));
    let text = from_file.to_toml().unwrap();
    assert!(
        text.lines()
            .any(|l| l == format!("admin_token_file = {path:?}")),
        "{text}"
    );
    assert!(
        !text.contains("0123456789abcdef0123"),
        "never the token: {text}"
    );
    assert_eq!(parse(&text).unwrap(), from_file, "reads back the same");
    let overrides = Overrides {
        admin_token_file: Some(token.path().to_path_buf()),
        ..Overrides::default()
    };
    let from_flag = Config::load(None, &overrides).unwrap();
    assert_eq!(from_flag.admin_token, from_file.admin_token);
    assert_eq!(Config::default().admin_token, None);
}

#[test]
fn an_unusable_admin_token_file_stops_startup_naming_it() {
    let empty = TempFile::new("\n");
    let path = empty.path().display().to_string();
    let message = parse_err(&format!("admin_token_file = {path:?}"));
    assert!(
        message.starts_with(&format!(
            "invalid config file test.toml: admin_token_file = {path:?} holds no token"
        )),
        "{message}"
    );
    let overrides = Overrides {
        admin_token_file: Some("/nonexistent/ringcast-admin-token".into()),
        ..Overrides::default()
    };
    let message = error_report(&Config::load(None, &overrides).unwrap_err());
    assert!(
        message.starts_with(
            "invalid --admin-token-file: admin_token_file = \"/nonexistent/ringcast-admin-token\" \
             cannot be read: "
        ),
        "{message}"
    );
}

#[test]
fn admin_origins_must_be_origins() {
    assert_eq!(parse("").unwrap().admin_origins, Vec::<String>::new());
    assert_eq!(
        parse_err("admin_origins = [\"https://dash.example.com/\"]"),
        "invalid config file test.toml: admin_origins = \"https://dash.example.com/\" is not an \
         origin like \"https://dashboard.example.com:8443\": a scheme, a host and an optional \
         port, no path or trailing slash"
    );
    let many: Vec<String> = (0..=crate::limits::ADMIN_ORIGINS_MAX)
        .map(|i| format!("\"https://d{i}.example\""))
        .collect();
    let message = parse_err(&format!("admin_origins = [{}]", many.join(", ")));
    assert!(message.ends_with("lists more than 16 origins"), "{message}");
}

#[test]
fn hook_urls_are_logged_without_their_query_or_userinfo() {
    let shown = |text: &str| text.parse::<HookUrl>().unwrap().redacted().to_string();
    assert_eq!(
        shown("http://auth.local:8000/on_publish?secret=s3cret"),
        "http://auth.local:8000/on_publish?****"
    );
    assert_eq!(
        shown("http://user:pass@auth.local/hook"),
        "http://auth.local/hook"
    );
    // The configured URL itself is kept whole for --print-config.
    let url = "http://auth.local/hook?secret=s3cret";
    assert_eq!(url.parse::<HookUrl>().unwrap().to_string(), url);
}

/// A CA certificate (PEM) as `[tls] ca_file` names it.
fn ca_pem() -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

#[test]
fn rtmps_relays_and_their_ca_file_print_and_read_back_the_same() {
    let ca = TempFile::new(&ca_pem());
    let ca_path = ca.path().display().to_string();
    let text = format!(
        r#"
[tls]
ca_file = {ca_path:?}

[relay]
origins = ["rtmps://origin.example.com/live", "rtmp://o2:1936"]
push = ["rtmps://live-api-s.facebook.com/rtmp/{{name}}"]

[app.news]
origins = ["rtmps://[::1]:8443/master"]
push = ["rtmps://127.0.0.1:1937/news/key"]
"#
    );
    let config = parse(&text).unwrap();
    let relay_ca = config.tls.relay_ca.as_ref().expect("the CA loaded");
    assert_eq!(relay_ca.ca_file(), Some(ca.path()));
    let origins = config.relay.origins_for("live");
    let shown: Vec<(bool, &str, u16)> = (origins.iter())
        .map(|u| (u.tls, u.host.as_str(), u.port))
        .collect();
    assert_eq!(
        shown,
        vec![(true, "origin.example.com", 443), (false, "o2", 1936)]
    );
    assert!(config.relay.push_for("news")[0].tls);
    let printed = config.to_toml().unwrap();
    for line in [
        format!("ca_file = {ca_path:?}"),
        r#"origins = ["rtmps://origin.example.com:443/live", "rtmp://o2:1936"]"#.to_owned(),
        r#"push = ["rtmps://live-api-s.facebook.com:443/rtmp/{name}"]"#.to_owned(),
        r#"origins = ["rtmps://[::1]:8443/master"]"#.to_owned(),
        r#"push = ["rtmps://127.0.0.1:1937/news/key"]"#.to_owned(),
    ] {
        assert!(printed.lines().any(|l| l == line), "{line} in\n{printed}");
    }
    assert_eq!(parse(&printed).unwrap(), config, "{printed}");
    // check-config reads a printed file the same way.
    let file = TempFile::new(&printed);
    assert_eq!(Config::from_file(file.path()).unwrap(), config);
    // No CA: none printed, none read back.
    let plain = parse("[relay]\npush = [\"rtmps://a.example/live\"]").unwrap();
    let printed = plain.to_toml().unwrap();
    assert!(printed.lines().any(|l| l == "ca_file = \"\""), "{printed}");
    assert_eq!(parse(&printed).unwrap().tls.relay_ca, None);
}

#[test]
fn a_ca_file_that_holds_no_certificate_stops_startup_naming_the_key() {
    let garbage = TempFile::new("not a certificate\n");
    let path = garbage.path().display().to_string();
    let message = parse_err(&format!("[tls]\nca_file = {path:?}"));
    assert!(
        message.starts_with(&format!(
            "invalid config file test.toml: tls.ca_file = {path:?} no certificate found"
        )),
        "{message}"
    );
    let message = parse_err("[tls]\nca_file = \"/nonexistent/ringcast-ca.pem\"");
    assert!(message.contains("cannot be read"), "{message}");
}

#[test]
fn relay_urls_of_another_scheme_are_refused_naming_both_schemes() {
    let message = parse_err("[relay]\npush = [\"rtmpt://a.example/live\"]");
    assert!(message.contains("relay.push"), "{message}");
    assert!(
        message.ends_with("does not start with rtmp:// or rtmps://"),
        "{message}"
    );
}

#[test]
fn error_report_joins_the_chain_of_sources() {
    let err = ConfigError::Read {
        path: PathBuf::from("/etc/ringcast.toml"),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    };
    assert_eq!(
        error_report(&err),
        "cannot read config file /etc/ringcast.toml: entity not found"
    );
}
