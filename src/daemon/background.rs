//! The daemon's background tasks: audit anchoring, the systemd watchdog, the store's health for the metrics, audit retention, and clock steps.

use super::*;

/// How often the audit log's head is anchored while it grows.
pub(super) const AUDIT_ANCHOR_INTERVAL: Duration = Duration::from_secs(60);

/// Anchors the audit log's head at start and then every `every` when it moved.
pub(super) async fn anchor_audit_every(every: Duration, service: Arc<Service>, shutdown: CancellationToken) {
    let mut anchored = None;
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let head = match service.audit_head().await {
            Ok(head) => head,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the audit log's head");
                continue;
            }
        };
        if head.is_some() && head != anchored {
            match service.anchor_audit().await {
                Ok(_) => anchored = head,
                Err(e) => tracing::warn!(error = %e, "cannot anchor the audit log"),
            }
        }
    }
}

pub(super) async fn watchdog(every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => crate::notify::notify("WATCHDOG=1"),
        }
    }
}

/// Keeps the metrics' view of the store current (`radotp_store_failing`,
/// `radotp_store_up`, `radotp_store_bytes`, every 2 s), and says in the log
/// when the store starts and stops failing.
pub(super) async fn watch_store_health(store: Arc<dyn Store>, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut was_failing: Option<String> = None;
    let mut disk_was_low = false;
    loop {
        let health = store.health().await;
        metrics.store_health(health.failing.is_some(), health.bytes, health.disk.map(|d| d.free));
        let low = health.disk.filter(|d| d.is_low());
        match (low, disk_was_low) {
            (Some(disk), false) => tracing::warn!(
                free_mib = disk.free >> 20,
                total_mib = disk.total >> 20,
                "little room left for the store: free disk space before it fills (audit.max_entries and audit.retention_days bound the audit; see docs/operations.md)"
            ),
            (None, true) => tracing::info!("the store's file system has room again"),
            _ => {}
        }
        disk_was_low = low.is_some();
        match (&was_failing, &health.failing) {
            (None, Some(reason)) => tracing::error!(
                %reason,
                "the store cannot write or cannot be reached: Accepts and changes are refused until it can"
            ),
            (Some(_), None) => tracing::warn!("the store answers and writes again"),
            _ => {}
        }
        was_failing = health.failing;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Applies audit retention a little after start, then every 10 seconds (a
/// pass with nothing to remove reads two records), so that a burst of
/// requests cannot take the log far past `audit.max_entries`.
pub(super) async fn apply_audit_retention(service: Arc<Service>, shutdown: CancellationToken) {
    let mut wait = Duration::from_secs(10);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        if let Ok(pruned) = service.prune_audit(&crate::model::audit::Actor::Daemon).await {
            if pruned.entries > 0 {
                tracing::info!(
                    entries = pruned.entries,
                    through = pruned.through,
                    "audit retention removed the oldest entries"
                );
            }
        }
        wait = Duration::from_secs(10);
    }
}

/// Says in the log when the system clock steps (the wall clock moved more
/// or less than the monotonic clock): TOTP codes follow the wall clock, so a
/// step shows as `clock_skew` rejects (not counted as failures) and resets
/// of tokens used while the clock was ahead. See docs/operations.md.
pub(super) async fn watch_clock(shutdown: CancellationToken) {
    const EVERY: Duration = Duration::from_secs(5);
    const TOLERANCE_MS: i128 = 2_000;
    let wall_ms = || {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i128).unwrap_or(0)
    };
    let (mut wall, mut mono) = (wall_ms(), std::time::Instant::now());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        let (now_wall, now_mono) = (wall_ms(), std::time::Instant::now());
        let step_ms = (now_wall - wall) - now_mono.duration_since(mono).as_millis() as i128;
        if step_ms.abs() > TOLERANCE_MS {
            tracing::warn!(
                step_seconds = (step_ms as f64 / 1000.0).round() as i64,
                "the system clock stepped: TOTP codes follow it; codes from the time it left are refused as clock_skew, not counted as failures"
            );
        }
        (wall, mono) = (now_wall, now_mono);
    }
}
