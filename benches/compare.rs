//! ringcast against nginx-rtmp, and both against the cost floor, under the
//! same load, side by side in one run.
//!
//! For each player count, each server in turn is started on loopback pinned
//! to one CPU (nginx-rtmp: one worker, `chunk_size 4096`, `live on`;
//! ringcast: one shard; the floor: `ringcast bench-floor`, a plain `writev`
//! loop), and `ringcast bench` (in this process, its threads pinned to the
//! other CPUs) runs one publisher at 2500 kbit/s, 30 fps, 2 s GOP and the
//! players for the set duration. The table gives egress, players that got
//! every frame, latency and time to first frame, the server's CPU seconds
//! per delivered GB and peak RSS; results go to `target/compare/`.
//!
//! Installs nothing: needs `apt-get install nginx libnginx-mod-rtmp`.
//! `cargo bench --bench compare -- --players 100,500,1000,2000 --duration-s 30`
//! (the defaults); `--servers ringcast,nginx,floor`, `--server-cpu 0`,
//! `--load-cpus 1`, `--threads 1` change the setup.

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringcast::bench::report::Report;
use ringcast::bench::source::Shape;
use ringcast::bench::{self, BenchConfig};

const NGINX_RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

struct Options {
    players: Vec<usize>,
    duration: Duration,
    servers: Vec<String>,
    server_cpu: usize,
    load_cpus: Vec<usize>,
    threads: usize,
}

fn main() {
    let options = parse_args();
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/compare");
    fs::create_dir_all(&out).expect("create target/compare");
    let mut rows = Vec::new();
    for &players in &options.players {
        for server in &options.servers {
            eprintln!("== {server}, {players} players");
            let report = run_one(server, players, &options, &out);
            let name = format!("{server}-{players}");
            report
                .write_json(&out.join(format!("{name}.json")))
                .expect("write json");
            if server == "ringcast" && players == 1000 {
                report
                    .write_plot(&out.join(format!("{name}.svg")))
                    .expect("write plot");
            }
            rows.push((server.clone(), players, report));
        }
    }
    let table = table(&rows);
    print!("{table}");
    fs::write(out.join("table.md"), &table).expect("write table");
    eprintln!("results in {}", out.display());
}

