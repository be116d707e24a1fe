//! `ringcast doctor`: checks the running kernel and process limits against
//! the tuning runbook (`tuning/README.md`) and says, for each finding, what
//! to change.
//!
//! Two halves: [`Facts::read`] gathers what the checks look at (files under
//! `/proc/sys`, `getrlimit`, an io_uring set up and probed, the CPU
//! affinity mask), and [`check`] is a pure function of those facts and the
//! [`Config`] that `serve` would run with, so every rule is unit-tested on
//! fixture values. A fact that cannot be read is reported as a warning,
//! never guessed.
//!
//! Levels: `fail` means `serve` would not start or would break under load
//! (the exit status is then 1), `warn` means it runs but below what the
//! runbook recommends, `ok` says what was found.

// Input from the environment is handled, never unwrapped (tests exempt).

use std::fmt;

use crate::config::{Config, format_cpu_list};
use crate::startup::{self, KERNEL_MIN, LISTEN_BACKLOG};

/// `net.core.somaxconn` and `net.ipv4.tcp_max_syn_backlog` below this
/// truncate the accept and SYN queues: a burst of reconnecting players (an
/// encoder restart, a load-balancer failover) then sees dropped SYNs and
/// one-second retransmit stalls. 4096 is the kernel default since 5.4.
pub const BACKLOG_MIN: u64 = 4096;

/// Largest send and receive buffer autotuning may grow to, at least. Why:
/// a socket needs bandwidth × RTT in flight: a 20 Mbit/s publisher 200 ms
/// away needs 500 KB, and keyframes arrive in bursts several times the
/// average; 4 MiB is also the kernel's default ceiling for `tcp_wmem`.
pub const TCP_BUFFER_MAX_MIN: u64 = 4 << 20;

/// Ephemeral ports, at least. Why: every pull from an origin and every
/// push is an outbound connection, and a host that also runs the load
/// generator or a local origin uses many more; 16 Ki ports is the kernel's
/// default range size less room for bursts of TIME_WAIT.
pub const LOCAL_PORTS_MIN: u64 = 16_384;

/// Locked memory one shard's rings take on kernels before 5.12, which
/// charge them to `RLIMIT_MEMLOCK`: 4096 submission entries of 64 bytes,
/// 8192 completions of 16 bytes and the index array, rounded up.
const RING_MEMLOCK_BYTES: u64 = 1 << 20;

/// io_uring operations the server submits: accept, read, write and writev
/// on sockets, connect for relays, close and cancel from tokio-uring.
const OPS_USED: &[(&str, u8)] = &[
    ("accept", io_uring::opcode::Accept::CODE),
    ("read", io_uring::opcode::Read::CODE),
    ("write", io_uring::opcode::Write::CODE),
    ("writev", io_uring::opcode::Writev::CODE),
    ("connect", io_uring::opcode::Connect::CODE),
    ("close", io_uring::opcode::Close::CODE),
    ("async_cancel", io_uring::opcode::AsyncCancel::CODE),
];

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One thing checked: what was found and, unless it is fine, the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    /// What was looked at: a sysctl name, "io_uring", "open files".
    pub subject: String,
    /// The value found and, when not ok, why it matters.
    pub detail: String,
    pub fix: Option<String>,
}

/// What the checks look at. `None`: could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// `kernel.osrelease`, e.g. `6.8.0-45-generic`.
    pub kernel: Option<String>,
    pub io_uring: IoUringFacts,
    /// `RLIMIT_NOFILE` (soft, hard); `u64::MAX` is unlimited.
    pub open_files: Option<(u64, u64)>,
    /// `RLIMIT_MEMLOCK` (soft, hard).
    pub memlock: Option<(u64, u64)>,
    /// `fs.nr_open`: the most a process's file limit can be raised to.
    pub nr_open: Option<u64>,
    /// `fs.file-max`: open files system-wide.
    pub file_max: Option<u64>,
    pub somaxconn: Option<u64>,
    pub tcp_max_syn_backlog: Option<u64>,
    /// `net.ipv4.tcp_wmem`: min, default, max.
    pub tcp_wmem: Option<[u64; 3]>,
    pub tcp_rmem: Option<[u64; 3]>,
    pub tcp_slow_start_after_idle: Option<u64>,
    /// `net.ipv4.ip_local_port_range`: first and last.
    pub local_port_range: Option<(u64, u64)>,
    /// `net.ipv4.ip_local_reserved_ports`, as the kernel lists it.
    pub reserved_ports: Option<String>,
    /// The CPUs this process may run on (its affinity mask).
    pub usable_cpus: Option<Vec<usize>>,
    /// `available_parallelism`, the shard count when the mask is unknown.
    pub parallelism: usize,
    /// `net.ipv4.tcp_available_ulp`: the upper-layer protocols the kernel
    /// offers (`tls` for kernel TLS).
    pub tcp_available_ulp: Option<String>,
}

