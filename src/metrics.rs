//! Counters of the RADIUS front end, shared by the server, `status` and the
//! optional Prometheus endpoint (served by [`serve_prometheus`]).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Why a RADIUS packet got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    UnknownClient,
    Malformed,
    BadAuthenticator,
    MissingAuthenticator,
    UnexpectedCode,
    Duplicate,
    Overloaded,
    Internal,
    DirectoryUnavailable,
}

impl DropReason {
    pub const ALL: [DropReason; 9] = [
        DropReason::UnknownClient,
        DropReason::Malformed,
        DropReason::BadAuthenticator,
        DropReason::MissingAuthenticator,
        DropReason::UnexpectedCode,
        DropReason::Duplicate,
        DropReason::Overloaded,
        DropReason::Internal,
        DropReason::DirectoryUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::UnknownClient => "unknown_client",
            DropReason::Malformed => "malformed",
            DropReason::BadAuthenticator => "bad_message_authenticator",
            DropReason::MissingAuthenticator => "missing_message_authenticator",
            DropReason::UnexpectedCode => "unexpected_code",
            DropReason::Duplicate => "duplicate_in_progress",
            DropReason::Overloaded => "overloaded",
            DropReason::Internal => "internal_error",
            DropReason::DirectoryUnavailable => "directory_unavailable",
        }
    }
}

/// Upper bounds (seconds) of the decision latency histogram.
pub const LATENCY_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub accepts: AtomicU64,
    pub rejects: AtomicU64,
    pub status_server: AtomicU64,
    pub retransmissions_answered: AtomicU64,
    pub challenges: AtomicU64,
    drops: [AtomicU64; 9],
    reject_reasons: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
    latency_buckets: [AtomicU64; 12],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    /// 1 while the store cannot write (or be reached), else 0.
    store_failing: AtomicU64,
    store_bytes: AtomicU64,
    /// Free bytes on the store's file system, when known.
    store_disk_free: AtomicU64,
    store_disk_known: std::sync::atomic::AtomicBool,
}

impl Metrics {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self, reason: DropReason) {
        let index = DropReason::ALL.iter().position(|r| *r == reason).unwrap_or(0);
        self.drops[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected_because(&self, reason: &'static str) {
        *self.reject_reasons.lock().unwrap_or_else(|p| p.into_inner()).entry(reason).or_default() += 1;
    }

    /// Records how long a decision took, from receipt to reply.
    pub fn observe_latency(&self, elapsed: std::time::Duration) {
        let seconds = elapsed.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// What the store's last health check said (the daemon asks every few seconds).
    pub fn store_health(&self, failing: bool, bytes: u64, disk_free: Option<u64>) {
        self.store_failing.store(u64::from(failing), Ordering::Relaxed);
        self.store_bytes.store(bytes, Ordering::Relaxed);
        self.store_disk_free.store(disk_free.unwrap_or(0), Ordering::Relaxed);
        self.store_disk_known.store(disk_free.is_some(), Ordering::Relaxed);
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        use std::fmt::Write;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter("radotp_radius_requests_total", "Authenticated RADIUS requests received.", get(&self.requests));
        counter("radotp_radius_accepts_total", "Access-Accepts sent.", get(&self.accepts));
        counter("radotp_radius_rejects_total", "Access-Rejects sent.", get(&self.rejects));
        counter("radotp_radius_challenges_total", "Access-Challenges sent.", get(&self.challenges));
        counter("radotp_radius_status_server_total", "Status-Server requests answered.", get(&self.status_server));
        counter(
            "radotp_radius_retransmissions_total",
            "Retransmissions answered from the duplicate cache.",
            get(&self.retransmissions_answered),
        );
        let _ = writeln!(out, "# HELP radotp_radius_drops_total Packets dropped without an answer, by reason.");
        let _ = writeln!(out, "# TYPE radotp_radius_drops_total counter");
        for (reason, count) in DropReason::ALL.iter().zip(&self.drops) {
            let _ = writeln!(out, "radotp_radius_drops_total{{reason=\"{}\"}} {}", reason.as_str(), get(count));
        }
        let _ = writeln!(out, "# HELP radotp_radius_reject_reasons_total Access-Rejects by reason.");
        let _ = writeln!(out, "# TYPE radotp_radius_reject_reasons_total counter");
        for (reason, count) in self.reject_reasons.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "radotp_radius_reject_reasons_total{{reason=\"{reason}\"}} {count}");
        }
        let _ =
            writeln!(out, "# HELP radotp_radius_decision_seconds Time from receiving a request to sending its answer.");
        let _ = writeln!(out, "# TYPE radotp_radius_decision_seconds histogram");
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(out, "radotp_radius_decision_seconds_bucket{{le=\"{bound}\"}} {}", get(bucket));
        }
        let count = get(&self.latency_count);
        let _ = writeln!(out, "radotp_radius_decision_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "radotp_radius_decision_seconds_sum {}", get(&self.latency_sum_us) as f64 / 1e6);
        let _ = writeln!(out, "radotp_radius_decision_seconds_count {count}");
        let _ = writeln!(
            out,
            "# HELP radotp_store_failing 1 while the store cannot write or be reached (see radotpctl status).\n# TYPE radotp_store_failing gauge\nradotp_store_failing {}",
            get(&self.store_failing)
        );
        let _ = writeln!(
            out,
            "# HELP radotp_store_bytes Bytes the store takes on disk, where the engine knows.\n# TYPE radotp_store_bytes gauge\nradotp_store_bytes {}",
            get(&self.store_bytes)
        );
        if self.store_disk_known.load(Ordering::Relaxed) {
            let free = get(&self.store_disk_free);
            let _ = writeln!(
                out,
                "# HELP radotp_store_disk_free_bytes Free bytes on the file system holding the store.\n# TYPE radotp_store_disk_free_bytes gauge\nradotp_store_disk_free_bytes {free}"
            );
        }
        let up = u8::from(get(&self.store_failing) == 0);
        let _ = writeln!(
            out,
            "# HELP radotp_store_up Whether the token store answered its last health check (every few seconds)."
        );
        let _ = writeln!(out, "# TYPE radotp_store_up gauge\nradotp_store_up {up}");
        out
    }

