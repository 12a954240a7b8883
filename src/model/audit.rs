//! Audit entries and their hash chain: what an entry holds, how the next
//! one is sealed onto the chain, and how a chain is verified.
//!
//! Every admin operation and every RADIUS decision becomes an [`AuditEntry`].
//! Each entry carries the SHA-256 of the previous one of its chain, so
//! removing or editing an entry breaks the chain at that point, which
//! [`verify_chain`] reports. Entries never hold seeds or OTPs. Pure: the
//! store engines keep the chains ([`crate::store::Store`]).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::nas::NasAttributes;

/// Who did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Actor {
    /// An operator through the admin socket.
    Admin { uid: u32, user: Option<String> },
    /// A NAS through RADIUS: the client entry and source address, and the
    /// NAS and caller attributes of the request (behind a proxy, the real
    /// NAS and the user's address; absent from entries without them).
    Radius {
        client: String,
        address: String,
        #[serde(default, skip_serializing_if = "NasAttributes::is_empty")]
        nas: NasAttributes,
    },
    /// The daemon itself.
    Daemon,
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Admin { uid, user: Some(name) } => write!(f, "{name}(uid {uid})"),
            Actor::Admin { uid, user: None } => write!(f, "uid {uid}"),
            Actor::Radius { client, address, .. } => write!(f, "radius:{client}@{address}"),
            Actor::Daemon => f.write_str("radotpd"),
        }
    }
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    pub actor: Actor,
    /// `radius.auth`, `token.import`, `token.assign`, ...
    pub operation: String,
    /// The user the operation concerns, if any.
    #[serde(default)]
    pub user: Option<String>,
    /// The token the operation concerns, if any.
    #[serde(default)]
    pub serial: Option<String>,
    /// Arguments without secrets.
    #[serde(default)]
    pub details: serde_json::Value,
    /// `ok`, `accept`, `reject`, `refused`, `error`...
    pub result: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// The node that wrote the entry (several nodes on one database each
    /// keep their own chain); absent for a single node without a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Hex SHA-256 of the previous entry ("" for the first).
    pub prev_hash: String,
    /// Hex SHA-256 of this entry with `hash` empty.
    pub hash: String,
}

impl AuditEntry {
    pub fn compute_hash(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.hash = String::new();
        let bytes = serde_json::to_vec(&unhashed).unwrap_or_default();
        data_encoding::HEXLOWER.encode(&Sha256::digest(&bytes))
    }
}

/// What a caller hands to [`AuditLog::append`]; the log fills sequence, time and hashes.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub operation: String,
    pub user: Option<String>,
    pub serial: Option<String>,
    pub details: serde_json::Value,
    pub result: String,
    pub reason: Option<String>,
}

/// The outcome of [`AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainReport {
    pub entries: u64,
    pub ok: bool,
    /// Sequence number of the first entry that does not verify.
    pub first_broken: Option<u64>,
    pub problem: Option<String>,
    /// Entries up to this sequence number were removed by retention; the
    /// chain was verified from the checkpoint left in their place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_through: Option<u64>,
}

/// Where a pruned chain starts: the sequence number and hash of the last
/// entry removed by retention. The first entry kept must link to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
}

/// How much of the audit log retention keeps (`audit` in the configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Entries older than this many seconds go.
    pub max_age_seconds: Option<u64>,
    /// At most this many entries stay (the newest).
    pub max_entries: Option<u64>,
}

impl Retention {
    /// Whether the oldest entry still kept goes: it was written at `time`,
    /// and `remaining` entries (it included) are kept so far. The newest
    /// entry always stays (the chain goes on from it).
    pub fn drops(&self, remaining: u64, time: u64, now: u64) -> bool {
        remaining > 1
            && (self.max_entries.is_some_and(|max| remaining > max)
                || self.max_age_seconds.is_some_and(|age| time.saturating_add(age) < now))
    }

    pub fn is_unbounded(&self) -> bool {
        self.max_entries.is_none() && self.max_age_seconds.is_none()
    }
}

/// The time of an entry's stored bytes, without decoding all of it.
pub fn entry_time(bytes: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Time {
        time: u64,
    }
    serde_json::from_slice::<Time>(bytes).ok().map(|t| t.time)
}