/// Whether io_uring can be set up, and what the kernel offers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IoUringFacts {
    /// `kernel.io_uring_disabled` (Linux 6.6+; `None` before).
    pub disabled: Option<u32>,
    /// The errno of `io_uring_setup` when it failed (`Some(None)`: failed
    /// without one); `None` when a ring was set up.
    pub setup_error: Option<Option<i32>>,
    /// Feature flags the ring reported, by name.
    pub features: Vec<&'static str>,
    /// Operations in `OPS_USED` the kernel does not support; `None` when
    /// it could not be probed (before 5.6).
    pub ops_missing: Option<Vec<&'static str>>,
}

impl Facts {
    /// Reads everything from this machine and process.
    pub fn read() -> Facts {
        let sysctl = read_sysctl;
        let number = |name: &str| -> Option<u64> { sysctl(name)?.trim().parse().ok() };
        let disabled = number("kernel/io_uring_disabled").and_then(|v| u32::try_from(v).ok());
        Facts {
            kernel: sysctl("kernel/osrelease").map(|v| v.trim().to_owned()),
            io_uring: IoUringFacts::read(disabled),
            open_files: rlimit(libc::RLIMIT_NOFILE),
            memlock: rlimit(libc::RLIMIT_MEMLOCK),
            nr_open: number("fs/nr_open"),
            file_max: number("fs/file-max"),
            somaxconn: number("net/core/somaxconn"),
            tcp_max_syn_backlog: number("net/ipv4/tcp_max_syn_backlog"),
            tcp_wmem: sysctl("net/ipv4/tcp_wmem").and_then(|v| triple(&v)),
            tcp_rmem: sysctl("net/ipv4/tcp_rmem").and_then(|v| triple(&v)),
            tcp_slow_start_after_idle: number("net/ipv4/tcp_slow_start_after_idle"),
            local_port_range: sysctl("net/ipv4/ip_local_port_range").and_then(|v| pair(&v)),
            reserved_ports: sysctl("net/ipv4/ip_local_reserved_ports"),
            usable_cpus: startup::usable_cpus(),
            parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            tcp_available_ulp: sysctl("net/ipv4/tcp_available_ulp").map(|v| v.trim().to_owned()),
        }
    }
}

impl IoUringFacts {
    /// Sets up a small ring, notes its features and probes the operations
    /// the server uses.
    fn read(disabled: Option<u32>) -> IoUringFacts {
        let ring = match io_uring::IoUring::new(8) {
            Ok(ring) => ring,
            Err(err) => {
                return IoUringFacts {
                    disabled,
                    setup_error: Some(err.raw_os_error()),
                    ..IoUringFacts::default()
                };
            }
        };
        let params = ring.params();
        let features = [
            ("nodrop", params.is_feature_nodrop()),
            ("fast_poll", params.is_feature_fast_poll()),
            ("submit_stable", params.is_feature_submit_stable()),
            ("ext_arg", params.is_feature_ext_arg()),
            ("native_workers", params.is_feature_native_workers()),
            (
                "skip_cqe_on_success",
                params.is_feature_skip_cqe_on_success(),
            ),
        ];
        let mut probe = io_uring::Probe::new();
        let ops_missing = ring.submitter().register_probe(&mut probe).ok().map(|()| {
            OPS_USED
                .iter()
                .filter(|(_, code)| !probe.is_supported(*code))
                .map(|(name, _)| *name)
                .collect()
        });
        IoUringFacts {
            disabled,
            setup_error: None,
            features: features.iter().filter(|f| f.1).map(|f| f.0).collect(),
            ops_missing,
        }
    }
}

/// Reads the machine and checks it against `config`.
pub fn run(config: &Config) -> Vec<Finding> {
    check(&Facts::read(), config)
}

/// Every check, in the order of the runbook.
pub fn check(facts: &Facts, config: &Config) -> Vec<Finding> {
    let shards = shard_count(facts, config);
    vec![
        check_kernel(facts.kernel.as_deref()),
        check_io_uring(&facts.io_uring, facts.kernel.as_deref()),
        check_open_files(facts, startup::files_needed(config, shards)),
        check_file_max(facts.file_max, startup::files_needed(config, shards)),
        check_memlock(facts, shards),
        check_backlog("net.core.somaxconn", facts.somaxconn),
        check_backlog("net.ipv4.tcp_max_syn_backlog", facts.tcp_max_syn_backlog),
        check_buffer("net.ipv4.tcp_wmem", facts.tcp_wmem, "4096 16384 16777216"),
        check_buffer("net.ipv4.tcp_rmem", facts.tcp_rmem, "4096 131072 16777216"),
        check_slow_start(facts.tcp_slow_start_after_idle),
        check_port_range(facts, config),
        check_cpus(facts, config),
        check_kernel_tls(facts.tcp_available_ulp.as_deref(), config),
    ]
}

