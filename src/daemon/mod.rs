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
use crate::admin::wire::ReloadOutcome;
use crate::config::{Config, ConfigError, DirectoryConfig, StoreKind};
use crate::crypto::SeedCipher;
use crate::directory::UserDirectory;
use crate::directory::ldap::LdapDirectory;
use crate::directory::static_list::StaticDirectory;
use crate::domain::audit_anchor::AnchorCheck;
use crate::domain::backup::{BACKUP_FORMAT, BACKUP_VERSION, Backup, RestoreError, RestoreReport};
use crate::domain::enroll::EnrollLabels;
use crate::domain::key_check::{KEY_CHECK_META, KeyCheck, KeyCheckError, check_master_key};
use crate::domain::{Service, Settings, system_clock};
use crate::metrics::Metrics;
use crate::radius::server::RadiusServer;
use crate::store::Store;
use crate::store::postgres::{PgSettings, PostgresStore};
use crate::store::sled::SledStore;

mod background;
mod store_setup;

use background::*;
use store_setup::*;
pub use store_setup::{check_stored_types, open_store, restore};

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
    DaemonError::Startup { context: context.into(), reason: reason.to_string() }
}

/// Loads and fully checks a configuration, as `--check-config` does: the
/// file itself, secret files, and the key file (which must exist).
pub fn check_config(path: &Path) -> Result<Config, ConfigError> {
    let config = Config::load(path)?;
    if config.store.key_file.exists() {
        if let Err(e) = SeedCipher::from_key_file(&config.store.key_file, false) {
            return Err(ConfigError::Invalid {
                problems: vec![crate::config::Problem { path: "store.key_file".into(), message: e.to_string() }],
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
        DirectoryConfig::Ldap(ldap) => {
            let authorization = config.authorization().unwrap_or_default();
            let want_groups = authorization.needs_directory()
                || config
                    .radius
                    .clients
                    .iter()
                    .any(|c| c.allowed_groups.is_some() || c.nas.iter().any(|n| n.allowed_groups.is_some()));
            let directory = LdapDirectory::new(ldap).map_err(|e| startup("directory", e))?;
            Arc::new(directory.with_authorization(want_groups, authorization.directory_attributes()))
        }
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
        enroll: EnrollLabels { issuer: config.enroll.issuer.clone(), account: config.enroll.account_label.clone() },
        directory_gate: matches!(&config.directory, DirectoryConfig::Ldap(_)),
        retention: config.audit.retention(),
        clients: config.radius.clients.iter().map(|c| (c.name.clone(), c.access())).collect(),
        authorization: Arc::new(config.authorization().unwrap_or_else(|e| {
            // validate() refused such a configuration; a dictionary file changed since.
            tracing::error!("authorization rules left out: {e}");
            Default::default()
        })),
    }
}

fn access_policy(config: &Config) -> AccessPolicy {
    let roles = &config.admin.roles;
    let mut admin_uids = config.admin.allowed_uids.clone();
    admin_uids.extend(&roles.admin.uids);
    let mut admin_gids = config.allowed_gids();
    admin_gids.extend(crate::config::resolve_groups(&roles.admin.groups));
    AccessPolicy {
        daemon_uid: nix::unistd::getuid().as_raw(),
        admin_uids,
        admin_gids,
        operator_uids: roles.operator.uids.clone(),
        operator_gids: crate::config::resolve_groups(&roles.operator.groups),
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config_path: PathBuf, config: Config) -> Result<(), DaemonError> {
    let shutdown = CancellationToken::new();
    let (signal_tx, mut signal_rx) = tokio::sync::mpsc::unbounded_channel();
    spawn_signal_thread(signal_tx)?;

    let store = open_store(&config).await?;
    // A new key only for a new store: a fresh key would open none of the stored seeds.
    let store_is_new = store.is_empty().await.unwrap_or(false);
    if !store_is_new && !config.store.key_file.exists() {
        return Err(startup(
            "store.key_file",
            format!(
                "{} does not exist, but the store at {} holds data sealed with a key: restore that key file (a new key would open none of the seeds)",
                config.store.key_file.display(),
                store_name(&config)
            ),
        ));
    }
    let cipher =
        SeedCipher::from_key_file(&config.store.key_file, store_is_new).map_err(|e| startup("store.key_file", e))?;
    let key_check = verify_master_key(store.as_ref(), &cipher, &config, true).await?;
    let clients = config.radius_clients()?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let directory = build_directory(&config)?;
    probe_directory(directory.clone());
    let metrics = Arc::new(Metrics::default());
    let service =
        Arc::new(Service::new(store.clone(), cipher, directory, settings_of(&config), system_clock(), metrics.clone()));
    let radius = Arc::new(RadiusServer::new(
        service.clone(),
        clients,
        Duration::from_secs(config.radius.duplicate_cache_seconds),
        config.radius.duplicate_cache_entries,
        config.radius.max_in_flight,
    ));
    // The audit log must still reach its anchored head; while it does, the
    // head is anchored again as the log grows.
    // A store that had no key check value (new, or of an older radotp) has
    // no anchor yet either: its head is anchored now.
    let checked = match key_check {
        KeyCheck::Recorded => service.anchor_audit().await.map(|_| AnchorCheck::Reached),
        _ => service.check_audit_anchor().await,
    };
    let anchoring = match checked {
        Ok(AnchorCheck::Broken { .. }) => false,
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "cannot check the audit log's anchor");
            false
        }
    };
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel::<tokio::sync::oneshot::Sender<ReloadOutcome>>(4);
    let admin = Arc::new(AdminServer::new(
        service.clone(),
        access_policy(&config),
        reload_tx,
        Duration::from_secs(config.admin.request_timeout_seconds),
    ));

    let tasks = TaskTracker::new();
    let request_tasks = TaskTracker::new();
    for address in &config.radius.listen {
        let socket = bind_udp(*address, config.radius.receive_buffer_bytes).await?;
        let bound = socket.local_addr().map_err(|e| startup("local address", e))?;
        tracing::info!("listening for RADIUS on {bound}");
        tasks.spawn(radius.clone().serve(Arc::new(socket), shutdown.clone(), request_tasks.clone()));
    }
    if let Some(address) = config.metrics.listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| startup(format!("cannot bind metrics.listen {address}"), e))?;
        let bound = listener.local_addr().map_err(|e| startup("local address", e))?;
        tracing::info!("metrics on http://{bound}/metrics");
        tasks.spawn(crate::metrics::serve_prometheus(listener, metrics.clone(), shutdown.clone()));
    }
    if let Some(web) = &config.web {
        let tls = crate::web::tls_acceptor(&web.tls_cert_file, &web.tls_key_file).map_err(|e| startup("web", e))?;
        let listener = tokio::net::TcpListener::bind(web.listen)
            .await
            .map_err(|e| startup(format!("cannot bind web.listen {}", web.listen), e))?;
        let bound = listener.local_addr().map_err(|e| startup("local address", e))?;
        tracing::info!("web console on https://{bound}/");
        let console = Arc::new(crate::web::Console::new(service.clone(), web));
        tasks.spawn(console.serve(listener, tls, shutdown.clone()));
    }
    tasks.spawn(watch_store_health(store.clone(), metrics.clone(), shutdown.clone()));
    tasks.spawn(apply_audit_retention(service.clone(), shutdown.clone()));
    tasks.spawn(watch_clock(shutdown.clone()));
    let listener = bind_admin_socket(&config.admin.socket)?;
    apply_socket_access(&config).map_err(|e| startup(format!("admin socket {}", config.admin.socket.display()), e))?;
    tracing::info!("admin socket at {}", config.admin.socket.display());
    tasks.spawn(admin.clone().serve(listener, shutdown.clone(), request_tasks.clone()));
    if let Ok((undefined, _)) = undefined_types(store.as_ref(), &config).await {
        for (id, count) in undefined {
            tracing::warn!("{count} stored token(s) have type {id:?}, which the configuration does not define");
        }
    }
    if anchoring {
        tasks.spawn(anchor_audit_every(AUDIT_ANCHOR_INTERVAL, service.clone(), shutdown.clone()));
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "radotpd ready");
    crate::notify::notify("READY=1");
    if let Some(interval) = crate::notify::watchdog_interval() {
        tasks.spawn(watchdog(interval / 2, shutdown.clone()));
    }

    let mut current = config;
    loop {
        let reply_to = tokio::select! {
            signal = signal_rx.recv() => match signal {
                Some(signal_hook::consts::SIGHUP) => None,
                _ => break,
            },
            request = reload_rx.recv() => match request {
                Some(reply_to) => Some(reply_to),
                None => continue,
            },
        };
        crate::notify::reloading();
        let outcome = match reload(&config_path, &current) {
            Ok((mut new_config, mut outcome, directory)) => {
                keep_restart_only_settings(&mut new_config, &current);
                // Read once more here; should a secret file vanish in between,
                // keep the running clients rather than stop the daemon.
                match new_config.radius_clients() {
                    Ok(clients) => radius.replace_clients(clients),
                    Err(e) => outcome.warnings.push(format!("RADIUS clients unchanged: {e}")),
                }
                probe_directory(directory.clone());
                service.replace_settings(settings_of(&new_config), directory);
                admin.replace_policy(access_policy(&new_config));
                admin.replace_request_timeout(Duration::from_secs(new_config.admin.request_timeout_seconds));
                if let Err(e) = apply_socket_access(&new_config) {
                    outcome.warnings.push(format!("admin socket permissions unchanged: {e}"));
                }
                if let Ok((undefined, _)) = undefined_types(store.as_ref(), &new_config).await {
                    outcome.warnings.extend(undefined.into_iter().map(|(id, count)| {
                        format!("{count} stored token(s) have type {id:?}, which is no longer defined")
                    }));
                }
                for line in outcome.restart_needed.iter().chain(&outcome.warnings) {
                    tracing::warn!("reload: {line}");
                }
                tracing::info!("configuration reloaded");
                current = new_config;
                outcome
            }
            Err(e) => {
                tracing::error!("reload refused; the running configuration stays in force:\n{e}");
                ReloadOutcome {
                    applied: false,
                    problems: e.problems().iter().map(ToString::to_string).collect(),
                    ..Default::default()
                }
            }
        };
        crate::notify::notify("READY=1");
        if let Some(reply_to) = reply_to {
            let _ = reply_to.send(outcome);
        }
    }

    crate::notify::notify("STOPPING=1");
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
    if let Err(e) = service.flush().await {
        tracing::error!(error = %e, "final store flush failed");
    }
    if anchoring {
        if let Err(e) = service.anchor_audit().await {
            tracing::error!(error = %e, "cannot anchor the audit log at shutdown");
        }
    }
    let _ = std::fs::remove_file(&current.admin.socket);
    tracing::info!("radotpd stopped");
    Ok(())
}

