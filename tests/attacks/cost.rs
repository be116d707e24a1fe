//! What an attack cost the server: CPU time of its shard threads, growth of
//! the resident set, and log lines, measured around the attack. The server
//! runs in this process ([`super::common::start_server`]), so its shards are
//! the threads named `shard-N`; the attacking clients and the reference
//! players are other threads and are not counted as server CPU.

use std::time::{Duration, Instant};

use super::common::logs;

/// What one attack may cost the server, the ceilings: shard CPU
/// per attacking message (a release build; a debug build decodes and
/// formats ten to twenty times slower, so tests that decode scale it),
/// resident set growth during the attack and how close to where it began
/// it must settle after, log lines a second per shard, descriptors.
pub const CPU_PER_MESSAGE_MAX: Duration = Duration::from_millis(1);
pub const RSS_GROWTH_MAX: i64 = 24 << 20;
pub const RSS_SETTLED_MAX: i64 = 16 << 20;
pub const LOG_LINES_PER_S_MAX: f64 = 50.0;
pub const DESCRIPTORS_MAX: usize = 1000;

/// A reading taken before an attack.
pub struct Meter {
    cpu: Duration,
    rss: u64,
    lines: usize,
    at: Instant,
}

/// What the attack cost between [`Meter::start`] and [`Meter::spent`].
#[derive(Debug)]
pub struct Spent {
    /// CPU time of all shard threads together.
    pub cpu: Duration,
    /// Resident set growth (negative: it shrank).
    pub rss_growth: i64,
    /// Log lines the server wrote.
    pub log_lines: usize,
    pub elapsed: Duration,
}

impl Meter {
    pub fn start() -> Meter {
        Meter {
            cpu: shard_cpu(),
            rss: rss_bytes(),
            lines: logs::line_count(),
            at: Instant::now(),
        }
    }

    pub fn spent(&self) -> Spent {
        Spent {
            cpu: shard_cpu().saturating_sub(self.cpu),
            rss_growth: rss_bytes() as i64 - self.rss as i64,
            log_lines: logs::line_count().saturating_sub(self.lines),
            elapsed: self.at.elapsed(),
        }
    }

    /// Resident set now minus at the start, in bytes.
    pub fn rss_growth(&self) -> i64 {
        rss_bytes() as i64 - self.rss as i64
    }
}

impl Spent {
    /// Shard CPU per attacking message.
    pub fn cpu_per(&self, messages: u64) -> Duration {
        self.cpu / u32::try_from(messages.max(1)).unwrap_or(u32::MAX)
    }

    /// The figures for a person, with the CPU per one of `messages`.
    pub fn report(&self, messages: u64) -> String {
        format!(
            "{messages} messages in {:?}: {} log lines ({:.1}/s), shard cpu {:?} ({:?} per \
             message), rss growth {} KiB",
            self.elapsed,
            self.log_lines,
            self.log_lines_per_s(),
            self.cpu,
            self.cpu_per(messages),
            self.rss_growth / 1024
        )
    }

    /// Log lines per second of the attack.
    pub fn log_lines_per_s(&self) -> f64 {
        self.log_lines as f64 / self.elapsed.as_secs_f64().max(1.0)
    }
}

/// Waits up to `within` for the resident set to come back within `slack`
/// bytes of the meter's start; returns the growth it ended at.
pub fn settle_rss(meter: &Meter, slack: i64, within: Duration) -> i64 {
    let deadline = Instant::now() + within;
    loop {
        let growth = meter.rss_growth();
        if growth <= slack || Instant::now() >= deadline {
            return growth;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// CPU time (user + system) of this process's `shard-N` threads.
pub fn shard_cpu() -> Duration {
    let ticks_per_s = clock_ticks_per_second();
    let mut ticks = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        panic!("/proc/self/task is not readable");
    };
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.starts_with("shard-") {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14,
        // stime 15 (proc(5)).
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field =
            |n: usize| -> u64 { fields.get(n - 3).and_then(|f| f.parse().ok()).unwrap_or(0) };
        ticks += field(14) + field(15);
    }
    Duration::from_secs_f64(ticks as f64 / ticks_per_s as f64)
}

/// This process's resident set (the server runs in it), in bytes.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}
