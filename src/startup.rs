//! Startup checks and listener binding: what `ringcast serve` verifies about
//! this machine before the first shard starts. Which CPUs the shards run
//! on, whether io_uring can be used, whether the open-file limit covers the
//! connection cap, and the listening sockets: RTMP's bound once per shard
//! with SO_REUSEPORT so the kernel spreads connections across shards, and
//! the admin API's, once. `ringcast doctor` reuses the pure checks.
//!
//! Every failure is an operator fault: it stops startup with a message
//! that says what is wrong and how to fix it, and never panics.
//!
//! Must not start runtimes or threads, accept connections or read the
//! config file: it takes a [`Config`] and hands back [`Prepared`], which
//! `server::run` turns into running shards.

// Input from the environment and the operator is handled, never unwrapped
// (tests exempt).

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

use crate::config::{self, Config, Invalid};

/// Listen backlog of every shard's socket. Why: a burst of reconnecting
/// players (an encoder restart, a load balancer failover) arrives at once;
/// 1024 per shard absorbs it, and Linux caps it at `net.core.somaxconn`.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Listen backlog of the admin API. Why: its clients are a few operators
/// and scrapers, not bursts of players.
const ADMIN_BACKLOG: i32 = 64;

/// Descriptors each shard holds besides connections and listeners: its
/// io_uring, the eventfd and epoll of the tokio runtime inside tokio-uring,
/// with room to spare.
const FILES_PER_SHARD: u64 = 8;

/// Descriptors the process holds besides the shards: stdio, log files,
/// the admin listener and its clients, `/proc` reads.
const FILES_SPARE: u64 = 64;

/// Oldest kernel tokio-uring 0.5 is known to work on: its docs say 5.10,
/// its README that 5.4 fails and 5.11 works.
pub const KERNEL_MIN: (u32, u32) = (5, 11);

/// What the server starts with: a validated config, the CPU of each shard
/// and each shard's listeners, bound and listening.
#[derive(Debug)]
pub struct Prepared {
    pub config: Config,
    /// One entry per shard: the CPU to pin it to (`None`: no pinning).
    pub shard_cpus: Vec<Option<usize>>,
    /// `[shard][address]`, addresses in the order of `config.listen`; as
    /// many shards as `shard_cpus`. Blocking mode, as tokio-uring's own
    /// `bind` makes them (io_uring does not need `O_NONBLOCK`), ready for
    /// `tokio_uring::net::TcpListener::from_std`.
    pub listeners: Vec<Vec<TcpListener>>,
    /// `[shard][address]` as `listeners`, for `config.http.listen`.
    pub http_listeners: Vec<Vec<TcpListener>>,
    /// `[shard][address]` as `listeners`, for `config.tls.listen` (RTMPS).
    pub rtmps_listeners: Vec<Vec<TcpListener>>,
    /// `[shard][address]` as `listeners`, for `config.tls.http_listen`
    /// (HTTPS-FLV and WSS).
    pub https_listeners: Vec<Vec<TcpListener>>,
    /// The admin API's listener, unless `admin` is off.
    pub admin: Option<TcpListener>,
}

/// Whose the RTMP and HTTP ports are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ports {
    /// Ours alone: a port another process listens on stops startup.
    #[default]
    Own,
    /// Shared with a ringcast already listening there (`--share-ports`):
    /// an upgrade in place. The kernel spreads new connections over both
    /// until the old one drains (SIGTERM closes its listeners), after
    /// which they all come here.
    Shared,
}

/// Runs every check in order, cheapest and most likely to fail first, and
/// binds the listeners last so nothing is held when a check fails.
pub fn prepare(config: Config) -> Result<Prepared, StartError> {
    prepare_with(config, Ports::Own)
}