/// What one pass of retention removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    pub entries: u64,
    /// The new checkpoint, when entries were removed.
    pub through: Option<u64>,
}

/// Filters for reading the log (newest first).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuditQuery {
    /// At most this many entries (0: all).
    pub limit: usize,
    #[serde(default)]
    pub serial: Option<String>,
    /// The user the entry concerns (or the previous owner of a token it moved).
    #[serde(default)]
    pub user: Option<String>,
    /// Unix seconds.
    #[serde(default)]
    pub since: Option<u64>,
    /// Unix seconds: entries before this time only.
    #[serde(default)]
    pub until: Option<u64>,
    /// Entries written by this node only.
    #[serde(default)]
    pub node: Option<String>,
    /// RADIUS entries about this NAS only: its NAS-Identifier, NAS-IP-Address,
    /// or the name of the client entry it was received from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nas: Option<String>,
    /// RADIUS entries whose Calling-Station-Id (the caller's address) is this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl AuditQuery {
    /// Whether `entry` passes the filters other than time order and limit.
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.serial.as_ref().is_none_or(|s| entry.serial.as_ref() == Some(s))
            && self.user.as_ref().is_none_or(|u| {
                entry.user.as_ref() == Some(u)
                    || entry.details.get("previous_owner").and_then(|v| v.as_str()) == Some(u)
            })
            && self.since.is_none_or(|since| entry.time >= since)
            && self.until.is_none_or(|until| entry.time < until)
            && self.node.as_ref().is_none_or(|n| entry.node.as_ref() == Some(n))
            && self.nas.as_ref().is_none_or(|wanted| match &entry.actor {
                Actor::Radius { client, nas, .. } => client == wanted || nas.is_nas(wanted),
                _ => false,
            })
            && self.from.as_ref().is_none_or(|wanted| match &entry.actor {
                Actor::Radius { nas, .. } => nas.calling_station_id.as_ref() == Some(wanted),
                _ => false,
            })
    }
}

/// An event with who did it and when: what the domain hands to a store,
/// which seals it onto its chain ([`Chain::seal`]).
#[derive(Debug, Clone)]
pub struct AuditWrite {
    pub actor: Actor,
    /// Unix seconds.
    pub time: u64,
    pub event: AuditEvent,
}

impl AuditWrite {
    pub fn new(actor: &Actor, time: u64, event: AuditEvent) -> AuditWrite {
        AuditWrite { actor: actor.clone(), time, event }
    }
}

/// The head of one audit chain: the sequence and hash of its newest entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    pub node: Option<String>,
    pub seq: u64,
    pub hash: String,
}

impl Chain {
    /// The head after `newest` (none: an empty chain).
    pub fn after(node: Option<String>, newest: Option<&AuditEntry>) -> Chain {
        match newest {
            None => Chain { node, seq: 0, hash: String::new() },
            Some(entry) => Chain { node, seq: entry.seq, hash: entry.hash.clone() },
        }
    }

    /// The head after the stored entry `bytes` (its JSON).
    pub fn after_stored(node: Option<String>, seq: u64, bytes: &[u8]) -> Result<Chain, String> {
        let entry: AuditEntry = serde_json::from_slice(bytes).map_err(|e| format!("audit entry {seq}: {e}"))?;
        Ok(Chain::after(node, Some(&entry)))
    }

    /// Makes `write` the next entry of this chain: returns its sequence and
    /// the bytes to store (the entry's JSON), and moves the head.
    pub fn seal(&mut self, write: AuditWrite) -> Result<(u64, Vec<u8>), String> {
        let event = write.event;
        let mut entry = AuditEntry {
            seq: self.seq + 1,
            time: write.time,
            actor: write.actor,
            operation: event.operation,
            user: event.user,
            serial: event.serial,
            details: event.details,
            result: event.result,
            reason: event.reason,
            node: self.node.clone(),
            prev_hash: self.hash.clone(),
            hash: String::new(),
        };
        // One serialization serves both: the hash covers the entry with an
        // empty `hash`, which is its last field, so the stored bytes are the
        // same text with the hash filled in.
        let unhashed = serde_json::to_vec(&entry).map_err(|e| format!("cannot encode audit entry: {e}"))?;
        entry.hash = data_encoding::HEXLOWER.encode(&Sha256::digest(&unhashed));
        const EMPTY_HASH_TAIL: &[u8] = b"\"hash\":\"\"}";
        let bytes = match unhashed.strip_suffix(EMPTY_HASH_TAIL) {
            Some(head) => [head, b"\"hash\":\"", entry.hash.as_bytes(), b"\"}"].concat(),
            None => serde_json::to_vec(&entry).map_err(|e| format!("cannot encode audit entry: {e}"))?,
        };
        self.seq = entry.seq;
        self.hash = entry.hash;
        Ok((self.seq, bytes))
    }
}