/// Says how TLS records are sealed: in userspace (rustls) here, whatever
/// the kernel offers, since handing the keys to kernel TLS is not built.
/// An operator learns whether the kernel could, and that nothing is
/// wrong either way.
fn check_kernel_tls(ulp: Option<&str>, config: &Config) -> Finding {
    const SUBJECT: &str = "kernel TLS";
    let tls_used = !config.tls.listen.is_empty() || !config.tls.http_listen.is_empty();
    let used = if tls_used {
        "TLS listeners seal records in userspace (rustls)"
    } else {
        "no TLS listener configured"
    };
    let offered = match ulp {
        None => return Finding::unreadable(SUBJECT),
        Some(ulp) if ulp.split_whitespace().any(|p| p == "tls") => {
            "offered by this kernel (tls in net.ipv4.tcp_available_ulp), not used by ringcast"
        }
        Some(_) => "not offered by this kernel (no tls in net.ipv4.tcp_available_ulp)",
    };
    Finding::ok(SUBJECT, format!("{offered}; {used}"))
}

/// The findings as printed: one line each, `fix:` on the next.
pub fn report(findings: &[Finding]) -> String {
    let mut out = String::new();
    for finding in findings {
        out.push_str(&finding.to_string());
        out.push('\n');
    }
    let count = |level| findings.iter().filter(|f| f.level == level).count();
    out.push_str(&format!(
        "{} ok, {} warn, {} fail\n",
        count(Level::Ok),
        count(Level::Warn),
        count(Level::Fail)
    ));
    out
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        })
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4}  {}: {}", self.level, self.subject, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n      fix: {fix}")?;
        }
        Ok(())
    }
}

impl Finding {
    fn ok(subject: &str, detail: String) -> Finding {
        Finding {
            level: Level::Ok,
            subject: subject.to_owned(),
            detail,
            fix: None,
        }
    }

    fn warn(subject: &str, detail: String, fix: String) -> Finding {
        Finding {
            level: Level::Warn,
            subject: subject.to_owned(),
            detail,
            fix: Some(fix),
        }
    }

    fn fail(subject: &str, detail: String, fix: String) -> Finding {
        Finding {
            level: Level::Fail,
            subject: subject.to_owned(),
            detail,
            fix: Some(fix),
        }
    }

    fn unreadable(subject: &str) -> Finding {
        Finding::warn(
            subject,
            "cannot be read here".into(),
            "check it by hand (a container may hide /proc/sys)".into(),
        )
    }
}

// ---------------------------------------------------------------------------
// The checks: pure functions of the facts
// ---------------------------------------------------------------------------

fn check_kernel(kernel: Option<&str>) -> Finding {
    let Some(release) = kernel else {
        return Finding::unreadable("kernel");
    };
    match startup::kernel_version(release) {
        Some(version) if version >= KERNEL_MIN => Finding::ok("kernel", release.to_owned()),
        _ => Finding::warn(
            "kernel",
            format!(
                "{release} is older than {}.{}, the oldest tokio-uring is known to work on",
                KERNEL_MIN.0, KERNEL_MIN.1
            ),
            "upgrade the kernel (6.1 LTS or later recommended)".into(),
        ),
    }
}

fn check_io_uring(io: &IoUringFacts, kernel: Option<&str>) -> Finding {
    const SUBJECT: &str = "io_uring";
    if let Some(errno) = io.setup_error {
        let message = startup::io_uring_error_message(io.disabled, errno, kernel);
        return Finding::fail(SUBJECT, "cannot be set up".into(), message);
    }
    if let Some(missing) = io.ops_missing.as_ref().filter(|m| !m.is_empty()) {
        return Finding::fail(
            SUBJECT,
            format!(
                "the kernel lacks operations the server uses: {}",
                missing.join(" ")
            ),
            "upgrade the kernel".into(),
        );
    }
    let has = |feature| io.features.contains(&feature);
    let features = io.features.join(" ");
    if !has("fast_poll") {
        return Finding::warn(
            SUBJECT,
            format!(
                "no FAST_POLL (features: {features}): every socket read that must wait \
                 is handed to an io-wq worker thread, costing a thread switch per read"
            ),
            "upgrade to Linux 5.7 or later".into(),
        );
    }
    if !has("nodrop") {
        return Finding::warn(
            SUBJECT,
            format!(
                "no NODROP (features: {features}): completions past the ring are lost \
                 under load, and the connections waiting for them hang"
            ),
            "upgrade to Linux 5.5 or later".into(),
        );
    }
    let probed = match io.ops_missing {
        Some(_) => "every operation used is supported",
        None => "operations not probed (IORING_REGISTER_PROBE needs 5.6)",
    };
    Finding::ok(
        SUBJECT,
        format!("available; features: {features}; {probed}"),
    )
}

