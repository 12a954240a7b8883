//! The progress record: the fields of a token that RADIUS decisions change,
//! written on their own beside the token's JSON, with the change sequence
//! that orders it against journal records of the same token.

use crate::model::token::Token;

/// The fields of a token that RADIUS decisions change, written on their own
/// (58 bytes instead of the whole token's JSON) when nothing else changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Progress {
    pub(super) counter: u64,
    pub(super) last_step: Option<u64>,
    pub(super) fail_count: u32,
    pub(super) locked: bool,
    pub(super) locked_at: Option<u64>,
    pub(super) last_used_at: Option<u64>,
    pub(super) failed_at: Option<u64>,
}

/// A progress record as stored: the fields and the change sequence of the
/// write that stored them (0 for records of version 1, which had none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamped {
    pub(super) progress: Progress,
    pub(super) seq: u64,
}

impl Progress {
    pub(super) const VERSION: u8 = 2;
    /// Version 1: no `failed_at`, no sequence.
    const LEN_V1: usize = 41;
    pub(super) const LEN: usize = 58;

    pub(super) fn of(token: &Token) -> Self {
        Progress {
            counter: token.counter,
            last_step: token.last_step,
            fail_count: token.fail_count,
            locked: token.locked,
            locked_at: token.locked_at,
            last_used_at: token.last_used_at,
            failed_at: token.failed_at,
        }
    }

    pub(super) fn apply(self, token: &mut Token) {
        token.counter = self.counter;
        token.last_step = self.last_step;
        token.fail_count = self.fail_count;
        token.locked = self.locked;
        token.locked_at = self.locked_at;
        token.last_used_at = self.last_used_at;
        token.failed_at = self.failed_at;
    }

    /// True when `new` is `old` with other progress: any other field that
    /// changed (including one added to [`Token`] later) needs a whole write.
    pub(super) fn is_all_that_changed(old: &Token, new: &Token) -> bool {
        let mut probe = old.clone();
        Progress::of(new).apply(&mut probe);
        probe.version = new.version;
        probe == *new
    }

    /// The record of version 2, stamped with `seq`.
    pub(super) fn encode(self, seq: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        self.encode_into(seq, &mut out);
        out
    }

    pub(super) fn encode_into(self, seq: u64, out: &mut Vec<u8>) {
        fn optional(out: &mut Vec<u8>, value: Option<u64>) {
            out.push(u8::from(value.is_some()));
            out.extend_from_slice(&value.unwrap_or(0).to_be_bytes());
        }
        out.push(Self::VERSION);
        out.extend_from_slice(&self.counter.to_be_bytes());
        optional(out, self.last_step);
        out.extend_from_slice(&self.fail_count.to_be_bytes());
        out.push(u8::from(self.locked));
        optional(out, self.locked_at);
        optional(out, self.last_used_at);
        optional(out, self.failed_at);
        out.extend_from_slice(&seq.to_be_bytes());
    }

    /// Reads a record of version 2, or of version 1 (no `failed_at`: the
    /// token's JSON, always written whole with it then, has the value).
    pub(super) fn decode(bytes: &[u8], token_failed_at: Option<u64>) -> Option<Stamped> {
        let u64_at = |at: usize| bytes.get(at..at + 8)?.try_into().ok().map(u64::from_be_bytes);
        let optional = |at: usize| match bytes.get(at)? {
            0 => Some(None),
            1 => u64_at(at + 1).map(Some),
            _ => None,
        };
        let (failed_at, seq) = match (bytes.first()?, bytes.len()) {
            (1, Self::LEN_V1) => (token_failed_at, 0),
            (2, Self::LEN) => (optional(41)?, u64_at(50)?),
            _ => return None,
        };
        let progress = Progress {
            counter: u64_at(1)?,
            last_step: optional(9)?,
            fail_count: u32::from_be_bytes(bytes.get(18..22)?.try_into().ok()?),
            locked: match bytes[22] {
                0 => false,
                1 => true,
                _ => return None,
            },
            locked_at: optional(23)?,
            last_used_at: optional(32)?,
            failed_at,
        };
        Some(Stamped { progress, seq })
    }
}
