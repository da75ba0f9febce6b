//! Item metadata as the working set holds it: a JSON value in a compact binary encoding,
//! one byte string per item behind a thin pointer (`thin`), read through borrowed views
//! ([`MetaRef`]).
//!
//! A tree of boxed values costs a small object several allocations, and building those trees
//! (parsing JSON into them) would dominate `loadIndex` (BENCHMARKS.md, "Disk store: ingest
//! and reopen", item 5). The encoding is what records store too, so a load only checks it and
//! copies it: a two-field object takes ~25 bytes in one allocation. Values are canonical:
//! object keys unique and sorted (the order `serde_json::Value` returns them in, so results
//! are unchanged), numbers in serde_json's three kinds, so every value round-trips exactly.
//!
//! Encoding (one value): tag u8, then
//! - `NULL`, `FALSE`, `TRUE`: nothing;
//! - `UINT`: varint; `NEG` (a negative integer n): varint of `!n`; `FLOAT`: f64 LE;
//! - `STR`: varint length ‖ UTF-8;
//! - `ARRAY`: varint count ‖ varint body length ‖ values;
//! - `OBJECT`: varint count ‖ varint body length ‖ (varint key length ‖ key ‖ value) × count,
//!   keys strictly increasing.
//!
//! Varints are LEB128. Body lengths let a lookup skip a whole array or object.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Number, Value};

use crate::meta::thin::ThinBytes;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UINT: u8 = 3;
const NEG: u8 = 4;
const FLOAT: u8 = 5;
const STR: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;

/// Nesting accepted by [`Meta::from_encoded`] (JSON input is limited to 128 by serde_json).
const MAX_DEPTH: usize = 256;

/// A JSON value, encoded (see the module docs). Equality is by value.
#[derive(Clone)]
pub struct Meta(ThinBytes);

/// A borrowed view of an encoded value.
#[derive(Debug, Clone, Copy)]
pub enum MetaRef<'a> {
    /// JSON `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A non-negative integer.
    U64(u64),
    /// A negative integer.
    I64(i64),
    /// Any other number (always finite: JSON has no NaN or infinity).
    F64(f64),
    /// A string.
    Str(&'a str),
    /// An array.
    Array(ArrayRef<'a>),
    /// An object, keys sorted.
    Object(ObjectRef<'a>),
}

/// The elements of an encoded array.
#[derive(Debug, Clone, Copy)]
pub struct ArrayRef<'a> {
    len: usize,
    body: &'a [u8],
}

/// The `(key, value)` pairs of an encoded object, sorted by key.
#[derive(Debug, Clone, Copy)]
pub struct ObjectRef<'a> {
    len: usize,
    body: &'a [u8],
}

impl Meta {
    /// The value as a view.
    pub fn as_ref(&self) -> MetaRef<'_> {
        value_at(self.0.as_bytes(), 0).0
    }

    /// Bytes of its allocation: the encoding and its length.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }

    /// The encoding (what records store).
    pub fn encoded(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// A value from its encoding, if `bytes` are exactly one well-formed, canonical value.
    pub fn from_encoded(bytes: &[u8]) -> Option<Meta> {
        (check(bytes, 0, 0)? == bytes.len()).then(|| Meta(ThinBytes::new(bytes)))
    }

    /// Whether this is an object.
    pub fn is_object(&self) -> bool {
        self.0.as_bytes().first() == Some(&OBJECT)
    }

    /// Levels of nesting: 0 for a scalar, 1 for an object of scalars, and so on.
    pub fn depth(&self) -> usize {
        fn depth(v: MetaRef<'_>) -> usize {
            match v {
                MetaRef::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
                MetaRef::Object(o) => 1 + o.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
                _ => 0,
            }
        }
        depth(self.as_ref())
    }

    /// The value of `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<MetaRef<'_>> {
        self.as_ref().get(key)
    }

    /// The same value as a `serde_json::Value` (for returning it to callers).
    pub fn to_json(&self) -> Value {
        self.as_ref().to_json()
    }
}

