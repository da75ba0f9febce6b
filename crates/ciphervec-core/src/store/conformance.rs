//! What every [`Storage`] backend must do, checked the same way for each: every backend's
//! tests call [`run`] on a fresh, empty store (the PostgreSQL backend too).

use super::{Change, Storage};

/// Runs every check on `store`, which must be empty. Uses spaces named `conf-*`.
pub(crate) fn run(store: &dyn Storage) {
    batches_apply_in_order_and_spaces_are_separate(store);
    scan_ranges_are_half_open_and_prefix_scans_see_only_their_prefix(store);
    batched_scans_yield_the_plain_scan_in_order(store);
    write_clearing_drops_the_ranges_then_applies_the_changes(store);
    dropping_a_space_removes_it_and_nothing_else(store);
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
    let stopped = store.scan_prefix_batches(s, b"r", 1, &mut |_| Err(crate::Error::Aborted("sink".into())));
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
    clear: impl Fn(&str, &[&[u8]], Vec<Change>) -> crate::Result<()>,
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
