//! The storage layer against real databases: every scenario runs on an SQLite file and on
//! a fresh PostgreSQL database (see `harness`; `CIFER_SKIP_PG=1` skips PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

use cifer_store::testing as harness;

use std::collections::HashSet;

use cifer_store::{
    AuditEntry, AuditFault, AuditKind, Claim, Durable, PutOutcome, RateCheck, Store, StoreError,
    audit,
};
use harness::{Db, Val, key, record, secret, sharing};

cifer_store::both_backends! {
    round_trip,
    sealed_bytes_do_not_contain_the_fragment,
    write_once,
    concurrent_conflicting_puts_one_wins,
    reopen_keeps_everything,
    tampered_row_is_corrupt,
    moved_row_is_corrupt,
    delete,
    invalid_fragment_is_refused,
    replay_claims_exactly_once,
    audit_chain_verifies_and_detects_edits,
    audit_appends_never_fork,
    out_of_range_values,
    bundle_signature_is_kept_and_compared,
    claim_and_audit_exactly_once,
    claim_and_audit_refused_claim_appends_nothing,
    claim_and_audit_group_outcomes_are_per_call,
    rate_counters_are_shared_and_exact,
    count_and_claim_in_one_transaction,
    mixed_groups_decide_each_call,
    decided_claims_are_kept_only_once_committed,
}

async fn bundle_signature_is_kept_and_compared(db: &Db) {
    let store = db.open(&key()).await;
    let (c, f) = sharing();
    let mut rec = record(5, secret(40), &c, &f[1]);
    rec.bundle_signature = Some([0x5a; 65]);
    assert_eq!(store.put_fragment(&rec).await.unwrap(), PutOutcome::Stored);
    let got = store.get_fragment(5, secret(40)).await.unwrap().unwrap();
    assert_eq!(got.bundle_signature, Some([0x5a; 65]));
    assert_eq!(store.put_fragment(&rec).await.unwrap(), PutOutcome::AlreadyStored);
    // Same fragment, another signature (or none): a different record, refused.
    let mut other = rec.clone();
    other.bundle_signature = Some([0x5b; 65]);
    assert!(matches!(store.put_fragment(&other).await, Err(StoreError::Conflict { .. })));
    other.bundle_signature = None;
    assert!(matches!(store.put_fragment(&other).await, Err(StoreError::Conflict { .. })));
    assert_eq!(
        store.get_fragment(5, secret(40)).await.unwrap().unwrap().bundle_signature,
        Some([0x5a; 65])
    );
    // Without a signature: NULL, read back as None.
    let plain = record(5, secret(41), &c, &f[1]);
    assert_eq!(store.put_fragment(&plain).await.unwrap(), PutOutcome::Stored);
    assert_eq!(store.get_fragment(5, secret(41)).await.unwrap().unwrap().bundle_signature, None);
    // The database refuses a signature of the wrong length.
    let raw = db.raw().await;
    let bad = raw
        .try_exec(
            "UPDATE fragments SET bundle_signature = $1 WHERE chain_id = 5",
            &[Val::Bytes(vec![1; 64])],
        )
        .await;
    assert!(bad.is_err(), "a 64-byte bundle signature was accepted");
    raw.close().await;
    store.close().await;
}

async fn round_trip(db: &Db) {
    let k = key();
    let store = db.open(&k).await;
    store.ping().await.unwrap();
    let (c, f) = sharing();
    let rec = record(31337, secret(1), &c, &f[2]);
    assert_eq!(store.put_fragment(&rec).await.unwrap(), PutOutcome::Stored);
    let got = store.get_fragment(31337, secret(1)).await.unwrap().unwrap();
    assert_eq!(got.chain_id, 31337);
    assert_eq!(got.secret_id, secret(1));
    assert_eq!(got.ek_hash, rec.ek_hash);
    assert_eq!(got.commitments, c);
    assert_eq!(*got.fragment.to_bytes(), *f[2].to_bytes());
    assert_eq!(got.fragment.index(), 3);
    got.commitments.verify(&got.fragment).unwrap();
    assert!(got.stored_at_unix_ms > 0);
    // Other secret, other chain: nothing.
    assert!(store.get_fragment(31337, secret(2)).await.unwrap().is_none());
    assert!(store.get_fragment(1, secret(1)).await.unwrap().is_none());
    assert_eq!(store.count_fragments().await.unwrap(), 1);
    // Secrets never print.
    let dbg = format!("{got:?} {k:?} {store:?}");
    assert!(dbg.contains("<redacted>"), "{dbg}");
    assert!(!dbg.contains(&hex::encode(&f[2].to_bytes()[2..34])));
    store.close().await;
}

async fn sealed_bytes_do_not_contain_the_fragment(db: &Db) {
    let store = db.open(&key()).await;
    let (c, f) = sharing();
    let rec = record(7, secret(9), &c, &f[0]);
    assert_eq!(store.put_fragment(&rec).await.unwrap(), PutOutcome::Stored);
    let raw = db.raw().await;
    let mut row = Vec::new();
    for col in ["secret_id", "ek_hash", "commitments", "commitments_hash", "nonce", "sealed"] {
        row.extend(raw.blob(&format!("SELECT {col} FROM fragments WHERE chain_id = 7"), &[]).await);
    }
    let sealed = raw.blob("SELECT sealed FROM fragments WHERE chain_id = 7", &[]).await;
    assert_eq!(sealed.len(), 194 + 16);
    let plain = f[0].to_bytes();
    assert!(!contains(&sealed, &plain));
    // No 32-byte share or blinder appears anywhere in the row.
    for value in plain[2..].chunks(32) {
        assert!(!contains(&row, value), "a fragment scalar is stored in the clear");
    }
    // Two stores of the same fragment (other secrets) use different nonces.
    let rec2 = record(7, secret(10), &c, &f[0]);
    assert_eq!(store.put_fragment(&rec2).await.unwrap(), PutOutcome::Stored);
    let n1 = raw.blob("SELECT nonce FROM fragments WHERE secret_id = $1", &[b(&secret(9))]).await;
    let n2 = raw.blob("SELECT nonce FROM fragments WHERE secret_id = $1", &[b(&secret(10))]).await;
    assert_ne!(n1, n2);
    raw.close().await;
    store.close().await;
}

