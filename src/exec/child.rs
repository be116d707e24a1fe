//! One child, for as long as its publish lasts: started, watched, started
//! again after a backoff when it ends, stopped when its
//! [`super::Running`] goes; its stderr logged within a budget.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::MissedTickBehavior;
use tracing::{info, warn};

use super::{ExecStats, Start};
use crate::limits;
use crate::logging::LogBucket;
use crate::media::StreamKey;
use crate::relay::Backoff;
use crate::session::Quoted;

/// How long a child's last stderr lines are waited for once it ended, so
/// they (why it ended) are logged before the line saying it did. Why not
/// longer: a process the child started may hold the pipe open for ever.
const STDERR_DRAIN: Duration = Duration::from_secs(1);

/// How a run ended.
enum Ended {
    /// On its own, while its publish lasted.
    Exited {
        pid: u32,
        status: io::Result<ExitStatus>,
    },
    /// Told to, its publish having ended; `killed`: SIGTERM was not
    /// enough.
    Stopped {
        status: io::Result<ExitStatus>,
        killed: bool,
    },
}

/// Runs `start` until its [`super::Running`] is dropped, holding `place`
/// (one of [`limits::EXEC_CHILDREN_MAX`]) throughout.
pub(super) async fn supervise(start: Start, place: OwnedSemaphorePermit, stats: Arc<ExecStats>) {
    let Start {
        stream,
        argv,
        mut stop,
    } = start;
    let program = argv.first().map_or("", String::as_str);
    let mut backoff = Backoff::between(
        Duration::from_millis(limits::EXEC_BACKOFF_MS_MIN),
        Duration::from_millis(limits::EXEC_BACKOFF_MS_MAX),
    );
    let mut again = false;
    // A start whose publish ended before it was taken up runs nothing.
    while !matches!(stop.try_recv(), Err(oneshot::error::TryRecvError::Closed)) {
        if std::mem::replace(&mut again, true) {
            stats.restarted();
        }
        let began = Instant::now();
        let outcome = match spawn(&argv) {
            Ok(child) => match watch(child, &stream, program, &mut stop, &stats).await {
                Ended::Stopped { .. } => break,
                Ended::Exited { pid, status } => Ok((pid, status)),
            },
            Err(error) => Err(error),
        };
        if began.elapsed() >= Duration::from_millis(limits::EXEC_RUN_HEALTHY_MS) {
            backoff.reset();
        }
        let wait = backoff.next();
        let restart_in_ms = wait.as_millis();
        match outcome {
            Ok((pid, status)) => {
                let status = shown(&status);
                warn!(stream = %Quoted(stream.as_str()), pid, ?status, restart_in_ms, "exec ended while its stream is published: starting it again");
            }
            Err(error) => {
                warn!(stream = %Quoted(stream.as_str()), program, %error, restart_in_ms, "exec could not start: trying again");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = &mut stop => break,
        }
    }
    drop(place);
}

/// `argv` started: stdin from `/dev/null`, stdout discarded, stderr
/// piped; its own process group; SIGKILL should the server die first.
fn spawn(argv: &[String]) -> io::Result<Child> {
    let Some((program, args)) = argv.split_first() else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    let server = std::process::id();
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        // Should this task be dropped unfinished (the runtime going
        // away), the child goes too.
        .kill_on_drop(true);
    // SAFETY: `die_with_server` runs in the child between fork and exec,
    // where only async-signal-safe calls may be made: it makes two
    // system calls and builds errors from an errno, allocating nothing.
    unsafe {
        command.pre_exec(move || die_with_server(server));
    }
    command.spawn()
}

/// In the child, before exec: SIGKILL once the thread that forked it
/// ends (the supervisor's, alive as long as the server), so a server that
/// dies without stopping its children leaves none running.
fn die_with_server(server: u32) -> io::Result<()> {
    // SAFETY: prctl(2) with integer arguments touches no memory of ours.
    let set = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if set != 0 {
        return Err(io::Error::last_os_error());
    }
    // The server may have died between fork and prctl, which then sends
    // nothing: the child was adopted by then.
    // SAFETY: getppid(2) cannot fail and touches no memory.
    if u32::try_from(unsafe { libc::getppid() }) != Ok(server) {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// Watches a started child until it ends or `stop` says its publish did
/// (then stops it); its stderr is logged meanwhile.
async fn watch(
    mut child: Child,
    stream: &StreamKey,
    program: &str,
    stop: &mut oneshot::Receiver<()>,
    stats: &ExecStats,
) -> Ended {
    let pid = child.id().unwrap_or_default();
    info!(stream = %Quoted(stream.as_str()), pid, program, "exec started");
    let reader =
        (child.stderr.take()).map(|stderr| tokio::spawn(log_stderr(stderr, stream.clone(), pid)));
    stats.started();
    // A stop that comes with the end is a stop: the child is not reaped
    // until `wait` completes, so its pid is still its own to signal.
    let exited = tokio::select! {
        biased;
        _ = &mut *stop => None,
        status = child.wait() => Some(status),
    };
    let ended = match exited {
        Some(status) => Ended::Exited { pid, status },
        None => {
            let (status, killed) = terminate(&mut child).await;
            Ended::Stopped { status, killed }
        }
    };
    stats.ended();
    if let Some(mut reader) = reader {
        if tokio::time::timeout(STDERR_DRAIN, &mut reader)
            .await
            .is_err()
        {
            reader.abort();
        }
    }
    if let Ended::Stopped { status, killed } = &ended {
        let status = shown(status);
        if *killed {
            let grace_ms = limits::EXEC_STOP_GRACE_MS;
            warn!(stream = %Quoted(stream.as_str()), pid, ?status, grace_ms, "exec killed: still running after SIGTERM and the grace period");
        } else {
            info!(stream = %Quoted(stream.as_str()), pid, ?status, "exec stopped (SIGTERM)");
        }
    }
    ended
}

/// How a child ended, for a log line.
fn shown(status: &io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("unknown ({error})"),
    }
}

/// SIGTERM to the child's process group, SIGKILL after the grace period;
/// reaped either way. Says whether it took SIGKILL.
async fn terminate(child: &mut Child) -> (io::Result<ExitStatus>, bool) {
    signal(child, libc::SIGTERM);
    let grace = Duration::from_millis(limits::EXEC_STOP_GRACE_MS);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => (status, false),
        Err(_) => {
            signal(child, libc::SIGKILL);
            (child.wait().await, true)
        }
    }
}

/// Sends `signal` to the process group the child leads.
fn signal(child: &Child, signal: libc::c_int) {
    // `id` is `None` once the child is reaped; until then its pid (its
    // group's id too, `process_group(0)`) cannot have been reused.
    let Some(pid) = child.id().and_then(|pid| libc::pid_t::try_from(pid).ok()) else {
        return;
    };
    // SAFETY: kill(2) with integer arguments touches no memory of ours.
    unsafe {
        libc::kill(-pid, signal);
    }
}

/// Logs a child's stderr line by line within its budget, and once a
/// second how many lines the budget dropped.
async fn log_stderr(stderr: ChildStderr, stream: StreamKey, pid: u32) {
    let mut reader = BufReader::with_capacity(limits::EXEC_LINE_BYTES_MAX, stderr);
    let mut line = Vec::with_capacity(limits::EXEC_LINE_BYTES_MAX);
    let mut budget = LogBucket::new(
        limits::EXEC_LOG_LINES_BURST,
        1000 / u64::from(limits::EXEC_LOG_LINES_PER_S),
        0,
    );
    let clock = Instant::now();
    let mut summary = tokio::time::interval(Duration::from_secs(1));
    summary.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            read = read_line(&mut reader, &mut line) => {
                if !matches!(read, Ok(true)) {
                    break;
                }
                let now_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
                if !line.is_empty() && budget.take(now_ms) {
                    let text = String::from_utf8_lossy(&line);
                    info!(stream = %Quoted(stream.as_str()), pid, line = %text, "exec stderr");
                }
                line.clear();
            }
            _ = summary.tick() => log_dropped(&mut budget, &stream, pid),
        }
    }
    log_dropped(&mut budget, &stream, pid);
}