/// Checks the records of one chain (sequence, stored bytes), oldest first.
/// A copy that starts after entry 1 (a pruned log) is walked from the
/// checkpoint its first entry implies.
pub fn verify_chain<'a>(records: impl IntoIterator<Item = (u64, &'a [u8])>) -> ChainReport {
    let mut records = records.into_iter().peekable();
    let checkpoint = records.peek().and_then(|(seq, bytes)| ChainWalk::implied_by(*seq, bytes));
    let mut walk = ChainWalk::after(checkpoint.as_ref());
    for (seq, bytes) in records {
        if !walk.step(seq, bytes) {
            break;
        }
    }
    walk.report
}

/// One walk along the chain.
pub struct ChainWalk {
    pub report: ChainReport,
    previous_hash: String,
    expected_seq: u64,
}

impl Default for ChainWalk {
    fn default() -> Self {
        ChainWalk {
            report: ChainReport { entries: 0, ok: true, first_broken: None, problem: None, pruned_through: None },
            previous_hash: String::new(),
            expected_seq: 1,
        }
    }
}

impl ChainWalk {
    /// A walk of a chain whose entries up to `checkpoint` were pruned (a
    /// walk from the start without one).
    pub fn after(checkpoint: Option<&Checkpoint>) -> ChainWalk {
        let mut walk = ChainWalk::default();
        if let Some(checkpoint) = checkpoint {
            walk.previous_hash = checkpoint.hash.clone();
            walk.expected_seq = checkpoint.seq + 1;
            walk.report.pruned_through = Some(checkpoint.seq);
        }
        walk
    }

    /// The checkpoint a chain starting with `first` implies (none when it
    /// starts at entry 1): for copies of a pruned log, such as backups,
    /// whose start is vouched for by something else (the backup's MAC).
    pub fn implied_by(seq: u64, bytes: &[u8]) -> Option<Checkpoint> {
        if seq <= 1 {
            return None;
        }
        let entry: AuditEntry = serde_json::from_slice(bytes).ok()?;
        Some(Checkpoint { seq: seq - 1, hash: entry.prev_hash })
    }