    pub fn snapshot(&self) -> RadiusCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RadiusCounters {
            requests: get(&self.requests),
            accepts: get(&self.accepts),
            rejects: get(&self.rejects),
            status_server: get(&self.status_server),
            retransmissions_answered: get(&self.retransmissions_answered),
            challenges: get(&self.challenges),
            drops: DropReason::ALL
                .iter()
                .zip(&self.drops)
                .map(|(reason, count)| (reason.as_str().to_string(), get(count)))
                .collect(),
            reject_reasons: self
                .reject_reasons
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RadiusCounters {
    pub requests: u64,
    pub accepts: u64,
    pub rejects: u64,
    pub status_server: u64,
    pub retransmissions_answered: u64,
    #[serde(default)]
    pub challenges: u64,
    pub drops: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub reject_reasons: std::collections::BTreeMap<String, u64>,
}

/// Connections the metrics endpoint serves at once.
pub const METRICS_MAX_CONNECTIONS: usize = 32;
/// Connections one IP address may hold on the metrics endpoint.
pub const METRICS_MAX_PER_PEER: usize = 4;
/// How long a metrics connection may take to send its request.
pub const METRICS_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves `GET /metrics` in the Prometheus text format on `listener` until
/// `shutdown`. Deliberately tiny: one request per connection, bounded
/// reads, at most [`METRICS_MAX_CONNECTIONS`] connections and
/// [`METRICS_MAX_PER_PEER`] per address, each closed after
/// [`METRICS_READ_TIMEOUT`] without a request; a connection over a limit is
/// closed at once, so idle connections cannot use up the daemon's file
/// descriptors (which the admin socket and the directory need too).
pub async fn serve_prometheus(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<Metrics>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(METRICS_MAX_CONNECTIONS));
    let per_peer = crate::limits::PerPeer::new(METRICS_MAX_PER_PEER);
    loop {
        let (mut stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => {
                    // Out of file descriptors, most likely: let some close.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let Some(peer_slot) = per_peer.try_acquire(peer.ip()) else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let (_slot, _peer_slot) = (slot, peer_slot);
            let mut head = vec![0u8; 2048];
            let read = tokio::time::timeout(METRICS_READ_TIMEOUT, stream.read(&mut head)).await;
            let Ok(Ok(n)) = read else { return };
            let request = String::from_utf8_lossy(&head[..n]);
            let (status, body) = if request.starts_with("GET /metrics ") || request.starts_with("GET / ") {
                ("200 OK", metrics.prometheus())
            } else {
                ("404 Not Found", "not found\n".to_string())
            };
            let response = format!(
                "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(METRICS_READ_TIMEOUT, async {
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            })
            .await;
        });
    }
}
