//! What every [`Storage`] backend must do, checked the same way for each: every backend's
//! tests call [`run`] on a fresh, empty store (the PostgreSQL backend too), and a backend
//! that several processes share calls [`run_sharing`] as well.

use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::{Change, EntryBatch, LogKind, Sharing, Storage, Wake};

/// Runs every check on `store`, which must be empty. Uses spaces named `conf-*`.
pub(crate) fn run(store: &dyn Storage) {
    batches_apply_in_order_and_spaces_are_separate(store);
    scan_ranges_are_half_open_and_prefix_scans_see_only_their_prefix(store);
    batched_scans_yield_the_plain_scan_in_order(store);
    write_clearing_drops_the_ranges_then_applies_the_changes(store);
    dropping_a_space_removes_it_and_nothing_else(store);
    exports_hand_over_every_space(store);
    an_export_is_one_moment_of_every_space_while_writes_go_on(store);
    // The default range clearing (by listing the keys) must do the same.
    let clear = |space: &str, cleared: &[&[u8]], changes| super::write_clearing_by_keys(store, space, cleared, changes);
    check_write_clearing(store, "conf-clear-default", clear);
}

fn put(k: &[u8]) -> Change {
    (k.to_vec(), Some(k.to_vec()))
}

fn kv(k: &[u8], v: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (k.to_vec(), v.to_vec())
}

fn batches_apply_in_order_and_spaces_are_separate(store: &dyn Storage) {
    let (a, b) = ("conf-batch-a", "conf-batch-b");
    store.write(a, vec![(b"r1".to_vec(), Some(b"x".to_vec())), (b"r2".to_vec(), Some(b"y".to_vec()))]).unwrap();
    store.write(b, vec![(b"r1".to_vec(), Some(b"z".to_vec()))]).unwrap();
    // Of two changes to one key in a batch, the last wins; deletes of absent keys are fine.
    store
        .write(
            a,
            vec![(b"r1".to_vec(), None), (b"h".to_vec(), Some(b"1".to_vec())), (b"h".to_vec(), Some(b"2".to_vec()))],
        )
        .unwrap();
    store.write(a, vec![(b"absent".to_vec(), None)]).unwrap();
    assert_eq!(store.scan_prefix(a, b"r").unwrap(), vec![kv(b"r2", b"y")]);
    assert_eq!(store.get(a, b"h").unwrap(), Some(b"2".to_vec()));
    assert_eq!(store.get(a, b"r1").unwrap(), None);
    assert_eq!(store.get(b, b"r1").unwrap(), Some(b"z".to_vec()), "another space is untouched");
    assert_eq!(store.get("conf-never-written", b"r1").unwrap(), None);
    let big = vec![7u8; 300_000];
    store.write(a, vec![(b"big".to_vec(), Some(big.clone())), (b"empty".to_vec(), Some(Vec::new()))]).unwrap();
    assert_eq!(store.get(a, b"big").unwrap(), Some(big), "values of a segment's size");
    assert_eq!(store.get(a, b"empty").unwrap(), Some(Vec::new()), "an empty value is a value");
    let keys = [b"r2".to_vec(), b"nothing".to_vec(), b"h".to_vec(), b"r2".to_vec(), b"empty".to_vec()];
    let got = store.get_many(a, &keys).unwrap();
    let want = [Some(b"y".to_vec()), None, Some(b"2".to_vec()), Some(b"y".to_vec()), Some(Vec::new())];
    assert_eq!(got, want, "get_many answers in the order asked, repeats included");
    assert_eq!(store.get_many(a, &[]).unwrap(), Vec::<Option<Vec<u8>>>::new());
    assert_eq!(store.get_many("conf-never-written", &keys[..2]).unwrap(), [None, None]);
}

