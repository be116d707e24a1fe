//! What AMF0 (`amf0`) and AMF3 (`amf3`) share: the value model, the
//! limits and errors, and the decoding state of one message.
//!
//! RTMP commands and metadata are sequences of these values. Both codecs
//! decode into this one enum so commands and sessions need not care which
//! encoding the peer chose (type 20/18 is AMF0, type 17/15 is AMF0 with an
//! AVM+ switch to AMF3 per value).
//!
//! One message is one decode, whichever codecs it mixes: `Input` holds the
//! bytes, the cursor and what has been charged against the message's budget
//! ([`Limits::budget`]), and checks depth; `Slots` is a reference table of
//! complex values kept as where their bytes lie, and `Input::replay`
//! decodes such a value again to resolve a reference (see `amf3`'s module
//! docs for why replaying beats storing decoded trees). The codecs keep
//! only their wire formats and their own tables.

use bytes::Bytes;

use super::reader::Reader;
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

/// Bounds applied while decoding one message's worth of AMF. The item and
/// byte caps are absolute; each message is further held to a budget
/// relative to its length ([`Limits::budget`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Nesting depth of objects and arrays.
    pub depth_max: usize,
    /// Values decoded in one message, counting those copied by references
    /// (at most; see [`Limits::budget`]).
    pub items_max: usize,
    /// String, key and byte-array bytes decoded in one message, counting
    /// those copied by references (at most; see [`Limits::budget`]).
    pub bytes_max: usize,
    /// Entries in each AMF3 reference table (strings, objects, traits).
    pub reference_table_max: usize,
}

impl Limits {
    /// What a message of `input_len` bytes may decode to: the absolute caps,
    /// or [`limits::AMF_EXPANSION_PER_BYTE`] times its length plus
    /// [`limits::AMF_EXPANSION_SLACK`], whichever is less. Without
    /// references a message cannot exceed its own length in values or
    /// string bytes, so the factor bounds what references may add.
    pub fn budget(&self, input_len: usize) -> Cost {
        let relative = input_len
            .saturating_mul(limits::AMF_EXPANSION_PER_BYTE)
            .saturating_add(limits::AMF_EXPANSION_SLACK);
        Cost {
            items: self.items_max.min(relative),
            bytes: self.bytes_max.min(relative),
        }
    }
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

// ---------------------------------------------------------------------------
// Decoding state shared by AMF0 and AMF3
// ---------------------------------------------------------------------------

/// Decodes every value of one message: `value` decodes one, from the
/// message's [`Input`], with whatever tables the codec keeps for the whole
/// message.
pub(crate) fn decode_values<'a>(
    message: &'a [u8],
    limits: &Limits,
    mut value: impl FnMut(&mut Input<'a>) -> Result<Value, Error>,
) -> Result<Vec<Value>, Error> {
    let mut input = Input::new(message, limits);
    let mut values = Vec::new();
    // Each value charges at least one item, so `values` is bounded too.
    while !input.is_empty() {
        values.push(value(&mut input)?);
    }
    Ok(values)
}

/// One message's input as both decoders see it: the bytes, the cursor, what
/// has been charged against the limits (the message's budget), and whether
/// a reference is being replayed (tables frozen).
pub(crate) struct Input<'a> {
    message: &'a [u8],
    reader: Reader<'a>,
    limits: Limits,
    spent: Cost,
    replaying: bool,
}