/// Loads the new configuration completely (secrets included) before anything
/// is replaced, so a bad file leaves the running configuration untouched.
fn reload(path: &Path, running: &Config) -> Result<(Config, ReloadOutcome, Arc<dyn UserDirectory>), ConfigError> {
    let new = check_config(path)?;
    new.radius_clients()?;
    let directory = build_directory(&new).map_err(|e| ConfigError::Invalid {
        problems: vec![crate::config::Problem { path: "directory".into(), message: e.to_string() }],
    })?;
    let mut outcome = ReloadOutcome { applied: true, ..Default::default() };
    outcome.warnings.extend(new.warnings().iter().map(ToString::to_string));
    let mut restart = |changed: bool, key: &str| {
        if changed {
            outcome.restart_needed.push(format!("{key} changed; it takes effect at the next restart"));
        }
    };
    restart(new.radius.listen != running.radius.listen, "radius.listen");
    restart(new.radius.max_in_flight != running.radius.max_in_flight, "radius.max_in_flight");
    restart(
        new.radius.duplicate_cache_seconds != running.radius.duplicate_cache_seconds,
        "radius.duplicate_cache_seconds",
    );
    restart(
        new.radius.duplicate_cache_entries != running.radius.duplicate_cache_entries,
        "radius.duplicate_cache_entries",
    );
    restart(new.radius.receive_buffer_bytes != running.radius.receive_buffer_bytes, "radius.receive_buffer_bytes");
    restart(new.store.cache_mib != running.store.cache_mib, "store.cache_mib");
    restart(new.store.durability != running.store.durability, "store.durability");
    restart(new.store.checkpoint_ms != running.store.checkpoint_ms, "store.checkpoint_ms");
    restart(new.log.level != running.log.level, "log.level");
    restart(new.store.path != running.store.path, "store.path");
    restart(new.store.key_file != running.store.key_file, "store.key_file");
    restart(new.store.kind != running.store.kind, "store.kind");
    restart(
        new.store.postgres.as_ref().map(|p| &p.url) != running.store.postgres.as_ref().map(|p| &p.url),
        "store.postgres",
    );
    restart(new.node.name != running.node.name, "node.name");
    restart(new.admin.socket != running.admin.socket, "admin.socket");
    restart(new.metrics.listen != running.metrics.listen, "metrics.listen");
    Ok((new, outcome, directory))
}

