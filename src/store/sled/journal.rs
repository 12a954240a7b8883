//! The journal: an append-only file of small records that makes a RADIUS
//! decision durable with one `write` and one `fdatasync` shared by every
//! request in flight, instead of a flush of sled.
//!
//! Two files, `journal-0` and `journal-1`, in the store directory. Records
//! go to the current one; a checkpoint ([`super::core::Core::checkpoint`])
//! switches to the other (empty) file, writes everything journaled so far
//! into sled, flushes sled, and then empties the file it left. So at any
//! moment the two files together hold every change sled might not have
//! durably, and opening the store replays them ([`Replay`]).
//!
//! A record is `length (u32 LE) | CRC-32 of the body (u32 LE) | body`, the
//! body a kind byte and its fields. Reading stops at the first record whose
//! length or CRC does not hold (a write torn by a crash or a power cut):
//! nothing after it was acknowledged, because an answer waits for the
//! `fdatasync` that follows the write. Token records carry the change
//! sequence of the state they hold, so a record never overrides a newer
//! state that sled already has, whichever file it is in.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::progress::{Progress, Stamped};
use crate::store::StoreError;

const FILES: [&str; 2] = ["journal-0", "journal-1"];
/// Bound on one record's body (a token's JSON, an audit entry).
const MAX_BODY: usize = 1 << 20;

const KIND_PROGRESS: u8 = 1;
const KIND_WHOLE: u8 = 2;
const KIND_REMOVED: u8 = 3;
const KIND_AUDIT: u8 = 4;

/// What a token record says about the token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenChange {
    /// Only its progress changed.
    Progress(Progress),
    /// The token's JSON, whole.
    Whole(Vec<u8>),
    /// It was removed.
    Removed,
}

/// Builds one group's records in a buffer that is reused.
#[derive(Default)]
pub(super) struct Batch {
    bytes: Vec<u8>,
    records: usize,
    /// A record past [`MAX_BODY`] was added: replay would stop at it, so the group is refused.
    too_large: bool,
}

impl Batch {
    pub(super) fn is_empty(&self) -> bool {
        self.records == 0
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }

    fn record(&mut self, kind: u8, fields: impl FnOnce(&mut Vec<u8>)) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 8]);
        self.bytes.push(kind);
        fields(&mut self.bytes);
        let body = &self.bytes[start + 8..];
        self.too_large |= body.len() > MAX_BODY;
        let (len, crc) = (u32::try_from(body.len()).unwrap_or(u32::MAX), crc32fast::hash(body));
        self.bytes[start..start + 4].copy_from_slice(&len.to_le_bytes());
        self.bytes[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        self.records += 1;
    }

    pub(super) fn token(&mut self, seq: u64, serial: &str, change: &TokenChange) {
        let kind = match change {
            TokenChange::Progress(_) => KIND_PROGRESS,
            TokenChange::Whole(_) => KIND_WHOLE,
            TokenChange::Removed => KIND_REMOVED,
        };
        self.record(kind, |out| {
            out.extend_from_slice(&seq.to_le_bytes());
            let serial = &serial.as_bytes()[..serial.len().min(u16::MAX as usize)];
            out.extend_from_slice(&(serial.len() as u16).to_le_bytes());
            out.extend_from_slice(serial);
            match change {
                TokenChange::Progress(p) => p.encode_into(seq, out),
                TokenChange::Whole(json) => out.extend_from_slice(json),
                TokenChange::Removed => {}
            }
        });
    }

    pub(super) fn audit(&mut self, seq: u64, entry: &[u8]) {
        self.record(KIND_AUDIT, |out| {
            out.extend_from_slice(&seq.to_le_bytes());
            out.extend_from_slice(entry);
        });
    }

    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.records = 0;
        self.too_large = false;
    }
}

/// The two journal files: which one is current and where it ends.
pub(super) struct Journal {
    dir: PathBuf,
    files: [File; 2],
    current: usize,
    /// Length of each file as this process wrote it (both are emptied at open).
    lens: [u64; 2],
    /// A failed write could not be taken back: no more writes until the store is reopened.
    broken: Option<String>,
}

fn failed(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {e}", path.display()))
}

