//! How audit entries are kept in sled: single entries or chunks of
//! consecutive ones under the first one's sequence.

use super::AuditRecord;
use crate::store::StoreError;

pub(super) fn seq_of(key: &[u8]) -> u64 {
    <[u8; 8]>::try_from(key).map(u64::from_be_bytes).unwrap_or(0)
}

/// Consecutive audit entries stored as one value.
///
/// An audit value is either one entry's JSON (it starts with `{`), keyed by
/// its sequence, or a chunk: the byte [`AuditChunk::MAGIC`], then for each
/// entry its sequence (u64) and length (u32), big-endian, and its bytes;
/// keyed by the first entry's sequence.
///
/// Chunks are small (4 KiB): sled keeps up to 17 values in a leaf and writes
/// a leaf larger than a quarter of its 512 KiB segment as a separate blob
/// file, which larger chunks made happen on every audit write.
///
/// Since the compact format, a chunk is written deflated: the byte
/// [`AuditChunk::DEFLATED`], then the deflate stream of a plain chunk's body
/// (up to [`AuditChunk::MAX_RAW_BYTES`] of entries, about 4 KiB once
/// deflated: the entries of a chunk share their keys, and each one's
/// `prev_hash` repeats the hash just before it). Plain chunks and single
/// entries written before are still read.
pub(super) struct AuditChunk;

impl AuditChunk {
    const MAGIC: u8 = 0;
    const DEFLATED: u8 = 1;
    /// Entries' bytes in one chunk before deflating.
    const MAX_RAW_BYTES: usize = 16 * 1024;
    /// Most bytes a deflated chunk may inflate to (a damaged one is refused,
    /// not inflated without end).
    const MAX_INFLATED_BYTES: u64 = 1 << 20;

    /// Encodes the first records (at least one) that fit in a chunk,
    /// deflated; returns the chunk and how many it holds.
    pub(super) fn encode(records: &[AuditRecord]) -> (Vec<u8>, usize) {
        use std::io::Write;
        let mut body = Vec::with_capacity(Self::MAX_RAW_BYTES);
        let mut taken = 0;
        for record in records {
            if taken > 0 && body.len() + 12 + record.bytes.len() > Self::MAX_RAW_BYTES {
                break;
            }
            body.extend_from_slice(&record.seq.to_be_bytes());
            body.extend_from_slice(&(record.bytes.len() as u32).to_be_bytes());
            body.extend_from_slice(&record.bytes);
            taken += 1;
        }
        let mut deflater = flate2::write::DeflateEncoder::new(vec![Self::DEFLATED], flate2::Compression::new(3));
        // Writing to a Vec cannot fail; should it, the plain chunk is kept.
        match deflater.write_all(&body).and_then(|()| deflater.finish()) {
            Ok(chunk) => (chunk, taken),
            Err(_) => ([&[Self::MAGIC][..], &body].concat(), taken),
        }
    }

    pub(super) fn decode(key: &[u8], value: &[u8]) -> Result<Vec<AuditRecord>, StoreError> {
        match value.split_first() {
            Some((&Self::DEFLATED, deflated)) => {
                use std::io::Read;
                let mut body = Vec::new();
                let inflater = flate2::read::DeflateDecoder::new(deflated);
                inflater
                    .take(Self::MAX_INFLATED_BYTES)
                    .read_to_end(&mut body)
                    .map_err(|e| StoreError::Corrupt(format!("audit chunk {} does not inflate: {e}", seq_of(key))))?;
                Self::decode_body(key, &body)
            }
            Some((&Self::MAGIC, body)) => Self::decode_body(key, body),
            _ => Ok(vec![AuditRecord { seq: seq_of(key), bytes: value.to_vec() }]),
        }
    }

    fn decode_body(key: &[u8], mut rest: &[u8]) -> Result<Vec<AuditRecord>, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("audit chunk {} is truncated", seq_of(key)));
        let mut records = Vec::new();
        while !rest.is_empty() {
            let (seq, after) = rest.split_first_chunk::<8>().ok_or_else(corrupt)?;
            let (len, after) = after.split_first_chunk::<4>().ok_or_else(corrupt)?;
            let len = u32::from_be_bytes(*len) as usize;
            let bytes = after.get(..len).ok_or_else(corrupt)?;
            records.push(AuditRecord { seq: u64::from_be_bytes(*seq), bytes: bytes.to_vec() });
            rest = &after[len..];
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::audit::{Actor, AuditEvent, AuditWrite, Chain};

    fn records(count: u64) -> Vec<AuditRecord> {
        let mut chain = Chain::default();
        (0..count)
            .map(|n| {
                let event = AuditEvent {
                    operation: "radius.auth".into(),
                    user: Some(format!("u{n:05}")),
                    serial: Some(format!("SERIAL{n:05}")),
                    result: "accept".into(),
                    ..AuditEvent::default()
                };
                let (seq, bytes) = chain.seal(AuditWrite::new(&Actor::Daemon, 1_700_000_000 + n, event)).unwrap();
                AuditRecord { seq, bytes }
            })
            .collect()
    }

    #[test]
    fn chunks_are_deflated_to_a_fraction_and_read_back() {
        let all = records(200);
        let raw: usize = all.iter().map(|r| r.bytes.len()).sum();
        let (mut stored, mut read, mut rest) = (0, Vec::new(), all.as_slice());
        while let Some(first) = rest.first() {
            let (chunk, taken) = AuditChunk::encode(rest);
            stored += chunk.len();
            read.extend(AuditChunk::decode(&first.seq.to_be_bytes(), &chunk).unwrap());
            rest = &rest[taken..];
        }
        assert_eq!(
            read.iter().map(|r| (r.seq, &r.bytes)).collect::<Vec<_>>(),
            all.iter().map(|r| (r.seq, &r.bytes)).collect::<Vec<_>>()
        );
        assert!(stored * 3 < raw, "deflated {stored} bytes of {raw}");
    }

    #[test]
    fn plain_chunks_and_single_entries_of_older_stores_are_still_read() {
        let all = records(3);
        let mut plain = vec![AuditChunk::MAGIC];
        for record in &all[..2] {
            plain.extend_from_slice(&record.seq.to_be_bytes());
            plain.extend_from_slice(&(record.bytes.len() as u32).to_be_bytes());
            plain.extend_from_slice(&record.bytes);
        }
        let read = AuditChunk::decode(&1u64.to_be_bytes(), &plain).unwrap();
        assert_eq!((read.len(), read[1].seq), (2, 2));
        let single = AuditChunk::decode(&3u64.to_be_bytes(), &all[2].bytes).unwrap();
        assert_eq!((single[0].seq, &single[0].bytes), (3, &all[2].bytes));
        // A deflated chunk that inflates to garbage is an error, not a misread.
        assert!(AuditChunk::decode(&1u64.to_be_bytes(), &[AuditChunk::DEFLATED, 0xff, 0x00, 0x13]).is_err());
    }
}