/// [`prepare`], with the RTMP and HTTP ports taken as `ports` says.
pub fn prepare_with(config: Config, ports: Ports) -> Result<Prepared, StartError> {
    config.validate()?;
    let shard_cpus = shard_cpus(&config)?;
    check_io_uring()?;
    ensure_file_limit(files_needed(&config, shard_cpus.len()))?;
    let shards = shard_cpus.len();
    let listeners = bind_listeners(&config.listen, shards, "--listen", ports)?;
    let http_listeners = bind_listeners(&config.http.listen, shards, "--http", ports)?;
    let rtmps_listeners = bind_listeners(&config.tls.listen, shards, "--listen-tls", ports)?;
    let https_listeners = bind_listeners(&config.tls.http_listen, shards, "--http-tls", ports)?;
    let admin = config.admin.map(bind_admin).transpose()?;
    tracing::info!(
        shards = shard_cpus.len(),
        cpus = ?shard_cpus,
        listen = %bound(&listeners).join(" "),
        http = %bound(&http_listeners).join(" "),
        listen_tls = %bound(&rtmps_listeners).join(" "),
        http_tls = %bound(&https_listeners).join(" "),
        "startup checks passed"
    );
    Ok(Prepared {
        config,
        shard_cpus,
        listeners,
        http_listeners,
        rtmps_listeners,
        https_listeners,
        admin,
    })
}

/// The addresses the first shard's listeners are bound to, not the
/// configured ones: port 0 is resolved.
pub fn bound(listeners: &[Vec<TcpListener>]) -> Vec<String> {
    (listeners.first().into_iter().flatten())
        .filter_map(|listener| listener.local_addr().ok())
        .map(|addr| addr.to_string())
        .collect()
}

/// Keeps the process's memory in 4 KiB pages from here on. Why: mimalloc
/// asks for transparent huge pages on its arenas (`MADV_HUGEPAGE`), so the
/// first bytes each thread allocates make the kernel back 2 MiB: an idle
/// one-shard server held 8 MiB of nearly empty huge pages, and memory a
/// shard frees goes back to the kernel only in whole huge pages. What a
/// shard holds (frames, queues, sessions) is a few MiB, where huge pages
/// save no measurable CPU. Call it first thing: the two huge pages
/// mimalloc touches before `main` stay.
pub fn refuse_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes no pointers; it sets a flag of
    // this process's memory map, checked when pages fault in.
    // Nothing breaks if it fails (an old kernel): RSS is only larger.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

/// Why the server cannot start; each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(#[from] Invalid),
    #[error(
        "cpus: CPU {cpu} is not usable by this process (usable: {usable}); list only usable \
         CPUs in --cpus or `cpus`, or widen the affinity mask (taskset, systemd CPUAffinity=)"
    )]
    CpuNotUsable { cpu: usize, usable: String },
    /// The message comes from [`io_uring_error_message`].
    #[error("{0}")]
    IoUring(String),
    #[error("cannot read the open-file limit (getrlimit RLIMIT_NOFILE)")]
    FileLimitUnreadable(#[source] io::Error),
    #[error(
        "the open-file limit is too low: {needed} descriptors are needed (connections_max plus \
         relay.pulls_max, listeners, rings and spare) but the hard limit is {hard}; raise it with `ulimit -n \
         {needed}` as root (or `nofile` in /etc/security/limits.conf), or `LimitNOFILE={needed}` \
         in the systemd unit, or lower connections_max or relay.pulls_max"
    )]
    FileLimitTooLow { needed: u64, hard: u64 },
    #[error(
        "cannot raise the open-file limit from {soft} to {needed} (hard limit {hard}); check \
         that `sysctl fs.nr_open` is at least {needed}"
    )]
    FileLimitNotRaised {
        soft: u64,
        needed: u64,
        hard: u64,
        #[source]
        source: io::Error,
    },
    #[error(
        "address {addr} is already in use (another server running?); stop it or choose \
         another with {flag} (to upgrade a running ringcast in place, start the new one with \
         --share-ports, then send the old one SIGTERM)"
    )]
    AddressInUse {
        addr: SocketAddr,
        flag: &'static str,
    },
    #[error(
        "no permission to listen on {addr}: ports below 1024 need privileges; grant them with \
         `setcap cap_net_bind_service=+ep` on the ringcast binary, or choose a port of 1024 or \
         above with {flag}"
    )]
    PrivilegedPort {
        addr: SocketAddr,
        flag: &'static str,
    },
    #[error(
        "address {addr} is not assigned to this machine; choose one that `ip addr` shows, or \
         0.0.0.0 for all, with {flag}"
    )]
    AddressNotAvailable {
        addr: SocketAddr,
        flag: &'static str,
    },
    #[error(
        "admin address {addr} is already in use (another ringcast, or a web server?); choose \
         another with --admin ADDR or `admin` in the config file, or turn the admin API off \
         with --admin off"
    )]
    AdminAddressInUse { addr: SocketAddr },
    #[error(
        "cannot listen for the admin API on {addr}; choose another address with --admin ADDR \
         or `admin` in the config file, or turn it off with --admin off"
    )]
    AdminListen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The operating system refused a thread or a signal handler.
    #[error("cannot start {what}")]
    System {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

// ---------------------------------------------------------------------------
// CPUs
// ---------------------------------------------------------------------------

/// The CPUs this process may run on, in order, from its affinity mask
/// (taskset, cgroup cpusets); `None` when the mask cannot be read.
pub fn usable_cpus() -> Option<Vec<usize>> {
    let ids = core_affinity::get_core_ids()?;
    let cpus: Vec<usize> = ids.into_iter().map(|core| core.id).collect();
    (!cpus.is_empty()).then_some(cpus)
}

/// The shards to run: one per entry, the CPU to pin it to (`None`: no
/// pinning, when the usable CPUs cannot be read).
pub fn shard_cpus(config: &Config) -> Result<Vec<Option<usize>>, StartError> {
    let usable = usable_cpus();
    let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
    let assignment = assign_shards(
        usable.as_deref(),
        parallelism,
        config.cpus.as_deref(),
        config.shards,
    )?;
    if let Some(warning) = &assignment.warning {
        tracing::warn!("{warning}");
    }
    Ok(assignment.cpus)
}

/// Which CPU each shard runs on, and what to warn about.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Assignment {
    pub(crate) cpus: Vec<Option<usize>>,
    pub(crate) warning: Option<String>,
}