    /// Checks the next record; false once the chain is broken.
    pub fn step(&mut self, seq: u64, bytes: &[u8]) -> bool {
        self.report.entries += 1;
        let expected_seq = self.expected_seq;
        let problem = match serde_json::from_slice::<AuditEntry>(bytes) {
            Err(e) => Some(format!("unreadable: {e}")),
            Ok(entry) if entry.seq != seq || seq != expected_seq => {
                Some(format!("sequence gap: expected {expected_seq}, found {seq}"))
            }
            Ok(entry) if entry.prev_hash != self.previous_hash => {
                Some("does not link to the previous entry (an entry was removed or changed)".into())
            }
            Ok(entry) if entry.compute_hash() != entry.hash => {
                Some("content does not match its hash (the entry was modified)".into())
            }
            Ok(entry) => {
                self.previous_hash = entry.hash;
                None
            }
        };
        self.expected_seq = seq + 1;
        if let Some(problem) = problem {
            self.report.ok = false;
            self.report.first_broken = Some(seq);
            self.report.problem = Some(problem);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32) -> AuditEvent {
        AuditEvent { operation: format!("op{n}"), result: "ok".into(), ..AuditEvent::default() }
    }

    fn sealed(count: u32) -> Vec<(u64, String)> {
        let mut chain = Chain::default();
        (0..count)
            .map(|n| {
                let (seq, bytes) = chain.seal(AuditWrite::new(&Actor::Daemon, 100 + u64::from(n), event(n))).unwrap();
                (seq, String::from_utf8(bytes).unwrap())
            })
            .collect()
    }

    #[test]
    fn sealed_entries_chain_and_their_bytes_are_their_json() {
        let records = sealed(4);
        let check = |records: &[(u64, String)]| verify_chain(records.iter().map(|(seq, t)| (*seq, t.as_bytes())));
        assert!(check(&records).ok && check(&records).entries == 4);
        let entry: AuditEntry = serde_json::from_str(&records[3].1).unwrap();
        assert_eq!(serde_json::to_string(&entry).unwrap(), records[3].1);
        assert_eq!(entry.hash, entry.compute_hash());
        // A chain picked up from its newest entry continues it.
        let mut chain = Chain::after_stored(None, 4, records[3].1.as_bytes()).unwrap();
        let (seq, bytes) = chain.seal(AuditWrite::new(&Actor::Daemon, 200, event(9))).unwrap();
        let mut longer = records.clone();
        longer.push((seq, String::from_utf8(bytes).unwrap()));
        assert!(check(&longer).ok && seq == 5);

        let mut edited = records.clone();
        edited[1].1 = edited[1].1.replace("op1", "op7");
        let report = check(&edited);
        assert_eq!((report.ok, report.first_broken), (false, Some(2)), "{report:?}");
        let mut removed = records.clone();
        removed.remove(2);
        assert_eq!(check(&removed).first_broken, Some(4));
    }

    #[test]
    fn a_node_name_is_kept_and_hashed_and_absent_without_one() {
        let mut chain = Chain { node: Some("radius-a".into()), ..Chain::default() };
        let (_, bytes) = chain.seal(AuditWrite::new(&Actor::Daemon, 1, event(1))).unwrap();
        let entry: AuditEntry = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(entry.node.as_deref(), Some("radius-a"));
        assert_eq!(entry.hash, entry.compute_hash());
        assert!(!sealed(1)[0].1.contains("node"), "entries of unnamed nodes are as before");
    }

    #[test]
    fn radius_entries_carry_the_nas_and_are_filtered_by_it() {
        let mut chain = Chain::default();
        let plain = Actor::Radius { client: "vpn".into(), address: "10.0.0.1".into(), nas: NasAttributes::default() };
        let nas = NasAttributes {
            nas_identifier: Some("gw-1".into()),
            nas_ip_address: Some("192.0.2.10".into()),
            calling_station_id: Some("203.0.113.7".into()),
            ..NasAttributes::default()
        };
        let proxied = Actor::Radius { client: "proxy".into(), address: "10.0.0.2".into(), nas };
        let (_, plain_bytes) = chain.seal(AuditWrite::new(&plain, 1, event(1))).unwrap();
        let (_, proxied_bytes) = chain.seal(AuditWrite::new(&proxied, 2, event(2))).unwrap();
        let plain_text = String::from_utf8(plain_bytes).unwrap();
        assert!(!plain_text.contains("nas"), "entries without NAS attributes are as before: {plain_text}");
        let plain: AuditEntry = serde_json::from_str(&plain_text).unwrap();
        let proxied: AuditEntry = serde_json::from_slice(&proxied_bytes).unwrap();
        assert_eq!(proxied.hash, proxied.compute_hash());
        let query = |nas: Option<&str>, from: Option<&str>| AuditQuery {
            nas: nas.map(str::to_string),
            from: from.map(str::to_string),
            ..AuditQuery::default()
        };
        assert!(query(Some("gw-1"), None).matches(&proxied) && !query(Some("gw-1"), None).matches(&plain));
        assert!(query(Some("192.0.2.10"), None).matches(&proxied));
        assert!(query(Some("vpn"), None).matches(&plain), "the client entry's name counts as the NAS");
        assert!(
            query(None, Some("203.0.113.7")).matches(&proxied) && !query(None, Some("203.0.113.7")).matches(&plain)
        );
        let admin = AuditEntry { actor: Actor::Daemon, ..plain.clone() };
        assert!(!query(Some("vpn"), None).matches(&admin));
    }
}
