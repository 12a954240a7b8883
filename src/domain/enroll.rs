//! "ADD NEW TOKEN" on a user's page: a hardware token taken from stock, or
//! a fresh software token (an authenticator app) with a generated secret,
//! whose secret and `otpauth://` URI are handed back this once only.

use serde::{Deserialize, Serialize};

use super::{DomainError, Refusal, Service};
use crate::model::audit::{Actor, AuditEvent, AuditWrite};
use crate::model::otp::HashAlg;
use crate::model::token::{Algorithm, OtpParams, Owner, Token, TokenType, TokenView};
use crate::secret::Secret;

/// Issuer and account label of the `otpauth://` URI of soft tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollLabels {
    pub issuer: String,
    /// `{user}` is replaced by the user name, `{serial}` by the serial.
    pub account: String,
}

impl Default for EnrollLabels {
    fn default() -> Self {
        EnrollLabels { issuer: "radotp".into(), account: "{user}".into() }
    }
}

/// What enrollment hands back: the secret and URI only for generated tokens,
/// and only this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    pub token: TokenView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_base32: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otpauth_uri: Option<String>,
}

impl Service {
    /// Enrolls a token of type `type_id` for `user`: the unassigned token
    /// `serial` of a hardware type, or a new token of a generating type.
    pub async fn enroll(
        &self,
        actor: &Actor,
        user: &str,
        type_id: &str,
        serial: Option<&str>,
    ) -> Result<Enrollment, DomainError> {
        let result = self.enroll_token(actor, user, type_id, serial).await;
        if let Err(e) = &result {
            let event = AuditEvent {
                operation: "token.enroll".into(),
                user: Some(user.into()),
                serial: serial.map(str::to_string),
                details: serde_json::json!({ "type": type_id }),
                result: e.kind().as_str().into(),
                reason: Some(e.to_string()),
            };
            self.record(actor, event).await;
        }
        result
    }

    async fn enroll_token(
        &self,
        actor: &Actor,
        user: &str,
        type_id: &str,
        serial: Option<&str>,
    ) -> Result<Enrollment, DomainError> {
        let settings = self.settings();
        let ty = enrollable_type(&settings.token_types, type_id)?;
        let entry = self.directory_user(user).await?;
        if !ty.generate_secret {
            let Some(serial) = serial else {
                return Err(DomainError::Invalid(format!(
                    "type {} is a hardware type: give --serial of an unassigned token of that type (radotpctl token list --unassigned --type {})",
                    ty.id, ty.id
                )));
            };
            let mut details = serde_json::Map::new();
            details.insert("type".into(), ty.id.clone().into());
            details.insert("serial".into(), serial.into());
            let owner =
                Owner { name: entry.name.clone(), display_name: entry.display_name.clone(), dn: entry.dn.clone() };
            let assignment = self
                .move_owner(actor, "token.enroll", Some(user), details, serial, |token| {
                    if token.type_id != ty.id {
                        return Err(DomainError::refused(
                            Refusal::WrongType,
                            format!("token {serial} is of type {}, not {}", token.type_id, ty.id),
                        ));
                    }
                    match token.owner_name() {
                        None => Ok(Some(owner.clone())),
                        Some(name) if name == owner.name => Err(DomainError::refused(
                            Refusal::AlreadyOwned,
                            format!("{name} already has token {serial}: nothing to do"),
                        )),
                        Some(name) => Err(DomainError::refused(
                            Refusal::OwnedByOther,
                            format!(
                                "token {serial} belongs to {name}, not to stock; unassign it first (radotpctl token unassign {serial})"
                            ),
                        )),
                    }
                })
                .await?;
            return Ok(Enrollment { token: assignment.token, secret_base32: None, otpauth_uri: None });
        }
        if serial.is_some() {
            return Err(DomainError::Invalid(format!("type {} generates its own token; --serial is not used", ty.id)));
        }
        let secret_len = match ty.hash {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha512 => 64,
        };
        let mut bytes = zeroize::Zeroizing::new(vec![0u8; secret_len]);
        crate::crypto::random_bytes(&mut bytes)?;
        let seed = Secret::new(bytes.to_vec());
        let mut suffix = [0u8; 5];
        crate::crypto::random_bytes(&mut suffix)?;
        let serial = format!("{}-{}", ty.id, data_encoding::BASE32_NOPAD.encode(&suffix));
        let now = self.now();
        let token = Token {
            serial: serial.clone(),
            type_id: ty.id.clone(),
            params: OtpParams { algorithm: ty.algorithm, digits: ty.digits, hash: ty.hash, period: ty.period },
            sealed_seed: self.cipher.seal(&serial, &seed)?,
            counter: 0,
            last_step: None,
            drift: 0,
            owner: Some(Owner {
                name: entry.name.clone(),
                display_name: entry.display_name.clone(),
                dn: entry.dn.clone(),
            }),
            disabled: false,
            locked: false,
            fail_count: 0,
            created_at: now,
            last_used_at: None,
            locked_at: None,
            failed_at: None,
            version: 0,
        };
        let audit = AuditWrite::new(
            actor,
            now,
            AuditEvent {
                operation: "token.enroll".into(),
                user: Some(user.into()),
                serial: Some(serial.clone()),
                details: serde_json::json!({ "type": ty.id, "serial": serial }),
                result: "ok".into(),
                reason: None,
            },
        );
        self.store.insert(vec![token.clone()], vec![audit]).await?;
        let secret_base32 = data_encoding::BASE32_NOPAD.encode(seed.expose());
        let uri = otpauth_uri(&token, &secret_base32, &entry.name, &settings.enroll);
        Ok(Enrollment {
            token: self.view(&token, &settings),
            secret_base32: Some(secret_base32),
            otpauth_uri: Some(uri),
        })
    }
}

/// The type `type_id` if operators may enroll it; otherwise an error that
/// lists the types they may.
fn enrollable_type(types: &[TokenType], type_id: &str) -> Result<TokenType, DomainError> {
    let allowed: Vec<String> =
        types.iter().filter(|t| t.operator_enroll).map(|t| format!("{} ({})", t.id, t.label)).collect();
    let allowed = if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") };
    match types.iter().find(|t| t.id == type_id) {
        Some(ty) if ty.operator_enroll => Ok(ty.clone()),
        None => {
            Err(DomainError::Invalid(format!("there is no token type {type_id:?}; operators may enroll: {allowed}")))
        }
        Some(_) => Err(DomainError::refused(
            Refusal::EnrollNotAllowed,
            format!("operators cannot enroll tokens of type {type_id:?}; allowed types: {allowed}"),
        )),
    }
}

/// The Key Uri Format understood by authenticator apps.
fn otpauth_uri(token: &Token, secret_base32: &str, user: &str, labels: &EnrollLabels) -> String {
    let p = token.params;
    let account = labels.account.replace("{user}", user).replace("{serial}", &token.serial);
    let mut uri = format!(
        "otpauth://{}/{}:{}?secret={secret_base32}&issuer={}&algorithm={}&digits={}",
        p.algorithm.as_str(),
        percent_encode(&labels.issuer),
        percent_encode(&account),
        percent_encode(&labels.issuer),
        p.hash.as_str().to_ascii_uppercase(),
        p.digits
    );
    match p.algorithm {
        Algorithm::Totp => uri.push_str(&format!("&period={}", p.period)),
        Algorithm::Hotp => uri.push_str(&format!("&counter={}", token.counter)),
    }
    uri
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