impl PartialEq for Meta {
    fn eq(&self, other: &Meta) -> bool {
        self.as_ref() == other.as_ref()
    }
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Meta({})", self.to_json())
    }
}

impl<'a> MetaRef<'a> {
    /// Whether this is an object.
    pub fn is_object(&self) -> bool {
        matches!(self, MetaRef::Object(_))
    }

    /// The value of `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<MetaRef<'a>> {
        match self {
            MetaRef::Object(o) => o.get(key),
            _ => None,
        }
    }

    /// An owned copy.
    pub fn to_meta(&self) -> Meta {
        let mut out = Vec::new();
        encode_ref(&mut out, *self);
        Meta(ThinBytes::new(&out))
    }

    /// The value as a `serde_json::Value`.
    pub fn to_json(&self) -> Value {
        match *self {
            MetaRef::Null => Value::Null,
            MetaRef::Bool(b) => Value::Bool(b),
            MetaRef::U64(n) => Value::from(n),
            MetaRef::I64(n) => Value::from(n),
            MetaRef::F64(x) => Number::from_f64(x).map_or(Value::Null, Value::Number),
            MetaRef::Str(s) => Value::String(s.to_string()),
            MetaRef::Array(a) => Value::Array(a.iter().map(|v| v.to_json()).collect()),
            MetaRef::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect()),
        }
    }
}

/// Equality by value; numbers equal only within their kind, floats by `==`.
impl PartialEq for MetaRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (*self, *other) {
            (MetaRef::Null, MetaRef::Null) => true,
            (MetaRef::Bool(a), MetaRef::Bool(b)) => a == b,
            (MetaRef::U64(a), MetaRef::U64(b)) => a == b,
            (MetaRef::I64(a), MetaRef::I64(b)) => a == b,
            (MetaRef::F64(a), MetaRef::F64(b)) => a == b,
            (MetaRef::Str(a), MetaRef::Str(b)) => a == b,
            (MetaRef::Array(a), MetaRef::Array(b)) => a.len == b.len && a.iter().zip(b.iter()).all(|(x, y)| x == y),
            (MetaRef::Object(a), MetaRef::Object(b)) => {
                a.len == b.len && a.iter().zip(b.iter()).all(|((k, x), (l, y))| k == l && x == y)
            }
            _ => false,
        }
    }
}

impl<'a> ArrayRef<'a> {
    /// Elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The elements in order.
    pub fn iter(&self) -> impl Iterator<Item = MetaRef<'a>> + 'a {
        let (body, mut pos) = (self.body, 0);
        (0..self.len).map(move |_| {
            let (v, end) = value_at(body, pos);
            pos = end;
            v
        })
    }

    /// Element `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<MetaRef<'a>> {
        self.iter().nth(i)
    }
}

impl<'a> ObjectRef<'a> {
    /// Keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `(key, value)` pairs, keys increasing.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, MetaRef<'a>)> + 'a {
        let (body, mut pos) = (self.body, 0);
        (0..self.len).map(move |_| {
            let (key, at) = key_at(body, pos);
            let (v, end) = value_at(body, at);
            pos = end;
            (key, v)
        })
    }

    /// The value of `key`: a scan that skips other values whole and stops past `key`.
    pub fn get(&self, key: &str) -> Option<MetaRef<'a>> {
        let mut pos = 0;
        for _ in 0..self.len {
            // Keys compare as bytes (the order of `str`), so no UTF-8 check on the way.
            let (len, at) = varint(self.body, pos);
            let (k, at) = (&self.body[at..at + len as usize], at + len as usize);
            match k.cmp(key.as_bytes()) {
                std::cmp::Ordering::Less => pos = skip(self.body, at),
                std::cmp::Ordering::Equal => return Some(value_at(self.body, at).0),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }
}

// ---- decoding (of checked encodings: out-of-range reads would be a bug, and panic) ----

