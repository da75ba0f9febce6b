//! Item metadata as the working set holds it: a JSON value in a compact form.
//!
//! `serde_json::Value` keeps objects in a `BTreeMap`, whose first node is ~630 bytes however
//! few keys it holds: a two-field object cost ~740 bytes, most of an index's memory, and
//! building those trees was a large part of `loadIndex`. [`Meta`] keeps an object as one
//! boxed slice of `(key, value)` pairs sorted by key (the order `Value` returned them in,
//! so results are unchanged) and looks keys up by binary search: the same object takes
//! ~130 bytes. Numbers keep serde_json's three kinds, so every value round-trips exactly.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Number, Value};

/// A JSON value. Object keys are unique and sorted; equality ignores nothing else.
#[derive(Debug, Clone, PartialEq)]
pub enum Meta {
    Null,
    Bool(bool),
    /// A non-negative integer.
    U64(u64),
    /// A negative integer.
    I64(i64),
    /// Any other number (always finite: JSON has no NaN or infinity).
    F64(f64),
    Str(Box<str>),
    Array(Box<[Meta]>),
    Object(Box<[(Box<str>, Meta)]>),
}

impl Meta {
    /// An object from pairs in any order; of repeated keys the last wins (as in `Value`).
    pub fn object(mut pairs: Vec<(Box<str>, Meta)>) -> Meta {
        // A stable sort keeps repeated keys in input order, so the last is the one to keep.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Box<str>, Meta)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        Meta::Object(out.into_boxed_slice())
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Meta::Object(_))
    }

    /// The value of `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Meta> {
        match self {
            Meta::Object(pairs) => pairs.binary_search_by(|(k, _)| (**k).cmp(key)).ok().map(|i| &pairs[i].1),
            _ => None,
        }
    }

    /// The same value as a `serde_json::Value` (for returning it to callers).
    pub fn to_json(&self) -> Value {
        match self {
            Meta::Null => Value::Null,
            Meta::Bool(b) => Value::Bool(*b),
            Meta::U64(n) => Value::from(*n),
            Meta::I64(n) => Value::from(*n),
            Meta::F64(x) => Number::from_f64(*x).map_or(Value::Null, Value::Number),
            Meta::Str(s) => Value::String(s.to_string()),
            Meta::Array(items) => Value::Array(items.iter().map(Meta::to_json).collect()),
            Meta::Object(pairs) => Value::Object(pairs.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect()),
        }
    }
}

impl From<&Value> for Meta {
    fn from(v: &Value) -> Meta {
        match v {
            Value::Null => Meta::Null,
            Value::Bool(b) => Meta::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Meta::U64(u),
                (None, Some(i)) => Meta::I64(i),
                _ => Meta::F64(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => Meta::Str(s.as_str().into()),
            Value::Array(items) => Meta::Array(items.iter().map(Meta::from).collect()),
            Value::Object(map) => Meta::object(map.iter().map(|(k, v)| (k.as_str().into(), Meta::from(v))).collect()),
        }
    }
}

impl From<Value> for Meta {
    fn from(v: Value) -> Meta {
        Meta::from(&v)
    }
}

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Meta::Null => s.serialize_unit(),
            Meta::Bool(b) => s.serialize_bool(*b),
            Meta::U64(n) => s.serialize_u64(*n),
            Meta::I64(n) => s.serialize_i64(*n),
            Meta::F64(x) => s.serialize_f64(*x),
            Meta::Str(v) => s.serialize_str(v),
            Meta::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for it in items.iter() {
                    seq.serialize_element(it)?;
                }
                seq.end()
            }
            Meta::Object(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs.iter() {
                    map.serialize_entry(&**k, v)?;
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

impl<'de> Visitor<'de> for MetaVisitor {
    type Value = Meta;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Meta, E> {
        Ok(Meta::Null)
    }

    fn visit_none<E>(self) -> Result<Meta, E> {
        Ok(Meta::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Meta, D::Error> {
        Meta::deserialize(d)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Meta, E> {
        Ok(Meta::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Meta, E> {
        Ok(Meta::U64(n))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Meta, E> {
        Ok(if n >= 0 { Meta::U64(n as u64) } else { Meta::I64(n) })
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<Meta, E> {
        if x.is_finite() {
            Ok(Meta::F64(x))
        } else {
            Err(E::custom("numbers must be finite"))
        }
    }

    fn visit_str<E>(self, s: &str) -> Result<Meta, E> {
        Ok(Meta::Str(s.into()))
    }

    fn visit_string<E>(self, s: String) -> Result<Meta, E> {
        Ok(Meta::Str(s.into_boxed_str()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Meta, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(it) = seq.next_element()? {
            items.push(it);
        }
        Ok(Meta::Array(items.into_boxed_slice()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Meta, A::Error> {
        let mut pairs: Vec<(Box<str>, Meta)> = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(k) = map.next_key::<Box<str>>()? {
            pairs.push((k, map.next_value()?));
        }
        // JSON from JavaScript arrives with keys in insertion order; most objects are small and
        // already sorted or nearly so, and `object` sorts stably.
        Ok(Meta::object(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_json_exactly_with_keys_sorted_like_value() {
        let cases = [
            json!(null),
            json!({"b": 1, "a": [true, null, -3, 2.5, "x"], "c": {"z": {}, "y": []}}),
            json!({"max": u64::MAX, "min": i64::MIN, "f": 1e300, "tiny": 5e-324, "neg0": -0.0}),
            json!({"ü": "ñ\u{1F600}", "": "", "esc": "a\"b\\c\n"}),
            json!([[[]], {}, 0, 1.0]),
        ];
        for v in cases {
            let text = serde_json::to_string(&v).unwrap();
            let m: Meta = serde_json::from_str(&text).unwrap();
            assert_eq!(m, Meta::from(&v));
            assert_eq!(m.to_json(), v);
            assert_eq!(serde_json::to_string(&m).unwrap(), text, "the stored bytes are what Value wrote");
        }
    }

    #[test]
    fn objects_look_up_by_key_ignore_order_and_keep_the_last_repeat() {
        let m: Meta = serde_json::from_str(r#"{"lang": "en", "year": 2001, "lang": "de", "a": 1}"#).unwrap();
        assert_eq!(m.get("lang"), Some(&Meta::Str("de".into())));
        assert_eq!(m.get("year"), Some(&Meta::U64(2001)));
        assert_eq!(m.get("missing"), None);
        assert_eq!(Meta::Str("x".into()).get("x"), None);
        let other: Meta = serde_json::from_str(r#"{"year": 2001, "a": 1, "lang": "de"}"#).unwrap();
        assert_eq!(m, other);
        assert_eq!(m.to_json(), json!({"a": 1, "lang": "de", "year": 2001}));
    }

    #[test]
    fn integers_keep_their_kind() {
        let m: Meta = serde_json::from_str("[0, 7, -7, 7.0, 18446744073709551615, -9223372036854775808]").unwrap();
        let Meta::Array(items) = m else { panic!() };
        assert_eq!(
            &*items,
            &[Meta::U64(0), Meta::U64(7), Meta::I64(-7), Meta::F64(7.0), Meta::U64(u64::MAX), Meta::I64(i64::MIN)]
        );
    }

    #[test]
    fn a_two_field_object_is_small() {
        assert_eq!(std::mem::size_of::<Meta>(), 24);
        assert_eq!(std::mem::size_of::<(Box<str>, Meta)>(), 40);
    }
}