/// The pure part of [`shard_cpus`]: `usable` from the affinity mask
/// (`None`: unknown), `parallelism` the fallback shard count when it is.
pub(crate) fn assign_shards(
    usable: Option<&[usize]>,
    parallelism: usize,
    cpus: Option<&[usize]>,
    shards: Option<usize>,
) -> Result<Assignment, StartError> {
    let pool: Vec<usize> = match (cpus, usable) {
        (Some(listed), Some(usable)) => {
            if let Some(&cpu) = listed.iter().find(|cpu| !usable.contains(cpu)) {
                let usable = config::format_cpu_list(usable);
                return Err(StartError::CpuNotUsable { cpu, usable });
            }
            listed.to_vec()
        }
        (Some(listed), None) => {
            let warning = "cannot read this process's CPU affinity; pinning shards to the \
                           listed CPUs unchecked"
                .to_string();
            return Ok(round_robin(listed, shards, Some(warning)));
        }
        (None, Some(usable)) => usable.to_vec(),
        (None, None) => {
            let count = shards.unwrap_or(parallelism).max(1);
            let warning =
                format!("cannot read this process's CPU affinity; running {count} shards unpinned");
            return Ok(Assignment {
                cpus: vec![None; count],
                warning: Some(warning),
            });
        }
    };
    Ok(round_robin(&pool, shards, None))
}

/// `shards` (default: one per CPU) pinned to `pool` in order, wrapping
/// round-robin when there are more shards than CPUs.
fn round_robin(pool: &[usize], shards: Option<usize>, warning: Option<String>) -> Assignment {
    let count = shards.unwrap_or(pool.len());
    let shared = (count > pool.len()).then(|| {
        format!(
            "more shards ({count}) than CPUs ({}): shards share CPUs round-robin, which costs \
             latency; use at most one shard per CPU",
            config::format_cpu_list(pool)
        )
    });
    let cpus = pool
        .iter()
        .cycle()
        .take(count)
        .map(|&cpu| Some(cpu))
        .collect();
    Assignment {
        cpus,
        warning: warning.or(shared),
    }
}

// ---------------------------------------------------------------------------
// io_uring
// ---------------------------------------------------------------------------