impl<'a> Input<'a> {
    /// Decoding `message` under `limits`, its item and byte caps lowered to
    /// the message's budget ([`Limits::budget`]): every AMF decode, AMF0 or
    /// AMF3, command or data, starts here, so none escapes it.
    pub(crate) fn new(message: &'a [u8], limits: &Limits) -> Self {
        let budget = limits.budget(message.len());
        Input {
            message,
            reader: Reader::new(message),
            limits: Limits {
                items_max: budget.items,
                bytes_max: budget.bytes,
                ..*limits
            },
            spent: Cost::default(),
            replaying: false,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.reader.is_empty()
    }

    /// Offset of the next byte in the message.
    pub(crate) fn offset(&self) -> usize {
        self.reader.offset()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.reader.remaining()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.reader.rest().first().copied()
    }

    /// Runs one checked read; running out of input is `Truncated { what }`.
    pub(crate) fn read<T>(
        &mut self,
        what: &'static str,
        read: impl FnOnce(&mut Reader<'a>) -> Option<T>,
    ) -> Result<T, Error> {
        read(&mut self.reader).ok_or(Error::Truncated { what })
    }

    pub(crate) fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], Error> {
        self.read(what, |r| r.take(len))
    }

    /// Adds `cost` to the message's running total; past a limit is an error.
    pub(crate) fn charge(&mut self, cost: Cost) -> Result<(), Error> {
        self.spent = self.spent.plus(cost);
        if self.spent.items > self.limits.items_max {
            return Err(Error::TooManyItems {
                max: self.limits.items_max,
            });
        }
        if self.spent.bytes > self.limits.bytes_max {
            return Err(Error::TooManyBytes {
                max: self.limits.bytes_max,
            });
        }
        Ok(())
    }

    pub(crate) fn charge_item(&mut self) -> Result<(), Error> {
        self.charge(Cost::items(1))
    }

    /// Decodes `run` as a string, replacing invalid UTF-8 (real encoders
    /// send Latin-1 now and then; that must not end a session), and charges
    /// the bytes of the result: a replaced byte becomes U+FFFD, three bytes,
    /// which is why [`crate::limits::AMF_EXPANSION_PER_BYTE`] is 3.
    pub(crate) fn string(&mut self, run: &[u8]) -> Result<String, Error> {
        // Borrowed when valid; otherwise at most three times `run`, which
        // the message holds, before the charge can refuse it.
        let text = String::from_utf8_lossy(run);
        self.charge(Cost {
            items: 0,
            bytes: text.len(),
        })?;
        Ok(text.into_owned())
    }

    /// Fails unless `count` more items fit the budget; called before
    /// allocating for `count` values that are about to be charged.
    pub(crate) fn ensure_items(&self, count: usize) -> Result<(), Error> {
        if self.spent.items.saturating_add(count) > self.limits.items_max {
            return Err(Error::TooManyItems {
                max: self.limits.items_max,
            });
        }
        Ok(())
    }

    /// The depth of the members of a complex value found at `depth`.
    pub(crate) fn nest(&self, depth: usize) -> Result<usize, Error> {
        let inner = depth.saturating_add(1);
        if inner > self.limits.depth_max {
            return Err(Error::TooDeep {
                max: self.limits.depth_max,
            });
        }
        Ok(inner)
    }

    /// True while a reference is replayed: tables are frozen, since the
    /// replayed values have their entries from the first pass.
    pub(crate) fn is_replaying(&self) -> bool {
        self.replaying
    }

    /// Decodes again, with `decode`, the value that lies at `span` (from
    /// [`Slots::locate`]), tables frozen; then goes on where it was.
    pub(crate) fn replay(
        &mut self,
        (start, end): (usize, usize),
        decode: impl FnOnce(&mut Self) -> Result<Value, Error>,
    ) -> Result<Value, Error> {
        let mut reader = Reader::new(self.message.get(..end).unwrap_or_default());
        let seeked = reader.take(start).is_some();
        debug_assert!(seeked, "a table entry lies within its message");
        let reader = std::mem::replace(&mut self.reader, reader);
        let replaying = std::mem::replace(&mut self.replaying, true);
        let value = decode(self);
        debug_assert!(
            value.is_err() || self.is_empty(),
            "a replay ends where its value did"
        );
        self.reader = reader;
        self.replaying = replaying;
        value
    }
}

/// A reference table of complex values, each kept as where its bytes lie
/// so a reference can be replayed (see the module docs).
pub(crate) struct Slots {
    version: u8,
    table: &'static str,
    max: usize,
    spans: Vec<Span>,
}

/// Where one complex value lies; `end` is `None` while it is being decoded.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: Option<usize>,
}

impl Slots {
    /// An empty table; `max` entries at most (a full table is an error).
    pub(crate) fn new(version: u8, table: &'static str, max: usize) -> Self {
        Slots {
            version,
            table,
            max,
            spans: Vec::new(),
        }
    }

    /// Counts a value beginning at `start`. `None` while replaying: a
    /// replayed value already has its entry from the first pass.
    pub(crate) fn open(&mut self, input: &Input<'_>, start: usize) -> Result<Option<usize>, Error> {
        if input.is_replaying() {
            return Ok(None);
        }
        if self.spans.len() >= self.max {
            return Err(Error::ReferenceTableFull {
                table: self.table,
                max: self.max,
            });
        }
        self.spans.push(Span { start, end: None });
        Ok(Some(self.spans.len().saturating_sub(1)))
    }