fn scan_ranges_are_half_open_and_prefix_scans_see_only_their_prefix(store: &dyn Storage) {
    let s = "conf-range-s";
    store.write(s, vec![put(b"a"), put(b"b"), put(b"b\xff"), put(b"c"), put(b"d")]).unwrap();
    store.write("conf-range-t", vec![put(b"a"), put(b"z")]).unwrap();
    let keys = |start: &[u8], end: Option<&[u8]>| {
        let mut out = Vec::new();
        store
            .scan_range_batches(s, start, end, 1, &mut |batch| {
                out.extend(batch.iter().map(|(k, _)| k.to_vec()));
                Ok(())
            })
            .unwrap();
        out
    };
    assert_eq!(keys(b"b", Some(b"d")), [&b"b"[..], b"b\xff", b"c"]);
    assert_eq!(keys(b"b\xff", None), [&b"b\xff"[..], b"c", b"d"]);
    assert_eq!(keys(b"", Some(b"a")), Vec::<Vec<u8>>::new());
    let prefixed: Vec<Vec<u8>> = store.scan_prefix(s, b"b").unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(prefixed, [&b"b"[..], b"b\xff"]);
}

fn batched_scans_yield_the_plain_scan_in_order(store: &dyn Storage) {
    let s = "conf-batches";
    let entries: Vec<Change> =
        (0..500u32).map(|i| (format!("r{i:05}").into_bytes(), Some(vec![i as u8; (i % 37) as usize]))).collect();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = entries.iter().map(|(k, v)| (k.clone(), v.clone().unwrap())).collect();
    store.write(s, entries).unwrap();
    store.write(s, vec![(b"s".to_vec(), Some(b"other prefix".to_vec()))]).unwrap();
    store.write("conf-batches-other", vec![(b"r0".to_vec(), Some(b"other space".to_vec()))]).unwrap();
    let plain = store.scan_prefix(s, b"r").unwrap();
    assert_eq!(plain, expected);
    for batch_bytes in [1, 100, 1 << 20] {
        let mut seen = Vec::new();
        let mut batches = 0;
        store
            .scan_prefix_batches(s, b"r", batch_bytes, &mut |b| {
                batches += 1;
                seen.extend(b.iter().map(|(k, v)| (k.to_vec(), v.to_vec())));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, plain, "batch_bytes {batch_bytes}");
        assert!(batches > 1 || batch_bytes == 1 << 20, "batches follow batch_bytes");
    }
    // An error from the sink ends the scan with that error.
    let stopped = store.scan_prefix_batches(s, b"r", 1, &mut |_| Err(crate::error::Error::Aborted("sink".into())));
    assert_eq!(stopped.unwrap_err().code(), "ERR_ABORTED");
}

fn write_clearing_drops_the_ranges_then_applies_the_changes(store: &dyn Storage) {
    check_write_clearing(store, "conf-clear", |space, cleared, changes| store.write_clearing(space, cleared, changes));
}

/// Checks one implementation of `write_clearing` on `store` in space `a`: the cleared ranges
/// go, changes apply after them in order (of two to one key, the last wins), and nothing
/// outside the ranges or the space changes.
fn check_write_clearing(
    store: &dyn Storage,
    a: &str,
    clear: impl Fn(&str, &[&[u8]], Vec<Change>) -> crate::error::Result<()>,
) {
    let b = format!("{a}-other");
    let before: Vec<&[u8]> = vec![b"r1", b"r2", b"rz", b"r\xff\xff", b"d1", b"p1", b"q", b"s", b"\xff\x01", b"\xff"];
    store.write(a, before.iter().map(|k| put(k)).collect()).unwrap();
    store.write(&b, vec![put(b"r1"), put(b"\xff")]).unwrap();
    let changes = vec![
        (b"r2".to_vec(), Some(b"new".to_vec())),
        (b"q".to_vec(), Some(b"first".to_vec())),
        put(b"p2"),
        (b"p1".to_vec(), None),
        (b"q".to_vec(), Some(b"last".to_vec())),
    ];
    clear(a, &[b"r", b"d", b"\xff"], changes).unwrap();
    let all = |space: &str| store.scan_prefix(space, b"").unwrap();
    assert_eq!(all(a), vec![kv(b"p2", b"p2"), kv(b"q", b"last"), kv(b"r2", b"new"), kv(b"s", b"s")]);
    assert_eq!(all(&b), vec![kv(b"r1", b"r1"), kv(b"\xff", b"\xff")]);
}

fn dropping_a_space_removes_it_and_nothing_else(store: &dyn Storage) {
    let (a, ab) = ("conf-drop", "conf-drop-b");
    store.write(a, vec![put(b"r1"), put(b"h")]).unwrap();
    store.write(ab, vec![put(b"r1")]).unwrap();
    assert!(store.spaces().unwrap().contains(&a.to_string()));
    store.drop_space(a).unwrap();
    let spaces = store.spaces().unwrap();
    assert!(!spaces.contains(&a.to_string()) && spaces.contains(&ab.to_string()), "{spaces:?}");
    assert!(store.scan_prefix(a, b"").unwrap().is_empty());
    assert_eq!(store.get(a, b"h").unwrap(), None);
    assert_eq!(store.get(ab, b"r1").unwrap(), Some(b"r1".to_vec()), "a space whose name extends it stays");
    let mut sorted = spaces.clone();
    sorted.sort();
    assert_eq!(spaces, sorted, "spaces are listed in order");
}

/// Every space exported, in the order `export` handed them over: (space, entries).
type Exported = Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)>;

