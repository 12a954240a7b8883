//! The RADIUS UDP loop: receive, authenticate the packet, answer.
//!
//! One loop per bound socket. The loop itself only does cheap, bounded work
//! (framing, client look-up, Message-Authenticator, duplicate cache); OTP
//! checks run as tasks, at most `max_in_flight` at once, so the loop never
//! waits on the store or the disk. Anything that cannot be authenticated is
//! dropped without an answer (RFC 2865, RFC 3579).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::clients::ClientTable;
use super::dedup::{DuplicateCache, RequestKey, Seen};
use super::drop_warnings::{self, DropSource, DropWarnings};
use super::packet::{self, Frame, ReplyAttributes, RequestError};
use super::signers::Signers;
use crate::config::{RadiusClient, RequireMessageAuthenticator};
use crate::domain::radius_modes::{Outcome, RadiusRequest};
use crate::domain::{Decision, Service};
use crate::metrics::{DropReason, Metrics};
use crate::model::audit::Actor;

pub struct RadiusServer {
    service: Arc<Service>,
    clients: RwLock<Arc<ClientTable>>,
    dedup: DuplicateCache,
    permits: Arc<Semaphore>,
    drop_warnings: DropWarnings,
    /// Source addresses of `auto` clients that have sent Message-Authenticator.
    signers: Signers,
}

impl RadiusServer {
    pub fn new(
        service: Arc<Service>,
        clients: Vec<RadiusClient>,
        duplicate_lifetime: Duration,
        duplicate_entries: usize,
        max_in_flight: usize,
    ) -> Self {
        RadiusServer {
            service,
            clients: RwLock::new(Arc::new(ClientTable::new(clients))),
            dedup: DuplicateCache::new(duplicate_lifetime, duplicate_entries),
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
            drop_warnings: DropWarnings::default(),
            signers: Signers::default(),
        }
    }

