//! Arbitrary bytes → JSON → `Filter::parse` → `matches` on fixed docs: must never panic.
#![no_main]

use ciphervec_core::meta::filter::Filter;
use ciphervec_core::meta::value::Meta;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::LazyLock;

static DOCS: LazyLock<Vec<Meta>> = LazyLock::new(|| {
    [
        r#"{"a":1,"b":"x","tags":["a","b",null,[1,2]],"o":{"x":2.5,"0":"z"},"n":9007199254740993}"#,
        r#"{"a":[1,2.0,"1"],"b":null,"tags":"a","o":[{"x":1}],"s":"line1\nLine2"}"#,
        r#"{}"#,
        r#"[1,2]"#,
    ]
    .iter()
    .map(|s| serde_json::from_str(s).unwrap())
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<Value>(data) else { return };
    let Ok(filter) = Filter::parse(&json) else { return };
    filter.is_match_all();
    filter.matches(None);
    for doc in DOCS.iter() {
        filter.matches(Some(doc));
    }
    // The filter as a document exercises deep equality against arbitrary shapes.
    filter.matches(Some(&Meta::from(&json)));
});
