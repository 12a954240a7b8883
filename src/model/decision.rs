//! What an authentication attempt decides, and why a login was refused.

/// The answer to an authentication attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accept { serial: String },
    Reject { reason: RejectReason, serial: Option<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The user owns no token (or is unknown: the two look the same from outside).
    NoToken,
    /// The user's tokens are all disabled or locked.
    NoUsableToken,
    /// The OTP matched no token in its window.
    WrongOtp,
    /// The OTP was the last one accepted.
    Replay,
    /// Empty or over-long user name.
    BadUserName,
    /// The store could not make the accepted OTP durable.
    StoreFailure,
    /// The directory does not know the user.
    UnknownUser,
    /// The user is outside the directory's `required_group`.
    NotInGroup,
    /// The directory account cannot log in (disabled, locked, expired, or
    /// its password expired or must be changed).
    AccountDisabled,
    /// The directory password is wrong.
    WrongPassword,
    /// The directory could not be reached.
    DirectoryUnavailable,
    /// The State of a challenge answer is unknown, used, expired or foreign.
    BadState,
    /// Too many challenges pending.
    ChallengeRefused,
    /// The client (or NAS) does not let this user, or this user's tokens, in
    /// (`allowed_groups`, `allowed_token_types`); no failure is counted.
    NotAllowedHere,
    /// The user had more directory password checks in the last minute than
    /// radotp makes for one user; the directory was not asked.
    DirectoryThrottled,
    /// A token's seed cannot be decrypted (wrong master key, damaged
    /// store): a fault of the server, never counted against the user.
    SeedUnreadable,
    /// A TOTP code of the token, but for a time well away from this
    /// server's clock (a clock that stepped, here or on the token): not a
    /// guess, so not counted as a failure.
    ClockSkew,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NoToken => "no_token",
            RejectReason::NoUsableToken => "no_usable_token",
            RejectReason::WrongOtp => "wrong_otp",
            RejectReason::Replay => "replay",
            RejectReason::BadUserName => "bad_user_name",
            RejectReason::StoreFailure => "store_failure",
            RejectReason::UnknownUser => "unknown_user",
            RejectReason::NotInGroup => "not_in_group",
            RejectReason::AccountDisabled => "account_disabled",
            RejectReason::WrongPassword => "wrong_password",
            RejectReason::DirectoryUnavailable => "directory_unavailable",
            RejectReason::BadState => "bad_state",
            RejectReason::ChallengeRefused => "challenge_refused",
            RejectReason::NotAllowedHere => "not_allowed_here",
            RejectReason::SeedUnreadable => "seed_unreadable",
            RejectReason::DirectoryThrottled => "directory_throttled",
            RejectReason::ClockSkew => "clock_skew",
        }
    }
}