/// Settings that need a restart keep their running values, so the next
/// reload compares against what is really in force.
fn keep_restart_only_settings(new: &mut Config, running: &Config) {
    new.radius.listen = running.radius.listen.clone();
    new.radius.max_in_flight = running.radius.max_in_flight;
    new.radius.duplicate_cache_seconds = running.radius.duplicate_cache_seconds;
    new.radius.duplicate_cache_entries = running.radius.duplicate_cache_entries;
    new.radius.receive_buffer_bytes = running.radius.receive_buffer_bytes;
    new.store = running.store.clone();
    new.node = running.node.clone();
    new.admin.socket = running.admin.socket.clone();
    new.metrics = running.metrics.clone();
    new.log = running.log.clone();
    // The web console (roles included) is read at start only.
    new.web = running.web.clone();
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

/// Binds one RADIUS listener. IPv6 addresses are bound IPv6-only, so that
/// `[::]:1812` next to `0.0.0.0:1812` works whatever
/// `net.ipv6.bindv6only` says (Linux defaults to dual stack, which would
/// make the second bind fail with "Address already in use").
async fn bind_udp(address: std::net::SocketAddr, receive_buffer: usize) -> Result<UdpSocket, DaemonError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let cannot_bind = |e: std::io::Error| startup(format!("cannot bind RADIUS to {address}"), e);
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, Some(Protocol::UDP)).map_err(cannot_bind)?;
    if address.is_ipv6() {
        socket.set_only_v6(true).map_err(cannot_bind)?;
    }
    if let Err(e) = socket.set_recv_buffer_size(receive_buffer) {
        tracing::warn!(error = %e, "cannot set the UDP receive buffer size");
    }
    socket.set_nonblocking(true).map_err(cannot_bind)?;
    socket.bind(&address.into()).map_err(cannot_bind)?;
    UdpSocket::from_std(socket.into()).map_err(cannot_bind)
}