    /// Replaces the client table (on reload); requests in flight keep the old one.
    pub fn replace_clients(&self, clients: Vec<RadiusClient>) {
        *self.clients.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ClientTable::new(clients));
    }

    fn clients(&self) -> Arc<ClientTable> {
        self.clients.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn metrics(&self) -> &Metrics {
        self.service.metrics()
    }

    /// Serves `socket` until `shutdown`; request tasks are spawned on `tasks`
    /// so the caller can wait for them to finish.
    pub async fn serve(self: Arc<Self>, socket: Arc<UdpSocket>, shutdown: CancellationToken, tasks: TaskTracker) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let (len, source) = tokio::select! {
                _ = shutdown.cancelled() => break,
                received = socket.recv_from(&mut buf) => match received {
                    Ok(r) => r,
                    Err(e) => {
                        // Never end the loop on a socket error (e.g. ICMP feedback).
                        tracing::debug!(error = %e, "RADIUS receive error");
                        continue;
                    }
                },
            };
            self.handle_datagram(&buf[..len], source, &socket, &tasks).await;
        }
    }

    async fn handle_datagram(
        self: &Arc<Self>,
        datagram: &[u8],
        source: SocketAddr,
        socket: &Arc<UdpSocket>,
        tasks: &TaskTracker,
    ) {
        let received = Instant::now();
        let table = self.clients();
        let Some(client) = table.find(source.ip()) else {
            self.drop_packet(DropReason::UnknownClient, source, None, None);
            return;
        };
        let auto = client.require_message_authenticator == RequireMessageAuthenticator::Auto;
        let signed_before = auto && self.signers.has_signed(&client.name, source.ip());
        let frame = match screen(datagram, client, signed_before) {
            Ok(frame) => frame,
            Err((reason, detail)) => {
                self.drop_packet(reason, source, Some(&client.name), detail.as_deref());
                return;
            }
        };
        if auto && !signed_before && teaches_signing(&frame) {
            // screen() verified it: from now on this address must sign.
            self.signers.learn(&client.name, source.ip());
            tracing::info!(client = %client.name, %source, "client sends Message-Authenticator: now required from this address (require_message_authenticator: auto)");
        }
        Metrics::count(&self.metrics().requests);
        let key = RequestKey {
            ip: source.ip(),
            code: frame.code,
            identifier: frame.identifier,
            authenticator: frame.authenticator,
        };
        match self.dedup.check(key, received) {
            Seen::New => {}
            Seen::InProgress => {
                self.drop_packet(DropReason::Duplicate, source, Some(&client.name), None);
                return;
            }
            Seen::Answered(reply) => {
                Metrics::count(&self.metrics().retransmissions_answered);
                tracing::debug!(client = %client.name, %source, id = frame.identifier, "retransmission answered from the cache");
                let _ = socket.send_to(&reply, source).await;
                return;
            }
        }
        if frame.code == packet::CODE_STATUS_SERVER {
            Metrics::count(&self.metrics().status_server);
            let attrs = ReplyAttributes {
                reply_message: Some("radotpd alive".into()),
                proxy_states: packet::proxy_states(&frame),
                ..Default::default()
            };
            self.answer(socket, source, key, client, &frame, packet::CODE_ACCESS_ACCEPT, &attrs).await;
            return;
        }
        let request = match packet::decode_access_request(&frame, client.secret.expose()) {
            Ok(r) => r,
            Err(e @ (RequestError::NoPassword | RequestError::NoUserName | RequestError::BadUserName)) => {
                // An authentic request we cannot serve (CHAP, MS-CHAP, EAP...):
                // answer so the NAS does not wait for a timeout.
                Metrics::count(&self.metrics().rejects);
                self.metrics().rejected_because("unsupported_request");
                let attrs = ReplyAttributes {
                    reply_message: Some("only PAP is supported".into()),
                    proxy_states: packet::proxy_states(&frame),
                    ..Default::default()
                };
                self.answer(socket, source, key, client, &frame, packet::CODE_ACCESS_REJECT, &attrs).await;
                tracing::info!(client = %client.name, %source, result = "reject", reason = "unsupported_request", detail = %e, "RADIUS decision");
                return;
            }
            Err(e) => {
                self.dedup.abandon(&key);
                self.drop_packet(DropReason::Malformed, source, Some(&client.name), Some(&e.to_string()));
                return;
            }
        };
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.dedup.abandon(&key);
            self.drop_packet(DropReason::Overloaded, source, Some(&client.name), None);
            return;
        };
        let server = self.clone();
        let socket = socket.clone();
        let client = client.clone();
        let identifier = frame.identifier;
        let request_authenticator = frame.authenticator;
        let proxy_states = packet::proxy_states(&frame);
        tasks.spawn(async move {
            let _permit = permit;
            let nas = request.nas.clone();
            let actor = Actor::Radius { client: client.name.clone(), address: source.ip().to_string(), nas };
            let access = client.access_for(request.nas.nas_identifier.as_deref());
            let radius_request = RadiusRequest {
                client: &client.name,
                mode: client.mode_for(request.nas.nas_identifier.as_deref()),
                user: &request.user_name,
                password: &request.password,
                state: request.state.as_deref(),
                // Filled in from `access` by the domain.
                token_types: None,
                known: None,
            };
            let login = server.service.radius_login(&actor, radius_request, &access).await;
            let mut attrs = ReplyAttributes { proxy_states, ..Default::default() };
            let mut rules = Vec::new();
            let outcome = login.map(|login| {
                attrs.extra = login.reply.attributes;
                rules = login.reply.rules;
                login.outcome
            });
            let (code, result, reason, serial) = match &outcome {
                Ok(Outcome::Decided(Decision::Accept { serial })) => {
                    (packet::CODE_ACCESS_ACCEPT, "accept", "ok", Some(serial.as_str()))
                }
                Ok(Outcome::Decided(Decision::Reject { reason, serial })) => {
                    (packet::CODE_ACCESS_REJECT, "reject", reason.as_str(), serial.as_deref())
                }
                Ok(Outcome::Challenge { state, prompt }) => {
                    attrs.reply_message = Some(prompt.clone());
                    attrs.state = Some(state.clone());
                    (packet::CODE_ACCESS_CHALLENGE, "challenge", "otp_needed", None)
                }
                Ok(Outcome::NoAnswer) => {
                    server.dedup.abandon(&key);
                    server.drop_packet(DropReason::DirectoryUnavailable, source, Some(&client.name), None);
                    tracing::info!(client = %client.name, %source, user = ?request.user_name, result = "no_answer",
                        reason = "directory_unavailable", latency_us = received.elapsed().as_micros() as u64,
                        nas = field(&request.nas.nas_identifier), nas_ip = field(&request.nas.nas_ip_address),
                        calling = field(&request.nas.calling_station_id), "RADIUS decision");
                    return;
                }
                Err(_) => (packet::CODE_ACCESS_REJECT, "reject", "internal_error", None),
            };
            if let Err(e) = &outcome {
                tracing::error!(error = %e, "authentication failed internally");
            }
            match code {
                packet::CODE_ACCESS_ACCEPT => Metrics::count(&server.metrics().accepts),
                packet::CODE_ACCESS_CHALLENGE => Metrics::count(&server.metrics().challenges),
                _ => {
                    Metrics::count(&server.metrics().rejects);
                    server.metrics().rejected_because(reason);
                }
            }
            // Counted before the reply leaves, so whoever got the reply sees it counted.
            server.metrics().observe_latency(received.elapsed());
            let sent = server
                .answer_raw(&socket, source, key, &client, identifier, &request_authenticator, code, &attrs)
                .await;
            tracing::info!(
                client = %client.name,
                %source,
                user = ?request.user_name,
                result,
                reason,
                serial = serial.unwrap_or("-"),
                latency_us = received.elapsed().as_micros() as u64,
                sent,
                nas = field(&request.nas.nas_identifier),
                nas_ip = field(&request.nas.nas_ip_address),
                port_type = field(&request.nas.nas_port_type),
                called = field(&request.nas.called_station_id),
                calling = field(&request.nas.calling_station_id),
                rules = if rules.is_empty() { "-".to_string() } else { rules.join(",") },
                "RADIUS decision"
            );
        });
    }

    #[allow(clippy::too_many_arguments)]
    async fn answer(
        &self,
        socket: &UdpSocket,
        source: SocketAddr,
        key: RequestKey,
        client: &RadiusClient,
        frame: &Frame<'_>,
        code: u8,
        attrs: &ReplyAttributes,
    ) -> bool {
        self.answer_raw(socket, source, key, client, frame.identifier, &frame.authenticator, code, attrs).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn answer_raw(
        &self,
        socket: &UdpSocket,
        source: SocketAddr,
        key: RequestKey,
        client: &RadiusClient,
        identifier: u8,
        request_authenticator: &[u8; 16],
        code: u8,
        attrs: &ReplyAttributes,
    ) -> bool {
        match packet::sign_reply(code, identifier, request_authenticator, client.secret.expose(), attrs) {
            Ok(bytes) => {
                let bytes: Arc<[u8]> = Arc::from(bytes);
                self.dedup.complete(&key, bytes.clone());
                match socket.send_to(&bytes, source).await {
                    Ok(_) => true,
                    Err(e) => {
                        tracing::warn!(%source, error = %e, "cannot send RADIUS reply");
                        false
                    }
                }
            }
            Err(e) => {
                self.dedup.abandon(&key);
                self.metrics().dropped(DropReason::Internal);
                tracing::error!(error = %e, "cannot encode RADIUS reply");
                false
            }
        }
    }

    /// Counts a drop; logs it at debug, and at warn at most once per client
    /// and reason per interval ([`drop_warnings`]).
    fn drop_packet(&self, reason: DropReason, source: SocketAddr, client: Option<&str>, detail: Option<&str>) {
        self.metrics().dropped(reason);
        tracing::debug!(%source, reason = reason.as_str(), detail = detail.unwrap_or(""), "RADIUS packet dropped");
        if !drop_warnings::warns_about(reason) {
            return;
        }
        let who = match client {
            Some(name) => DropSource::Client(name.to_string()),
            None => DropSource::Unknown(source.ip()),
        };
        if let Some(warning) = self.drop_warnings.record(who.clone(), reason, Instant::now()) {
            drop_warnings::emit(&who, source, reason, &warning);
        }
    }
}

