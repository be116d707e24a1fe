//! Threads, their CPU time and the shard's io_uring, from `/proc`.

use std::time::Duration;

/// The id of this process's thread named `name`.
pub fn find(name: &str) -> Result<i32, String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let tasks = std::fs::read_dir("/proc/self/task")
            .map_err(|e| format!("reading /proc/self/task: {e}"))?;
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() == name {
                if let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) {
                    return Ok(tid);
                }
            }
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("no thread named {name:?}"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// CPU time of one thread.
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    /// Nanoseconds on CPU (`schedstat`); utime + stime where the
    /// kernel has no schedstat.
    pub on_cpu: Duration,
    /// Clock ticks in user space and in the kernel (`stat`): coarse,
    /// for the split only.
    pub user_ticks: u64,
    pub system_ticks: u64,
}

impl Cpu {
    pub fn of(tid: i32) -> Cpu {
        let task = format!("/proc/self/task/{tid}");
        let stat = std::fs::read_to_string(format!("{task}/stat")).unwrap_or_default();
        // Fields 14 and 15, counted after the command name (which may
        // hold spaces).
        let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0);
        let (user_ticks, system_ticks) = (ticks(11), ticks(12));
        let schedstat = std::fs::read_to_string(format!("{task}/schedstat")).ok();
        let on_cpu = match schedstat.and_then(|s| s.split_whitespace().next()?.parse().ok()) {
            Some(ns) => Duration::from_nanos(ns),
            None => {
                // SAFETY: sysconf has no preconditions.
                let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
                Duration::from_nanos((user_ticks + system_ticks) * 1_000_000_000 / per_second)
            }
        };
        Cpu {
            on_cpu,
            user_ticks,
            system_ticks,
        }
    }

    pub fn since(&self, before: &Cpu) -> Cpu {
        Cpu {
            on_cpu: self.on_cpu.saturating_sub(before.on_cpu),
            user_ticks: self.user_ticks.saturating_sub(before.user_ticks),
            system_ticks: self.system_ticks.saturating_sub(before.system_ticks),
        }
    }

    /// Share of the time spent in user space, if enough ticks (half a
    /// second at the usual 100 Hz) passed for it to mean something.
    pub fn user_share(&self) -> Option<f64> {
        let total = self.user_ticks + self.system_ticks;
        (total >= 50).then(|| self.user_ticks as f64 / total as f64)
    }
}

/// CPU time of the whole process (every thread, live or ended).
pub fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct we own.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// Submissions so far on the io_uring with `entries` submission slots
/// (its `SqHead`, a wrapping count), if exactly one such ring is open.
pub fn ring_submissions(entries: u32) -> Option<u32> {
    let mask = format!("{:#x}", entries - 1);
    let mut found = None;
    for fd in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        if target.to_str() != Some("anon_inode:[io_uring]") {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/self/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        if field(&info, "SqMask") != Some(mask.as_str()) {
            continue;
        }
        if found.is_some() {
            return None;
        }
        found = field(&info, "SqHead").and_then(|h| h.parse().ok());
    }
    found
}

fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}