fn bind_admin_socket(path: &Path) -> Result<UnixListener, DaemonError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::fsmode::create_dir_all_with_mode(parent, 0o755)
            .map_err(|e| startup(format!("cannot create {}", parent.display()), e))?;
    }
    // Only a stale socket is replaced: anything else at the path (a file, a
    // link, a directory) may be someone's data, and is refused.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(startup(
                format!("admin socket {}", path.display()),
                "something that is not a socket is at that path; radotpd does not delete it: move it away, or set admin.socket to another path",
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(startup(format!("admin socket {}", path.display()), "another radotpd is listening there"));
        }
        std::fs::remove_file(path).map_err(|e| startup(format!("cannot remove stale {}", path.display()), e))?;
    }
    UnixListener::bind(path).map_err(|e| startup(format!("cannot bind {}", path.display()), e))
}

/// Gives the admin socket `admin.socket_group` (if set) and
/// `admin.socket_mode`: at start and at each reload, so that a role plus
/// the group is all an operator needs.
fn apply_socket_access(config: &Config) -> Result<(), String> {
    let path = &config.admin.socket;
    if let Some(gid) = config.socket_gid() {
        let group = config.admin.socket_group.as_deref().unwrap_or_default();
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid))).map_err(|e| {
            format!("cannot give it to group {group} (admin.socket_group): {e}; radotpd's user must be root or a member of {group}")
        })?;
    }
    let mode = config.admin.socket_mode;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode.0))
        .map_err(|e| format!("cannot set mode {mode} (admin.socket_mode): {e}"))?;
    tracing::info!(
        socket = %path.display(),
        group = config.admin.socket_group.as_deref().unwrap_or("(the daemon's)"),
        mode = %mode,
        "admin socket permissions set"
    );
    Ok(())
}