/// Fails with the fix when io_uring cannot be used: tries to create a
/// small ring, and on failure explains the error with the
/// `kernel.io_uring_disabled` sysctl (Linux 6.6+).
pub fn check_io_uring() -> Result<(), StartError> {
    let disabled = read_proc_u32("/proc/sys/kernel/io_uring_disabled");
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok();
    let kernel = kernel.as_deref().map(str::trim);
    match io_uring::IoUring::new(8) {
        Ok(_ring) => {
            if let Some(version) = kernel.and_then(kernel_version).filter(|&v| v < KERNEL_MIN) {
                tracing::warn!(
                    "kernel {}.{} is older than {}.{}, the oldest tokio-uring is known to work on",
                    version.0,
                    version.1,
                    KERNEL_MIN.0,
                    KERNEL_MIN.1
                );
            }
            Ok(())
        }
        Err(err) => Err(StartError::IoUring(io_uring_error_message(
            disabled,
            err.raw_os_error(),
            kernel,
        ))),
    }
}

/// Explains why creating an io_uring failed, and the fix. Inputs: the
/// `kernel.io_uring_disabled` sysctl (`None` before Linux 6.6, where it
/// does not exist), the errno of `io_uring_setup` and the kernel release.
pub fn io_uring_error_message(
    disabled: Option<u32>,
    errno: Option<i32>,
    kernel: Option<&str>,
) -> String {
    let kernel = kernel.unwrap_or("unknown");
    let needs = format!(
        "ringcast needs io_uring (Linux {}.{} or later)",
        KERNEL_MIN.0, KERNEL_MIN.1
    );
    match (disabled, errno) {
        (Some(2), _) => "io_uring is disabled on this machine (kernel.io_uring_disabled = 2); \
             enable it with `sysctl -w kernel.io_uring_disabled=0` (and in /etc/sysctl.d/ to \
             keep it after a reboot)"
            .to_string(),
        (Some(1), Some(libc::EPERM)) => "io_uring is limited to the group \
             kernel.io_uring_group (kernel.io_uring_disabled = 1) and this process is not in \
             it; add the service user to that group (`sysctl kernel.io_uring_group` shows its \
             id), or enable io_uring for all with `sysctl -w kernel.io_uring_disabled=0`"
            .to_string(),
        (_, Some(libc::EPERM)) => "io_uring_setup was refused (EPERM) although the kernel \
             allows io_uring: a seccomp filter or security module blocks it, as container \
             runtimes do by default; allow io_uring_setup, io_uring_enter and io_uring_register \
             in the container's seccomp profile (e.g. docker run --security-opt \
             seccomp=PROFILE)"
            .to_string(),
        (_, Some(libc::ENOSYS)) => format!(
            "this kernel ({kernel}) has no io_uring (ENOSYS): it is older than 5.1, built \
             without CONFIG_IO_URING, or a sandbox hides the system call; {needs}: upgrade the \
             kernel or run where it is available"
        ),
        (_, Some(libc::ENOMEM)) => "io_uring could not lock memory for its rings (ENOMEM): \
             kernels before 5.12 charge them to the locked-memory limit; raise it with `ulimit \
             -l unlimited` or `LimitMEMLOCK=infinity` in the systemd unit, or upgrade the kernel"
            .to_string(),
        (_, Some(libc::EINVAL)) => format!(
            "this kernel ({kernel}) rejected io_uring setup (EINVAL), likely because it is too \
             old; {needs}: upgrade the kernel"
        ),
        (_, Some(errno)) => format!(
            "io_uring cannot be used: {} (kernel {kernel}); {needs}",
            io::Error::from_raw_os_error(errno)
        ),
        (_, None) => format!("io_uring cannot be used (kernel {kernel}); {needs}"),
    }
}

/// `(major, minor)` of a kernel release such as `6.8.0-45-generic`.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn read_proc_u32(path: &str) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

// ---------------------------------------------------------------------------
// Open-file limit
// ---------------------------------------------------------------------------

/// Descriptors the server needs: every connection, every pull's origin
/// connection, every shard's listeners (twice: the accept loop's, and the
/// copy a drain shuts down) and runtime, and spare.
pub fn files_needed(config: &Config, shards: usize) -> u64 {
    let shards = shards as u64;
    let addresses = config.listen.len()
        + config.http.listen.len()
        + config.tls.listen.len()
        + config.tls.http_listen.len();
    let listeners = shards.saturating_mul(addresses as u64).saturating_mul(2);
    (config.connections_max as u64)
        .saturating_add(config.relay.pulls_max as u64)
        .saturating_add(listeners)
        .saturating_add(shards.saturating_mul(FILES_PER_SHARD))
        .saturating_add(FILES_SPARE)
}