    /// Marks the value [`Slots::open`] counted as ending at `end`.
    pub(crate) fn close(&mut self, slot: Option<usize>, end: usize) {
        if let Some(span) = slot.and_then(|index| self.spans.get_mut(index)) {
            span.end = Some(end);
        }
    }

    /// Where the value `index` refers to lies, if it is complete.
    pub(crate) fn locate(&self, index: usize) -> Result<(usize, usize), Error> {
        let span = self.spans.get(index).ok_or(Error::BadReference {
            version: self.version,
            table: self.table,
            index,
            len: self.spans.len(),
        })?;
        let end = span.end.ok_or(Error::Malformed {
            what: if self.version == 0 {
                "amf0 reference"
            } else {
                "amf3 object reference"
            },
            detail: "points at a value still being decoded (a cycle)",
        })?;
        Ok((span.start, end))
    }
}

// ---------------------------------------------------------------------------
// Helpers both codecs use
// ---------------------------------------------------------------------------

/// The longest prefix of `s` that is at most `max_bytes` long and ends on a
/// char boundary.
pub(crate) fn prefix_at_char_boundary(s: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(s.len());
    while !s.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    s.get(..end).unwrap_or_default()
}

/// A wire count or length (a u32 or a U29) as a `usize`: it always fits on
/// 32- and 64-bit targets, and saturating keeps any other target safe.
pub(crate) fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::protocol::{amf0, amf3};

    type DecodeAll = fn(&[u8], &Limits) -> Result<Vec<Value>, Error>;

    /// One top-level array of a message built by [`message_with_references`].
    #[derive(Clone, Debug)]
    enum Element {
        Null,
        Text(String),
        /// A reference to the top-level array this many places back (0: the
        /// one before), wrapping to an earlier one if there are fewer.
        Back(usize),
    }

    /// The reference bomb's shape: each array references the one before it
    /// twice, so the tree doubles with every array.
    fn doubling_chain(arrays: usize) -> Vec<Vec<Element>> {
        (0..arrays)
            .map(|_| vec![Element::Back(0), Element::Back(0)])
            .collect()
    }

    /// A message of top-level arrays whose elements are nulls, strings and
    /// references to earlier top-level arrays (never a cycle), in AMF0
    /// (strict arrays, `0x07` references) or AMF3 (dense arrays, object
    /// references). Only top-level arrays enter the tables, so the array at
    /// position `i` is entry `i` in both.
    fn message_with_references(arrays: &[Vec<Element>], amf3: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut strings_seen = 0u32;
        for (index, elements) in arrays.iter().enumerate() {
            if amf3 {
                out.push(0x09);
                put_u29(&mut out, (elements.len() as u32) << 1 | 1);
                out.push(0x01);
            } else {
                out.push(0x0A);
                out.extend((elements.len() as u32).to_be_bytes());
            }
            for element in elements {
                match element {
                    Element::Null if amf3 => out.push(0x01),
                    Element::Null => out.push(0x05),
                    Element::Text(text) if amf3 => {
                        // Non-empty strings enter the string table; refer
                        // back to the first one to amplify strings too.
                        out.push(0x06);
                        if strings_seen > 0 {
                            put_u29(&mut out, 0);
                        } else {
                            put_u29(&mut out, (text.len() as u32) << 1 | 1);
                            out.extend(text.as_bytes());
                            strings_seen += u32::from(!text.is_empty());
                        }
                    }
                    Element::Text(text) => {
                        out.push(0x02);
                        out.extend((text.len() as u16).to_be_bytes());
                        out.extend(text.as_bytes());
                    }
                    Element::Back(_) if index == 0 && amf3 => out.push(0x01),
                    Element::Back(_) if index == 0 => out.push(0x05),
                    Element::Back(back) => {
                        let target = (index - 1 - back % index) as u32;
                        if amf3 {
                            out.push(0x09);
                            put_u29(&mut out, target << 1);
                        } else {
                            out.push(0x07);
                            out.extend((target as u16).to_be_bytes());
                        }
                    }
                }
            }
        }
        out
    }

    fn put_u29(out: &mut Vec<u8>, value: u32) {
        let mut encoded = bytes::BytesMut::new();
        amf3::encode(&Value::Integer(value as i32), &mut encoded);
        // Drop the integer marker; what follows is the U29.
        out.extend(&encoded[1..]);
    }

    /// Decodes `bytes` and checks the budget held: a result costs no more
    /// than the budget, and a refusal is the budget's (or another error).
    fn assert_within_budget(decode_all: DecodeAll, bytes: &[u8]) -> Result<Vec<Value>, Error> {
        let limits = Limits::default();
        let budget = limits.budget(bytes.len());
        let result = decode_all(bytes, &limits);
        if let Ok(values) = &result {
            let cost = values
                .iter()
                .fold(Cost::default(), |sum, v| sum.plus(v.cost()));
            assert!(
                cost.items <= budget.items && cost.bytes <= budget.bytes,
                "{cost:?} over {budget:?} for {} bytes",
                bytes.len()
            );
        }
        result
    }

    #[test]
    fn the_reference_bomb_is_refused_at_the_message_budget() {
        // ~1.3 KB: 118 AMF0 arrays of 11 bytes, or 160 AMF3 arrays of 7 to 9,
        // each referencing the one before twice: 2^118 values unbounded,
        // 16 MiB under the absolute caps alone.
        for (decode_all, arrays, amf3) in [
            (amf0::decode_all as DecodeAll, 118, false),
            (amf3::decode_all as DecodeAll, 160, true),
        ] {
            let bytes = message_with_references(&doubling_chain(arrays), amf3);
            assert!((1200..1400).contains(&bytes.len()), "{}", bytes.len());
            let budget = Limits::default().budget(bytes.len());
            assert!(budget.items < 5 * 1024);
            assert_eq!(
                assert_within_budget(decode_all, &bytes),
                Err(Error::TooManyItems { max: budget.items })
            );
        }
    }

    #[test]
    fn a_short_reference_chain_within_the_budget_decodes_whole() {
        // 7 arrays: the last holds 2^7 nulls, all of them under the slack.
        for (decode_all, amf3) in [
            (amf0::decode_all as DecodeAll, false),
            (amf3::decode_all as DecodeAll, true),
        ] {
            let bytes = message_with_references(&doubling_chain(7), amf3);
            let values = assert_within_budget(decode_all, &bytes).unwrap();
            assert_eq!(values.last().map(Value::cost), Some(Cost::items(255)));
        }
    }

    #[test]
    fn lossy_strings_are_charged_at_their_decoded_length() {
        // Three invalid bytes become three U+FFFD: 9 bytes, as cost() counts.
        let bytes = b"\x02\x00\x03\xFF\xFF\xFF";
        let limits = Limits {
            bytes_max: 8,
            ..Limits::default()
        };
        assert_eq!(
            amf0::decode_all(bytes, &limits),
            Err(Error::TooManyBytes { max: 8 })
        );
        let values = assert_within_budget(amf0::decode_all, bytes).unwrap();
        assert_eq!(values[0].cost(), Cost { items: 1, bytes: 9 });
    }

    fn element() -> impl Strategy<Value = Element> {
        prop_oneof![
            Just(Element::Null),
            "[a-z]{0,40}".prop_map(Element::Text),
            (0usize..4).prop_map(Element::Back),
            (0usize..4).prop_map(Element::Back),
        ]
    }

    fn arrays() -> impl Strategy<Value = Vec<Vec<Element>>> {
        prop_oneof![
            vec(vec(element(), 0..6), 0..40),
            (1usize..200).prop_map(doubling_chain),
        ]
    }

    proptest! {
        #[test]
        fn decoded_amf_costs_at_most_the_budget_of_its_input(arrays in arrays(), amf3 in any::<bool>()) {
            let bytes = message_with_references(&arrays, amf3);
            let decode_all: DecodeAll = if amf3 { amf3::decode_all } else { amf0::decode_all };
            match assert_within_budget(decode_all, &bytes) {
                Ok(_) | Err(Error::TooManyItems { .. } | Error::TooManyBytes { .. }) => {}
                Err(other) => prop_assert!(false, "{other} for {bytes:02x?}"),
            }
        }
    }

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

    #[test]
    fn prefix_at_char_boundary_never_splits_a_char() {
        assert_eq!(prefix_at_char_boundary("aé", 2), "a");
        assert_eq!(prefix_at_char_boundary("aé", 3), "aé");
        assert_eq!(prefix_at_char_boundary("aé", 9), "aé");
        assert_eq!(prefix_at_char_boundary("é", 0), "");
    }
}
