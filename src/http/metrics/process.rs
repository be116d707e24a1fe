//! The `process_*` metrics every Prometheus exporter has (CPU time,
//! memory, descriptors, start time), read from `/proc` at scrape time as
//! the Go client reads them: `/proc/self/stat`, `/proc/self/limits`,
//! `/proc/self/fd` and `btime` of `/proc/stat`. Linux only, as the server.
//!
//! The parsers are pure functions of the files' text, tested on fixtures;
//! [`Process::read`] does the reading, off the control thread's async
//! task (listing `/proc/self/fd` is a pass over every open descriptor).

use std::fs;
use std::io;

/// One reading of this process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Process {
    /// User and system CPU time of all threads.
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    /// The open-file soft limit (`RLIMIT_NOFILE`).
    pub max_fds: u64,
    /// Since the Unix epoch.
    pub start_time_s: f64,
}

/// What `/proc/self/stat` tells, in the kernel's units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    /// Since boot, in clock ticks.
    start_ticks: u64,
    virtual_bytes: u64,
    resident_pages: u64,
}

impl Process {
    /// Reads this process's files in `/proc`.
    pub fn read() -> io::Result<Process> {
        let stat = parse_stat(&fs::read_to_string("/proc/self/stat")?);
        let boot_time_s = parse_boot_time(&fs::read_to_string("/proc/stat")?);
        let max_fds = parse_max_open_files(&fs::read_to_string("/proc/self/limits")?);
        let open_fds = fs::read_dir("/proc/self/fd")?.count() as u64;
        let ticks_per_s = sysconf(libc::_SC_CLK_TCK);
        let page_bytes = sysconf(libc::_SC_PAGESIZE);
        let (Some(stat), Some(boot_time_s), Some(max_fds), Some(ticks_per_s), Some(page_bytes)) =
            (stat, boot_time_s, max_fds, ticks_per_s, page_bytes)
        else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "/proc/self/stat, /proc/stat or /proc/self/limits not as Linux writes them",
            ));
        };
        let ticks_per_s = ticks_per_s as f64;
        Ok(Process {
            cpu_seconds: stat.cpu_ticks as f64 / ticks_per_s,
            resident_bytes: stat.resident_pages.saturating_mul(page_bytes),
            virtual_bytes: stat.virtual_bytes,
            open_fds,
            max_fds,
            start_time_s: boot_time_s as f64 + stat.start_ticks as f64 / ticks_per_s,
        })
    }
}

/// The fields of a `/proc/PID/stat` line we use (proc(5): utime 14, stime
/// 15, starttime 22, vsize 23, rss 24). The command name in parentheses may
/// hold spaces and parentheses, so fields are counted after the last ')'.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, after_name) = text.rsplit_once(')')?;
    // After ')' the first field is field 3 (state).
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(Stat {
        cpu_ticks: field(14)?.saturating_add(field(15)?),
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
        resident_pages: field(24)?,
    })
}

/// `btime` of `/proc/stat`: when the machine booted, in seconds since the
/// Unix epoch.
fn parse_boot_time(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|line| line.strip_prefix("btime "))?;
    line.trim().parse().ok()
}

/// The soft limit of `Max open files` in `/proc/PID/limits`; `unlimited`
/// (which the kernel does not allow for this one) reads as `u64::MAX`.
fn parse_max_open_files(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    match line.split_whitespace().next()? {
        "unlimited" => Some(u64::MAX),
        soft => soft.parse().ok(),
    }
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf reads a system constant; no pointers, no state.
    let value = unsafe { libc::sysconf(name) };
    u64::try_from(value).ok().filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "18718 (my (odd) server) R 18694 18694 1751 0 -1 4194304 99 0 0 0 \
                    250 50 0 0 20 0 9 0 5225777 3133440 362 18446744073709551615 1 2";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                cpu_ticks: 300,
                start_ticks: 5_225_777,
                virtual_bytes: 3_133_440,
                resident_pages: 362,
            })
        );
        assert_eq!(parse_stat("18718 (cat) R 1 2 3"), None, "cut short");
        assert_eq!(parse_stat("no name here"), None);
    }

    #[test]
    fn boot_time_and_the_open_file_limit_are_found_by_name() {
        let stat =
            "cpu  3879527 983496 784101 4385736\nintr 1 2\nbtime 1796467676\nprocs_running 3\n";
        assert_eq!(parse_boot_time(stat), Some(1_796_467_676));
        assert_eq!(parse_boot_time("cpu 1 2 3\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             96367                96367                processes \n\
                      Max open files            20000                1048576              files     \n";
        assert_eq!(parse_max_open_files(limits), Some(20_000));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_max_open_files(unlimited), Some(u64::MAX));
        assert_eq!(parse_max_open_files("Max processes 1 1\n"), None);
    }

    #[test]
    fn this_process_reads_as_running_since_before_now() {
        let process = Process::read().expect("/proc of this process");
        assert!(process.resident_bytes > 0 && process.virtual_bytes >= process.resident_bytes);
        assert!(process.open_fds >= 3 && process.max_fds >= process.open_fds);
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            process.start_time_s <= now_s + 1.0 && process.start_time_s > now_s - 86_400.0,
            "{process:?}"
        );
        assert!(process.cpu_seconds >= 0.0);
    }
}