fn check_open_files(facts: &Facts, needed: u64) -> Finding {
    const SUBJECT: &str = "open files (RLIMIT_NOFILE)";
    let Some((soft, hard)) = facts.open_files else {
        return Finding::unreadable(SUBJECT);
    };
    let fix = format!(
        "LimitNOFILE={needed} in the systemd unit (tuning/ringcast.service), or `ulimit -n \
         {needed}` as root, or `nofile` in /etc/security/limits.conf; or lower connections_max or \
         relay.pulls_max"
    );
    if hard < needed {
        let detail = format!(
            "hard limit {} < {needed} needed for connections_max, relay.pulls_max, listeners and rings: serve \
             will not start",
            show_limit(hard)
        );
        return Finding::fail(SUBJECT, detail, fix);
    }
    if let Some(nr_open) = facts.nr_open.filter(|&n| n < needed && soft < needed) {
        let detail =
            format!("fs.nr_open = {nr_open} < {needed} needed: the limit cannot be raised");
        return Finding::fail(SUBJECT, detail, format!("sysctl -w fs.nr_open={needed}"));
    }
    let raised = if soft < needed {
        format!(" (serve raises the soft limit {soft} to {needed})")
    } else {
        String::new()
    };
    let detail = format!(
        "soft {}, hard {}: enough for the {needed} needed{raised}",
        show_limit(soft),
        show_limit(hard)
    );
    Finding::ok(SUBJECT, detail)
}

fn check_file_max(file_max: Option<u64>, needed: u64) -> Finding {
    const SUBJECT: &str = "fs.file-max";
    match file_max {
        None => Finding::unreadable(SUBJECT),
        Some(max) if max < needed.saturating_mul(2) => Finding::warn(
            SUBJECT,
            format!("{max} (< twice the {needed} this server needs): other processes share it"),
            "sysctl -w fs.file-max=2097152, or install tuning/sysctl.conf".into(),
        ),
        Some(max) => Finding::ok(SUBJECT, max.to_string()),
    }
}

fn check_memlock(facts: &Facts, shards: usize) -> Finding {
    const SUBJECT: &str = "locked memory (RLIMIT_MEMLOCK)";
    let charged = facts
        .kernel
        .as_deref()
        .and_then(startup::kernel_version)
        .is_none_or(|version| version < (5, 12));
    let needed = RING_MEMLOCK_BYTES.saturating_mul(shards as u64);
    match facts.memlock {
        _ if !charged => Finding::ok(SUBJECT, "not used for rings since Linux 5.12".into()),
        None => Finding::unreadable(SUBJECT),
        Some((soft, _)) if soft < needed => Finding::warn(
            SUBJECT,
            format!(
                "{} bytes < {needed} for {shards} shards' rings: kernels before 5.12 charge \
                 rings to it, and a shard fails to start with ENOMEM",
                show_limit(soft)
            ),
            "LimitMEMLOCK=infinity in the systemd unit, or `ulimit -l unlimited`".into(),
        ),
        Some((soft, _)) => Finding::ok(SUBJECT, format!("{} bytes", show_limit(soft))),
    }
}

fn check_backlog(name: &str, value: Option<u64>) -> Finding {
    // Which queue the value caps, for the operator reading the finding.
    let caps = if name == "net.core.somaxconn" {
        format!("each shard's accept queue ({LISTEN_BACKLOG} asked)")
    } else {
        "the queue of half-open connections".to_owned()
    };
    match value {
        None => Finding::unreadable(name),
        Some(v) if v < BACKLOG_MIN => Finding::warn(
            name,
            format!(
                "{v} (< {BACKLOG_MIN}): caps {caps}; a burst of reconnecting players sees \
                 dropped SYNs and 1 s stalls"
            ),
            format!("sysctl -w {name}=8192, or install tuning/sysctl.conf"),
        ),
        Some(v) => Finding::ok(name, v.to_string()),
    }
}

fn check_buffer(name: &str, value: Option<[u64; 3]>, recommended: &str) -> Finding {
    match value {
        None => Finding::unreadable(name),
        Some([min, default, max]) if max < TCP_BUFFER_MAX_MIN => Finding::warn(
            name,
            format!(
                "{min} {default} {max}: max < {TCP_BUFFER_MAX_MIN}, so a distant player or \
                 publisher cannot keep a high bitrate in flight"
            ),
            format!("sysctl -w {name}='{recommended}', or install tuning/sysctl.conf"),
        ),
        Some([min, default, max]) => Finding::ok(name, format!("{min} {default} {max}")),
    }
}