fn log_dropped(budget: &mut LogBucket, stream: &StreamKey, pid: u32) {
    let dropped = budget.take_suppressed();
    if dropped > 0 {
        info!(stream = %Quoted(stream.as_str()), pid, dropped, "exec stderr lines dropped (log rate limit)");
    }
}

/// Reads up to the end of a line (`\n`, or `\r`, which ffmpeg's progress
/// line ends with) into `line`, at most [`limits::EXEC_LINE_BYTES_MAX`]
/// bytes: a longer line comes as several. `Ok(false)` at the end with
/// nothing read. Whatever it read stays in `line` if it is cancelled, so
/// a `select!` loses nothing.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> io::Result<bool> {
    loop {
        let buffered = reader.fill_buf().await?;
        if buffered.is_empty() {
            return Ok(!line.is_empty());
        }
        let room = limits::EXEC_LINE_BYTES_MAX.saturating_sub(line.len());
        let window = buffered.get(..room).unwrap_or(buffered);
        if let Some(end) = window.iter().position(|b| matches!(b, b'\n' | b'\r')) {
            line.extend_from_slice(window.get(..end).unwrap_or_default());
            reader.consume(end + 1);
            return Ok(true);
        }
        let taken = window.len();
        line.extend_from_slice(window);
        reader.consume(taken);
        if line.len() >= limits::EXEC_LINE_BYTES_MAX {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines `read_line` makes of `bytes`, read `capacity` bytes at a
    /// time.
    fn lines(bytes: &[u8], capacity: usize) -> Vec<String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut reader = BufReader::with_capacity(capacity, bytes);
            let mut line = Vec::new();
            let mut lines = Vec::new();
            while read_line(&mut reader, &mut line).await.unwrap() {
                lines.push(String::from_utf8(std::mem::take(&mut line)).unwrap());
            }
            lines
        })
    }

    #[test]
    fn lines_end_at_a_newline_or_a_carriage_return_and_are_cut_to_their_bound() {
        let long = "x".repeat(limits::EXEC_LINE_BYTES_MAX + 10);
        let text = format!("Input #0, flv\nframe=1 fps=0\rframe=30\r\n{long}\nlast");
        for capacity in [1, 7, limits::EXEC_LINE_BYTES_MAX] {
            assert_eq!(
                lines(text.as_bytes(), capacity),
                [
                    "Input #0, flv",
                    "frame=1 fps=0",
                    "frame=30",
                    "",
                    &long[..limits::EXEC_LINE_BYTES_MAX],
                    "xxxxxxxxxx",
                    "last",
                ],
                "read {capacity} bytes at a time"
            );
        }
        assert!(lines(b"", 16).is_empty());
    }
}
