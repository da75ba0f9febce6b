//! The items of the format-compatibility fixtures (`tests/fixtures/*.redb`): what
//! `examples/make_fixture.rs` wrote with the build named in each fixture's README line, and
//! what `tests/compat.rs` expects to read back.

// Each user (the compatibility test, the fixture writer) uses part of it.
#![allow(dead_code)]

use ciphervec_core::Contents;
use ciphervec_core::NewItem;

/// Name and key of the fixture index.
pub const INDEX: &str = "compat";
pub const KEY: [u8; 32] = [42; 32];
pub const DIM: usize = 8;

/// Item `i` as written in `round` (0 first; 1 for the items overwritten later).
pub fn item(i: usize, round: u32) -> NewItem {
    let vector = (0..DIM).map(|j| ((i * DIM + j) as f32 * 0.37).sin() + 100.0 * round as f32).collect();
    let tag = ["en", "de", "fr"][i % 3];
    let metadata = serde_json::json!({
        "n": i, "neg": -(i as i64), "x": i as f64 + 0.5, "tag": tag,
        "nested": {"list": [i, "s", null, true, 1.5], "empty": {}}, "round": round
    });
    let contents = match i % 3 {
        0 => Some(Contents::Text(format!("text of {i} — ünïcode"))),
        1 => Some(Contents::Bytes(vec![i as u8, 0, 255])),
        _ => None,
    };
    NewItem { id: format!("item-{i}"), vector, metadata: Some(metadata.into()), contents }
}

/// The fixture's history: three batches, a training run (4 lists, which packs the items in
/// builds with segments), new items, overwrites and deletes of packed and loose items.
pub fn batches() -> Vec<Vec<NewItem>> {
    (0..120).step_by(40).map(|s| (s..s + 40).map(|i| item(i, 0)).collect()).collect()
}

pub fn after_training() -> Vec<NewItem> {
    (120..140).map(|i| item(i, 0)).chain((0..20).map(|i| item(i, 1))).collect()
}

pub fn deleted() -> Vec<String> {
    (20..30).chain(120..125).map(|i| format!("item-{i}")).collect()
}

/// What the index holds at the end, by index number.
pub fn expected() -> Vec<NewItem> {
    (0..140).filter(|i| !(20..30).contains(i) && !(120..125).contains(i)).map(|i| item(i, u32::from(i < 20))).collect()
}