fn check_slow_start(value: Option<u64>) -> Finding {
    const NAME: &str = "net.ipv4.tcp_slow_start_after_idle";
    match value {
        None => Finding::unreadable(NAME),
        Some(0) => Finding::ok(NAME, "0".into()),
        Some(v) => Finding::warn(
            NAME,
            format!(
                "{v}: a player's window shrinks during each gap between frames, so every \
                 keyframe burst starts slow and arrives late"
            ),
            format!("sysctl -w {NAME}=0, or install tuning/sysctl.conf"),
        ),
    }
}

fn check_port_range(facts: &Facts, config: &Config) -> Finding {
    const NAME: &str = "net.ipv4.ip_local_port_range";
    let Some((first, last)) = facts.local_port_range else {
        return Finding::unreadable(NAME);
    };
    let reserved = facts.reserved_ports.as_deref().unwrap_or_default();
    let ours = config
        .listen
        .iter()
        .chain(&config.http.listen)
        .chain(config.admin.iter())
        .map(|a| u64::from(a.port()));
    let exposed: Vec<String> = ours
        .filter(|&port| port != 0 && (first..=last).contains(&port))
        .filter(|&port| !port_listed(reserved, port))
        .map(|port| port.to_string())
        .collect();
    if !exposed.is_empty() {
        let ports = exposed.join(",");
        return Finding::warn(
            NAME,
            format!(
                "{first}-{last} includes port {ports} that ringcast listens on: an outbound \
                 connection may take it first and serve cannot bind after a restart"
            ),
            format!("sysctl -w net.ipv4.ip_local_reserved_ports={ports}"),
        );
    }
    let count = (last + 1).saturating_sub(first);
    if count < LOCAL_PORTS_MIN {
        return Finding::warn(
            NAME,
            format!(
                "{first}-{last}: {count} ports (< {LOCAL_PORTS_MIN}) for relays' outbound connections"
            ),
            format!("sysctl -w {NAME}='10240 65535', or install tuning/sysctl.conf"),
        );
    }
    Finding::ok(NAME, format!("{first}-{last}"))
}

fn check_cpus(facts: &Facts, config: &Config) -> Finding {
    const SUBJECT: &str = "cpus";
    let assignment = startup::assign_shards(
        facts.usable_cpus.as_deref(),
        facts.parallelism,
        config.cpus.as_deref(),
        config.shards,
    );
    let assignment = match assignment {
        Ok(assignment) => assignment,
        Err(err) => {
            return Finding::fail(SUBJECT, err.to_string(), "see tuning/README.md".into());
        }
    };
    let shards = assignment.cpus.len();
    let pinned: Vec<usize> = assignment.cpus.iter().flatten().copied().collect();
    if let Some(warning) = assignment.warning {
        let fix = "choose --shards and --cpus as tuning/README.md says".into();
        return Finding::warn(SUBJECT, warning, fix);
    }
    let usable = facts.usable_cpus.as_deref().unwrap_or_default();
    let mut detail = format!("{shards} shards on CPUs {}", format_cpu_list(&pinned));
    if !usable.is_empty() && pinned.len() >= usable.len() {
        // Not a warning: on a small or dedicated box this is right.
        detail.push_str(
            "; no CPU left for NIC interrupts and the control thread (see tuning/README.md)",
        );
    }
    Finding::ok(SUBJECT, detail)
}

// ---------------------------------------------------------------------------
// Reading the machine
// ---------------------------------------------------------------------------

/// Shards `serve` would run, as startup computes them.
fn shard_count(facts: &Facts, config: &Config) -> usize {
    startup::assign_shards(
        facts.usable_cpus.as_deref(),
        facts.parallelism,
        config.cpus.as_deref(),
        config.shards,
    )
    .map_or(1, |a| a.cpus.len().max(1))
}

/// `name` is a path under /proc/sys, like `net/core/somaxconn`.
fn read_sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{name}")).ok()
}

fn rlimit(resource: libc::__rlimit_resource_t) -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call's duration.
    (unsafe { libc::getrlimit(resource, &mut limit) } == 0)
        .then_some((limit.rlim_cur, limit.rlim_max))
}

fn show_limit(value: u64) -> String {
    if value == libc::RLIM_INFINITY {
        "unlimited".into()
    } else {
        value.to_string()
    }
}

