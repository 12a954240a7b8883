//! Backups are signed; a restore checks the MAC and the audit chain.

use super::*;
use crate::config::AuthConfig;
use crate::domain::testing::{Fixture, RFC_CODES};
use crate::model::decision::Decision;

fn accepted(decision: &Decision) -> bool {
    matches!(decision, Decision::Accept { .. })
}
use crate::store::memory::MemoryStore;

#[tokio::test]
async fn backups_are_signed_and_restore_checks_the_mac_and_the_audit_chain() {
    let f = Fixture::with_tokens(AuthConfig::default()).await;
    assert!(accepted(&f.check("alice", RFC_CODES[0]).await));
    f.check("bob", "000000").await;
    let backup = f.service.backup(&Actor::Daemon).await.unwrap();
    assert_eq!(backup.mac_status(f.service.cipher()), BackupMacStatus::Valid);
    assert!(backup.verify_audit_chain().ok);
    // As radotpctl writes it and radotpd --restore reads it.
    let text = serde_json::to_string_pretty(&backup).unwrap();
    let read: Backup = serde_json::from_str(&text).unwrap();
    assert_eq!(read.mac_status(f.service.cipher()), BackupMacStatus::Valid);

    let cipher = f.service.cipher().clone();
    let restore_into = |backup: &Backup, force: bool| {
        let backup = backup.clone();
        let cipher = cipher.clone();
        async move {
            let store = MemoryStore::new(None);
            let result = restore(&store, &cipher, &backup, force, "test", 1).await;
            let tokens = store.census(0, 0).await.unwrap().total as usize;
            (result, tokens)
        }
    };
    let (result, tokens) = restore_into(&read, false).await;
    let report = result.unwrap();
    assert_eq!((report.tokens, tokens, report.overridden.len()), (2, 2, 0));

    // Bob takes alice's token in the file: refused, nothing written; --force writes it.
    let edited: Backup = serde_json::from_str(&text.replace(r#""name": "alice""#, r#""name": "bob""#)).unwrap();
    assert_eq!(edited.snapshot.tokens.iter().filter(|t| t.owner_name() == Some("bob")).count(), 2);
    assert_eq!(edited.mac_status(f.service.cipher()), BackupMacStatus::Invalid);
    let (result, tokens) = restore_into(&edited, false).await;
    assert!(matches!(result, Err(RestoreError::BadMac)), "{result:?}");
    assert_eq!(tokens, 0, "nothing written");
    let (result, tokens) = restore_into(&edited, true).await;
    let overridden = result.unwrap().overridden;
    assert_eq!((overridden.len(), tokens), (1, 2));
    assert!(overridden[0].contains("MAC does not verify"), "{overridden:?}");
    assert!(!overridden[0].contains("nothing was written"), "it was written: {overridden:?}");

    // A rolled-back counter, an unlocked token: the same.
    let counter = text.replacen(r#""counter": 1"#, r#""counter": 0"#, 1);
    assert_ne!(counter, text);
    let counter: Backup = serde_json::from_str(&counter).unwrap();
    assert!(matches!(restore_into(&counter, false).await.0, Err(RestoreError::BadMac)));

    // No MAC (a backup of an older version): refused unless forced.
    let mut unsigned = read.clone();
    unsigned.mac = None;
    assert_eq!(unsigned.mac_status(f.service.cipher()), BackupMacStatus::Missing);
    assert!(matches!(restore_into(&unsigned, false).await.0, Err(RestoreError::Unsigned)));
    assert_eq!(restore_into(&unsigned, true).await.1, 2);

    // Another master key: the MAC does not verify.
    assert_eq!(read.mac_status(&SeedCipher::new(&[1u8; 32])), BackupMacStatus::Invalid);

    // An audit entry edited and the MAC made again (by someone holding
    // the key): the chain check still refuses it.
    let mut rewritten = read.clone();
    let at = rewritten.snapshot.audit.iter().position(|(_, e)| e.contains("\"accept\"")).unwrap();
    let (seq, entry) = &mut rewritten.snapshot.audit[at];
    let seq = *seq;
    *entry = entry.replace("\"accept\"", "\"reject\"");
    rewritten.sign(f.service.cipher()).unwrap();
    assert_eq!(rewritten.mac_status(f.service.cipher()), BackupMacStatus::Valid);
    let (result, tokens) = restore_into(&rewritten, false).await;
    assert!(matches!(result, Err(RestoreError::BrokenChain { seq: broken, .. }) if broken == seq), "{result:?}");
    assert_eq!(tokens, 0);
}