async fn write_once(db: &Db) {
    let store = db.open(&key()).await;
    let (c, f) = sharing();
    let (c2, f2) = sharing();
    let a = record(1, secret(1), &c, &f[0]);
    assert_eq!(store.put_fragment(&a).await.unwrap(), PutOutcome::Stored);
    assert_eq!(store.put_fragment(&a).await.unwrap(), PutOutcome::AlreadyStored);

    let other_index = record(1, secret(1), &c, &f[1]);
    let mut other_ek = a.clone();
    other_ek.ek_hash[0] ^= 1;
    let other_sharing = record(1, secret(1), &c2, &f2[0]);
    for different in [other_index, other_ek, other_sharing] {
        match store.put_fragment(&different).await {
            Err(StoreError::Conflict { chain_id: 1, secret_id }) => {
                assert_eq!(secret_id, secret(1));
            }
            other => panic!("expected Conflict, got {other:?}"),
        }
    }
    let got = store.get_fragment(1, secret(1)).await.unwrap().unwrap();
    assert_eq!(*got.fragment.to_bytes(), *f[0].to_bytes());
    assert_eq!(got.ek_hash, a.ek_hash);
    assert_eq!(got.commitments, c);
    assert_eq!(store.count_fragments().await.unwrap(), 1);
    // The same record on another chain is another row.
    let mut other_chain = a.clone();
    other_chain.chain_id = 2;
    assert_eq!(store.put_fragment(&other_chain).await.unwrap(), PutOutcome::Stored);
    store.close().await;
}

async fn concurrent_conflicting_puts_one_wins(db: &Db) {
    let store = db.open(&key()).await;
    for round in 0..4u8 {
        let (c, f) = sharing();
        let (c2, f2) = sharing();
        let mut tasks = Vec::new();
        // 16 contenders: 10 distinct records for the same secret (5 fragments of each
        // of two sharings), some submitted twice.
        for i in 0..16usize {
            let rec = if i % 2 == 0 {
                record(5, secret(round), &c, &f[i / 2 % 5])
            } else {
                record(5, secret(round), &c2, &f2[i / 2 % 5])
            };
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let out = store.put_fragment(&rec).await;
                (rec, out)
            }));
        }
        let mut winners = Vec::new();
        let mut results = Vec::new();
        for t in tasks {
            let (rec, out) = t.await.unwrap();
            match &out {
                Ok(PutOutcome::Stored) => winners.push(rec.clone()),
                Ok(PutOutcome::AlreadyStored) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => panic!("unexpected error {e}"),
            }
            results.push((rec, out));
        }
        assert_eq!(winners.len(), 1, "exactly one put stores");
        let w = &winners[0];
        let got = store.get_fragment(5, secret(round)).await.unwrap().unwrap();
        assert_eq!(*got.fragment.to_bytes(), *w.fragment.to_bytes());
        assert_eq!(got.commitments, w.commitments);
        // Everyone else got AlreadyStored iff they sent the winner's record.
        for (rec, out) in results {
            let same = *rec.fragment.to_bytes() == *w.fragment.to_bytes()
                && rec.commitments == w.commitments;
            match out {
                Ok(PutOutcome::Stored) => assert!(same),
                Ok(PutOutcome::AlreadyStored) => assert!(same),
                Err(StoreError::Conflict { .. }) => assert!(!same),
                Err(e) => panic!("{e}"),
            }
        }
    }
    store.close().await;
}

async fn reopen_keeps_everything(db: &Db) {
    let k = key();
    let (c, f) = sharing();
    let rec = record(10, secret(3), &c, &f[4]);
    let head = {
        let store = db.open(&k).await;
        assert_eq!(store.put_fragment(&rec).await.unwrap(), PutOutcome::Stored);
        assert!(store.claim_replay([7; 32], 100).await.unwrap());
        for i in 0..5 {
            store.append_audit(entry(AuditKind::Store, i)).await.unwrap();
        }
        let head = store.verify_audit().await.unwrap();
        store.close().await;
        drop(store);
        head
    };
    let store = db.open(&k).await;
    let got = store.get_fragment(10, secret(3)).await.unwrap().unwrap();
    assert_eq!(*got.fragment.to_bytes(), *f[4].to_bytes());
    assert!(!store.claim_replay([7; 32], 100).await.unwrap());
    assert_eq!(store.verify_audit().await.unwrap(), head);
    assert_eq!(store.audit_head().await.unwrap(), head);
    assert_eq!(head.seq, 5);
    // Appending continues the same chain.
    let next = store.append_audit(entry(AuditKind::Release, 9)).await.unwrap();
    assert_eq!((next.seq, next.prev_hash), (6, head.hash));
    store.close().await;
    // Another sealing key cannot read the fragment: Corrupt, not garbage.
    let wrong = db.open(&key()).await;
    assert!(matches!(
        wrong.get_fragment(10, secret(3)).await,
        Err(StoreError::Corrupt { chain_id: 10, .. })
    ));
    wrong.close().await;
}