fn triple(text: &str) -> Option<[u64; 3]> {
    let mut numbers = text.split_whitespace().map(|n| n.parse().ok());
    let values = [numbers.next()??, numbers.next()??, numbers.next()??];
    numbers.next().is_none().then_some(values)
}

fn pair(text: &str) -> Option<(u64, u64)> {
    let mut numbers = text.split_whitespace().map(|n| n.parse().ok());
    let values = (numbers.next()??, numbers.next()??);
    numbers.next().is_none().then_some(values)
}

/// Whether the kernel's port list (`1935,8000-8080`) includes `port`.
fn port_listed(list: &str, port: u64) -> bool {
    list.trim()
        .split(',')
        .filter(|item| !item.is_empty())
        .any(|item| {
            let item = item.trim();
            match item.split_once('-') {
                Some((low, high)) => match (low.parse::<u64>(), high.parse::<u64>()) {
                    (Ok(low), Ok(high)) => (low..=high).contains(&port),
                    _ => false,
                },
                None => item.parse() == Ok(port),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine that passes every check.
    fn tuned() -> Facts {
        Facts {
            kernel: Some("6.8.0-45-generic".into()),
            io_uring: IoUringFacts {
                disabled: Some(0),
                setup_error: None,
                features: vec!["nodrop", "fast_poll", "submit_stable", "ext_arg"],
                ops_missing: Some(vec![]),
            },
            open_files: Some((1024, 1 << 20)),
            memlock: Some((8 << 20, 8 << 20)),
            nr_open: Some(1 << 20),
            file_max: Some(u64::from(u32::MAX)),
            somaxconn: Some(8192),
            tcp_max_syn_backlog: Some(8192),
            tcp_wmem: Some([4096, 16384, 16 << 20]),
            tcp_rmem: Some([4096, 131_072, 16 << 20]),
            tcp_slow_start_after_idle: Some(0),
            local_port_range: Some((10240, 65535)),
            reserved_ports: Some(String::new()),
            usable_cpus: Some(vec![0, 1, 2, 3]),
            parallelism: 4,
            tcp_available_ulp: Some("mptcp".into()),
        }
    }

    fn config() -> Config {
        Config {
            shards: Some(2),
            ..Config::default()
        }
    }

    fn finding<'a>(findings: &'a [Finding], subject: &str) -> &'a Finding {
        findings
            .iter()
            .find(|f| f.subject.starts_with(subject))
            .unwrap_or_else(|| panic!("no finding for {subject}: {findings:?}"))
    }

    #[test]
    fn a_tuned_machine_passes_every_check() {
        let findings = check(&tuned(), &config());
        let bad: Vec<_> = findings.iter().filter(|f| f.level != Level::Ok).collect();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(findings.len(), 13);
        let report = report(&findings);
        assert!(report.ends_with("13 ok, 0 warn, 0 fail\n"), "{report}");
        assert!(
            report.contains("ok    kernel TLS: not offered by this kernel (no tls in net.ipv4.tcp_available_ulp); no TLS listener configured\n"),
            "{report}"
        );
        assert!(
            report.contains("ok    net.core.somaxconn: 8192\n"),
            "{report}"
        );
    }

    #[test]
    fn a_small_somaxconn_warns_with_the_sysctl_to_run() {
        let facts = Facts {
            somaxconn: Some(128),
            ..tuned()
        };
        let findings = check(&facts, &config());
        let f = finding(&findings, "net.core.somaxconn");
        assert_eq!(f.level, Level::Warn);
        assert!(f.detail.starts_with("128 (< 4096)"), "{}", f.detail);
        assert_eq!(
            f.fix.as_deref(),
            Some("sysctl -w net.core.somaxconn=8192, or install tuning/sysctl.conf")
        );
        let line = f.to_string();
        assert!(
            line.starts_with("warn  net.core.somaxconn: 128 (< 4096)"),
            "{line}"
        );
        assert!(line.contains("\n      fix: sysctl -w"), "{line}");
    }

    #[test]
    fn a_hard_file_limit_below_connections_max_fails() {
        let facts = Facts {
            open_files: Some((1024, 4096)),
            ..tuned()
        };
        let config = config();
        let needed = startup::files_needed(&config, 2);
        let findings = check(&facts, &config);
        let f = finding(&findings, "open files");
        assert_eq!(f.level, Level::Fail);
        assert!(
            f.detail.starts_with(&format!("hard limit 4096 < {needed}")),
            "{}",
            f.detail
        );
        assert!(
            f.fix
                .as_deref()
                .unwrap()
                .contains(&format!("LimitNOFILE={needed}"))
        );
    }

    #[test]
    fn a_low_soft_file_limit_is_fine_since_serve_raises_it() {
        let findings = check(&tuned(), &config());
        let f = finding(&findings, "open files");
        assert_eq!(f.level, Level::Ok);
        assert!(
            f.detail.contains("serve raises the soft limit 1024"),
            "{}",
            f.detail
        );
        let facts = Facts {
            nr_open: Some(2048),
            ..tuned()
        };
        let findings = check(&facts, &config());
        assert_eq!(finding(&findings, "open files").level, Level::Fail);
    }

    #[test]
    fn io_uring_that_cannot_be_set_up_fails_with_the_startup_fix() {
        let facts = Facts {
            io_uring: IoUringFacts {
                disabled: Some(2),
                setup_error: Some(Some(libc::EPERM)),
                ..IoUringFacts::default()
            },
            ..tuned()
        };
        let findings = check(&facts, &config());
        let f = finding(&findings, "io_uring");
        assert_eq!(f.level, Level::Fail);
        assert!(
            f.fix
                .as_deref()
                .unwrap()
                .contains("sysctl -w kernel.io_uring_disabled=0")
        );
    }

    #[test]
    fn io_uring_without_fast_poll_or_an_op_is_named() {
        let mut facts = tuned();
        facts.io_uring.features = vec!["nodrop"];
        let f = check_io_uring(&facts.io_uring, None);
        assert_eq!(f.level, Level::Warn);
        assert!(
            f.detail.starts_with("no FAST_POLL (features: nodrop)"),
            "{}",
            f.detail
        );
        facts.io_uring.ops_missing = Some(vec!["writev"]);
        let f = check_io_uring(&facts.io_uring, None);
        assert_eq!(f.level, Level::Fail);
        assert!(f.detail.ends_with("writev"), "{}", f.detail);
        let f = check_io_uring(&tuned().io_uring, None);
        assert_eq!(
            f.detail,
            "available; features: nodrop fast_poll submit_stable ext_arg; every operation used \
             is supported"
        );
    }

    #[test]
    fn small_tcp_buffers_and_slow_start_after_idle_warn() {
        let facts = Facts {
            tcp_wmem: Some([4096, 16384, 1 << 20]),
            tcp_slow_start_after_idle: Some(1),
            ..tuned()
        };
        let findings = check(&facts, &config());
        let wmem = finding(&findings, "net.ipv4.tcp_wmem");
        assert_eq!(wmem.level, Level::Warn);
        assert!(
            wmem.detail.starts_with("4096 16384 1048576: max < 4194304"),
            "{}",
            wmem.detail
        );
        assert_eq!(finding(&findings, "net.ipv4.tcp_rmem").level, Level::Ok);
        let slow = finding(&findings, "net.ipv4.tcp_slow_start_after_idle");
        assert_eq!(slow.level, Level::Warn);
        assert!(
            slow.fix
                .as_deref()
                .unwrap()
                .starts_with("sysctl -w net.ipv4.tcp_slow_start_after_idle=0")
        );
    }

    #[test]
    fn a_listen_port_inside_the_ephemeral_range_must_be_reserved() {
        let facts = Facts {
            local_port_range: Some((1024, 65535)),
            ..tuned()
        };
        let findings = check(&facts, &config());
        let f = finding(&findings, "net.ipv4.ip_local_port_range");
        assert_eq!(f.level, Level::Warn);
        assert_eq!(
            f.fix.as_deref(),
            Some("sysctl -w net.ipv4.ip_local_reserved_ports=1935,8080,1985")
        );
        let facts = Facts {
            local_port_range: Some((1024, 65535)),
            reserved_ports: Some("1935,1985,8000-8100\n".into()),
            ..tuned()
        };
        let findings = check(&facts, &config());
        assert_eq!(
            finding(&findings, "net.ipv4.ip_local_port_range").level,
            Level::Ok
        );
        let facts = Facts {
            local_port_range: Some((60000, 61000)),
            ..tuned()
        };
        let findings = check(&facts, &config());
        let f = finding(&findings, "net.ipv4.ip_local_port_range");
        assert_eq!(f.level, Level::Warn);
        assert!(f.detail.contains("1001 ports"), "{}", f.detail);
    }

    #[test]
    fn cpus_compare_shards_with_the_usable_cpus() {
        let findings = check(&tuned(), &config());
        let f = finding(&findings, "cpus");
        assert_eq!(f.detail, "2 shards on CPUs 0-1");
        let more = Config {
            shards: Some(6),
            ..Config::default()
        };
        let f = check_cpus(&tuned(), &more);
        assert_eq!(f.level, Level::Warn);
        assert!(
            f.detail.contains("more shards (6) than CPUs (0-3)"),
            "{}",
            f.detail
        );
        let listed = Config {
            cpus: Some(vec![7]),
            ..Config::default()
        };
        assert_eq!(check_cpus(&tuned(), &listed).level, Level::Fail);
        let all = check_cpus(&tuned(), &Config::default());
        assert_eq!(all.level, Level::Ok);
        assert!(
            all.detail.contains("no CPU left for NIC interrupts"),
            "{}",
            all.detail
        );
    }

    #[test]
    fn memlock_matters_only_before_linux_5_12() {
        let facts = Facts {
            memlock: Some((65536, 65536)),
            ..tuned()
        };
        assert_eq!(check_memlock(&facts, 2).level, Level::Ok);
        let old = Facts {
            kernel: Some("5.10.0".into()),
            ..facts
        };
        let f = check_memlock(&old, 2);
        assert_eq!(f.level, Level::Warn);
        assert!(f.fix.as_deref().unwrap().contains("LimitMEMLOCK=infinity"));
        assert_eq!(check_kernel(Some("5.10.0")).level, Level::Warn);
    }

    #[test]
    fn unreadable_facts_warn_instead_of_guessing() {
        let findings = check(
            &Facts {
                parallelism: 1,
                ..Facts::default()
            },
            &config(),
        );
        let f = finding(&findings, "net.core.somaxconn");
        assert_eq!(f.level, Level::Warn);
        assert_eq!(f.detail, "cannot be read here");
    }

    #[test]
    fn sysctl_values_parse() {
        assert_eq!(
            triple("4096\t16384\t4194304\n"),
            Some([4096, 16384, 4_194_304])
        );
        assert_eq!(triple("1 2"), None);
        assert_eq!(pair("32768\t60999\n"), Some((32768, 60999)));
        assert!(port_listed("1935,8000-8100", 8080));
        assert!(!port_listed("", 1935));
        assert!(!port_listed("x-y", 1935));
    }

    /// `tuning/sysctl.conf` as key → value, checking that every setting
    /// has a comment saying why on the line above.
    fn shipped_sysctls() -> std::collections::HashMap<String, String> {
        let text = include_str!("../tuning/sysctl.conf");
        let mut settings = std::collections::HashMap::new();
        let mut previous = "";
        for line in text.lines().map(str::trim) {
            if let Some((key, value)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
                assert!(previous.starts_with('#'), "no reason above {line}");
                let key = key.trim().trim_start_matches('-').to_owned();
                settings.insert(key, value.trim().to_owned());
            }
            previous = line;
        }
        settings
    }

    #[test]
    fn the_shipped_sysctl_conf_passes_doctor_and_says_why() {
        let sysctls = shipped_sysctls();
        let get = |key: &str| sysctls.get(key).unwrap_or_else(|| panic!("{key} missing"));
        let facts = Facts {
            somaxconn: get("net.core.somaxconn").parse().ok(),
            tcp_max_syn_backlog: get("net.ipv4.tcp_max_syn_backlog").parse().ok(),
            tcp_wmem: triple(get("net.ipv4.tcp_wmem")),
            tcp_rmem: triple(get("net.ipv4.tcp_rmem")),
            tcp_slow_start_after_idle: get("net.ipv4.tcp_slow_start_after_idle").parse().ok(),
            local_port_range: pair(get("net.ipv4.ip_local_port_range")),
            reserved_ports: Some(get("net.ipv4.ip_local_reserved_ports").clone()),
            file_max: get("fs.file-max").parse().ok(),
            nr_open: get("fs.nr_open").parse().ok(),
            ..tuned()
        };
        // Half a million connections: what the file limits are sized for.
        let connections_max = Config {
            connections_max: 500_000,
            ..config()
        };
        for finding in check(&facts, &connections_max) {
            assert_eq!(finding.level, Level::Ok, "{finding}");
        }
        assert_eq!(get("kernel.io_uring_disabled"), "0");
    }

    #[test]
    fn kernel_tls_is_reported_as_offered_or_not_and_userspace_used() {
        let mut tls = config();
        tls.tls.listen = vec!["127.0.0.1:1936".parse().unwrap()];
        let offered = check_kernel_tls(Some("mptcp tls"), &tls);
        assert_eq!(offered.level, Level::Ok);
        assert_eq!(
            offered.detail,
            "offered by this kernel (tls in net.ipv4.tcp_available_ulp), not used by ringcast; \
             TLS listeners seal records in userspace (rustls)"
        );
        let absent = check_kernel_tls(Some("mptcp"), &tls);
        assert!(
            absent.detail.starts_with("not offered by this kernel"),
            "{absent:?}"
        );
        assert_eq!(check_kernel_tls(None, &tls).level, Level::Warn);
    }

    #[test]
    fn reading_this_machine_does_not_panic() {
        let facts = Facts::read();
        let findings = check(&facts, &config());
        assert_eq!(findings.len(), 13);
    }
}
