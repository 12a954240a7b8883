//! The errors of domain operations, typed by what an operator can do about them.
//!
//! [`DomainError::kind`] sorts every failure into one of a few kinds
//! (not found, refused with a [`Refusal`] code, invalid input, conflict,
//! unavailable, internal) that transports turn into their own answers (the
//! admin protocol's error kinds and radotpctl's exit codes, HTTP statuses).
//! A panicked task or a daemon shutting down is `internal`/`unavailable`,
//! never "invalid input".

use crate::crypto::CryptoError;
use crate::directory::DirectoryError;
use crate::store::StoreError;

/// Why an operation was refused by a rule: stable codes for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The token already belongs to that user.
    AlreadyOwned,
    /// The token belongs to someone else.
    OwnedByOther,
    /// The token is not assigned to anyone.
    NotAssigned,
    /// The token is of another type than the one asked for.
    WrongType,
    /// The type may not be enrolled by operators.
    EnrollNotAllowed,
    /// The type does not allow the two-OTP reset.
    ResetNotAllowed,
    /// The type's tokens may not be deleted.
    DeleteNotAllowed,
    /// The two OTPs are in reverse order.
    OtpsReversed,
    /// The two OTPs are not consecutive codes within the window.
    OtpsNotConsecutive,
    /// The OTPs were already used.
    OtpsUsed,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::AlreadyOwned => "already_owned",
            Refusal::OwnedByOther => "owned_by_other",
            Refusal::NotAssigned => "not_assigned",
            Refusal::WrongType => "wrong_type",
            Refusal::EnrollNotAllowed => "enroll_not_allowed",
            Refusal::ResetNotAllowed => "reset_not_allowed",
            Refusal::DeleteNotAllowed => "delete_not_allowed",
            Refusal::OtpsReversed => "otps_reversed",
            Refusal::OtpsNotConsecutive => "otps_not_consecutive",
            Refusal::OtpsUsed => "otps_used",
        }
    }
}

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Refused,
    Invalid,
    /// The thing kept changing under the operation; trying again may work.
    Conflict,
    /// A dependency (store, directory) cannot be reached, or the daemon is stopping.
    Unavailable,
    Internal,
}

impl ErrorKind {
    /// The name audit entries and programs see.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Refused => "refused",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("token {0} does not exist")]
    NoSuchToken(String),
    #[error("user {0} is not in the directory")]
    NoSuchUser(String),
    #[error("{message}")]
    Refused { code: Refusal, message: String },
    #[error("{0}")]
    Invalid(String),
    /// The daemon cannot do it now (shutting down, a task failed to start).
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl DomainError {
    pub fn refused(code: Refusal, message: impl Into<String>) -> DomainError {
        DomainError::Refused { code, message: message.into() }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            DomainError::NoSuchToken(_) | DomainError::NoSuchUser(_) => ErrorKind::NotFound,
            DomainError::Refused { .. } => ErrorKind::Refused,
            DomainError::Invalid(_) => ErrorKind::Invalid,
            DomainError::Unavailable(_) => ErrorKind::Unavailable,
            DomainError::Internal(_) | DomainError::Crypto(_) => ErrorKind::Internal,
            DomainError::Store(StoreError::Unavailable(_)) => ErrorKind::Unavailable,
            DomainError::Store(StoreError::Conflict(_)) => ErrorKind::Conflict,
            DomainError::Store(StoreError::Exists(_)) => ErrorKind::Refused,
            DomainError::Store(_) => ErrorKind::Internal,
            DomainError::Directory(DirectoryError::Unavailable(_)) => ErrorKind::Unavailable,
            DomainError::Directory(DirectoryError::NotInGroup(_)) => ErrorKind::NotFound,
            DomainError::Directory(_) => ErrorKind::Invalid,
        }
    }

    /// The refusal code, for refused operations.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            DomainError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The `result` and `reason` of an operation's audit entry.
pub(crate) fn outcome_of<T>(result: &Result<T, DomainError>) -> (String, Option<String>) {
    match result {
        Ok(_) => ("ok".into(), None),
        Err(e) => (e.kind().as_str().into(), Some(e.to_string())),
    }
}