async fn tampered_row_is_corrupt(db: &Db) {
    let sealing = key();
    let store = db.open(&sealing).await;
    let raw = db.raw().await;
    let (c, f) = sharing();
    let (c2, _) = sharing();
    let rec = record(1, secret(1), &c, &f[0]);
    assert_eq!(store.put_fragment(&rec).await.unwrap(), PutOutcome::Stored);
    let sealed = raw.blob("SELECT sealed FROM fragments", &[]).await;
    let nonce = raw.blob("SELECT nonce FROM fragments", &[]).await;

    let mut cases: Vec<(&str, Vec<Val>)> = Vec::new();
    for at in [0, 100, sealed.len() - 1] {
        let mut t = sealed.clone();
        t[at] ^= 0x01;
        cases.push(("UPDATE fragments SET sealed = $1", vec![Val::Bytes(t)]));
    }
    cases.push(("UPDATE fragments SET sealed = $1", vec![Val::Bytes(sealed[..100].to_vec())]));
    let mut n = nonce.clone();
    n[5] ^= 0x80;
    cases.push(("UPDATE fragments SET nonce = $1", vec![Val::Bytes(n)]));
    cases.push(("UPDATE fragments SET ek_hash = $1", vec![Val::Bytes(vec![0x11; 32])]));
    cases.push(("UPDATE fragments SET fragment_index = 2", vec![]));
    cases.push((
        "UPDATE fragments SET commitments = $1, commitments_hash = $2",
        vec![Val::Bytes(c2.to_bytes()), Val::Bytes(c2.hash().to_vec())],
    ));
    cases.push(("UPDATE fragments SET commitments_hash = $1", vec![Val::Bytes(vec![0; 32])]));
    cases.push(("UPDATE fragments SET seal_format = 2", vec![]));

    // The store that wrote the row keeps it in memory after its first read (as sealed
    // bytes, authenticated on every use): a change to the database behind its back is
    // not served from there, and is seen by every process that reads the database.
    let first = store.get_fragment(1, secret(1)).await.unwrap().unwrap();
    for (sql, vals) in cases {
        raw.exec(sql, &vals).await;
        let cached = store.get_fragment(1, secret(1)).await.unwrap().unwrap();
        assert_eq!(*cached.fragment.to_bytes(), *first.fragment.to_bytes());
        let reader = db.open(&sealing).await;
        match reader.get_fragment(1, secret(1)).await {
            Err(StoreError::Corrupt { chain_id: 1, secret_id, reason }) => {
                assert_eq!(secret_id, secret(1));
                assert!(!reason.is_empty());
            }
            other => panic!("{sql}: expected Corrupt, got {other:?}"),
        }
        // A corrupt row is not overwritten by a put either.
        assert!(matches!(store.put_fragment(&rec).await, Err(StoreError::Corrupt { .. })));
        // Restore the row and check it reads again.
        raw.exec(
            "UPDATE fragments SET sealed = $1, nonce = $2, ek_hash = $3, fragment_index = 1, \
             commitments = $4, commitments_hash = $5, seal_format = 1",
            &[
                Val::Bytes(sealed.clone()),
                Val::Bytes(nonce.clone()),
                Val::Bytes(rec.ek_hash.to_vec()),
                Val::Bytes(c.to_bytes()),
                Val::Bytes(c.hash().to_vec()),
            ],
        )
        .await;
        reader.get_fragment(1, secret(1)).await.unwrap().unwrap();
        reader.close().await;
    }
    raw.close().await;
    store.close().await;
}

async fn moved_row_is_corrupt(db: &Db) {
    let store = db.open(&key()).await;
    let raw = db.raw().await;
    let (c, f) = sharing();
    assert_eq!(
        store.put_fragment(&record(1, secret(1), &c, &f[0])).await.unwrap(),
        PutOutcome::Stored
    );
    assert_eq!(
        store.put_fragment(&record(1, secret(2), &c, &f[1])).await.unwrap(),
        PutOutcome::Stored
    );

    // Move the whole row of secret 1 to secret 3.
    raw.exec(
        "UPDATE fragments SET secret_id = $1 WHERE secret_id = $2",
        &[b(&secret(3)), b(&secret(1))],
    )
    .await;
    assert!(matches!(store.get_fragment(1, secret(3)).await, Err(StoreError::Corrupt { .. })));
    // Move it to another chain.
    raw.exec("UPDATE fragments SET chain_id = 2 WHERE secret_id = $1", &[b(&secret(3))]).await;
    assert!(matches!(store.get_fragment(2, secret(3)).await, Err(StoreError::Corrupt { .. })));
    // Copy secret 2's sealed value and nonce into a row of its own for secret 4 with
    // secret 2's other columns (index 2): the AAD names secret 2, so it does not open.
    raw.exec(
        "INSERT INTO fragments (chain_id, secret_id, ek_hash, fragment_index, commitments, \
         commitments_hash, seal_format, nonce, sealed, stored_at_ms) \
         SELECT chain_id, $1, ek_hash, fragment_index, commitments, commitments_hash, \
         seal_format, nonce, sealed, stored_at_ms FROM fragments WHERE secret_id = $2",
        &[b(&secret(4)), b(&secret(2))],
    )
    .await;
    assert!(matches!(store.get_fragment(1, secret(4)).await, Err(StoreError::Corrupt { .. })));
    // The original is still fine.
    store.get_fragment(1, secret(2)).await.unwrap().unwrap();
    raw.close().await;
    store.close().await;
}

