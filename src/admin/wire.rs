//! The admin protocol: one definition, shared by `radotpd` and `radotpctl`.
//!
//! Framing: one JSON document per line, each way; a connection may carry
//! several requests in turn. Every request and response names the protocol
//! [`PROTOCOL_VERSION`]; a daemon refuses versions it does not speak with a
//! typed error. Nothing here ever carries a seed, except the import file an
//! operator sends in (and the key or password that opens it, which travel as
//! [`Secret`]s: they never print).

use serde::{Deserialize, Serialize};

use crate::directory::DirectoryUser;
use crate::domain::enroll::Enrollment;
use crate::domain::lifecycle::{Assignment, TokenFilter};
use crate::domain::reset::ResetOutcome;
use crate::domain::status::StatusReport;
use crate::import::ImportFormat;
use crate::import::ImportReport;
use crate::model::audit::{AuditEntry, AuditQuery, ChainReport, Pruned};
use crate::model::token::{TokenType, TokenView};
use crate::secret::Secret;

pub const PROTOCOL_VERSION: u32 = 1;
/// Largest request line accepted from an admin: imports travel inline,
/// JSON-escaped, and a file may have [`crate::import::MAX_IMPORT_BYTES`].
pub const MAX_REQUEST_BYTES: usize = 320 << 20;
/// Largest request line accepted from an operator (who may not import).
pub const MAX_OPERATOR_REQUEST_BYTES: usize = 1 << 20;
/// Largest response line a client accepts.
pub const MAX_RESPONSE_BYTES: usize = 512 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    #[serde(flatten)]
    pub command: Command,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", content = "args", rename_all = "snake_case")]
pub enum Command {
    Ping,
    Status,
    TokenImport {
        /// The file's content (for CSV, seeds in clear): wiped from memory when dropped.
        #[serde(with = "import_text")]
        content: zeroize::Zeroizing<String>,
        #[serde(default)]
        skip_invalid: bool,
        #[serde(default)]
        dry_run: bool,
        /// None: detected from the content.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<ImportFormat>,
        /// PSKC: the pre-shared key, in hex. Never audited or logged.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "secret_text")]
        psk_hex: Option<Secret>,
        /// PSKC: the password of a PBKDF2-derived key. Never audited or logged.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "secret_text")]
        password: Option<Secret>,
        /// The token type of the imported tokens (default: by algorithm, or the CSV column).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_type: Option<String>,
    },
    TokenList(TokenFilter),
    TokenShow {
        serial: String,
    },
    TokenAssign {
        serial: String,
        user: String,
        #[serde(default)]
        reassign: bool,
    },
    TokenUnassign {
        serial: String,
    },
    TokenEnroll {
        user: String,
        r#type: String,
        #[serde(default)]
        serial: Option<String>,
    },
    TokenReset {
        serial: String,
        otp1: String,
        otp2: String,
    },
    TokenEnable {
        serial: String,
    },
    TokenDisable {
        serial: String,
    },
    TokenUnlock {
        serial: String,
    },
    TokenDelete {
        serial: String,
    },
    Types,
    /// Re-read the configuration, as SIGHUP does.
    Reload,
    /// A consistent snapshot of tokens and audit.
    Backup,
    UserShow {
        user: String,
        /// Only this RADIUS client's reply preview.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
    UserSearch {
        query: String,
        #[serde(default = "default_search_limit")]
        limit: usize,
    },
    Audit(AuditQuery),
    AuditVerify,
    /// Apply audit retention now.
    AuditPrune,
}

fn default_search_limit() -> usize {
    50
}

/// An import file's text as a JSON string, held in a buffer that is wiped when dropped.
mod import_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub fn serialize<S: Serializer>(value: &Zeroizing<String>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Zeroizing<String>, D::Error> {
        String::deserialize(deserializer).map(Zeroizing::new)
    }
}

/// An optional [`Secret`] as a JSON string.
mod secret_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::secret::Secret;

    pub fn serialize<S: Serializer>(value: &Option<Secret>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            None => serializer.serialize_none(),
            Some(secret) => {
                let text = std::str::from_utf8(secret.expose()).map_err(serde::ser::Error::custom)?;
                serializer.serialize_some(text)
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
        let text: Option<zeroize::Zeroizing<String>> =
            Option::<String>::deserialize(deserializer)?.map(zeroize::Zeroizing::new);
        Ok(text.map(|t| Secret::from(t.as_str())))
    }
}

impl Command {
    /// The operation's name in audit entries and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ping => "ping",
            Command::Status => "status",
            Command::TokenImport { .. } => "token.import",
            Command::TokenList(_) => "token.list",
            Command::TokenShow { .. } => "token.show",
            Command::TokenAssign { .. } => "token.assign",
            Command::TokenUnassign { .. } => "token.unassign",
            Command::TokenEnroll { .. } => "token.enroll",
            Command::TokenReset { .. } => "token.reset",
            Command::TokenEnable { .. } => "token.enable",
            Command::TokenDisable { .. } => "token.disable",
            Command::TokenUnlock { .. } => "token.unlock",
            Command::TokenDelete { .. } => "token.delete",
            Command::Types => "types",
            Command::Reload => "reload",
            Command::Backup => "backup",
            Command::UserShow { .. } => "user.show",
            Command::UserSearch { .. } => "user.search",
            Command::Audit(_) => "audit.list",
            Command::AuditVerify => "audit.verify",
            Command::AuditPrune => "audit.prune",
        }
    }
}

