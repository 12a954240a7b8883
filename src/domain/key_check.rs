//! Is the configured master key the one the store's seeds were sealed with?
//!
//! The store keeps the key's check value ([`SeedCipher::key_check`]) as a
//! meta value. The daemon compares it at start and refuses another key;
//! `--check-config` compares it too. A store made before check values gets
//! its value once one of its seeds opens under the key.

use crate::crypto::SeedCipher;
use crate::store::{Store, StoreError, TokenQuery};

/// The store's meta value holding the key check value.
pub const KEY_CHECK_META: &str = "key_check";

/// How many stored seeds are tried on a store that has no check value yet.
const SEEDS_TRIED: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    #[error("it is not the key this store's seeds were sealed with")]
    WrongKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What [`check_master_key`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// The stored check value matches.
    Matched,
    /// The store had none; it has this key's now.
    Recorded,
    /// The store has none and `record` was false.
    NotRecorded,
}

/// Compares the store's key check value with `cipher`'s. Without a stored
/// value, up to [`SEEDS_TRIED`] stored seeds are opened: when there are
/// seeds and none opens, the key is wrong; otherwise the value is recorded
/// (when `record`; `--check-config` never writes).
pub async fn check_master_key(store: &dyn Store, cipher: &SeedCipher, record: bool) -> Result<KeyCheck, KeyCheckError> {
    if let Some(stored) = store.get_meta(KEY_CHECK_META).await? {
        return if cipher.matches_key_check(&stored) { Ok(KeyCheck::Matched) } else { Err(KeyCheckError::WrongKey) };
    }
    let sample = store.find(&TokenQuery { limit: SEEDS_TRIED, ..TokenQuery::default() }).await?;
    if !sample.is_empty() && !sample.iter().any(|t| cipher.open(&t.serial, &t.sealed_seed).is_ok()) {
        return Err(KeyCheckError::WrongKey);
    }
    if !record {
        return Ok(KeyCheck::NotRecorded);
    }
    store.put_meta(KEY_CHECK_META, &cipher.key_check()).await?;
    Ok(KeyCheck::Recorded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn a_new_store_records_the_key_and_refuses_another() {
        let store = MemoryStore::new(None);
        let right = SeedCipher::new(&[1u8; 32]);
        let wrong = SeedCipher::new(&[2u8; 32]);
        assert_eq!(check_master_key(&store, &right, false).await.unwrap(), KeyCheck::NotRecorded);
        assert_eq!(check_master_key(&store, &right, true).await.unwrap(), KeyCheck::Recorded);
        assert_eq!(check_master_key(&store, &right, true).await.unwrap(), KeyCheck::Matched);
        assert!(matches!(check_master_key(&store, &wrong, true).await, Err(KeyCheckError::WrongKey)));
        assert!(matches!(check_master_key(&store, &wrong, false).await, Err(KeyCheckError::WrongKey)));
    }

    #[tokio::test]
    async fn a_store_without_check_value_is_judged_by_its_seeds() {
        let store = MemoryStore::new(None);
        let right = SeedCipher::new(&[1u8; 32]);
        let wrong = SeedCipher::new(&[2u8; 32]);
        let mut token = crate::store::contract::token("T1", None);
        token.sealed_seed = right.seal("T1", &Secret::from("12345678901234567890")).unwrap();
        store.insert(vec![token], Vec::new()).await.unwrap();
        assert!(matches!(check_master_key(&store, &wrong, true).await, Err(KeyCheckError::WrongKey)));
        assert_eq!(store.get_meta(KEY_CHECK_META).await.unwrap(), None, "nothing recorded for a wrong key");
        assert_eq!(check_master_key(&store, &right, true).await.unwrap(), KeyCheck::Recorded);
    }
}