/// `store.export`, collected; `each` sees every batch as it comes. Checks that a space's
/// batches come together.
fn export_all(store: &dyn Storage, batch_bytes: usize, each: &mut dyn FnMut(&str, &EntryBatch)) -> Exported {
    let mut out: Exported = Vec::new();
    store
        .export(batch_bytes, &mut |space, batch| {
            each(space, &batch);
            if out.last().is_none_or(|(last, _)| last != space) {
                assert!(out.iter().all(|(s, _)| s != space), "space {space} exported twice");
                out.push((space.to_string(), Vec::new()));
            }
            out.last_mut().unwrap().1.extend(batch.iter().map(|(k, v)| (k.to_vec(), v.to_vec())));
            Ok(())
        })
        .unwrap();
    out
}

/// With nothing written meanwhile, an export is every space (empty ones too) in the order
/// `spaces` lists them, each as a full scan, in batches that follow `batch_bytes`.
fn exports_hand_over_every_space(store: &dyn Storage) {
    store.write("conf-export-empty", vec![]).unwrap();
    store.write("conf-export-emptied", vec![put(b"k")]).unwrap();
    store.write_clearing("conf-export-emptied", &[b""], vec![]).unwrap();
    let expected: Exported =
        store.spaces().unwrap().into_iter().map(|s| (s.clone(), store.scan_prefix(&s, b"").unwrap())).collect();
    assert!(expected.iter().any(|(s, e)| s == "conf-export-empty" && e.is_empty()), "{expected:?}");
    for batch_bytes in [1, 100, 1 << 20] {
        let mut batches = 0;
        let mut most = 0;
        let got = export_all(store, batch_bytes, &mut |_, b| {
            batches += 1;
            most = most.max(b.bytes());
        });
        assert!(got == expected, "batch_bytes {batch_bytes}: the export differs from the spaces' scans");
        assert!(batches > expected.len() || batch_bytes == 1 << 20, "batches follow batch_bytes");
        assert!(batch_bytes == 1 << 20 || most < batch_bytes + 300_100, "a batch of {most} bytes");
    }
    let stopped = store.export(1, &mut |_, _| Err(crate::error::Error::Aborted("sink".into())));
    assert_eq!(stopped.unwrap_err().code(), "ERR_ABORTED", "an error from the sink ends the export");
}

