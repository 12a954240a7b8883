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
pub(super) struct AuditChunk;

impl AuditChunk {
    const MAGIC: u8 = 0;
    const MAX_BYTES: usize = 4 * 1024;

    /// Encodes the first records (at least one) that fit in a chunk; returns the chunk and how many it holds.
    pub(super) fn encode(records: &[AuditRecord]) -> (Vec<u8>, usize) {
        let mut chunk = vec![Self::MAGIC];
        let mut taken = 0;
        for record in records {
            if taken > 0 && chunk.len() + 12 + record.bytes.len() > Self::MAX_BYTES {
                break;
            }
            chunk.extend_from_slice(&record.seq.to_be_bytes());
            chunk.extend_from_slice(&(record.bytes.len() as u32).to_be_bytes());
            chunk.extend_from_slice(&record.bytes);
            taken += 1;
        }
        (chunk, taken)
    }

    pub(super) fn decode(key: &[u8], value: &[u8]) -> Result<Vec<AuditRecord>, StoreError> {
        let Some((&Self::MAGIC, mut rest)) = value.split_first() else {
            return Ok(vec![AuditRecord { seq: seq_of(key), bytes: value.to_vec() }]);
        };
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