async fn delete(db: &Db) {
    let store = db.open(&key()).await;
    let (c, f) = sharing();
    let rec = record(1, secret(1), &c, &f[0]);
    assert_eq!(store.put_fragment(&rec).await.unwrap(), PutOutcome::Stored);
    assert_eq!(
        store.put_fragment(&record(1, secret(2), &c, &f[1])).await.unwrap(),
        PutOutcome::Stored
    );
    // Read first, so that the row is also in the store's memory: a delete drops it there.
    store.get_fragment(1, secret(1)).await.unwrap().unwrap();
    assert!(store.delete_fragment(1, secret(1)).await.unwrap());
    assert!(store.get_fragment(1, secret(1)).await.unwrap().is_none());
    assert!(!store.delete_fragment(1, secret(1)).await.unwrap());
    assert!(!store.delete_fragment(2, secret(2)).await.unwrap());
    // The other row is untouched.
    store.get_fragment(1, secret(2)).await.unwrap().unwrap();
    assert_eq!(store.count_fragments().await.unwrap(), 1);
    let raw = db.raw().await;
    let sealed = raw.blob("SELECT sealed FROM fragments", &[]).await;
    assert_eq!(sealed.len(), 210);
    raw.close().await;
    store.close().await;
}

async fn invalid_fragment_is_refused(db: &Db) {
    let store = db.open(&key()).await;
    let (c, _) = sharing();
    let (_, f2) = sharing();
    let rec = record(1, secret(1), &c, &f2[0]);
    assert!(matches!(store.put_fragment(&rec).await, Err(StoreError::InvalidFragment(_))));
    assert!(store.get_fragment(1, secret(1)).await.unwrap().is_none());
    assert_eq!(store.count_fragments().await.unwrap(), 0);
    store.close().await;
}

async fn replay_claims_exactly_once(db: &Db) {
    let store = db.open(&key()).await;
    for round in 0..4u8 {
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move { store.claim_replay([round; 32], 50).await }));
        }
        let mut wins = 0;
        for t in tasks {
            if t.await.unwrap().unwrap() {
                wins += 1;
            }
        }
        assert_eq!(wins, 1, "round {round}: exactly one claim wins");
    }
    // Distinct keys, concurrently: all win.
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut k = [0xee; 32];
            k[0] = i;
            store.claim_replay(k, 100 + u64::from(i)).await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap());
    }
    // Keys expiring below 50 go (none), then those below 108 (4 + 8).
    assert_eq!(store.prune_replays(50).await.unwrap(), 0);
    assert_eq!(store.prune_replays(108).await.unwrap(), 12);
    assert!(store.claim_replay([0; 32], 60).await.unwrap(), "pruned key claimable again");
    let mut k = [0xee; 32];
    k[0] = 15;
    assert!(!store.claim_replay(k, 200).await.unwrap(), "unexpired key still refused");
    store.close().await;
}

async fn claim_and_audit_exactly_once(db: &Db) {
    let store = db.open(&key()).await;
    // Interleave plain appends so the combined operation competes with other writers.
    store.append_audit(entry(AuditKind::Store, 0)).await.unwrap();
    let mut wins = 0usize;
    for round in 0..4u8 {
        let mut tasks = Vec::new();
        for t in 0..16u8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                if t % 4 == 0 {
                    store.append_audit(entry(AuditKind::Refusal, t)).await.unwrap();
                }
                store
                    .claim_replay_and_append_audit([round; 32], 50, move || {
                        entry(AuditKind::Release, round)
                    })
                    .await
            }));
        }
        let mut round_wins = 0;
        for t in tasks {
            if let Some(record) = t.await.unwrap().unwrap() {
                assert_eq!(record.entry, entry(AuditKind::Release, round));
                round_wins += 1;
            }
        }
        assert_eq!(round_wins, 1, "round {round}: exactly one claim wins");
        wins += round_wins;
        // The key stays claimed for both operations.
        assert!(!store.claim_replay([round; 32], 50).await.unwrap());
    }
    let head = store.verify_audit().await.unwrap();
    let records = store.read_audit(0, 1000).await.unwrap();
    assert_eq!(records.len() as u64, head.seq);
    let releases: Vec<_> = records.iter().filter(|r| r.entry.kind == AuditKind::Release).collect();
    assert_eq!(releases.len(), wins);
    let digests: HashSet<_> = releases.iter().map(|r| r.entry.digest).collect();
    assert_eq!(digests.len(), 4, "one release record per claimed key");
    // 1 + 4 rounds x 4 interleaved refusals + 4 releases.
    assert_eq!(head.seq, 1 + 16 + 4);
    store.close().await;
}

async fn claim_and_audit_refused_claim_appends_nothing(db: &Db) {
    let store = db.open(&key()).await;
    assert!(store.claim_replay([5; 32], 100).await.unwrap());
    let before = store.verify_audit().await.unwrap();
    let called = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&called);
    let got = store
        .claim_replay_and_append_audit([5; 32], 100, move || {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            entry(AuditKind::Release, 1)
        })
        .await
        .unwrap();
    assert!(got.is_none());
    assert!(
        !called.load(std::sync::atomic::Ordering::SeqCst),
        "decide runs only for a successful claim"
    );
    assert_eq!(store.verify_audit().await.unwrap(), before);
    // A successful claim appends exactly the decided record, chained to the head.
    let r = store
        .claim_replay_and_append_audit([6; 32], 100, || entry(AuditKind::Refusal, 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.seq, r.prev_hash), (before.seq + 1, before.hash));
    assert_eq!(r.entry, entry(AuditKind::Refusal, 2));
    assert_eq!(store.verify_audit().await.unwrap().seq, before.seq + 1);
    // Then the same key again: refused, nothing appended.
    assert!(
        store
            .claim_replay_and_append_audit([6; 32], 100, || entry(AuditKind::Release, 3))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.verify_audit().await.unwrap().seq, before.seq + 1);
    // A failed operation (code too long) keeps neither the claim nor a record.
    let mut long = entry(AuditKind::Release, 4);
    long.code = "x".repeat(257);
    assert!(matches!(
        store.claim_replay_and_append_audit([7; 32], 100, move || long).await,
        Err(StoreError::AuditCodeTooLong { len: 257 })
    ));
    assert!(store.claim_replay([7; 32], 100).await.unwrap(), "failed operation kept no claim");
    assert_eq!(store.verify_audit().await.unwrap().seq, before.seq + 1);
    store.close().await;
}