/// A writer commits rounds of two batches, one to each of two spaces (round i: five keys
/// `i-j` to space a, then key `i` to space b), while exports run; the first export waits
/// inside its sink, at space a's first batch, until the writer has committed more rounds.
/// Every export must be one moment: each round's batch wholly in it or not at all, the rounds
/// in a a prefix 0..k and those in b 0..m with m <= k <= m + 1 (a's batch of a round is
/// written before b's), so an export that read b later than a would show more rounds in b.
fn an_export_is_one_moment_of_every_space_while_writes_go_on(store: &dyn Storage) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (a, b) = ("conf-export-live-a", "conf-export-live-b");
    // The writer commits rounds up to `target`, which the exports raise: the store stays small.
    let (rounds, target, stop) = (AtomicUsize::new(0), AtomicUsize::new(3), AtomicBool::new(false));
    let round_key = |i: usize, j: usize| format!("{i:06}-{j}").into_bytes();
    let check = |exported: &Exported| -> (usize, usize) {
        let of = |space: &str| exported.iter().find(|(s, _)| s == space).map(|(_, e)| e.clone()).unwrap_or_default();
        let (in_a, in_b) = (of(a), of(b));
        assert_eq!(in_a.len() % 5, 0, "a round's batch is wholly in the export or not at all");
        let k = in_a.len() / 5;
        let want_a: Vec<Vec<u8>> = (0..k).flat_map(|i| (0..5).map(move |j| round_key(i, j))).collect();
        assert!(in_a.iter().map(|(key, _)| key.clone()).eq(want_a), "space a holds rounds 0..{k}");
        let m = in_b.len();
        assert!(in_b.iter().map(|(key, _)| key.clone()).eq((0..m).map(|i| format!("{i:06}").into_bytes())));
        assert!(m <= k && k <= m + 1, "{k} rounds in space a, {m} in space b: not one moment");
        (k, m)
    };
    let wait_for = |n: usize| {
        target.fetch_max(n, Ordering::AcqRel);
        while rounds.load(Ordering::Acquire) < n {
            std::thread::yield_now();
        }
    };
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                if i >= target.load(Ordering::Acquire) {
                    std::thread::yield_now();
                    continue;
                }
                store.write(a, (0..5).map(|j| (round_key(i, j), Some(vec![i as u8; 40]))).collect()).unwrap();
                store.write(b, vec![(format!("{i:06}").into_bytes(), Some(vec![i as u8; 40]))]).unwrap();
                i += 1;
                rounds.store(i, Ordering::Release);
            }
        });
        // A failed check must still stop the writer, or the scope would wait for it forever.
        struct StopOnDrop<'s>(&'s AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let _stop = StopOnDrop(&stop);
        wait_for(3);
        let mut waited = false;
        let first = export_all(store, 64, &mut |space, _| {
            if space == a && !waited {
                waited = true;
                wait_for(rounds.load(Ordering::Acquire) + 3);
            }
        });
        assert!(waited);
        check(&first);
        for _ in 0..5 {
            target.fetch_add(30, Ordering::AcqRel);
            check(&export_all(store, 64, &mut |_, _| std::thread::yield_now()));
        }
        stop.store(true, Ordering::Release);
        writer.join().unwrap();
    });
    let total = rounds.load(Ordering::Acquire);
    assert_eq!(check(&export_all(store, 1 << 20, &mut |_, _| {})), (total, total), "every round, once quiet");
}

/// Runs every check of [`Sharing`] on `sharing` (whose store must be empty of `share-*`
/// spaces). `Arc` because some checks write from several threads.
pub(crate) fn run_sharing<S: Storage + 'static>(store: &Arc<S>) {
    let sharing = || store.sharing().expect("a shared store");
    commits_are_numbered_without_gaps_and_logged(sharing());
    a_dropped_transaction_changes_nothing(sharing());
    snapshots_do_not_see_later_commits(sharing());
    writers_of_a_space_take_turns(store);
    claims_are_exclusive_until_dropped(sharing());
    commits_wake_subscribers_and_dropping_a_space_ends_it(sharing());
}

