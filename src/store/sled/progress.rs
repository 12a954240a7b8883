//! The progress record: the fields of a token that RADIUS decisions change,
//! written on their own beside the token's JSON.

use crate::model::token::Token;

/// The fields of a token that RADIUS decisions change, written on their own
/// (41 bytes instead of the whole token's JSON) when nothing else changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Progress {
    pub(super) counter: u64,
    pub(super) last_step: Option<u64>,
    pub(super) fail_count: u32,
    pub(super) locked: bool,
    pub(super) locked_at: Option<u64>,
    pub(super) last_used_at: Option<u64>,
}

impl Progress {
    pub(super) const VERSION: u8 = 1;
    pub(super) const LEN: usize = 41;

    pub(super) fn of(token: &Token) -> Self {
        Progress {
            counter: token.counter,
            last_step: token.last_step,
            fail_count: token.fail_count,
            locked: token.locked,
            locked_at: token.locked_at,
            last_used_at: token.last_used_at,
        }
    }

    pub(super) fn apply(self, token: &mut Token) {
        token.counter = self.counter;
        token.last_step = self.last_step;
        token.fail_count = self.fail_count;
        token.locked = self.locked;
        token.locked_at = self.locked_at;
        token.last_used_at = self.last_used_at;
    }

    /// True when `new` is `old` with other progress: any other field that
    /// changed (including one added to [`Token`] later) needs a whole write.
    pub(super) fn is_all_that_changed(old: &Token, new: &Token) -> bool {
        let mut probe = old.clone();
        Progress::of(new).apply(&mut probe);
        probe.version = new.version;
        probe == *new
    }

    pub(super) fn encode(self) -> Vec<u8> {
        pub(super) fn optional(out: &mut Vec<u8>, value: Option<u64>) {
            out.push(u8::from(value.is_some()));
            out.extend_from_slice(&value.unwrap_or(0).to_be_bytes());
        }
        let mut out = Vec::with_capacity(Self::LEN);
        out.push(Self::VERSION);
        out.extend_from_slice(&self.counter.to_be_bytes());
        optional(&mut out, self.last_step);
        out.extend_from_slice(&self.fail_count.to_be_bytes());
        out.push(u8::from(self.locked));
        optional(&mut out, self.locked_at);
        optional(&mut out, self.last_used_at);
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; Self::LEN] = bytes.try_into().ok()?;
        if bytes[0] != Self::VERSION {
            return None;
        }
        let u64_at = |at: usize| bytes[at..at + 8].try_into().ok().map(u64::from_be_bytes);
        let optional = |at: usize| match bytes[at] {
            0 => Some(None),
            1 => u64_at(at + 1).map(Some),
            _ => None,
        };
        Some(Progress {
            counter: u64_at(1)?,
            last_step: optional(9)?,
            fail_count: u32::from_be_bytes(bytes[18..22].try_into().ok()?),
            locked: match bytes[22] {
                0 => false,
                1 => true,
                _ => return None,
            },
            locked_at: optional(23)?,
            last_used_at: optional(32)?,
        })
    }
}