async fn claim_and_audit_group_outcomes_are_per_call(db: &Db) {
    let store = db.open(&key()).await;
    // 8 keys claimed 6 times each, all at once (groups share a commit), plus calls whose
    // record is invalid: their group fails and is retried call by call.
    let mut tasks = Vec::new();
    for i in 0..56u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut e = entry(AuditKind::Release, i % 8);
            let bad = i >= 48;
            if bad {
                e.code = "x".repeat(300);
            }
            let k = if bad { [0x80 + i; 32] } else { [i % 8; 32] };
            (bad, store.claim_replay_and_append_audit(k, 50, move || e).await)
        }));
    }
    let mut won = HashSet::new();
    let mut records = 0;
    for t in tasks {
        match t.await.unwrap() {
            (true, r) => assert!(matches!(r, Err(StoreError::AuditCodeTooLong { len: 300 }))),
            (false, Ok(Some(r))) => {
                assert!(won.insert(r.entry.digest), "a key won twice");
                records += 1;
            }
            (false, Ok(None)) => {}
            (false, Err(e)) => panic!("{e}"),
        }
    }
    assert_eq!((won.len(), records), (8, 8));
    let head = store.verify_audit().await.unwrap();
    assert_eq!(head.seq, 8);
    // A failed call kept no claim.
    assert!(store.claim_replay([0x80 + 50; 32], 50).await.unwrap());
    store.close().await;
}

async fn audit_chain_verifies_and_detects_edits(db: &Db) {
    let store = db.open(&key()).await;
    let empty = store.verify_audit().await.unwrap();
    assert_eq!((empty.seq, empty.hash), (0, audit::GENESIS_HASH));
    assert_eq!(store.audit_head().await.unwrap(), empty);
    let kinds = [AuditKind::Store, AuditKind::Release, AuditKind::Refusal, AuditKind::Delete];
    let mut records = Vec::new();
    for i in 0..6u8 {
        let r = store.append_audit(entry(kinds[usize::from(i) % 4], i)).await.unwrap();
        assert_eq!(r.seq, u64::from(i) + 1);
        assert_eq!(r.hash, audit::audit_hash(&r.prev_hash, r.seq, &r.entry, r.at_unix_ms));
        records.push(r);
    }
    let head = store.verify_audit().await.unwrap();
    assert_eq!((head.seq, head.hash), (6, records[5].hash));
    assert_eq!(store.read_audit(0, 100).await.unwrap(), records);
    assert_eq!(store.read_audit(4, 1).await.unwrap(), records[4..5]);
    // Past the last entry, and past any sequence number the database can hold: nothing.
    assert!(store.read_audit(6, 100).await.unwrap().is_empty());
    assert!(store.read_audit(u64::MAX, 100).await.unwrap().is_empty());

    let raw = db.raw().await;
    // The log refuses edits and deletes while the triggers are there.
    assert!(raw.try_exec("UPDATE audit_log SET code = 'x' WHERE seq = 3", &[]).await.is_err());
    assert!(raw.try_exec("DELETE FROM audit_log WHERE seq = 6", &[]).await.is_err());
    raw.drop_audit_triggers().await;

    let r3 = &records[2];
    let edits: Vec<(&str, Vec<Val>, AuditFault)> = vec![
        ("UPDATE audit_log SET kind = 4 WHERE seq = 3", vec![], AuditFault::Hash),
        ("UPDATE audit_log SET chain_id = 99 WHERE seq = 3", vec![], AuditFault::Hash),
        (
            "UPDATE audit_log SET secret_id = $1 WHERE seq = 3",
            vec![b(&secret(77))],
            AuditFault::Hash,
        ),
        (
            "UPDATE audit_log SET actor = $1 WHERE seq = 3",
            vec![Val::Bytes(vec![9; 20])],
            AuditFault::Hash,
        ),
        (
            "UPDATE audit_log SET digest = $1 WHERE seq = 3",
            vec![Val::Bytes(vec![9; 32])],
            AuditFault::Hash,
        ),
        ("UPDATE audit_log SET code = 'released' WHERE seq = 3", vec![], AuditFault::Hash),
        ("UPDATE audit_log SET at_ms = at_ms + 1 WHERE seq = 3", vec![], AuditFault::Hash),
        (
            "UPDATE audit_log SET hash = $1 WHERE seq = 3",
            vec![Val::Bytes(vec![1; 32])],
            AuditFault::Hash,
        ),
        // Another record's hash (nothing in the schema forbids a duplicate: the chain does).
        (
            "UPDATE audit_log SET hash = $1 WHERE seq = 3",
            vec![b(&records[1].hash)],
            AuditFault::Hash,
        ),
        (
            "UPDATE audit_log SET prev_hash = $1 WHERE seq = 3",
            vec![Val::Bytes(vec![1; 32])],
            AuditFault::PrevHash,
        ),
        ("UPDATE audit_log SET kind = 77 WHERE seq = 3", vec![], AuditFault::Malformed),
        ("DELETE FROM audit_log WHERE seq = 3", vec![], AuditFault::Gap { expected: 3, found: 4 }),
    ];
    for (sql, vals, fault) in edits {
        raw.exec(sql, &vals).await;
        match store.verify_audit().await {
            Err(StoreError::AuditChain { seq: 3, fault: got }) => assert_eq!(got, fault, "{sql}"),
            other => panic!("{sql}: expected AuditChain at seq 3, got {other:?}"),
        }
        // Put row 3 back exactly as it was; the chain verifies again.
        raw.exec("DELETE FROM audit_log WHERE seq = 3", &[]).await;
        raw.exec(
            "INSERT INTO audit_log (seq, kind, chain_id, secret_id, actor, digest, code, at_ms, \
             prev_hash, hash) VALUES (3, $1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                Val::I64(i64::from(r3.entry.kind.as_u8())),
                Val::I64(i64::try_from(r3.entry.chain_id).unwrap()),
                b(&r3.entry.secret_id),
                Val::Bytes(r3.entry.actor.to_vec()),
                b(&r3.entry.digest),
                Val::Text(r3.entry.code.clone()),
                Val::I64(i64::try_from(r3.at_unix_ms).unwrap()),
                b(&r3.prev_hash),
                b(&r3.hash),
            ],
        )
        .await;
        assert_eq!(store.verify_audit().await.unwrap(), head, "{sql}: restored");
    }
    // Dropping the tail leaves a valid shorter chain; only its head differs, which is
    // why the head must be anchored elsewhere (documented in `store::audit`).
    raw.exec("DELETE FROM audit_log WHERE seq >= 5", &[]).await;
    let truncated = store.verify_audit().await.unwrap();
    assert_eq!(truncated.seq, 4);
    assert_ne!(truncated, head, "a truncated log has another head");
    raw.close().await;
    store.close().await;
}