fn commits_are_numbered_without_gaps_and_logged(sharing: &dyn Sharing) {
    let s = "share-log";
    assert_eq!(sharing.heads(&[s]).unwrap(), [None], "a space never written has no head");
    let txn = sharing.begin_write(s).unwrap();
    assert_eq!(txn.head(), None);
    assert_eq!(txn.commit(&[], vec![put(b"a")], LogKind::Rewrite, Vec::new()).unwrap(), 1, "created at 1");
    let txn = sharing.begin_write(s).unwrap();
    assert_eq!(txn.head(), Some(1));
    assert_eq!(txn.reader().get(s, b"a").unwrap(), Some(b"a".to_vec()), "a write sees earlier commits");
    assert_eq!(txn.commit(&[], vec![put(b"b")], LogKind::Write, b"body 2".to_vec()).unwrap(), 2);
    let txn = sharing.begin_write(s).unwrap();
    let changes = vec![(b"a".to_vec(), None), put(b"rc")];
    assert_eq!(txn.commit(&[b"b"], changes, LogKind::Write, b"body 3".to_vec()).unwrap(), 3);
    assert_eq!(sharing.heads(&[s, "share-none", s]).unwrap(), [Some(3), None, Some(3)]);
    let snap = sharing.snapshot(s).unwrap();
    assert_eq!(snap.head(), Some(3));
    let log = snap.log_after(1).unwrap().unwrap();
    let seen: Vec<_> = log.iter().map(|e| (e.seq, e.kind, e.body.clone())).collect();
    assert_eq!(seen, [(2, LogKind::Write, b"body 2".to_vec()), (3, LogKind::Write, b"body 3".to_vec())]);
    assert_eq!(snap.log_after(3).unwrap().unwrap(), vec![], "nothing after the head");
    assert_eq!(snap.log_after(0).unwrap().unwrap().len(), 3);
    let all: Vec<_> = snap.reader().scan_prefix(s, b"").unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(all, [b"rc".to_vec()], "the cleared range went before the changes applied");
    // A rewrite lets the store drop what came before it: a follower further behind must
    // read everything again.
    let txn = sharing.begin_write(s).unwrap();
    assert_eq!(txn.commit(&[], vec![put(b"d")], LogKind::Rewrite, Vec::new()).unwrap(), 4);
    let snap = sharing.snapshot(s).unwrap();
    assert_eq!(
        snap.log_after(3).unwrap().unwrap().iter().map(|e| (e.seq, e.kind)).collect::<Vec<_>>(),
        [(4, LogKind::Rewrite)]
    );
    assert_eq!(snap.log_after(1).unwrap(), None, "entries before the rewrite may be gone");
}

fn a_dropped_transaction_changes_nothing(sharing: &dyn Sharing) {
    let s = "share-rollback";
    sharing.begin_write(s).unwrap().commit(&[], vec![put(b"a")], LogKind::Rewrite, Vec::new()).unwrap();
    drop(sharing.begin_write(s).unwrap());
    assert_eq!(sharing.heads(&[s]).unwrap(), [Some(1)]);
    // The lock went with it.
    let txn = sharing.begin_write(s).unwrap();
    assert_eq!(txn.commit(&[], vec![put(b"b")], LogKind::Write, Vec::new()).unwrap(), 2);
    drop(sharing.begin_write("share-rollback-new").unwrap());
    assert_eq!(sharing.heads(&["share-rollback-new"]).unwrap(), [None], "no space is created by a rollback");
}

fn snapshots_do_not_see_later_commits(sharing: &dyn Sharing) {
    let s = "share-snapshot";
    sharing
        .begin_write(s)
        .unwrap()
        .commit(&[], vec![(b"k".to_vec(), Some(b"old".to_vec()))], LogKind::Rewrite, vec![])
        .unwrap();
    let snap = sharing.snapshot(s).unwrap();
    let changes = vec![(b"k".to_vec(), Some(b"new".to_vec())), put(b"k2")];
    sharing.begin_write(s).unwrap().commit(&[], changes, LogKind::Write, b"x".to_vec()).unwrap();
    assert_eq!(snap.head(), Some(1));
    assert_eq!(snap.reader().get(s, b"k").unwrap(), Some(b"old".to_vec()));
    assert_eq!(snap.reader().get_many(s, &[b"k".to_vec(), b"k2".to_vec()]).unwrap(), [Some(b"old".to_vec()), None]);
    assert_eq!(snap.reader().scan_prefix(s, b"k").unwrap().len(), 1);
    assert_eq!(snap.log_after(1).unwrap().unwrap(), vec![]);
    assert!(snap.reader().write(s, vec![put(b"z")]).is_err(), "a snapshot is read-only");
    assert_eq!(sharing.snapshot(s).unwrap().reader().get(s, b"k").unwrap(), Some(b"new".to_vec()));
}