impl Journal {
    /// Opens (creating) both files; the caller replays them first ([`Replay::read`]) and empties them.
    pub(super) fn open(dir: &Path) -> Result<Journal, StoreError> {
        let open = |name: &str| {
            let path = dir.join(name);
            OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
                .map_err(|e| failed("cannot open the journal", &path, e))
        };
        let files = [open(FILES[0])?, open(FILES[1])?];
        // The directory entries of new files must outlive a power cut too.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        let lens = [files[0].metadata().map_or(0, |m| m.len()), files[1].metadata().map_or(0, |m| m.len())];
        Ok(Journal { dir: dir.to_path_buf(), files, current: 0, lens, broken: None })
    }

    /// Appends `batch` to the current file; with `sync`, waits until it is
    /// on disk. A write that fails is cut off again, so that records written
    /// later are not hidden behind a torn one.
    pub(super) fn append(&mut self, batch: &Batch, sync: bool) -> Result<(), StoreError> {
        if let Some(reason) = &self.broken {
            return Err(StoreError::Unavailable(reason.clone()));
        }
        if batch.too_large {
            return Err(StoreError::Corrupt(format!("a journal record is larger than {MAX_BODY} bytes")));
        }
        let path = self.dir.join(FILES[self.current]);
        let file = &mut self.files[self.current];
        let before = self.lens[self.current];
        let written = file.write_all(&batch.bytes).and_then(|()| if sync { file.sync_data() } else { Ok(()) });
        match written {
            Ok(()) => {
                self.lens[self.current] = before + batch.bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let error = failed("cannot write the journal", &path, e);
                if let Err(cut) = file.set_len(before) {
                    self.broken = Some(format!("{error}; cannot cut it back: {cut}"));
                }
                Err(error)
            }
        }
    }

    /// Bytes in the current file.
    pub(super) fn written(&self) -> u64 {
        self.lens[self.current]
    }

    /// Makes the other file current; returns the index of the file left, for [`Journal::empty`].
    pub(super) fn switch(&mut self) -> usize {
        let left = self.current;
        self.current = 1 - left;
        left
    }

    /// Empties file `index` (its records are all in sled, durably).
    pub(super) fn empty(&mut self, index: usize) -> Result<(), StoreError> {
        let path = self.dir.join(FILES[index]);
        let file = &self.files[index];
        file.set_len(0).map_err(|e| failed("cannot empty the journal", &path, e))?;
        self.lens[index] = 0;
        file.sync_all().map_err(|e| failed("cannot sync the journal", &path, e))
    }
}

/// What the journal files hold, read at open.
#[derive(Default, Debug)]
pub(super) struct Replay {
    /// Serial -> the newest change journaled (by change sequence).
    pub(super) tokens: HashMap<String, (u64, TokenChange)>,
    /// Audit entries by their sequence.
    pub(super) audit: std::collections::BTreeMap<u64, Vec<u8>>,
    /// The highest change sequence seen.
    pub(super) max_seq: u64,
    /// Records read, and bytes ignored after a torn or damaged record.
    pub(super) records: usize,
    pub(super) ignored_bytes: u64,
}

impl Replay {
    /// Reads both files of `dir` (missing files are empty).
    pub(super) fn read(dir: &Path) -> Result<Replay, StoreError> {
        let mut replay = Replay::default();
        for name in FILES {
            let path = dir.join(name);
            let mut bytes = Vec::new();
            match File::open(&path) {
                Ok(mut f) => f.read_to_end(&mut bytes).map_err(|e| failed("cannot read the journal", &path, e))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(failed("cannot read the journal", &path, e)),
            };
            let used = replay.parse(&bytes);
            replay.ignored_bytes += (bytes.len() - used) as u64;
        }
        Ok(replay)
    }

    /// Takes the records of `bytes` up to the first that does not hold; returns the bytes used.
    pub(super) fn parse(&mut self, bytes: &[u8]) -> usize {
        let mut at = 0;
        while let Some(header) = bytes.get(at..at + 8) {
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            if len == 0 || len > MAX_BODY {
                break;
            }
            let Some(body) = bytes.get(at + 8..at + 8 + len) else { break };
            if crc32fast::hash(body) != crc || !self.take(body) {
                break;
            }
            at += 8 + len;
            self.records += 1;
        }
        at
    }