async fn audit_appends_never_fork(db: &Db) {
    let store = db.open(&key()).await;
    let mut tasks = Vec::new();
    for t in 0..16u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..4u8 {
                store.append_audit(entry(AuditKind::Refusal, t * 4 + i)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let head = store.verify_audit().await.unwrap();
    assert_eq!(head.seq, 64);
    let all = store.read_audit(0, 1000).await.unwrap();
    let digests: HashSet<[u8; 32]> = all.iter().map(|r| r.entry.digest).collect();
    assert_eq!(digests.len(), 64, "every append is in the chain once");
    store.close().await;
}

async fn out_of_range_values(db: &Db) {
    let store = db.open(&key()).await;
    let (c, f) = sharing();
    let rec = record(u64::MAX, secret(1), &c, &f[0]);
    assert!(matches!(
        store.put_fragment(&rec).await,
        Err(StoreError::OutOfRange { what: "chain_id", value: u64::MAX })
    ));
    assert!(matches!(
        store.claim_replay([1; 32], 1 << 63).await,
        Err(StoreError::OutOfRange { .. })
    ));
    let mut e = entry(AuditKind::Store, 1);
    e.code = "x".repeat(257);
    assert!(matches!(store.append_audit(e).await, Err(StoreError::AuditCodeTooLong { len: 257 })));
    // The largest storable values work.
    let rec = record(i64::MAX as u64, secret(1), &c, &f[0]);
    assert_eq!(store.put_fragment(&rec).await.unwrap(), PutOutcome::Stored);
    store.get_fragment(i64::MAX as u64, secret(1)).await.unwrap().unwrap();
    assert!(store.verify_audit().await.unwrap().seq == 0);
    store.close().await;
}

fn entry(kind: AuditKind, i: u8) -> AuditEntry {
    AuditEntry {
        kind,
        chain_id: 31337,
        secret_id: secret(i),
        actor: [i; 20],
        digest: cifer_core::keccak256(&[i]),
        code: format!("code-{i}"),
    }
}

fn b(bytes: &[u8]) -> Val {
    Val::Bytes(bytes.to_vec())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Two stores on one database (two replicas) share the counter: of 3 × 8 concurrent
/// requests by one subject with a limit of 5 per window, exactly 5 are allowed; another
/// subject has its own budget; pruning forgets old windows.
async fn rate_counters_are_shared_and_exact(db: &Db) {
    let a = db.open(&key()).await;
    let b = db.open(&key()).await;
    let window = 3_600_000; // one hour: the test cannot straddle two windows in practice
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { store.count_request([7; 20], window, 5).await }));
    }
    let mut allowed = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);
    assert!(a.count_request([8; 20], window, 5).await.unwrap(), "another subject");
    assert!(!b.count_request([7; 20], window, 5).await.unwrap(), "still over the limit");
    assert_eq!(a.prune_rate_counters(window).await.unwrap(), 0, "current windows are kept");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(a.count_request([9; 20], 1, 1).await.unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(a.prune_rate_counters(2).await.unwrap() >= 1, "a 1 ms window from the past goes");
}