/// Threads increment a counter through read-modify-write transactions: a write that did not
/// wait for the one before it would lose an increment or reuse a sequence number.
fn writers_of_a_space_take_turns<S: Storage + 'static>(store: &Arc<S>) {
    let s = "share-turns";
    let sharing = store.sharing().unwrap();
    sharing
        .begin_write(s)
        .unwrap()
        .commit(&[], vec![(b"n".to_vec(), Some(0u64.to_le_bytes().to_vec()))], LogKind::Rewrite, vec![])
        .unwrap();
    let (threads, rounds) = (4, 25);
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (store, start) = (Arc::clone(store), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut seqs = Vec::new();
                for _ in 0..rounds {
                    let txn = store.sharing().unwrap().begin_write(s).unwrap();
                    let n = u64::from_le_bytes(txn.reader().get(s, b"n").unwrap().unwrap().try_into().unwrap());
                    let next = (b"n".to_vec(), Some((n + 1).to_le_bytes().to_vec()));
                    let seq = txn.commit(&[], vec![next], LogKind::Write, n.to_le_bytes().to_vec()).unwrap();
                    seqs.push(seq);
                }
                seqs
            })
        })
        .collect();
    let mut seqs: Vec<u64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    seqs.sort();
    let total = (threads * rounds) as u64;
    assert_eq!(seqs, (2..=total + 1).collect::<Vec<_>>(), "every commit got its own number, none skipped");
    let n = store.get(s, b"n").unwrap().unwrap();
    assert_eq!(u64::from_le_bytes(n.try_into().unwrap()), total, "no increment was lost");
    let log = sharing.snapshot(s).unwrap().log_after(1).unwrap().unwrap();
    let bodies: Vec<u64> = log.iter().map(|e| u64::from_le_bytes(e.body.clone().try_into().unwrap())).collect();
    assert_eq!(bodies, (0..total).collect::<Vec<_>>(), "the log holds the commits in commit order");
}

fn claims_are_exclusive_until_dropped(sharing: &dyn Sharing) {
    let claim = sharing.try_claim("share-claim", "training").unwrap().expect("free");
    assert!(sharing.try_claim("share-claim", "training").unwrap().is_none(), "held");
    let other = sharing.try_claim("share-claim", "other").unwrap().expect("another claim is separate");
    let elsewhere = sharing.try_claim("share-claim-2", "training").unwrap().expect("another space is separate");
    drop(claim);
    let again = sharing.try_claim("share-claim", "training").unwrap();
    assert!(again.is_some(), "released when dropped");
    drop((other, elsewhere, again));
}

fn commits_wake_subscribers_and_dropping_a_space_ends_it(sharing: &dyn Sharing) {
    let s = "share-wake";
    let wakes = sharing.subscribe().unwrap();
    sharing.begin_write(s).unwrap().commit(&[], vec![put(b"a")], LogKind::Rewrite, vec![]).unwrap();
    sharing.begin_write(s).unwrap().commit(&[], vec![put(b"b")], LogKind::Write, vec![]).unwrap();
    sharing.begin_write(s).unwrap().drop_space().unwrap();
    assert_eq!(sharing.heads(&[s]).unwrap(), [None]);
    let snap = sharing.snapshot(s).unwrap();
    assert_eq!((snap.head(), snap.reader().get(s, b"a").unwrap()), (None, None));
    // Wake-ups may be lost in general, but not on a healthy connection; a minute is only
    // there to fail instead of hanging.
    let mut seen = Vec::new();
    while seen.last() != Some(&Wake { space: s.into(), seq: 0 }) {
        match wakes.recv_timeout(Duration::from_secs(60)) {
            Ok(w) if w.space == s => seen.push(w),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!("missing wake-ups: {seen:?}"),
        }
    }
    assert_eq!(seen.iter().map(|w| w.seq).collect::<Vec<_>>(), [1, 2, 0]);
}
