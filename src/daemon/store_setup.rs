//! Opening the store the configuration names (sled or PostgreSQL), checking it for `--check-config`, the master key against it, and `--restore`.

use super::*;

/// Opens the configured store engine.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, DaemonError> {
    if config.store.kind == StoreKind::Postgres {
        let settings = postgres_settings(config).map_err(|e| startup("store.postgres", e))?;
        let node = config.node.name_or_host();
        let store = PostgresStore::open(&settings, Some(node.clone()))
            .await
            .map_err(|e| startup(format!("cannot open the PostgreSQL store (node {node})"), e))?;
        tracing::info!(node = %node, "store: PostgreSQL");
        return Ok(Arc::new(store));
    }
    radotp_sled_checkpoint(config);
    let store = SledStore::open(
        &config.store.path,
        config.store.cache_mib << 20,
        config.store.durability,
        config.node.name.clone(),
    )
    .map_err(|e| {
        startup(format!("cannot open the store at {} (is radotpd still running?)", config.store.path.display()), e)
    })?;
    Ok(Arc::new(store))
}

/// Sets the embedded store's checkpoint interval (`store.checkpoint_ms`).
pub(super) fn radotp_sled_checkpoint(config: &Config) {
    crate::store::sled::set_checkpoint_interval(Duration::from_millis(config.store.checkpoint_ms));
}

/// The PostgreSQL engine's settings from `store.postgres`.
pub(super) fn postgres_settings(config: &Config) -> Result<PgSettings, String> {
    let pg = config.store.postgres.as_ref().ok_or("store.postgres is required with store.kind postgres")?;
    let password = pg
        .read_password()?
        .map(|secret| String::from_utf8(secret.expose().to_vec()).map_err(|_| "the password is not UTF-8".to_string()))
        .transpose()?;
    Ok(PgSettings {
        url: pg.url.clone(),
        password,
        pool_size: pg.pool_size,
        connect_timeout: Duration::from_millis(pg.connect_timeout_ms),
        statement_timeout: Duration::from_millis(pg.statement_timeout_ms),
        ca_certs: pg
            .ca_file
            .as_ref()
            .map(|path| crate::config::read_ca_file(path).map_err(|e| format!("store.postgres.ca_file: {e}")))
            .transpose()?,
    })
}

/// What the store is called in messages: its path, or the database.
pub(super) fn store_name(config: &Config) -> String {
    match config.store.kind {
        StoreKind::Sled => config.store.path.display().to_string(),
        StoreKind::Postgres => "the PostgreSQL database".into(),
    }
}

/// `--check-config` with `store.kind: postgres`: the connection, the schema
/// version, the stored token types, and that the key opens stored seeds.
pub(super) async fn check_postgres_store(config: &Config) -> Result<Option<usize>, ConfigError> {
    let invalid = |path: &str, message: String| ConfigError::Invalid {
        problems: vec![crate::config::Problem { path: path.into(), message }],
    };
    let settings = postgres_settings(config).map_err(|e| invalid("store.postgres", e))?;
    let store = match PostgresStore::open_to_check(&settings).await {
        Ok(Some(store)) => store,
        // Reachable, and radotpd has not created its tables yet.
        Ok(None) => return Ok(None),
        Err(e) => return Err(invalid("store.postgres.url", e.to_string())),
    };
    if config.store.key_file.exists() {
        let cipher = SeedCipher::from_key_file(&config.store.key_file, false)
            .map_err(|e| invalid("store.key_file", e.to_string()))?;
        for token in store.sample(16).await.map_err(|e| invalid("store.postgres.url", e.to_string()))? {
            if cipher.open(&token.serial, &token.sealed_seed).is_err() {
                return Err(invalid(
                    "store.key_file",
                    format!(
                        "this key does not open the seed of stored token {}: every node needs the same key file",
                        token.serial
                    ),
                ));
            }
        }
    }
    let (undefined, total) =
        undefined_types(&store, config).await.map_err(|e| invalid("store.postgres.url", e.to_string()))?;
    if undefined.is_empty() {
        return Ok(Some(total));
    }
    Err(undefined_problems(undefined))
}

pub(super) fn undefined_problems(undefined: Vec<(String, usize)>) -> ConfigError {
    ConfigError::Invalid {
        problems: undefined
            .into_iter()
            .map(|(id, count)| crate::config::Problem {
                path: "token_types".into(),
                message: format!("{count} stored token(s) have type {id:?}, which is not defined"),
            })
            .collect(),
    }
}