/// Counting and claiming in one group transaction: two replicas, 12 concurrent requests by
/// one signer (limit 4, two of them replays of another): exactly 4 pass the limit and
/// each of those is claimed and audited or is a replay, the counter saw every request (a
/// later plain `count_request` is over the limit), and no key is claimed twice.
async fn count_and_claim_in_one_transaction(db: &Db) {
    let a = db.open(&key()).await;
    let b = db.open(&key()).await;
    let rate = RateCheck { subject: [3; 20], window_ms: 3_600_000, limit: 4 };
    let mut tasks = Vec::new();
    for i in 0u8..12 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        // Keys 10 and 11 repeat key 0.
        let k = if i >= 10 { 0 } else { i };
        tasks.push(tokio::spawn(async move {
            store
                .count_and_claim_replay(rate, [k; 32], 100, move || entry(AuditKind::Decrypt, i))
                .await
        }));
    }
    let (mut claimed, mut limited, mut replayed) = (Vec::new(), 0, 0);
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Claim::Claimed(r) => claimed.push(r),
            Claim::RateLimited => limited += 1,
            Claim::Replayed => replayed += 1,
        }
    }
    // Exactly four requests pass the limit, whichever they are; each of them is claimed,
    // or is a replay when it repeats key 0 and that key's first request was among them
    // (which requests come first is up to the scheduler).
    let n = claimed.len();
    assert_eq!(limited, 8, "{n} claimed, {replayed} replayed");
    assert_eq!(n + replayed, 4, "{n} claimed, {replayed} replayed");
    assert!(replayed <= 2, "only key 0 is sent more than once (three times)");
    let mut keys: Vec<u8> =
        claimed.iter().map(|r| if r.entry.actor[0] >= 10 { 0 } else { r.entry.actor[0] }).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), n, "no key claimed twice");
    assert_eq!(
        a.verify_audit().await.unwrap().seq,
        u64::try_from(n).unwrap(),
        "one record per claim, nothing else"
    );
    assert!(!a.count_request([3; 20], rate.window_ms, 12).await.unwrap(), "12 counted before");
    assert!(a.count_request([4; 20], rate.window_ms, 1).await.unwrap(), "another subject");
    // A request under the limit whose key was claimed is a replay.
    let other = RateCheck { subject: [5; 20], ..rate };
    let first = a.count_and_claim_replay(other, [77; 32], 100, || entry(AuditKind::Decrypt, 1));
    assert!(matches!(first.await.unwrap(), Claim::Claimed(_)));
    let again = b.count_and_claim_replay(other, [77; 32], 100, || entry(AuditKind::Decrypt, 2));
    assert!(matches!(again.await.unwrap(), Claim::Replayed));
}

/// Counted and uncounted calls queued together (so that most share a group), with the
/// cases where a call's outcome depends on another in the same group: a rate-limited call
/// and a later one with the same key (which claims it), one key sent counted and uncounted
/// (exactly one wins), and counted calls whose record is invalid (their group fails and is
/// retried call by call, and none of them keeps its count or claim). Run three times, so
/// that later rounds start on the connection the failures went through.
async fn mixed_groups_decide_each_call(db: &Db) {
    let store = db.open(&key()).await;
    let window_ms = 3_600_000;
    for round in 0u8..3 {
        let base = round * 40;
        let mut tasks = Vec::new();
        for i in 0u8..24 {
            let store = store.clone();
            let (k, n) = (base + i, base + i);
            tasks.push(tokio::spawn(async move {
                let mut e = entry(AuditKind::Decrypt, n);
                let rate = |subject: u8, limit: u32| RateCheck {
                    subject: [subject; 20],
                    window_ms,
                    limit,
                };
                let outcome = match i % 6 {
                    // Limit 0: refused before its claim is tried.
                    0 => store.count_and_claim_replay(rate(200 + round, 0), [k; 32], 9, || e).await,
                    // The same key as the call before it, under a generous limit.
                    1 => {
                        let r = rate(210 + round, 99);
                        store.count_and_claim_replay(r, [k - 1; 32], 9, || e).await
                    }
                    // Key 250 + round, counted here and uncounted in case 3.
                    2 => {
                        let r = rate(220 + round, 99);
                        store.count_and_claim_replay(r, [250 + round; 32], 9, || e).await
                    }
                    3 => store
                        .claim_replay_and_append_audit([250 + round; 32], 9, move || e)
                        .await
                        .map(|r| r.map_or(Claim::Replayed, Claim::Claimed)),
                    // An invalid record: this call fails, nothing of it is kept.
                    4 => {
                        e.code = "x".repeat(300);
                        store.count_and_claim_replay(rate(230 + round, 99), [k; 32], 9, || e).await
                    }
                    _ => {
                        store.count_and_claim_replay(rate(240 + round, 99), [k; 32], 9, || e).await
                    }
                };
                (i, outcome)
            }));
        }
        let (mut shared_key_wins, mut records) = (0, 0);
        for t in tasks {
            let (i, outcome) = t.await.unwrap();
            match (i % 6, outcome) {
                (0, Ok(Claim::RateLimited)) | (2 | 3, Ok(Claim::Replayed)) => {}
                (1 | 5, Ok(Claim::Claimed(r))) => {
                    assert_eq!(r.entry.actor[0], base + i);
                    records += 1;
                }
                (2 | 3, Ok(Claim::Claimed(_))) => {
                    shared_key_wins += 1;
                    records += 1;
                }
                (4, Err(StoreError::AuditCodeTooLong { len: 300 })) => {}
                (case, other) => panic!("round {round}, call {i} (case {case}): {other:?}"),
            }
        }
        assert_eq!(shared_key_wins, 1, "round {round}: one key sent 8 times, won once");
        assert_eq!(records, 9, "round {round}: 4 + 4 claims and the shared key's winner");
        assert_eq!(store.verify_audit().await.unwrap().seq, u64::from(round + 1) * 9);
        // The failed calls kept neither their counts nor their claims.
        assert!(store.count_request([230 + round; 20], window_ms, 1).await.unwrap());
        assert!(store.claim_replay([base + 4; 32], 9).await.unwrap());
    }
    store.close().await;
}