fn varint(b: &[u8], pos: usize) -> (u64, usize) {
    let (mut n, mut shift, mut at) = (0u64, 0, pos);
    loop {
        let byte = b[at];
        n |= u64::from(byte & 0x7f) << shift;
        at += 1;
        if byte & 0x80 == 0 {
            return (n, at);
        }
        shift += 7;
    }
}

fn key_at(b: &[u8], pos: usize) -> (&str, usize) {
    let (len, at) = varint(b, pos);
    let end = at + len as usize;
    (std::str::from_utf8(&b[at..end]).expect("checked UTF-8"), end)
}

/// The value starting at `pos` and where it ends.
fn value_at(b: &[u8], pos: usize) -> (MetaRef<'_>, usize) {
    let at = pos + 1;
    match b[pos] {
        NULL => (MetaRef::Null, at),
        FALSE => (MetaRef::Bool(false), at),
        TRUE => (MetaRef::Bool(true), at),
        UINT => {
            let (n, end) = varint(b, at);
            (MetaRef::U64(n), end)
        }
        NEG => {
            let (n, end) = varint(b, at);
            (MetaRef::I64(!n as i64), end)
        }
        FLOAT => (MetaRef::F64(f64::from_le_bytes(b[at..at + 8].try_into().unwrap())), at + 8),
        STR => {
            let (s, end) = key_at(b, at);
            (MetaRef::Str(s), end)
        }
        tag => {
            let (len, at) = varint(b, at);
            let (body_len, at) = varint(b, at);
            let end = at + body_len as usize;
            let body = &b[at..end];
            let len = len as usize;
            let v = if tag == ARRAY {
                MetaRef::Array(ArrayRef { len, body })
            } else {
                MetaRef::Object(ObjectRef { len, body })
            };
            (v, end)
        }
    }
}

/// Where the value starting at `pos` ends, without decoding it.
fn skip(b: &[u8], pos: usize) -> usize {
    match b[pos] {
        NULL | FALSE | TRUE => pos + 1,
        UINT | NEG => varint(b, pos + 1).1,
        FLOAT => pos + 9,
        STR => {
            let (len, at) = varint(b, pos + 1);
            at + len as usize
        }
        _ => {
            let (_, at) = varint(b, pos + 1);
            let (body_len, at) = varint(b, at);
            at + body_len as usize
        }
    }
}

// ---- checking untrusted encodings ----

fn check_varint(b: &[u8], pos: usize) -> Option<(u64, usize)> {
    let (mut n, mut at) = (0u64, pos);
    for shift in (0..64).step_by(7) {
        let byte = *b.get(at)?;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return None;
        }
        n |= bits << shift;
        at += 1;
        if byte & 0x80 == 0 {
            // A zero last byte after others is a longer spelling of a shorter varint.
            return (byte != 0 || at == pos + 1).then_some((n, at));
        }
    }
    None
}

fn check_str(b: &[u8], pos: usize) -> Option<(&str, usize)> {
    let (len, at) = check_varint(b, pos)?;
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    Some((std::str::from_utf8(b.get(at..end)?).ok()?, end))
}

/// Where the well-formed, canonical value at `pos` ends, or `None`.
fn check(b: &[u8], pos: usize, depth: usize) -> Option<usize> {
    let at = pos + 1;
    match *b.get(pos)? {
        NULL | FALSE | TRUE => Some(at),
        UINT => Some(check_varint(b, at)?.1),
        NEG => {
            let (n, end) = check_varint(b, at)?;
            (n <= i64::MAX as u64).then_some(end)
        }
        FLOAT => {
            let x = f64::from_le_bytes(b.get(at..at + 8)?.try_into().unwrap());
            x.is_finite().then_some(at + 8)
        }
        STR => Some(check_str(b, at)?.1),
        tag @ (ARRAY | OBJECT) => {
            if depth >= MAX_DEPTH {
                return None;
            }
            let (len, at) = check_varint(b, at)?;
            let (body_len, at) = check_varint(b, at)?;
            let end = at.checked_add(usize::try_from(body_len).ok()?)?;
            let body = b.get(at..end)?;
            let mut pos = 0;
            let mut last: Option<&str> = None;
            for _ in 0..len {
                if tag == OBJECT {
                    let (key, after) = check_str(body, pos)?;
                    if last.is_some_and(|l| l >= key) {
                        return None;
                    }
                    last = Some(key);
                    pos = after;
                }
                pos = check(body, pos, depth + 1)?;
            }
            (pos == body.len()).then_some(end)
        }
        _ => None,
    }
}

