//! The value model shared by AMF0 (`amf0`) and AMF3 (`amf3`).
//!
//! RTMP commands and metadata are sequences of these values. Both codecs
//! decode into this one enum so commands and sessions need not care which
//! encoding the peer chose (type 20/18 is AMF0, type 17/15 is AMF0 with an
//! AVM+ switch to AMF3 per value).

use bytes::Bytes;

use crate::limits;

/// One AMF value. Object properties keep their wire order, because some
/// peers (and humans reading captures) care about it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Number(f64),
    Boolean(bool),
    String(String),
    /// An anonymous object (AMF0 0x03, AMF3 dynamic object) or a typed one
    /// (AMF0 0x10, AMF3 object with a class name).
    Object(Object),
    Null,
    Undefined,
    /// AMF0 ECMA array (0x08); AMF3 array with an associative part (the dense
    /// part follows as keys "0", "1", …).
    EcmaArray(Vec<(String, Value)>),
    /// AMF0 strict array (0x0A); AMF3 array with only a dense part.
    StrictArray(Vec<Value>),
    /// Milliseconds since the Unix epoch; AMF0 also carries a time zone in
    /// minutes, which the spec says to ignore (it is kept for round trips).
    Date {
        millis: f64,
        timezone_min: i16,
    },
    /// AMF0 XML document (0x0F); AMF3 XMLDocument and XML.
    Xml(String),
    /// AMF0 unsupported (0x0D).
    Unsupported,
    /// AMF3 integer (29-bit signed).
    Integer(i32),
    /// AMF3 ByteArray.
    ByteArray(Bytes),
    /// AMF3 `Vector.<int>`.
    VectorInt {
        fixed: bool,
        items: Vec<i32>,
    },
    /// AMF3 `Vector.<uint>`.
    VectorUint {
        fixed: bool,
        items: Vec<u32>,
    },
    /// AMF3 `Vector.<Number>`.
    VectorDouble {
        fixed: bool,
        items: Vec<f64>,
    },
    /// AMF3 `Vector.<Object>`, with the element type name.
    VectorObject {
        fixed: bool,
        type_name: String,
        items: Vec<Value>,
    },
    /// AMF3 Dictionary: keys may be any value.
    Dictionary {
        weak_keys: bool,
        entries: Vec<(Value, Value)>,
    },
}

/// An AMF object: an optional class name (typed object) and its properties
/// in wire order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Object {
    pub class: Option<String>,
    pub properties: Vec<(String, Value)>,
}

impl Object {
    /// An anonymous object with these properties, in this order.
    pub fn new<K: Into<String>>(properties: impl IntoIterator<Item = (K, Value)>) -> Object {
        Object {
            class: None,
            properties: properties.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }

    /// The first property named `name`.
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

impl Value {
    /// An anonymous object value; see [`Object::new`].
    pub fn object<K: Into<String>>(properties: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(Object::new(properties))
    }

    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A number, whichever encoding carried it (AMF3 may send integers).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Integer(i) => Some(f64::from(*i)),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// Properties of an object or an ECMA array (metadata arrives as either).
    pub fn properties(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(o) => Some(&o.properties),
            Value::EcmaArray(entries) => Some(entries),
            _ => None,
        }
    }

    /// The first property named `name` of an object or an ECMA array.
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// What this value costs against [`Limits`]: itself and every nested
    /// value, and the bytes of every string and byte array in it. Decoders
    /// charge it when resolving a reference (which copies a subtree), so a
    /// small message cannot amplify into a huge tree.
    pub fn cost(&self) -> Cost {
        let own = Cost {
            items: 1,
            bytes: match self {
                Value::String(s) | Value::Xml(s) => s.len(),
                Value::ByteArray(b) => b.len(),
                Value::VectorObject { type_name, .. } => type_name.len(),
                Value::Object(o) => o.class.as_ref().map_or(0, String::len),
                _ => 0,
            },
        };
        let keyed = |entries: &[(String, Value)]| {
            entries.iter().fold(Cost::default(), |sum, (k, v)| {
                sum.plus(v.cost()).plus(Cost {
                    items: 0,
                    bytes: k.len(),
                })
            })
        };
        let nested = match self {
            Value::Object(o) => keyed(&o.properties),
            Value::EcmaArray(entries) => keyed(entries),
            Value::StrictArray(items) | Value::VectorObject { items, .. } => items
                .iter()
                .fold(Cost::default(), |sum, v| sum.plus(v.cost())),
            Value::VectorInt { items, .. } => Cost::items(items.len()),
            Value::VectorUint { items, .. } => Cost::items(items.len()),
            Value::VectorDouble { items, .. } => Cost::items(items.len()),
            Value::Dictionary { entries, .. } => {
                entries.iter().fold(Cost::default(), |sum, (k, v)| {
                    sum.plus(k.cost()).plus(v.cost())
                })
            }
            _ => Cost::default(),
        };
        own.plus(nested)
    }
}

/// The size of decoded AMF, as bounded by [`Limits`]: values, and bytes of
/// strings, keys and byte arrays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub items: usize,
    pub bytes: usize,
}