/// Schema 4 rebuilds SQLite's audit table without the UNIQUE index on `hash`: a log
/// written under schema 3 keeps every record and its head, still verifies, still grows,
/// and is still append-only.
#[tokio::test]
async fn sqlite_audit_log_survives_the_schema_4_rebuild() {
    use sqlx::Executor;
    let dir = tempfile::tempdir().unwrap();
    // A database at schema 3: the first three embedded migrations, run by sqlx itself.
    let old = dir.path().join("migrations");
    std::fs::create_dir(&old).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for name in ["0001_init.sql", "0002_bundle_signature.sql", "0003_rate_counters.sql"] {
        std::fs::copy(src.join(name), old.join(name)).unwrap();
    }
    let path = dir.path().join("node.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path()).await.unwrap().run(&pool).await.unwrap();
    let mut records = Vec::new();
    let mut prev = audit::GENESIS_HASH;
    for i in 0..5u8 {
        let (seq, at_ms, e) =
            (u64::from(i) + 1, 1_700_000_000_000 + u64::from(i), entry(AuditKind::Release, i));
        let hash = audit::audit_hash(&prev, seq, &e, at_ms);
        sqlx::query(
            "INSERT INTO audit_log (seq, kind, chain_id, secret_id, actor, digest, code, at_ms, \
             prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(i64::try_from(seq).unwrap())
        .bind(i64::from(e.kind.as_u8()))
        .bind(i64::try_from(e.chain_id).unwrap())
        .bind(e.secret_id.as_slice())
        .bind(e.actor.as_slice())
        .bind(e.digest.as_slice())
        .bind(e.code.as_str())
        .bind(i64::try_from(at_ms).unwrap())
        .bind(prev.as_slice())
        .bind(hash.as_slice())
        .execute(&pool)
        .await
        .unwrap();
        records.push(audit::AuditRecord {
            seq,
            at_unix_ms: at_ms,
            entry: e,
            prev_hash: prev,
            hash,
        });
        prev = hash;
    }
    let unique = |pool: sqlx::SqlitePool| async move {
        let rows = pool.fetch_all("PRAGMA index_list(audit_log)").await.unwrap();
        rows.iter().filter(|r| sqlx::Row::get::<i64, _>(*r, "unique") == 1).count()
    };
    assert_eq!(unique(pool.clone()).await, 1, "schema 3 has the UNIQUE index on hash");
    pool.close().await;

    // Opening the store applies schema 4.
    let store = cifer_store::Store::open_sqlite(&path, key()).await.unwrap();
    let head = store.verify_audit().await.unwrap();
    assert_eq!((head.seq, head.hash), (5, prev));
    assert_eq!(store.read_audit(0, 100).await.unwrap(), records);
    let next = store.append_audit(entry(AuditKind::Refusal, 9)).await.unwrap();
    assert_eq!((next.seq, next.prev_hash), (6, prev));
    assert_eq!(store.verify_audit().await.unwrap().seq, 6);

    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    assert_eq!(unique(pool.clone()).await, 0, "schema 4 has no index on hash");
    assert!(pool.execute("UPDATE audit_log SET code = 'x' WHERE seq = 3").await.is_err());
    assert!(pool.execute("DELETE FROM audit_log WHERE seq = 6").await.is_err());
    pool.close().await;
    store.close().await;
}

/// `count_and_decide_claim`: the outcome comes back decided, and `Durable::wait` tells
/// whether it was committed. A claim whose records the database then refuses is answered
/// with [`StoreError::Commit`] and kept nowhere: not its claim, not its count, not its
/// record (the same request is claimed afterwards, under a limit of one).
async fn decided_claims_are_kept_only_once_committed(db: &Db) {
    let store = db.open(&key()).await;
    let raw = db.raw().await;

    let (claim, durable) = decide_claim(&store, 1, 90, 1).await;
    let Claim::Claimed(first) = claim else { panic!("first claim: {claim:?}") };
    durable.wait().await.unwrap();
    assert_eq!(store.verify_audit().await.unwrap().seq, first.seq);
    assert_eq!(store.read_audit(0, 10).await.unwrap(), vec![first.clone()], "durable, as decided");
    let (again, durable) = decide_claim(&store, 2, 90, 2).await;
    assert!(matches!(again, Claim::Replayed), "{again:?}");
    durable.wait().await.unwrap();
    let (limited, durable) = decide_claim(&store, 1, 91, 3).await;
    assert!(matches!(limited, Claim::RateLimited), "{limited:?}");
    durable.wait().await.unwrap();

    // The claim goes in, its record does not: decided, then not committed.
    raw.refuse_audit_inserts(true).await;
    let (claim, durable) = decide_claim(&store, 3, 92, 4).await;
    assert!(matches!(claim, Claim::Claimed(_)), "decided before the commit: {claim:?}");
    let failed = durable.wait().await;
    assert!(matches!(failed, Err(StoreError::Commit(_))), "{failed:?}");
    raw.refuse_audit_inserts(false).await;

    // Nothing of it was kept: the same key and subject (limit one) claim again.
    let (claim, durable) = decide_claim(&store, 3, 92, 5).await;
    let Claim::Claimed(second) = claim else { panic!("after the failed commit: {claim:?}") };
    durable.wait().await.unwrap();
    assert_eq!(second.seq, first.seq + 1, "no record of the failed call");
    assert_eq!(second.entry.actor[0], 5);
    assert_eq!(store.verify_audit().await.unwrap().seq, second.seq);
    raw.close().await;
}

/// `count_and_decide_claim` of key `[k; 32]` for `subject` (a limit of one per hour),
/// whose record is `entry(Decrypt, i)`.
async fn decide_claim(store: &Store, subject: u8, k: u8, i: u8) -> (Claim, Durable) {
    let rate = RateCheck { subject: [subject; 20], window_ms: 3_600_000, limit: 1 };
    store
        .count_and_decide_claim(rate, [k; 32], 100, move || entry(AuditKind::Decrypt, i))
        .await
        .unwrap()
}