/// Raises the open-file soft limit to at least `needed` (up to the hard
/// limit, which an unprivileged process cannot raise); errors with the fix
/// (`ulimit -n`, systemd `LimitNOFILE=`) when the hard limit is lower.
pub fn ensure_file_limit(needed: u64) -> Result<(), StartError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(StartError::FileLimitUnreadable(io::Error::last_os_error()));
    }
    let (soft, hard) = (limit.rlim_cur, limit.rlim_max);
    // RLIM_INFINITY is u64::MAX, so plain comparisons hold for it too.
    if soft >= needed {
        return Ok(());
    }
    if hard < needed {
        return Err(StartError::FileLimitTooLow { needed, hard });
    }
    let raised = libc::rlimit {
        rlim_cur: needed,
        rlim_max: hard,
    };
    // SAFETY: `raised` is a valid rlimit for the call's duration.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        let source = io::Error::last_os_error();
        return Err(StartError::FileLimitNotRaised {
            soft,
            needed,
            hard,
            source,
        });
    }
    tracing::debug!(from = soft, to = needed, "raised the open-file soft limit");
    Ok(())
}

// ---------------------------------------------------------------------------
// Listeners
// ---------------------------------------------------------------------------

/// Binds every address once per shard with SO_REUSEPORT: the result is
/// `[shard][address]`, listening.
///
/// SO_REUSEPORT would let us share a port with another process of the same
/// user, so a taken port is first detected with a probe bound without it,
/// unless `ports` says to share (an upgrade in place). Port 0 (tests) is
/// chosen by the first shard's bind; the other shards bind the same port.
pub fn bind_listeners(
    addrs: &[SocketAddr],
    shards: usize,
    flag: &'static str,
    ports: Ports,
) -> Result<Vec<Vec<TcpListener>>, StartError> {
    // Probe every address before binding any, so nothing is held on failure.
    let probed = addrs.iter().filter(|addr| addr.port() != 0);
    for &addr in probed.filter(|_| ports == Ports::Own) {
        drop(bind_socket(addr, false).map_err(|err| bind_error(addr, flag, err))?);
    }
    let mut by_shard: Vec<Vec<TcpListener>> = (0..shards)
        .map(|_| Vec::with_capacity(addrs.len()))
        .collect();
    for &asked in addrs {
        let mut addr = asked;
        for listeners in &mut by_shard {
            let listener = listen_shared(addr).map_err(|err| bind_error(addr, flag, err))?;
            if addr.port() == 0 {
                let chosen = listener
                    .local_addr()
                    .map_err(|err| bind_error(asked, flag, err))?;
                addr.set_port(chosen.port());
            }
            listeners.push(listener);
        }
    }
    Ok(by_shard)
}