impl Cost {
    pub fn items(items: usize) -> Cost {
        Cost { items, bytes: 0 }
    }

    /// Saturating, so a running total can be compared against a bound
    /// without overflow.
    #[must_use]
    pub fn plus(self, other: Cost) -> Cost {
        Cost {
            items: self.items.saturating_add(other.items),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }
}

/// Bounds applied while decoding one message's worth of AMF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Nesting depth of objects and arrays.
    pub depth_max: usize,
    /// Values decoded in one message, counting those copied by references.
    pub items_max: usize,
    /// String, key and byte-array bytes decoded in one message, counting
    /// those copied by references.
    pub bytes_max: usize,
    /// Entries in each AMF3 reference table (strings, objects, traits).
    pub reference_table_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            depth_max: limits::AMF_DEPTH_MAX,
            items_max: limits::AMF_ITEMS_MAX,
            bytes_max: limits::AMF_BYTES_MAX,
            reference_table_max: limits::AMF3_REFERENCE_TABLE_MAX,
        }
    }
}

/// Why AMF bytes could not be decoded. Every variant names the bound or the
/// byte at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum Error {
    #[error("amf input ended inside {what}")]
    Truncated { what: &'static str },
    #[error("unknown amf{version} type marker 0x{marker:02x}")]
    UnknownMarker { version: u8, marker: u8 },
    #[error("amf nesting deeper than max {max}")]
    TooDeep { max: usize },
    #[error("amf message has more than max {max} values")]
    TooManyItems { max: usize },
    #[error("amf message decodes to more than max {max} bytes of strings")]
    TooManyBytes { max: usize },
    #[error("amf{version} {table} reference {index} out of range (table holds {len})")]
    BadReference {
        version: u8,
        table: &'static str,
        index: usize,
        len: usize,
    },
    #[error("amf3 {table} reference table exceeds max {max} entries")]
    ReferenceTableFull { table: &'static str, max: usize },
    #[error("amf {what} is malformed: {detail}")]
    Malformed {
        what: &'static str,
        detail: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_lookup_works_on_objects_and_ecma_arrays() {
        let obj = Value::object([("app", Value::string("live"))]);
        let arr = Value::EcmaArray(vec![("width".into(), Value::Number(1280.0))]);
        assert_eq!(obj.property("app").and_then(Value::as_str), Some("live"));
        assert_eq!(arr.property("width").and_then(Value::as_f64), Some(1280.0));
        assert_eq!(obj.property("missing"), None);
    }

    #[test]
    fn cost_counts_every_nested_value_and_string_byte() {
        let v = Value::StrictArray(vec![
            Value::Null,
            Value::object([("ab", Value::string("xyz")), ("c", Value::Null)]),
        ]);
        assert_eq!(v.cost(), Cost { items: 5, bytes: 6 });
    }
}
