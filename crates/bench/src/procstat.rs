//! A server process seen from outside: CPU time of all its threads and its
//! resident memory, from `/proc`.

use std::fs;
use std::time::Duration;

/// One reading of a process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// User + system time of all threads.
    pub cpu: Duration,
    pub rss_bytes: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/status`; `None` once the process
/// is gone.
pub fn sample(pid: u32) -> Option<Sample> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Sample {
        cpu: cpu_time(&stat)?,
        rss_bytes: status_kib(&status, "VmRSS:")? * 1024,
    })
}

/// The process's peak resident memory since it started (VmHWM).
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(status_kib(&status, "VmHWM:")? * 1024)
}

/// utime + stime (fields 14 and 15) of a stat line. The command name in
/// parentheses may hold spaces, so fields are counted after the last ')'.
fn cpu_time(stat: &str) -> Option<Duration> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ')' the first field is field 3 (state).
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = u64::try_from(ticks).ok().filter(|t| *t > 0)?;
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks as f64,
    ))
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_spaces_in_the_name_parse() {
        let line = "42 (my server) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        // SAFETY: sysconf reads a constant; no pointers, no state.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        assert_eq!(cpu_time(line), Some(Duration::from_secs_f64(300.0 / ticks)));
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = sample(std::process::id()).expect("our own /proc entry");
        assert!(me.rss_bytes > 0);
        assert!(peak_rss_bytes(std::process::id()).expect("VmHWM") >= me.rss_bytes / 2);
    }
}
