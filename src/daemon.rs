//! The daemon's lifecycle: config -> store -> directory -> bind -> serve ->
//! drain -> flush. Signals are registered before anything slow; the start-up
//! lines `listening for RADIUS on ADDR` and `admin socket at PATH` are stable
//! (tests read them to learn the ports bound to 0).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UdpSocket, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::server::{AccessPolicy, AdminServer};
use crate::config::{Config, ConfigError, DirectoryConfig};
use crate::crypto::SeedCipher;
use crate::directory::UserDirectory;
use crate::directory::ldap::LdapDirectory;
use crate::directory::static_list::StaticDirectory;
use crate::radius::server::RadiusServer;
use crate::service::{Service, Settings, system_clock};
use crate::store::TokenStore;
use crate::store::sled_store::SledStore;

/// Exit status for a configuration that cannot be used (sysexits EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;
/// How long requests in flight may take to finish after SIGTERM.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{context}: {reason}")]
    Startup { context: String, reason: String },
}

impl DaemonError {
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Config(_) => EXIT_CONFIG,
            DaemonError::Startup { .. } => 1,
        }
    }
}

fn startup(context: impl Into<String>, reason: impl ToString) -> DaemonError {
    DaemonError::Startup {
        context: context.into(),
        reason: reason.to_string(),
    }
}

/// Loads and fully checks a configuration, as `--check-config` does: the
/// file itself, secret files, and the key file (which must exist).
pub fn check_config(path: &Path) -> Result<Config, ConfigError> {
    let config = Config::load(path)?;
    if config.store.key_file.exists() {
        if let Err(e) = SeedCipher::from_key_file(&config.store.key_file, false) {
            return Err(ConfigError::Invalid {
                problems: vec![crate::config::Problem {
                    path: "store.key_file".into(),
                    message: e.to_string(),
                }],
            });
        }
    }
    Ok(config)
}

/// The directory of `config`. Nothing connects yet (an LDAP directory
/// connects at its first use); files it names (CA, bind password) are read.
pub fn build_directory(config: &Config) -> Result<Arc<dyn UserDirectory>, DaemonError> {
    Ok(match &config.directory {
        DirectoryConfig::Static { users } => Arc::new(StaticDirectory::new(users.iter().map(Into::into))),
        DirectoryConfig::Ldap(ldap) => Arc::new(LdapDirectory::new(ldap).map_err(|e| startup("directory", e))?),
    })
}

/// Logs whether the directory answers; the daemon starts either way.
fn probe_directory(directory: Arc<dyn UserDirectory>) {
    tokio::spawn(async move {
        match directory.probe().await {
            Ok(place) => tracing::info!("user directory reachable: {place}"),
            Err(e) => tracing::warn!("user directory not reachable yet: {e}"),
        }
    });
}

fn settings_of(config: &Config) -> Settings {
    Settings {
        auth: config.auth.clone(),
        token_types: config.token_types.clone(),
    }
}