/// One shard's listener on `addr`, sharing the port with the other shards.
fn listen_shared(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = bind_socket(addr, true)?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// A TCP socket bound to `addr`, close-on-exec (socket2's default), with
/// SO_REUSEADDR so a restart is not refused by connections in TIME_WAIT.
fn bind_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        // So that `[::]:1935` and `0.0.0.0:1935` can both be listed.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// The admin API's listener. Plain (no SO_REUSEPORT): one control thread
/// accepts, and a second server on the same port must fail, not share.
pub fn bind_admin(addr: SocketAddr) -> Result<TcpListener, StartError> {
    let listen = || -> io::Result<TcpListener> {
        let socket = bind_socket(addr, false)?;
        socket.listen(ADMIN_BACKLOG)?;
        Ok(socket.into())
    };
    listen().map_err(|source| match source.raw_os_error() {
        Some(libc::EADDRINUSE) => StartError::AdminAddressInUse { addr },
        _ => StartError::AdminListen { addr, source },
    })
}

/// Turns a bind or listen error into the message with the fix.
fn bind_error(addr: SocketAddr, flag: &'static str, err: io::Error) -> StartError {
    match err.raw_os_error() {
        Some(libc::EADDRINUSE) => StartError::AddressInUse { addr, flag },
        Some(libc::EACCES) if addr.port() < 1024 => StartError::PrivilegedPort { addr, flag },
        Some(libc::EADDRNOTAVAIL) => StartError::AddressNotAvailable { addr, flag },
        _ => StartError::Listen { addr, source: err },
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv6Addr, TcpStream};

    use super::*;
    use crate::config::error_report;

    fn local(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    // --- CPUs ---

    #[test]
    fn without_cpus_or_shards_every_usable_cpu_gets_a_pinned_shard() {
        let assignment = assign_shards(Some(&[0, 1, 4]), 3, None, None).unwrap();
        assert_eq!(
            assignment,
            Assignment {
                cpus: vec![Some(0), Some(1), Some(4)],
                warning: None
            }
        );
    }

    #[test]
    fn fewer_shards_than_cpus_take_the_first_cpus() {
        let assignment = assign_shards(Some(&[0, 1, 2, 3]), 4, None, Some(2)).unwrap();
        assert_eq!(assignment.cpus, vec![Some(0), Some(1)]);
        assert_eq!(assignment.warning, None);
    }

    #[test]
    fn listed_cpus_set_the_shard_count_and_order() {
        let assignment = assign_shards(Some(&[0, 1, 2, 3]), 4, Some(&[3, 1]), None).unwrap();
        assert_eq!(assignment.cpus, vec![Some(3), Some(1)]);
    }

    #[test]
    fn more_shards_than_cpus_share_them_round_robin_with_a_warning() {
        let assignment = assign_shards(Some(&[0, 1, 2, 3]), 4, Some(&[2, 3]), Some(5)).unwrap();
        let expected = [2, 3, 2, 3, 2].map(Some).to_vec();
        assert_eq!(assignment.cpus, expected);
        let warning = assignment.warning.expect("warns");
        assert!(
            warning.contains("more shards (5) than CPUs (2-3)"),
            "{warning}"
        );
    }

    #[test]
    fn an_unusable_listed_cpu_is_named_with_the_usable_ones() {
        let err = assign_shards(Some(&[0, 1, 2, 3]), 4, Some(&[1, 6]), None).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("cpus: CPU 6 is not usable"),
            "{message}"
        );
        assert!(message.contains("(usable: 0-3)"), "{message}");
    }

    #[test]
    fn unknown_affinity_runs_unpinned_or_trusts_the_list() {
        let assignment = assign_shards(None, 3, None, None).unwrap();
        assert_eq!(assignment.cpus, vec![None, None, None]);
        assert!(assignment.warning.is_some());
        assert_eq!(assign_shards(None, 3, None, Some(5)).unwrap().cpus.len(), 5);
        let assignment = assign_shards(None, 3, Some(&[7]), None).unwrap();
        assert_eq!(assignment.cpus, vec![Some(7)]);
        assert!(assignment.warning.is_some());
    }

    #[test]
    fn shard_cpus_by_default_pins_one_shard_per_usable_cpu() {
        let shards = shard_cpus(&Config::default()).unwrap();
        match usable_cpus() {
            Some(usable) => assert_eq!(shards, usable.into_iter().map(Some).collect::<Vec<_>>()),
            None => assert!(shards.iter().all(Option::is_none)),
        }
    }

    // --- io_uring ---

    #[test]
    fn io_uring_disabled_by_sysctl_says_how_to_enable_it() {
        let message = io_uring_error_message(Some(2), Some(libc::EPERM), Some("6.8.0"));
        assert!(
            message.contains("kernel.io_uring_disabled = 2"),
            "{message}"
        );
        assert!(
            message.contains("`sysctl -w kernel.io_uring_disabled=0`"),
            "{message}"
        );
    }

    #[test]
    fn io_uring_limited_to_a_group_names_the_group_sysctl() {
        let message = io_uring_error_message(Some(1), Some(libc::EPERM), Some("6.8.0"));
        assert!(
            message.contains("kernel.io_uring_disabled = 1"),
            "{message}"
        );
        assert!(message.contains("kernel.io_uring_group"), "{message}");
    }

    #[test]
    fn io_uring_refused_while_enabled_points_at_seccomp() {
        for disabled in [Some(0), None] {
            let message = io_uring_error_message(disabled, Some(libc::EPERM), Some("6.8.0"));
            assert!(message.contains("seccomp"), "{message}");
        }
    }

    #[test]
    fn io_uring_missing_names_the_kernel_and_the_version_needed() {
        let message = io_uring_error_message(None, Some(libc::ENOSYS), Some("4.19.0"));
        assert!(
            message.contains("(4.19.0)") && message.contains("ENOSYS"),
            "{message}"
        );
        assert!(message.contains("Linux 5.11 or later"), "{message}");
        let message = io_uring_error_message(None, Some(libc::EINVAL), Some("5.4.0"));
        assert!(
            message.contains("EINVAL") && message.contains("Linux 5.11"),
            "{message}"
        );
    }

    #[test]
    fn io_uring_out_of_locked_memory_says_ulimit_l() {
        let message = io_uring_error_message(Some(0), Some(libc::ENOMEM), None);
        assert!(message.contains("`ulimit -l unlimited`"), "{message}");
        assert!(message.contains("LimitMEMLOCK=infinity"), "{message}");
    }

    #[test]
    fn io_uring_other_errors_keep_the_os_message() {
        let message = io_uring_error_message(Some(0), Some(libc::EMFILE), Some("6.1.0"));
        assert!(message.contains("Too many open files"), "{message}");
        let message = io_uring_error_message(None, None, None);
        assert!(message.contains("kernel unknown"), "{message}");
    }

    #[test]
    fn kernel_versions_parse_from_release_strings() {
        assert_eq!(kernel_version("6.8.0-45-generic"), Some((6, 8)));
        assert_eq!(kernel_version("5.10"), Some((5, 10)));
        assert_eq!(kernel_version("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(kernel_version("weird"), None);
        assert!(kernel_version("5.4.0").unwrap() < KERNEL_MIN);
    }

    // --- open-file limit ---

    fn current_file_limit() -> (u64, u64) {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a valid, writable rlimit.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        (limit.rlim_cur, limit.rlim_max)
    }

    #[test]
    fn file_limit_at_or_below_the_soft_limit_passes() {
        let (soft, _) = current_file_limit();
        ensure_file_limit(soft).expect("the current soft limit suffices");
        ensure_file_limit(1).expect("one descriptor suffices");
    }

    #[test]
    fn file_limit_above_the_hard_limit_fails_with_the_fix() {
        let (_, hard) = current_file_limit();
        if hard == libc::RLIM_INFINITY {
            eprintln!("skipped: the hard open-file limit is unlimited here");
            return;
        }
        let message = ensure_file_limit(hard + 1).unwrap_err().to_string();
        assert!(
            message.contains(&format!("hard limit is {hard}")),
            "{message}"
        );
        assert!(
            message.contains(&format!("`ulimit -n {}`", hard + 1)),
            "{message}"
        );
        assert!(
            message.contains(&format!("LimitNOFILE={}", hard + 1)),
            "{message}"
        );
    }

    #[test]
    fn files_needed_counts_connections_pulls_listeners_and_shards() {
        // Two RTMP addresses and the default HTTP one.
        let mut config = Config {
            connections_max: 1000,
            listen: vec![local(1935), local(1936)],
            ..Config::default()
        };
        config.relay.pulls_max = 300;
        assert_eq!(
            files_needed(&config, 4),
            1000 + 300 + 4 * (2 + 1) * 2 + 4 * FILES_PER_SHARD + FILES_SPARE
        );
    }

    // --- listeners ---

    #[test]
    fn port_zero_binds_every_shard_to_the_same_port() {
        let listeners = bind_listeners(&[local(0)], 3, "--listen", Ports::Own).unwrap();
        assert_eq!(listeners.len(), 3);
        let ports: Vec<u16> = listeners
            .iter()
            .map(|shard| {
                assert_eq!(shard.len(), 1);
                shard[0].local_addr().unwrap().port()
            })
            .collect();
        assert_ne!(ports[0], 0);
        assert!(ports.iter().all(|&port| port == ports[0]), "{ports:?}");
        // Listening: the kernel completes a connection without an accept.
        TcpStream::connect(local(ports[0])).expect("a shard's listener takes the connection");
    }

    #[test]
    fn listeners_are_indexed_by_shard_then_address() {
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 0));
        let addrs = if std::net::TcpListener::bind(v6).is_ok() {
            vec![local(0), v6]
        } else {
            vec![local(0), local(0)]
        };
        let listeners = bind_listeners(&addrs, 2, "--listen", Ports::Own).unwrap();
        assert_eq!(listeners.len(), 2);
        for shard in &listeners {
            assert_eq!(shard.len(), 2);
            assert_eq!(shard[1].local_addr().unwrap().ip(), addrs[1].ip());
        }
    }

    #[test]
    fn a_taken_port_is_reported_with_the_address() {
        let taken = std::net::TcpListener::bind(local(0)).unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind_listeners(&[addr], 2, "--listen", Ports::Own).unwrap_err();
        assert!(matches!(err, StartError::AddressInUse { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("address {addr} is already in use")),
            "{message}"
        );
        assert!(message.contains("--listen"), "{message}");
    }

    #[test]
    fn a_port_shared_with_so_reuseport_by_another_server_is_still_taken() {
        // Another ringcast of the same user: SO_REUSEPORT alone would let
        // us bind next to it and split its connections.
        let other = listen_shared(local(0)).unwrap();
        let addr = other.local_addr().unwrap();
        let err = bind_listeners(&[addr], 1, "--listen", Ports::Own).unwrap_err();
        assert!(matches!(err, StartError::AddressInUse { .. }), "{err:?}");
    }

    #[test]
    fn shared_ports_bind_beside_a_server_already_there() {
        let other = listen_shared(local(0)).unwrap();
        let addr = other.local_addr().unwrap();
        let listeners = bind_listeners(&[addr], 2, "--listen", Ports::Shared).unwrap();
        for shard in &listeners {
            assert_eq!(shard[0].local_addr().unwrap(), addr);
        }
        // A port taken without SO_REUSEPORT is still taken.
        let plain = std::net::TcpListener::bind(local(0)).unwrap();
        let addr = plain.local_addr().unwrap();
        let err = bind_listeners(&[addr], 1, "--listen", Ports::Shared).unwrap_err();
        assert!(matches!(err, StartError::AddressInUse { .. }), "{err:?}");
    }

    #[test]
    fn a_taken_admin_port_names_the_flag_and_off() {
        let taken = std::net::TcpListener::bind(local(0)).unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind_admin(addr).unwrap_err();
        assert!(
            matches!(err, StartError::AdminAddressInUse { .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.starts_with(&format!("admin address {addr} is already in use")));
        assert!(message.contains("--admin ADDR") && message.contains("--admin off"));
    }

    #[test]
    fn bind_errors_map_to_messages_with_the_fix() {
        let eacces = || io::Error::from_raw_os_error(libc::EACCES);
        let message = bind_error(local(80), "--listen", eacces()).to_string();
        assert!(
            message.contains("cap_net_bind_service") && message.contains("1024"),
            "{message}"
        );
        let err = bind_error(local(8080), "--listen", eacces());
        assert!(matches!(err, StartError::Listen { .. }), "{err:?}");
        assert!(
            error_report(&err).contains("Permission denied"),
            "{}",
            error_report(&err)
        );
        let err = bind_error(
            local(1935),
            "--listen",
            io::Error::from_raw_os_error(libc::EADDRNOTAVAIL),
        );
        assert!(
            err.to_string().contains("not assigned to this machine"),
            "{err}"
        );
    }

    // --- prepare ---

    #[test]
    fn prepare_rejects_an_invalid_config_before_touching_the_machine() {
        let config = Config {
            chunk_size: 1,
            ..Config::default()
        };
        let err = prepare(config).unwrap_err();
        assert!(matches!(err, StartError::Config(_)), "{err:?}");
        assert!(err.to_string().contains("chunk_size = 1"), "{err}");
    }

    #[test]
    fn prepare_binds_one_listener_set_per_shard() {
        if let Err(err) = check_io_uring() {
            eprintln!("skipped: {err}");
            return;
        }
        let config = Config {
            listen: vec![local(0)],
            shards: Some(2),
            connections_max: 16,
            admin: Some(local(0)),
            ..Config::default()
        };
        let prepared = prepare(config).unwrap();
        assert_eq!(prepared.shard_cpus.len(), 2);
        assert_eq!(prepared.listeners.len(), 2);
        let admin = prepared.admin.expect("admin listener");
        assert_ne!(admin.local_addr().unwrap().port(), 0);
    }
}