fn parse_args() -> Options {
    let mut options = Options {
        players: vec![100, 500, 1000, 2000],
        duration: Duration::from_secs(30),
        servers: vec!["nginx".into(), "ringcast".into(), "floor".into()],
        server_cpu: 0,
        load_cpus: vec![1],
        threads: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        let list = |v: String| -> Vec<usize> {
            v.split(',')
                .map(|n| n.trim().parse().expect("a number"))
                .collect()
        };
        match arg.as_str() {
            "--players" => options.players = list(value()),
            "--duration-s" => {
                options.duration = Duration::from_secs_f64(value().parse().expect("seconds"))
            }
            "--servers" => options.servers = value().split(',').map(str::to_owned).collect(),
            "--server-cpu" => options.server_cpu = value().parse().expect("a cpu"),
            "--load-cpus" => options.load_cpus = list(value()),
            "--threads" => options.threads = value().parse().expect("a count"),
            // cargo bench passes --bench to harness=false benches.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    options
}

fn run_one(server: &str, players: usize, options: &Options, out: &Path) -> Report {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut child = start_server(server, addr, options.server_cpu, out);
    wait_until_listening(addr, &mut child);
    let config = BenchConfig {
        url: format!("rtmp://{addr}/live/compare"),
        players,
        // The floor generates the stream itself.
        publishers: usize::from(server != "floor"),
        duration: options.duration,
        ramp: Duration::from_secs(5).min(options.duration / 3),
        churn_per_s: 0.0,
        shape: shape(),
        flv: None,
        threads: options.threads,
        cpus: Some(options.load_cpus.clone()),
        warmup: Duration::from_secs(2),
        server_pid: Some(child.id()),
        publisher_reconnect: None,
        progress: true,
    };
    let report = bench::run(&config).expect("bench runs");
    stop(&mut child);
    report
}

fn shape() -> Shape {
    Shape {
        bitrate_kbps: 2500,
        fps: 30.0,
        gop_s: 2.0,
        audio_rate: 44_100,
    }
}

fn start_server(server: &str, addr: SocketAddr, cpu: usize, out: &Path) -> Child {
    let listen = addr.to_string();
    let mut command = match server {
        "ringcast" => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_ringcast"));
            c.args([
                "serve",
                "--listen",
                &listen,
                "--shards",
                "1",
                "--cpus",
                &cpu.to_string(),
                "--admin",
                "off",
            ]);
            c.env("RUST_LOG", "warn");
            c
        }
        "floor" => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_ringcast"));
            c.args(["bench-floor", "--listen", &listen]);
            c
        }
        "nginx" => {
            let conf = out.join("nginx.conf");
            fs::write(&conf, nginx_config(addr, out)).expect("write nginx.conf");
            assert!(
                Path::new(NGINX_RTMP_MODULE).exists(),
                "nginx-rtmp not found: apt-get install nginx libnginx-mod-rtmp"
            );
            let mut c = Command::new("nginx");
            c.args([
                "-c",
                &conf.display().to_string(),
                "-p",
                &out.display().to_string(),
            ]);
            c
        }
        other => panic!("unknown server {other} (ringcast, nginx, floor)"),
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    pin(&mut command, cpu);
    command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {server}: {e}"))
}

/// Pins the child to `cpu` before it runs anything.
fn pin(command: &mut Command, cpu: usize) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// One process (no master), one worker's worth of connections, the
/// settings the issue names.
fn nginx_config(addr: SocketAddr, out: &Path) -> String {
    format!(
        "load_module {NGINX_RTMP_MODULE};\n\
         daemon off;\nmaster_process off;\nworker_processes 1;\nworker_rlimit_nofile 20000;\n\
         error_log stderr warn;\npid {pid};\n\
         events {{ worker_connections 10000; }}\n\
         rtmp {{ server {{ listen {addr}; chunk_size 4096; application live {{ live on; }} }} }}\n",
        pid = out.join("nginx.pid").display()
    )
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound").port()
}

fn wait_until_listening(addr: SocketAddr, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited at startup: {status}");
        }
        assert!(Instant::now() < deadline, "server never listened on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(child: &mut Child) {
    // SAFETY: signalling the child this bench started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn table(rows: &[(String, usize, Report)]) -> String {
    let mut out = String::new();
    out += "| server | players | egress Mbit/s | got every frame | latency p50 / p99 ms | first frame p50 / p99 ms | CPU s per GB | × floor | peak RSS MiB |\n";
    out += "|---|---|---|---|---|---|---|---|---|\n";
    for (server, players, r) in rows {
        let cpu_per_gb = r.server.as_ref().and_then(|s| s.cpu_s_per_gb);
        let floor = rows
            .iter()
            .find(|(s, n, _)| s == "floor" && n == players)
            .and_then(|(_, _, f)| f.server.as_ref().and_then(|s| s.cpu_s_per_gb));
        let ratio = match (cpu_per_gb, floor) {
            (Some(v), Some(f)) if f > 0.0 => format!("{:.2}", v / f),
            _ => "n/a".into(),
        };
        let rss = r
            .server
            .as_ref()
            .map_or(0.0, |s| s.peak_rss_bytes as f64 / 1048576.0);
        let _ = writeln!(
            out,
            "| {server} | {players} | {:.0} | {} / {} | {:.1} / {:.1} | {:.0} / {:.0} | {} | {ratio} | {rss:.1} |",
            r.egress_mbps,
            r.players.complete,
            r.players.total,
            r.latency.p50_ms,
            r.latency.p99_ms,
            r.time_to_first_frame.p50_ms,
            r.time_to_first_frame.p99_ms,
            cpu_per_gb.map_or("n/a".into(), |v| format!("{v:.3}")),
        );
    }
    out
}