/// Refuses a master key that is not the one the store's seeds were sealed
/// with (see [`crate::domain::key_check`]); `record` keeps the key's check
/// value in a store that has none yet.
pub(super) async fn verify_master_key(
    store: &dyn Store,
    cipher: &SeedCipher,
    config: &Config,
    record: bool,
) -> Result<KeyCheck, ConfigError> {
    match check_master_key(store, cipher, record).await {
        Ok(KeyCheck::Recorded) => {
            tracing::info!("recorded the master key's check value in the store");
            Ok(KeyCheck::Recorded)
        }
        Ok(found) => Ok(found),
        Err(e) => Err(ConfigError::Invalid {
            problems: vec![crate::config::Problem {
                path: "store.key_file".into(),
                message: match e {
                    KeyCheckError::WrongKey => format!(
                        "key file {} is not the key the seeds in the store at {} were sealed with; put the right key file back (or point store.key_file at it)",
                        config.store.key_file.display(),
                        store_name(config)
                    ),
                    other => format!("cannot check the master key against the store: {other}"),
                },
            }],
        }),
    }
}

/// `--check-config` also checks the store, when it exists and is not in use:
/// every token's type must still be defined, and the master key must be the
/// store's own.
pub async fn check_stored_types(config: &Config) -> Result<Option<usize>, ConfigError> {
    if config.store.kind == StoreKind::Postgres {
        return check_postgres_store(config).await;
    }
    if !config.store.path.exists() {
        return Ok(None);
    }
    let store = match SledStore::open_to_check(&config.store.path, 8 << 20) {
        Ok(store) => store,
        Err(e @ (crate::store::StoreError::Schema { .. } | crate::store::StoreError::Corrupt(_))) => {
            return Err(ConfigError::Invalid {
                problems: vec![crate::config::Problem { path: "store.path".into(), message: e.to_string() }],
            });
        }
        // A running daemon holds the store's lock: nothing to check then.
        Err(_) => return Ok(None),
    };
    if config.store.key_file.exists() {
        let cipher = SeedCipher::from_key_file(&config.store.key_file, false).map_err(|e| ConfigError::Invalid {
            problems: vec![crate::config::Problem { path: "store.key_file".into(), message: e.to_string() }],
        })?;
        verify_master_key(&store, &cipher, config, false).await?;
    }
    let (undefined, total) = undefined_types(&store, config).await.map_err(|e| ConfigError::Invalid {
        problems: vec![crate::config::Problem { path: "store.path".into(), message: e.to_string() }],
    })?;
    if undefined.is_empty() {
        return Ok(Some(total));
    }
    Err(undefined_problems(undefined))
}

/// Type ids used by stored tokens but missing from the configuration, with
/// counts; and how many tokens there are.
pub(super) async fn undefined_types(
    store: &dyn Store,
    config: &Config,
) -> Result<(Vec<(String, usize)>, usize), crate::store::StoreError> {
    // Counted by the engine: the tokens are never all held at once.
    let census = store.census(0, 0).await?;
    let missing = census
        .by_type
        .into_iter()
        .filter(|(type_id, _)| config.token_type(type_id).is_none())
        .map(|(type_id, count)| (type_id, count as usize))
        .collect();
    Ok((missing, census.total as usize))
}

/// `radotpd --restore FILE`: loads a backup into the (empty) configured store.
///
/// The backup's MAC and audit chain must verify, unless `force`; the restore
/// itself is audited (`backup.restore`), with any check that `force` overrode.
pub async fn restore(config: &Config, file: &Path, force: bool) -> Result<RestoreReport, DaemonError> {
    let text = std::fs::read_to_string(file).map_err(|e| startup(format!("cannot read {}", file.display()), e))?;
    let backup: Backup = serde_json::from_str(&text)
        .map_err(|e| startup("restore", RestoreError::NotABackup(file.display().to_string(), e.to_string())))?;
    drop(text);
    if backup.format != BACKUP_FORMAT || backup.version != BACKUP_VERSION {
        return Err(startup(
            "restore",
            format!("{} is not a radotp backup of a version this build reads", file.display()),
        ));
    }
    let cipher = SeedCipher::from_key_file(&config.store.key_file, false).map_err(|e| startup("store.key_file", e))?;
    let store = open_store(config).await?;
    let now = (system_clock())();
    let source = file.display().to_string();
    let report = crate::domain::backup::restore(store.as_ref(), &cipher, &backup, force, &source, now).await.map_err(
        |e| match e {
            RestoreError::NotEmpty(_) => startup("restore", RestoreError::NotEmpty(store_name(config))),
            other => startup("restore", other),
        },
    )?;
    // The restored seeds are sealed under this key: the store's check value
    // says so, and the restored log's head is anchored under it.
    store
        .put_meta(KEY_CHECK_META, &cipher.key_check())
        .await
        .map_err(|e| startup("restore: cannot record the master key's check value", e))?;
    crate::domain::audit_anchor::anchor_head(store.as_ref(), &cipher, now)
        .await
        .map_err(|e| startup("restore: cannot anchor the audit log", e))?;
    Ok(report)
}