/// A NAS attribute as a log field (`-` when absent); quoted and escaped by
/// the log format, bounded when read ([`crate::model::nas`]).
fn field(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("-")
}

/// The checks every datagram from a known client passes before anything else
/// looks at it: framing, code, Message-Authenticator. Pure, so the fuzz
/// targets run exactly what the server runs.
/// `signed_before`: the source address has sent a valid Message-Authenticator
/// before (what `require_message_authenticator: auto` goes by).
pub fn screen<'a>(
    datagram: &'a [u8],
    client: &RadiusClient,
    signed_before: bool,
) -> Result<Frame<'a>, (DropReason, Option<String>)> {
    let frame = packet::parse_frame(datagram).map_err(|e| (DropReason::Malformed, Some(e.to_string())))?;
    if frame.code != packet::CODE_ACCESS_REQUEST && frame.code != packet::CODE_STATUS_SERVER {
        return Err((DropReason::UnexpectedCode, None));
    }
    if let Some(reason) = check_message_authenticator(&frame, client, signed_before) {
        let detail = (reason == DropReason::MissingAuthenticator && signed_before)
            .then(|| "require_message_authenticator: auto, and this address has sent one before".to_string());
        return Err((reason, detail));
    }
    Ok(frame)
}

/// Whether a screened packet shows that its source signs its requests (what
/// `require_message_authenticator: auto` learns from): an Access-Request
/// with a Message-Authenticator (screen() verified it). A Status-Server
/// carries one whatever the requests do (RFC 5997), so it does not count.
fn teaches_signing(frame: &Frame<'_>) -> bool {
    frame.code == packet::CODE_ACCESS_REQUEST && frame.message_authenticator_at.is_some()
}