// ---- encoding ----

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_composite(out: &mut Vec<u8>, tag: u8, len: usize, body: &[u8]) {
    out.push(tag);
    put_varint(out, len as u64);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn put_u64(out: &mut Vec<u8>, n: u64) {
    out.push(UINT);
    put_varint(out, n);
}

fn put_i64(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        put_u64(out, n as u64);
    } else {
        out.push(NEG);
        put_varint(out, !n as u64);
    }
}

fn put_f64(out: &mut Vec<u8>, x: f64) {
    out.push(FLOAT);
    out.extend_from_slice(&x.to_le_bytes());
}

/// An object from encoded `(key, value)` pairs in any order; of repeated keys the last wins
/// (as in `Value`).
fn put_object(out: &mut Vec<u8>, mut pairs: Vec<(String, Meta)>) {
    // A stable sort keeps repeated keys in input order, so the last is the one to keep.
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut kept: Vec<(String, Meta)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        match kept.last_mut() {
            Some(last) if last.0 == k => last.1 = v,
            _ => kept.push((k, v)),
        }
    }
    let mut body = Vec::new();
    for (k, v) in &kept {
        put_str(&mut body, k);
        body.extend_from_slice(v.0.as_bytes());
    }
    put_composite(out, OBJECT, kept.len(), &body);
}

fn encode_ref(out: &mut Vec<u8>, v: MetaRef<'_>) {
    match v {
        MetaRef::Null => out.push(NULL),
        MetaRef::Bool(b) => out.push(if b { TRUE } else { FALSE }),
        MetaRef::U64(n) => put_u64(out, n),
        MetaRef::I64(n) => put_i64(out, n),
        MetaRef::F64(x) => put_f64(out, x),
        MetaRef::Str(s) => {
            out.push(STR);
            put_str(out, s);
        }
        MetaRef::Array(a) => put_composite(out, ARRAY, a.len, a.body),
        MetaRef::Object(o) => put_composite(out, OBJECT, o.len, o.body),
    }
}

fn encode_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => put_u64(out, u),
            (None, Some(i)) => put_i64(out, i),
            _ => put_f64(out, n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => {
            out.push(STR);
            put_str(out, s);
        }
        Value::Array(items) => {
            let mut body = Vec::new();
            items.iter().for_each(|it| encode_value(&mut body, it));
            put_composite(out, ARRAY, items.len(), &body);
        }
        Value::Object(map) => put_object(out, map.iter().map(|(k, v)| (k.clone(), Meta::from(v))).collect()),
    }
}

impl From<&Value> for Meta {
    fn from(v: &Value) -> Meta {
        let mut out = Vec::new();
        encode_value(&mut out, v);
        Meta(ThinBytes::new(&out))
    }
}

impl From<Value> for Meta {
    fn from(v: Value) -> Meta {
        Meta::from(&v)
    }
}

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_ref().serialize(s)
    }
}