    fn take(&mut self, body: &[u8]) -> bool {
        let Some((&kind, rest)) = body.split_first() else { return false };
        let Some(seq) = rest.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes) else { return false };
        let rest = &rest[8..];
        if kind == KIND_AUDIT {
            self.audit.insert(seq, rest.to_vec());
            return true;
        }
        let Some(len) = rest.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize) else { return false };
        let (Some(serial), Some(value)) = (rest.get(2..2 + len), rest.get(2 + len..)) else { return false };
        let Ok(serial) = std::str::from_utf8(serial) else { return false };
        let change = match kind {
            KIND_PROGRESS => match Progress::decode(value, None) {
                Some(Stamped { progress, .. }) => TokenChange::Progress(progress),
                None => return false,
            },
            KIND_WHOLE => TokenChange::Whole(value.to_vec()),
            KIND_REMOVED => TokenChange::Removed,
            _ => return false,
        };
        self.max_seq = self.max_seq.max(seq);
        match self.tokens.get(serial) {
            Some((newer, _)) if *newer >= seq => {}
            _ => {
                self.tokens.insert(serial.to_string(), (seq, change));
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(counter: u64) -> Progress {
        Progress {
            counter,
            last_step: None,
            fail_count: 0,
            locked: false,
            locked_at: None,
            last_used_at: Some(5),
            failed_at: None,
        }
    }

    #[test]
    fn records_read_back_and_the_newest_change_of_a_token_wins() {
        let mut batch = Batch::default();
        batch.token(7, "A", &TokenChange::Progress(progress(3)));
        batch.audit(41, b"{\"entry\":1}");
        batch.token(9, "A", &TokenChange::Progress(progress(4)));
        batch.token(8, "A", &TokenChange::Progress(progress(99)));
        batch.token(10, "B", &TokenChange::Whole(b"{}".to_vec()));
        batch.token(11, "C", &TokenChange::Removed);
        let mut replay = Replay::default();
        assert_eq!(replay.parse(&batch.bytes), batch.len());
        assert_eq!(replay.records, 6);
        assert_eq!(replay.tokens["A"], (9, TokenChange::Progress(progress(4))));
        assert_eq!(replay.tokens["B"], (10, TokenChange::Whole(b"{}".to_vec())));
        assert_eq!(replay.tokens["C"], (11, TokenChange::Removed));
        assert_eq!(replay.audit[&41], b"{\"entry\":1}".to_vec());
        assert_eq!(replay.max_seq, 11);
    }

    #[test]
    fn a_torn_tail_is_ignored_at_every_cut() {
        let mut batch = Batch::default();
        batch.token(1, "A", &TokenChange::Progress(progress(1)));
        let first = batch.len();
        batch.audit(2, b"second");
        for cut in 0..batch.len() {
            let mut replay = Replay::default();
            let used = replay.parse(&batch.bytes[..cut]);
            let expected = if cut >= first { first } else { 0 };
            assert_eq!(used, expected, "cut at {cut}");
            assert_eq!(replay.records, usize::from(cut >= first));
            assert!(replay.audit.is_empty());
        }
    }

    #[test]
    fn a_damaged_record_ends_the_file_there() {
        let mut batch = Batch::default();
        batch.token(1, "A", &TokenChange::Progress(progress(1)));
        let first = batch.len();
        batch.token(2, "B", &TokenChange::Progress(progress(2)));
        batch.token(3, "C", &TokenChange::Progress(progress(3)));
        let mut bytes = batch.bytes.clone();
        bytes[first + 12] ^= 0x40;
        let mut replay = Replay::default();
        assert_eq!(replay.parse(&bytes), first);
        assert!(replay.tokens.contains_key("A") && !replay.tokens.contains_key("C"));
        // Zeros after the records (a file extended but not written) end it too.
        let mut zeros = batch.bytes.clone();
        zeros.extend_from_slice(&[0; 64]);
        let mut replay = Replay::default();
        assert_eq!(replay.parse(&zeros), batch.len());
    }

    #[test]
    fn the_files_switch_and_empty() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        let mut batch = Batch::default();
        batch.token(1, "A", &TokenChange::Progress(progress(1)));
        journal.append(&batch, true).unwrap();
        let left = journal.switch();
        batch.clear();
        batch.token(2, "A", &TokenChange::Progress(progress(2)));
        journal.append(&batch, true).unwrap();
        assert_eq!(Replay::read(dir.path()).unwrap().tokens["A"].0, 2);
        journal.empty(left).unwrap();
        let replay = Replay::read(dir.path()).unwrap();
        assert_eq!((replay.records, replay.tokens["A"].0), (1, 2));
        journal.empty(1 - left).unwrap();
        assert_eq!(Replay::read(dir.path()).unwrap().records, 0);
    }
}
