//! Reloading the configuration while the server runs (SIGHUP, or the admin
//! API): read the same file and flags again, validate, and hand every
//! shard the new settings, dropping no connection.
//!
//! What applies: access rules and hooks, caps and limits, timeouts, stream,
//! player and relay settings, and the TLS certificates and relay CA (read
//! again from their files) — each to what starts after the reload (a
//! connection accepted, a publish, a play, a pull) — and the admin API's
//! origins and token (read again from its file), to the next request. What
//! cannot change in a running process — the RTMP, HTTP and TLS listen
//! addresses, the shards and their CPUs, the admin address, the log
//! format — keeps its running value, and the report names it as needing
//! a restart. Each shard takes the new settings from its inbox: the
//! reload is reported when it is sent, and in force on a shard moments
//! later.

use std::sync::{Arc, Mutex, MutexGuard};

use tracing::{info, warn};

use crate::config::{Config, ConfigError};
use crate::shard::ShardId;
use crate::shard::mesh::Mesh;
use crate::shard::messages::ShardMessage;
use crate::startup::{self, StartError};

/// Where a reload reads the configuration: the file and flags the server
/// started with.
pub type ConfigSource = Arc<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// What a reload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Keys that changed but keep their running value until a restart.
    pub restart_required: Vec<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("configuration not reloaded: {0}")]
    Config(#[from] ConfigError),
    #[error("configuration not reloaded: {0}")]
    Start(#[from] StartError),
    #[error("configuration not reloaded: the server was started without a way to read it again")]
    NoSource,
}

/// The running configuration and the means to replace it.
pub struct Reloader {
    mesh: Mesh,
    running: Mutex<Arc<Config>>,
    source: Option<ConfigSource>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("running", &self.running)
            .field("source", &self.source.as_ref().map(|_| "file and flags"))
            .finish_non_exhaustive()
    }
}

impl Reloader {
    pub fn new(mesh: Mesh, running: Arc<Config>, source: Option<ConfigSource>) -> Reloader {
        Reloader {
            mesh,
            running: Mutex::new(running),
            source,
        }
    }

    /// The configuration in force.
    pub fn running(&self) -> Arc<Config> {
        self.lock().clone()
    }

    /// Reads the configuration again from where it came from and applies
    /// it.
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let source = self.source.as_ref().ok_or(ReloadError::NoSource)?;
        self.apply(source()?)
    }

    /// Applies `config` (validated): every shard takes it for what starts
    /// from now on.
    pub fn apply(&self, mut config: Config) -> Result<ReloadReport, ReloadError> {
        config.validate().map_err(StartError::Config)?;
        let mut running = self.lock();
        let restart_required = keep_fixed(&running, &mut config);
        // A larger connection cap needs descriptors, as at startup.
        let shards = self.mesh.shards();
        startup::ensure_file_limit(startup::files_needed(&config, shards))?;
        if restart_required.is_empty() {
            info!("configuration reloaded");
        } else {
            warn!(restart_required = ?restart_required, "configuration reloaded; these keys changed and need a restart");
        }
        config.tls.log_certificates();
        let config = Arc::new(config);
        for shard in 0..shards {
            self.mesh
                .send(ShardId(shard), ShardMessage::Reload(config.clone()));
        }
        *running = config;
        Ok(ReloadReport { restart_required })
    }

    fn lock(&self) -> MutexGuard<'_, Arc<Config>> {
        // Replaced in one assignment: never left half-written.
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Sets back in `new` what a running server cannot change, naming each key
/// that differed.
fn keep_fixed(running: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if new.listen != running.listen {
        new.listen.clone_from(&running.listen);
        changed.push("listen");
    }
    // The shards' HTTP listeners are bound at startup like the RTMP ones.
    if new.http.listen != running.http.listen {
        new.http.listen.clone_from(&running.http.listen);
        changed.push("http_listen");
    }
    if new.tls.listen != running.tls.listen {
        new.tls.listen.clone_from(&running.tls.listen);
        changed.push("tls.listen");
    }
    if new.tls.http_listen != running.tls.http_listen {
        new.tls.http_listen.clone_from(&running.tls.http_listen);
        changed.push("tls.http_listen");
    }
    if new.shards != running.shards {
        new.shards = running.shards;
        changed.push("shards");
    }
    if new.cpus != running.cpus {
        new.cpus.clone_from(&running.cpus);
        changed.push("cpus");
    }
    if new.admin != running.admin {
        new.admin = running.admin;
        changed.push("admin");
    }
    // The log writer is set up once, before the shards start.
    if new.log_format != running.log_format {
        new.log_format = running.log_format;
        changed.push("log_format");
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Network;

    #[test]
    fn fixed_keys_keep_their_running_values_and_are_named() {
        let running = Config::default();
        let mut new = Config {
            listen: vec!["127.0.0.1:1999".parse().unwrap()],
            shards: Some(7),
            admin: None,
            connections_per_ip_max: 3,
            log_format: crate::config::LogFormat::Json,
            ..Config::default()
        };
        new.http.listen = vec!["127.0.0.1:8081".parse().unwrap()];
        new.access.default.play.deny = vec!["10.0.0.0/8".parse::<Network>().unwrap()];
        new.http.allow_origin = "https://a.example".into();
        let changed = keep_fixed(&running, &mut new);
        assert_eq!(
            changed,
            ["listen", "http_listen", "shards", "admin", "log_format"]
        );
        assert_eq!(new.log_format, running.log_format);
        assert_eq!(new.http.listen, running.http.listen);
        assert_eq!(new.http.allow_origin, "https://a.example", "applies");
        assert_eq!(new.listen, running.listen);
        assert_eq!(new.http.listen, running.http.listen);
        assert_eq!(
            new.http.allow_origin, "https://a.example",
            "the rest applies"
        );
        assert_eq!(new.shards, None);
        assert_eq!(new.admin, running.admin);
        assert_eq!(new.connections_per_ip_max, 3, "the rest applies");
        assert_eq!(new.access.default.play.deny.len(), 1);
    }

    #[test]
    fn a_reload_reaches_every_shard_and_becomes_the_running_config() {
        let (mesh, mut inboxes) = Mesh::new(2);
        let reloader = Reloader::new(mesh, Arc::new(Config::default()), None);
        assert!(matches!(reloader.reload(), Err(ReloadError::NoSource)));
        let new = Config {
            streams_max: 5,
            ..Config::default()
        };
        let report = reloader.apply(new).unwrap();
        assert_eq!(report, ReloadReport::default());
        assert_eq!(reloader.running().streams_max, 5);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for inbox in &mut inboxes {
            let message = runtime.block_on(inbox.recv());
            assert!(
                matches!(message, Some(ShardMessage::Reload(c)) if c.streams_max == 5),
                "each shard is told"
            );
        }
        let invalid = Config {
            chunk_size: 1,
            ..Config::default()
        };
        let err = reloader.apply(invalid).unwrap_err();
        assert!(
            err.to_string().contains("chunk_size = 1 is out of range"),
            "{err}"
        );
        assert_eq!(
            reloader.running().streams_max,
            5,
            "a bad reload changes nothing"
        );
    }
}