/// Why a packet fails the Message-Authenticator rules, if it does.
fn check_message_authenticator(frame: &Frame<'_>, client: &RadiusClient, signed_before: bool) -> Option<DropReason> {
    let required = match client.require_message_authenticator {
        RequireMessageAuthenticator::Always => true,
        RequireMessageAuthenticator::Never => false,
        RequireMessageAuthenticator::Auto => signed_before,
    };
    match frame.message_authenticator_at {
        Some(_) if packet::message_authenticator_valid(frame, client.secret.expose()) => None,
        Some(_) => Some(DropReason::BadAuthenticator),
        // RFC 5997: Status-Server always carries one; a Proxy-State without one
        // is the BlastRADIUS pattern; the client may require it on everything.
        None if frame.code == packet::CODE_STATUS_SERVER || frame.has_proxy_state || required => {
            Some(DropReason::MissingAuthenticator)
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn client(require: RequireMessageAuthenticator) -> RadiusClient {
        RadiusClient {
            name: "nas".into(),
            network: "127.0.0.1/32".parse().unwrap(),
            secret: Secret::from("testing123"),
            require_message_authenticator: require,
            mode: None,
            nas: Vec::new(),
            access: Default::default(),
        }
    }

    /// A request as pam_radius_auth 2.0 sends it: no Message-Authenticator.
    fn unsigned() -> Vec<u8> {
        let mut bytes = vec![packet::CODE_ACCESS_REQUEST, 1, 0, 27];
        bytes.extend_from_slice(&[7; 16]);
        bytes.extend_from_slice(&[packet::ATTR_USER_NAME, 7]);
        bytes.extend_from_slice(b"alice");
        bytes
    }

    #[test]
    fn auto_requires_message_authenticator_once_the_address_has_sent_one() {
        let signed = packet::build_access_request(1, b"testing123", "alice", b"123456", None).unwrap();
        let auto = client(RequireMessageAuthenticator::Auto);
        assert!(screen(&unsigned(), &auto, false).is_ok(), "not signed so far: accepted, as with false");
        assert!(screen(&signed, &auto, false).is_ok());
        let (reason, detail) = screen(&unsigned(), &auto, true).unwrap_err();
        assert_eq!(reason, DropReason::MissingAuthenticator);
        assert!(detail.unwrap().contains("auto"));
        assert!(screen(&signed, &auto, true).is_ok());
        let always = client(RequireMessageAuthenticator::Always);
        assert_eq!(screen(&unsigned(), &always, false).unwrap_err().0, DropReason::MissingAuthenticator);
        let never = client(RequireMessageAuthenticator::Never);
        assert!(screen(&unsigned(), &never, true).is_ok());
        let wrong = packet::build_access_request(1, b"other-secret", "alice", b"123456", None).unwrap();
        assert_eq!(screen(&wrong, &auto, false).unwrap_err().0, DropReason::BadAuthenticator);
    }

    #[test]
    fn only_signed_access_requests_teach_auto_that_an_address_signs() {
        let signed = packet::build_access_request(1, b"testing123", "alice", b"123456", None).unwrap();
        assert!(teaches_signing(&packet::parse_frame(&signed).unwrap()));
        let unsigned = unsigned();
        assert!(!teaches_signing(&packet::parse_frame(&unsigned).unwrap()));
        // A proxy's health checks are signed even when its requests are not.
        let status = packet::build_status_server(2, b"testing123");
        assert!(!teaches_signing(&packet::parse_frame(&status).unwrap()));
    }
}