impl Serialize for MetaRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            MetaRef::Null => s.serialize_unit(),
            MetaRef::Bool(b) => s.serialize_bool(b),
            MetaRef::U64(n) => s.serialize_u64(n),
            MetaRef::I64(n) => s.serialize_i64(n),
            MetaRef::F64(x) => s.serialize_f64(x),
            MetaRef::Str(v) => s.serialize_str(v),
            MetaRef::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len))?;
                for it in a.iter() {
                    seq.serialize_element(&it)?;
                }
                seq.end()
            }
            MetaRef::Object(o) => {
                let mut map = s.serialize_map(Some(o.len))?;
                for (k, v) in o.iter() {
                    map.serialize_entry(k, &v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Meta, D::Error> {
        d.deserialize_any(MetaVisitor)
    }
}

struct MetaVisitor;

fn scalar(encode: impl FnOnce(&mut Vec<u8>)) -> Meta {
    let mut out = Vec::with_capacity(10);
    encode(&mut out);
    Meta(ThinBytes::new(&out))
}

impl<'de> Visitor<'de> for MetaVisitor {
    type Value = Meta;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Meta, E> {
        Ok(scalar(|o| o.push(NULL)))
    }

    fn visit_none<E>(self) -> Result<Meta, E> {
        Ok(scalar(|o| o.push(NULL)))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Meta, D::Error> {
        Meta::deserialize(d)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Meta, E> {
        Ok(scalar(|o| o.push(if b { TRUE } else { FALSE })))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Meta, E> {
        Ok(scalar(|o| put_u64(o, n)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Meta, E> {
        Ok(scalar(|o| put_i64(o, n)))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Meta, E> {
        if x.is_finite() {
            Ok(scalar(|o| put_f64(o, x)))
        } else {
            Err(E::custom("numbers must be finite"))
        }
    }

    fn visit_str<E>(self, s: &str) -> Result<Meta, E> {
        let mut out = Vec::with_capacity(2 + s.len());
        out.push(STR);
        put_str(&mut out, s);
        Ok(Meta(ThinBytes::new(&out)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Meta, A::Error> {
        let (mut body, mut len) = (Vec::new(), 0);
        while let Some(it) = seq.next_element::<Meta>()? {
            body.extend_from_slice(it.0.as_bytes());
            len += 1;
        }
        let mut out = Vec::with_capacity(body.len() + 6);
        put_composite(&mut out, ARRAY, len, &body);
        Ok(Meta(ThinBytes::new(&out)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Meta, A::Error> {
        let mut pairs: Vec<(String, Meta)> = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(k) = map.next_key::<String>()? {
            pairs.push((k, map.next_value()?));
        }
        let mut out = Vec::new();
        put_object(&mut out, pairs);
        Ok(Meta(ThinBytes::new(&out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cases() -> Vec<Value> {
        vec![
            json!(null),
            json!({"b": 1, "a": [true, null, -3, 2.5, "x"], "c": {"z": {}, "y": []}}),
            json!({"max": u64::MAX, "min": i64::MIN, "f": 1e300, "tiny": 5e-324, "neg0": -0.0, "m1": -1}),
            json!({"ü": "ñ\u{1F600}", "": "", "esc": "a\"b\\c\n", "long": "x".repeat(300)}),
            json!([[[]], {}, 0, 1.0, 127, 128, 16383, 16384]),
        ]
    }

    #[test]
    fn round_trips_json_exactly_with_keys_sorted_like_value() {
        for v in cases() {
            let text = serde_json::to_string(&v).unwrap();
            let m: Meta = serde_json::from_str(&text).unwrap();
            assert_eq!(m, Meta::from(&v));
            assert_eq!(m.encoded(), Meta::from(&v).encoded(), "one canonical encoding");
            assert_eq!(m.to_json(), v);
            assert_eq!(serde_json::to_string(&m).unwrap(), text, "serialises as Value does");
            assert_eq!(Meta::from_encoded(m.encoded()), Some(m.clone()));
            assert_eq!(m.as_ref().to_meta(), m);
        }
    }

    #[test]
    fn objects_look_up_by_key_ignore_order_and_keep_the_last_repeat() {
        let m: Meta = serde_json::from_str(r#"{"lang": "en", "year": 2001, "lang": "de", "a": 1}"#).unwrap();
        assert_eq!(m.get("lang"), Some(MetaRef::Str("de")));
        assert_eq!(m.get("year"), Some(MetaRef::U64(2001)));
        assert_eq!(m.get("a"), Some(MetaRef::U64(1)));
        assert_eq!(m.get("missing"), None);
        assert_eq!(m.get("b"), None);
        assert_eq!(m.get("zzz"), None);
        assert_eq!(Meta::from(json!("x")).get("x"), None);
        let other: Meta = serde_json::from_str(r#"{"year": 2001, "a": 1, "lang": "de"}"#).unwrap();
        assert_eq!(m, other);
        assert_eq!(m.to_json(), json!({"a": 1, "lang": "de", "year": 2001}));
        assert!(m.is_object() && !Meta::from(json!([1])).is_object());
    }

    #[test]
    fn integers_keep_their_kind() {
        let m: Meta = serde_json::from_str("[0, 7, -7, 7.0, 18446744073709551615, -9223372036854775808]").unwrap();
        let MetaRef::Array(items) = m.as_ref() else { panic!() };
        let got: Vec<MetaRef> = items.iter().collect();
        assert_eq!(
            got,
            [
                MetaRef::U64(0),
                MetaRef::U64(7),
                MetaRef::I64(-7),
                MetaRef::F64(7.0),
                MetaRef::U64(u64::MAX),
                MetaRef::I64(i64::MIN)
            ]
        );
        assert_eq!(items.get(2), Some(MetaRef::I64(-7)));
        assert_eq!(items.get(6), None);
    }

    #[test]
    fn depth_counts_nesting_levels() {
        assert_eq!(Meta::from(json!(1)).depth(), 0);
        assert_eq!(Meta::from(json!({})).depth(), 1);
        assert_eq!(Meta::from(json!({"a": 1, "b": {"c": [1, [2]]}})).depth(), 4);
    }

    #[test]
    fn a_two_field_object_is_small() {
        let m = Meta::from(json!({"lang": "en", "year": 2005}));
        assert_eq!(m.encoded().len(), 20);
        assert_eq!(std::mem::size_of::<Option<Meta>>(), 8);
    }

    #[test]
    fn only_well_formed_canonical_encodings_are_accepted() {
        for v in cases() {
            let enc = Meta::from(&v).encoded().to_vec();
            for cut in 0..enc.len() {
                assert_eq!(Meta::from_encoded(&enc[..cut]), None, "{v} cut at {cut}");
            }
            let mut longer = enc.clone();
            longer.push(NULL);
            assert_eq!(Meta::from_encoded(&longer), None);
        }
        let unsorted = [OBJECT, 2, 6, 1, b'b', NULL, 1, b'a', NULL];
        assert_eq!(Meta::from_encoded(&unsorted), None);
        let repeated = [OBJECT, 2, 6, 1, b'a', NULL, 1, b'a', NULL];
        assert_eq!(Meta::from_encoded(&repeated), None);
        assert_eq!(Meta::from_encoded(&[STR, 1, 0xff]), None, "not UTF-8");
        assert_eq!(Meta::from_encoded(&[9]), None, "unknown tag");
        let nan = [&[FLOAT][..], &f64::NAN.to_le_bytes()].concat();
        assert_eq!(Meta::from_encoded(&nan), None);
        let nested = |depth: usize| {
            let mut v = vec![NULL];
            for _ in 0..depth {
                let mut outer = Vec::new();
                put_composite(&mut outer, ARRAY, 1, &v);
                v = outer;
            }
            v
        };
        assert!(Meta::from_encoded(&nested(MAX_DEPTH)).is_some());
        assert_eq!(Meta::from_encoded(&nested(MAX_DEPTH + 1)), None, "nested too deep");
        assert!(Meta::from_encoded(&[UINT, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02]).is_none());
        assert_eq!(Meta::from_encoded(&[UINT, 0x80, 0x00]), None, "not the shortest varint");
        assert_eq!(Meta::from_encoded(&[UINT, 0x00]), Some(Meta::from(json!(0))));
        assert_eq!(Meta::from_encoded(&[UINT, 0x80, 0x01]), Some(Meta::from(json!(128))));
    }
}