/// What a peer may do on the admin socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Day-to-day token handling.
    Operator,
    /// Everything, including import and delete.
    Admin,
}

impl Command {
    /// The least role that may run this command.
    pub fn required_role(&self) -> Role {
        match self {
            Command::TokenImport { .. }
            | Command::TokenDelete { .. }
            | Command::Reload
            | Command::Backup
            | Command::AuditPrune => Role::Admin,
            _ => Role::Operator,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub version: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Reply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
}

impl Response {
    pub fn success(reply: Reply) -> Self {
        Response { version: PROTOCOL_VERSION, ok: true, result: Some(reply), error: None }
    }

    pub fn failure(kind: ErrorKind, message: impl Into<String>) -> Self {
        Response {
            version: PROTOCOL_VERSION,
            ok: false,
            result: None,
            error: Some(WireError { kind, message: message.into() }),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Reply {
    Pong { daemon_version: String },
    Status(StatusReport),
    Import(ImportReport),
    Tokens(Vec<TokenView>),
    Token(TokenView),
    Assignment(Assignment),
    Enrollment(Enrollment),
    Reset(ResetOutcome),
    Types(Vec<TokenType>),
    User(UserDetails),
    Users(Vec<DirectoryUser>),
    Audit(Vec<AuditEntry>),
    Chain(ChainReport),
    Pruned(Pruned),
    Reload(ReloadOutcome),
    Backup(Box<crate::domain::backup::Backup>),
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReloadOutcome {
    /// True when the new configuration is in force.
    pub applied: bool,
    /// Why it was refused (each with its key path); the old configuration stays.
    pub problems: Vec<String>,
    /// Changed settings that only take effect at the next restart.
    pub restart_needed: Vec<String>,
    /// Other things worth knowing (e.g. stored tokens of an undefined type).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserDetails {
    pub user: DirectoryUser,
    pub tokens: Vec<TokenView>,
    /// What a login through each RADIUS client would get (groups, rules).
    #[serde(default)]
    pub replies: Vec<crate::domain::authorization::ClientReply>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is not understood (bad JSON, unknown op, wrong version).
    BadRequest,
    /// The peer may not do this.
    Forbidden,
    NotFound,
    /// The operation was refused by a rule (already assigned, ...).
    Refused,
    /// The input is not acceptable (bad CSV, bad name, ...).
    Invalid,
    /// A dependency (directory) is down.
    Unavailable,
    Internal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_shape_is_stable() {
        let request = Request {
            version: PROTOCOL_VERSION,
            command: Command::TokenAssign { serial: "S1".into(), user: "alice".into(), reassign: false },
        };
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version": 1, "op": "token_assign", "args": {"serial": "S1", "user": "alice", "reassign": false}})
        );
        let back: Request = serde_json::from_value(json).unwrap();
        assert_eq!(back.command.name(), "token.assign");
        let ping: Request = serde_json::from_str(r#"{"version":1,"op":"ping"}"#).unwrap();
        assert!(matches!(ping.command, Command::Ping));
    }

    #[test]
    fn import_requests_without_the_new_fields_still_parse_and_secrets_never_print() {
        let old: Request =
            serde_json::from_str(r#"{"version":1,"op":"token_import","args":{"content":"serial,type,seed\n"}}"#)
                .unwrap();
        match &old.command {
            Command::TokenImport { format, psk_hex, password, token_type, skip_invalid, .. } => {
                assert!(format.is_none() && psk_hex.is_none() && password.is_none() && token_type.is_none());
                assert!(!skip_invalid);
            }
            other => panic!("{other:?}"),
        }
        let request = Request {
            version: PROTOCOL_VERSION,
            command: Command::TokenImport {
                content: zeroize::Zeroizing::new("<KeyContainer/>".into()),
                skip_invalid: false,
                dry_run: true,
                format: Some(ImportFormat::Pskc),
                psk_hex: None,
                password: Some(Secret::from("qwerty")),
                token_type: Some("hw-hotp".into()),
            },
        };
        assert!(!format!("{request:?}").contains("qwerty"));
        let json = serde_json::to_string(&request).unwrap();
        assert!(json.contains(r#""format":"pskc""#) && json.contains(r#""password":"qwerty""#), "{json}");
        let back: Request = serde_json::from_str(&json).unwrap();
        match back.command {
            Command::TokenImport { password: Some(p), format: Some(ImportFormat::Pskc), .. } => {
                assert_eq!(p.expose(), b"qwerty")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_op_does_not_parse() {
        assert!(serde_json::from_str::<Request>(r#"{"version":1,"op":"format_disk"}"#).is_err());
    }
}