fn access_policy(config: &Config) -> AccessPolicy {
    AccessPolicy {
        daemon_uid: nix::unistd::getuid().as_raw(),
        allowed_uids: config.admin.allowed_uids.clone(),
        allowed_gids: config.allowed_gids(),
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config_path: PathBuf, config: Config) -> Result<(), DaemonError> {
    let shutdown = CancellationToken::new();
    let (signal_tx, mut signal_rx) = tokio::sync::mpsc::unbounded_channel();
    spawn_signal_thread(signal_tx)?;

    let cipher = SeedCipher::from_key_file(&config.store.key_file, true).map_err(|e| startup("store.key_file", e))?;
    let store: Arc<dyn TokenStore> = Arc::new(
        SledStore::open(&config.store.path, config.store.cache_mib << 20)
            .map_err(|e| startup(format!("cannot open the store at {}", config.store.path.display()), e))?,
    );
    let clients = config.radius_clients()?;
    let directory = build_directory(&config)?;
    probe_directory(directory.clone());
    let service = Arc::new(
        Service::new(store.clone(), cipher, directory, settings_of(&config), system_clock())
            .map_err(|e| startup("cannot start the token service", e))?,
    );
    let radius = Arc::new(RadiusServer::new(
        service.clone(),
        clients,
        Duration::from_secs(config.radius.duplicate_cache_seconds),
        config.radius.duplicate_cache_entries,
        config.radius.max_in_flight,
    ));
    let admin = Arc::new(AdminServer::new(service.clone(), access_policy(&config)));

    let tasks = TaskTracker::new();
    let request_tasks = TaskTracker::new();
    for address in &config.radius.listen {
        let socket = bind_udp(*address, config.radius.receive_buffer_bytes).await?;
        let bound = socket.local_addr().map_err(|e| startup("local address", e))?;
        tracing::info!("listening for RADIUS on {bound}");
        tasks.spawn(
            radius
                .clone()
                .serve(Arc::new(socket), shutdown.clone(), request_tasks.clone()),
        );
    }
    let listener = bind_admin_socket(&config.admin.socket)?;
    tracing::info!("admin socket at {}", config.admin.socket.display());
    tasks.spawn(admin.clone().serve(listener, shutdown.clone(), request_tasks.clone()));
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "radotpd ready");

    let mut current = config;
    while let Some(signal) = signal_rx.recv().await {
        match signal {
            signal_hook::consts::SIGHUP => match reload(&config_path, &current) {
                Ok((new_config, directory)) => {
                    match new_config.radius_clients() {
                        Ok(clients) => radius.replace_clients(clients),
                        Err(e) => tracing::error!(error = %e, "reload: clients unchanged"),
                    }
                    probe_directory(directory.clone());
                    service.replace_settings(settings_of(&new_config), directory);
                    admin.replace_policy(access_policy(&new_config));
                    tracing::info!("configuration reloaded");
                    current = new_config;
                }
                Err(e) => tracing::error!("reload refused; the running configuration stays in force:\n{e}"),
            },
            _ => break,
        }
    }

    tracing::info!("stopping: no new requests; finishing those in flight");
    shutdown.cancel();
    tasks.close();
    request_tasks.close();
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        tasks.wait().await;
        request_tasks.wait().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("some requests did not finish within {DRAIN_DEADLINE:?}");
    }
    if let Err(e) = store.flush() {
        tracing::error!(error = %e, "final store flush failed");
    }
    let _ = std::fs::remove_file(&current.admin.socket);
    tracing::info!("radotpd stopped");
    Ok(())
}

fn reload(path: &Path, running: &Config) -> Result<(Config, Arc<dyn UserDirectory>), DaemonError> {
    let new = Config::load(path)?;
    let directory = build_directory(&new)?;
    if new.radius.listen != running.radius.listen {
        tracing::warn!("reload: radius.listen changed; it takes effect at the next restart");
    }
    if new.store.path != running.store.path || new.store.key_file != running.store.key_file {
        tracing::warn!("reload: store settings changed; they take effect at the next restart");
    }
    if new.admin.socket != running.admin.socket {
        tracing::warn!("reload: admin.socket changed; it takes effect at the next restart");
    }
    Ok((new, directory))
}

fn spawn_signal_thread(tx: tokio::sync::mpsc::UnboundedSender<i32>) -> Result<(), DaemonError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM]).map_err(|e| startup("signals", e))?;
    std::thread::Builder::new()
        .name("radotp-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if tx.send(signal).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| startup("signal thread", e))?;
    Ok(())
}

async fn bind_udp(address: std::net::SocketAddr, receive_buffer: usize) -> Result<UdpSocket, DaemonError> {
    let socket = UdpSocket::bind(address)
        .await
        .map_err(|e| startup(format!("cannot bind RADIUS to {address}"), e))?;
    if let Err(e) = nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RcvBuf, &receive_buffer) {
        tracing::warn!(error = %e, "cannot set the UDP receive buffer size");
    }
    Ok(socket)
}

fn bind_admin_socket(path: &Path) -> Result<UnixListener, DaemonError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| startup(format!("cannot create {}", parent.display()), e))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(startup(
                format!("admin socket {}", path.display()),
                "another radotpd is listening there",
            ));
        }
        std::fs::remove_file(path).map_err(|e| startup(format!("cannot remove stale {}", path.display()), e))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| startup(format!("cannot bind {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| startup(format!("cannot set permissions on {}", path.display()), e))?;
    Ok(listener)
}
