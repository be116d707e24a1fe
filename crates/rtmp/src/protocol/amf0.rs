//! AMF0 (Adobe AMF 0 specification, 2006): bytes to [`Value`]s and back.
//!
//! Owns the AMF0 wire format: every type marker of §2 and the AVM+ switch
//! of §3.1, after which one value is AMF3 (decoded by `amf3`, whose tables
//! live for the whole message). RTMP command (type 20) and data (type 18)
//! message bodies are sequences of these values.
//!
//! It must not allocate from a count the remaining input cannot back, recurse
//! deeper than [`Limits::depth_max`], panic on any input, or do I/O.
//!
//! # References (§2.9)
//! The reference table holds the complex values of the whole message:
//! objects, typed objects, ECMA arrays and strict arrays. A value is counted
//! when it *begins*, as Flash Player and BlazeDS number them, so a strict
//! array is entry n and its first object element n + 1. A reference to a
//! value that has begun but not ended (a cycle, which `this.self = this`
//! produces) cannot be a tree of [`Value`]s and is rejected as malformed. Values behind an AVM+ switch use AMF3's tables,
//! not this one.
//!
//! A reference resolves to a copy of the referenced value, charged against
//! the message's budget ([`Limits::budget`]: a small multiple of its
//! length) exactly as [`Value::cost`] counts it, so references cannot
//! expand a message past a few times its size. The copy is made by
//! decoding the value's bytes again; see `amf3`'s module docs for why that
//! beats storing decoded trees and how the budget was chosen. The table
//! needs no bound of its own: each entry is a decoded value, which the
//! budget already bounds.
//!
//! # Decoding leniency
//! Strings are decoded lossily: encoders in the field send Latin-1 now and
//! then, and a wrong glyph in a `flashVer` must not end the session. An
//! empty key not followed by the object end marker is taken as a property
//! named "" (the spec has no other reading for those bytes), so such
//! objects survive a round trip. The ECMA array count is a hint that
//! encoders get wrong; the object end marker ends the array.
//!
//! # Encoding
//! [`encode`] writes every [`Value`]: AMF3-only values go through the AVM+
//! switch, except `Integer`, which AMF0 carries as a number.

use bytes::{BufMut, BytesMut};

use super::amf::{
    self, Error, Input, Limits, Object, Slots, Value, prefix_at_char_boundary, to_usize,
};
use super::amf3::{self, Tables};
use super::reader::Reader;

/// Decodes every value in `bytes` (a command or data message body), with
/// one reference table (and one set of AMF3 tables) for the whole message.
pub fn decode_all(bytes: &[u8], limits: &Limits) -> Result<Vec<Value>, Error> {
    let mut decoder = Decoder {
        complex: Slots::new(0, "complex value", usize::MAX),
        amf3: Tables::new(limits),
    };
    amf::decode_values(bytes, limits, |input| decoder.value(input, 0))
}

/// Appends the AMF0 encoding of `value` to `out`.
///
/// Strings longer than 0xFFFF bytes are written as long strings (0x0C);
/// objects with a class name as typed objects (0x10). `Integer` is written
/// as a number; byte arrays, vectors and dictionaries as an AVM+ switch and
/// their AMF3 encoding.
///
/// What AMF0 cannot carry: a key or class name longer than 0xFFFF bytes.
/// Such names come from peers (an AMF3 key may be 256 MiB), so this is not
/// our bug to assert on: the name is cut at the last char boundary within
/// 0xFFFF bytes, keeping the property and the framing of everything after
/// it. Counts and lengths past `u32::MAX` are cut the same way.
pub fn encode(value: &Value, out: &mut BytesMut) {
    match value {
        Value::Number(n) => put_number(out, *n),
        Value::Integer(n) => put_number(out, f64::from(*n)),
        Value::Boolean(b) => {
            out.put_u8(BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Value::String(s) if s.len() <= SHORT_MAX => {
            out.put_u8(STRING);
            put_short_string(out, s);
        }
        Value::String(s) => {
            out.put_u8(LONG_STRING);
            put_long_string(out, s);
        }
        Value::Object(Object {
            class: None,
            properties,
        }) => {
            out.put_u8(OBJECT);
            put_properties(out, properties);
        }
        Value::Object(Object {
            class: Some(class),
            properties,
        }) => {
            out.put_u8(TYPED_OBJECT);
            put_short_string(out, class);
            put_properties(out, properties);
        }
        Value::Null => out.put_u8(NULL),
        Value::Undefined => out.put_u8(UNDEFINED),
        Value::EcmaArray(entries) => {
            out.put_u8(ECMA_ARRAY);
            out.put_u32(wire_u32(entries.len()));
            put_properties(out, entries);
        }
        Value::StrictArray(items) => {
            let items = items.get(..U32_MAX).unwrap_or(items);
            out.put_u8(STRICT_ARRAY);
            out.put_u32(wire_u32(items.len()));
            items.iter().for_each(|item| encode(item, out));
        }
        Value::Date {
            millis,
            timezone_min,
        } => {
            out.put_u8(DATE);
            out.put_f64(*millis);
            out.put_i16(*timezone_min);
        }
        Value::Xml(s) => {
            out.put_u8(XML_DOCUMENT);
            put_long_string(out, s);
        }
        Value::Unsupported => out.put_u8(UNSUPPORTED),
        Value::ByteArray(_)
        | Value::VectorInt { .. }
        | Value::VectorUint { .. }
        | Value::VectorDouble { .. }
        | Value::VectorObject { .. }
        | Value::Dictionary { .. } => {
            out.put_u8(AVM_PLUS);
            amf3::encode(value, out);
        }
    }
}

/// Appends the AMF0 encoding of each value, in order (a command body).
pub fn encode_all(values: &[Value], out: &mut BytesMut) {
    values.iter().for_each(|value| encode(value, out));
}

// ---------------------------------------------------------------------------
// Wire constants (§2.1)
// ---------------------------------------------------------------------------

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
/// Reserved, "not supported" (§2.6): no encoder sends it.
const MOVIECLIP: u8 = 0x04;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const REFERENCE: u8 = 0x07;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0A;
const DATE: u8 = 0x0B;
const LONG_STRING: u8 = 0x0C;
const UNSUPPORTED: u8 = 0x0D;
/// Reserved, "not supported" (§2.16): Flash Remoting only.
const RECORDSET: u8 = 0x0E;
const XML_DOCUMENT: u8 = 0x0F;
const TYPED_OBJECT: u8 = 0x10;
const AVM_PLUS: u8 = 0x11;

/// The longest string a u16 length (string marker, keys, class names) holds.
const SHORT_MAX: usize = u16::MAX as usize;
/// The longest string or array a u32 length holds.
const U32_MAX: usize = u32::MAX as usize;

// ---------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------

/// One message's AMF0 reference table and AMF3 tables (for AVM+
/// switches); the input is passed in, as to [`Tables`].
struct Decoder<'a> {
    complex: Slots,
    amf3: Tables<'a>,
}

impl<'a> Decoder<'a> {
    /// Decodes one value whose members lie at `depth + 1`.
    fn value(&mut self, input: &mut Input<'a>, depth: usize) -> Result<Value, Error> {
        let start = input.offset();
        let marker = input.read("amf0 type marker", Reader::u8)?;
        let simple = match marker {
            NUMBER => Value::Number(input.read("amf0 number", Reader::f64_be)?),
            BOOLEAN => Value::Boolean(input.read("amf0 boolean", Reader::u8)? != 0),
            STRING => Value::String(short_string(input, "amf0 string")?),
            NULL => Value::Null,
            UNDEFINED => Value::Undefined,
            UNSUPPORTED => Value::Unsupported,
            DATE => date(input)?,
            LONG_STRING => Value::String(long_string(input, "amf0 long string")?),
            XML_DOCUMENT => Value::Xml(long_string(input, "amf0 xml document")?),
            OBJECT | TYPED_OBJECT | ECMA_ARRAY | STRICT_ARRAY => {
                return self.complex(input, start, marker, depth);
            }
            REFERENCE => {
                let index = input.read("amf0 reference", Reader::u16_be)?;
                return self.replay(input, usize::from(index), depth);
            }
            AVM_PLUS => return self.amf3.value(input, depth),
            OBJECT_END => {
                return Err(Error::Malformed {
                    what: "amf0 object end marker",
                    detail: "found outside an object or ecma array",
                });
            }
            // Reserved by the spec and sent by no encoder: as unknown as
            // any other byte.
            MOVIECLIP | RECORDSET => {
                return Err(Error::UnknownMarker { version: 0, marker });
            }
            _ => return Err(Error::UnknownMarker { version: 0, marker }),
        };
        // Strings charged their bytes as they were read.
        input.charge_item()?;
        Ok(simple)
    }

    /// An object, typed object, ECMA array or strict array beginning at
    /// `start`: entered in the reference table before its members.
    fn complex(
        &mut self,
        input: &mut Input<'a>,
        start: usize,
        marker: u8,
        depth: usize,
    ) -> Result<Value, Error> {
        let inner = input.nest(depth)?;
        let slot = self.complex.open(input, start)?;
        input.charge_item()?;
        let value = match marker {
            OBJECT => Value::Object(Object {
                class: None,
                properties: self.properties(input, inner)?,
            }),
            TYPED_OBJECT => {
                let class = short_string(input, "amf0 typed object class name")?;
                Value::Object(Object {
                    class: Some(class),
                    properties: self.properties(input, inner)?,
                })
            }
            ECMA_ARRAY => {
                // The count is a hint (§2.10) that encoders get wrong; the
                // object end marker is what ends the array.
                input.read("amf0 ecma array count", Reader::u32_be)?;
                Value::EcmaArray(self.properties(input, inner)?)
            }
            _ => Value::StrictArray(self.strict_items(input, inner)?),
        };
        self.complex.close(slot, input.offset());
        Ok(value)
    }

    /// Properties up to the empty key and object end marker (§2.5).
    fn properties(
        &mut self,
        input: &mut Input<'a>,
        inner: usize,
    ) -> Result<Vec<(String, Value)>, Error> {
        let mut properties = Vec::new();
        loop {
            let key = short_string(input, "amf0 property key")?;
            if key.is_empty() && input.peek() == Some(OBJECT_END) {
                input.read("amf0 object end marker", Reader::u8)?;
                return Ok(properties);
            }
            properties.push((key, self.value(input, inner)?));
        }
    }

    /// A strict array's items (§2.12): a u32 count, then that many values.
    fn strict_items(&mut self, input: &mut Input<'a>, inner: usize) -> Result<Vec<Value>, Error> {
        let count = input.read("amf0 strict array count", Reader::u32_be)?;
        let count = to_usize(count);
        // Each value takes at least one byte: the input bounds the capacity.
        let mut items = Vec::with_capacity(count.min(input.remaining()));
        for _ in 0..count {
            items.push(self.value(input, inner)?);
        }
        Ok(items)
    }

    /// Decodes the value reference `index` refers to, again, at the
    /// reference's depth.
    fn replay(
        &mut self,
        input: &mut Input<'a>,
        index: usize,
        depth: usize,
    ) -> Result<Value, Error> {
        let span = self.complex.locate(index)?;
        input.replay(span, |input| self.value(input, depth))
    }
}

/// Date (§2.13): milliseconds since the epoch, then a time zone the spec
/// reserves (kept for round trips).
fn date(input: &mut Input<'_>) -> Result<Value, Error> {
    let millis = input.read("amf0 date", Reader::f64_be)?;
    let timezone = input.read("amf0 date time zone", Reader::array)?;
    Ok(Value::Date {
        millis,
        timezone_min: i16::from_be_bytes(timezone),
    })
}

/// A UTF-8 string with a u16 length: strings, keys, class names.
fn short_string(input: &mut Input<'_>, what: &'static str) -> Result<String, Error> {
    let len = input.read(what, Reader::u16_be)?;
    let run = input.take(usize::from(len), what)?;
    input.string(run)
}

/// A UTF-8 string with a u32 length: long strings and XML documents.
fn long_string(input: &mut Input<'_>, what: &'static str) -> Result<String, Error> {
    let len = input.read(what, Reader::u32_be)?;
    let len = to_usize(len);
    let run = input.take(len, what)?;
    input.string(run)
}

// ---------------------------------------------------------------------------
// Encoder helpers
// ---------------------------------------------------------------------------

fn put_number(out: &mut BytesMut, n: f64) {
    out.put_u8(NUMBER);
    out.put_f64(n);
}

/// A u16-length string, cut at a char boundary to fit (see [`encode`]).
fn put_short_string(out: &mut BytesMut, s: &str) {
    let s = prefix_at_char_boundary(s, SHORT_MAX);
    out.put_u16(u16::try_from(s.len()).unwrap_or(u16::MAX));
    out.put_slice(s.as_bytes());
}

/// A u32-length string, cut at a char boundary to fit (see [`encode`]).
fn put_long_string(out: &mut BytesMut, s: &str) {
    let s = prefix_at_char_boundary(s, U32_MAX);
    out.put_u32(wire_u32(s.len()));
    out.put_slice(s.as_bytes());
}

/// Properties, then the empty key and object end marker.
fn put_properties(out: &mut BytesMut, properties: &[(String, Value)]) {
    for (key, value) in properties {
        put_short_string(out, key);
        encode(value, out);
    }
    out.put_u16(0);
    out.put_u8(OBJECT_END);
}

/// A length as a u32 field; callers cut what follows to match.
fn wire_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::protocol::amf3::tests::{
        amf3_only_leaf, amf3_value, assert_charges_exactly, finite, text,
    };

    fn decode(bytes: &[u8]) -> Result<Vec<Value>, Error> {
        decode_all(bytes, &Limits::default())
    }

    /// The single value `bytes` holds.
    fn one(bytes: &[u8]) -> Value {
        let values = decode(bytes).unwrap();
        assert_eq!(values.len(), 1, "{values:?}");
        values.into_iter().next().unwrap()
    }

    fn encoded(value: &Value) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(value, &mut out);
        out.to_vec()
    }

    fn num(n: f64) -> Value {
        Value::Number(n)
    }

    // -- Fixtures, written by hand from the spec ----------------------------

    /// The `connect` command body ffmpeg 5.1 sends when publishing.
    const FFMPEG_CONNECT: &[u8] = b"\
        \x02\x00\x07connect\
        \x00\x3F\xF0\x00\x00\x00\x00\x00\x00\
        \x03\
        \x00\x03app\x02\x00\x04live\
        \x00\x04type\x02\x00\x0Anonprivate\
        \x00\x08flashVer\x02\x00\x24FMLE/3.0 (compatible; Lavf59.27.100)\
        \x00\x05tcUrl\x02\x00\x1Artmp://localhost:1935/live\
        \x00\x00\x09";

    /// Point{x: 1, y: 2} as a typed object.
    const TYPED_OBJECT_FIXTURE: &[u8] = b"\x10\x00\x05Point\
        \x00\x01x\x00\x3F\xF0\x00\x00\x00\x00\x00\x00\
        \x00\x01y\x00\x40\x00\x00\x00\x00\x00\x00\x00\
        \x00\x00\x09";

    /// onMetaData-style ECMA array whose count hint (5) is wrong.
    const ECMA_ARRAY_FIXTURE: &[u8] = b"\x08\x00\x00\x00\x05\
        \x00\x08duration\x00\x00\x00\x00\x00\x00\x00\x00\x00\
        \x00\x05width\x00\x40\x94\x00\x00\x00\x00\x00\x00\
        \x00\x00\x09";

    /// [1, true, "x"].
    const STRICT_ARRAY_FIXTURE: &[u8] =
        b"\x0A\x00\x00\x00\x03\x00\x3F\xF0\x00\x00\x00\x00\x00\x00\x01\x01\x02\x00\x01x";

    /// 2017-07-14T02:40:00Z, time zone -60 minutes.
    const DATE_FIXTURE: &[u8] = b"\x0B\x42\x75\xD3\xEF\x79\x80\x00\x00\xFF\xC4";

    const LONG_STRING_FIXTURE: &[u8] = b"\x0C\x00\x00\x00\x05hello";
    const XML_FIXTURE: &[u8] = b"\x0F\x00\x00\x00\x04<a/>";

    /// [{a: 1}, reference 1]: the strict array is entry 0 (it began
    /// first), the object entry 1.
    const REFERENCE_FIXTURE: &[u8] = b"\x0A\x00\x00\x00\x02\
        \x03\x00\x01a\x00\x3F\xF0\x00\x00\x00\x00\x00\x00\x00\x00\x09\
        \x07\x00\x01";

    /// {a: ByteArray [1, 2]} through an AVM+ switch.
    const AVM_PLUS_FIXTURE: &[u8] = b"\x03\x00\x01a\x11\x0C\x05\x01\x02\x00\x00\x09";

    const SINGLE_VALUE_FIXTURES: [&[u8]; 8] = [
        TYPED_OBJECT_FIXTURE,
        ECMA_ARRAY_FIXTURE,
        STRICT_ARRAY_FIXTURE,
        DATE_FIXTURE,
        LONG_STRING_FIXTURE,
        XML_FIXTURE,
        REFERENCE_FIXTURE,
        AVM_PLUS_FIXTURE,
    ];

    fn ffmpeg_connect() -> Vec<Value> {
        vec![
            Value::string("connect"),
            num(1.0),
            Value::object([
                ("app", Value::string("live")),
                ("type", Value::string("nonprivate")),
                (
                    "flashVer",
                    Value::string("FMLE/3.0 (compatible; Lavf59.27.100)"),
                ),
                ("tcUrl", Value::string("rtmp://localhost:1935/live")),
            ]),
        ]
    }

    #[test]
    fn amf0_decodes_ffmpeg_connect_command() {
        let values = decode(FFMPEG_CONNECT).unwrap();
        assert_eq!(values, ffmpeg_connect());
        assert_eq!(
            values[2].property("app").and_then(Value::as_str),
            Some("live")
        );
    }

    #[test]
    fn amf0_encoder_writes_ffmpeg_connect_command_byte_for_byte() {
        let mut out = BytesMut::new();
        encode_all(&ffmpeg_connect(), &mut out);
        assert_eq!(&out[..], FFMPEG_CONNECT);
    }

    #[test]
    fn amf0_decodes_typed_object() {
        let point = Value::Object(Object {
            class: Some("Point".into()),
            properties: vec![("x".into(), num(1.0)), ("y".into(), num(2.0))],
        });
        assert_eq!(one(TYPED_OBJECT_FIXTURE), point);
        assert_eq!(encoded(&point), TYPED_OBJECT_FIXTURE);
    }

    #[test]
    fn amf0_decodes_ecma_array_ignoring_its_count_hint() {
        assert_eq!(
            one(ECMA_ARRAY_FIXTURE),
            Value::EcmaArray(vec![
                ("duration".into(), num(0.0)),
                ("width".into(), num(1280.0))
            ])
        );
    }

    #[test]
    fn amf0_decodes_strict_array() {
        assert_eq!(
            one(STRICT_ARRAY_FIXTURE),
            Value::StrictArray(vec![num(1.0), Value::Boolean(true), Value::string("x")])
        );
    }

    #[test]
    fn amf0_decodes_date_with_its_time_zone() {
        let date = Value::Date {
            millis: 1_500_000_000_000.0,
            timezone_min: -60,
        };
        assert_eq!(one(DATE_FIXTURE), date);
        assert_eq!(encoded(&date), DATE_FIXTURE);
    }

    #[test]
    fn amf0_decodes_long_string_xml_and_scalars() {
        assert_eq!(one(LONG_STRING_FIXTURE), Value::string("hello"));
        assert_eq!(one(XML_FIXTURE), Value::Xml("<a/>".into()));
        assert_eq!(
            decode(b"\x05\x06\x0D\x01\x00\x01\x02").unwrap(),
            [
                Value::Null,
                Value::Undefined,
                Value::Unsupported,
                Value::Boolean(false),
                Value::Boolean(true)
            ]
        );
    }

    #[test]
    fn amf0_decodes_non_utf8_strings_lossily() {
        assert_eq!(one(b"\x02\x00\x03a\xFFb"), Value::string("a\u{FFFD}b"));
    }

    #[test]
    fn amf0_reference_resolves_to_a_copy_numbered_when_it_began() {
        let object = Value::object([("a", num(1.0))]);
        assert_eq!(
            one(REFERENCE_FIXTURE),
            Value::StrictArray(vec![object.clone(), object])
        );
    }

    #[test]
    fn amf0_reference_inside_a_referenced_value_resolves() {
        // {a: {}, b: reference 1}, then reference 0.
        let bytes = b"\x03\x00\x01a\x03\x00\x00\x09\x00\x01b\x07\x00\x01\x00\x00\x09\x07\x00\x00";
        let object = Value::object([
            ("a", Value::object::<&str>([])),
            ("b", Value::object::<&str>([])),
        ]);
        assert_eq!(decode(bytes).unwrap(), [object.clone(), object]);
    }

    #[test]
    fn amf0_avm_plus_switch_decodes_one_amf3_value() {
        assert_eq!(
            one(AVM_PLUS_FIXTURE),
            Value::object([("a", Value::ByteArray(Bytes::from_static(&[1, 2])))])
        );
        assert_eq!(
            decode(b"\x11\x04\xFF\xFF\xFF\xFF\x05").unwrap(),
            [Value::Integer(-1), Value::Null]
        );
    }

    #[test]
    fn amf0_avm_plus_switches_share_amf3_tables_for_the_whole_message() {
        assert_eq!(
            decode(b"\x11\x06\x07abc\x11\x06\x00").unwrap(),
            [Value::string("abc"), Value::string("abc")]
        );
    }

    #[test]
    fn amf0_empty_key_not_followed_by_object_end_is_a_property() {
        let object = Value::object([("", num(1.0)), ("a", Value::Null)]);
        let bytes = encoded(&object);
        assert_eq!(&bytes[..3], b"\x03\x00\x00");
        assert_eq!(one(&bytes), object);
    }

    #[test]
    fn amf0_decoder_rejects_reference_past_table_end() {
        let bad = |index, len| {
            Err(Error::BadReference {
                version: 0,
                table: "complex value",
                index,
                len,
            })
        };
        assert_eq!(decode(b"\x07\x00\x00"), bad(0, 0));
        assert_eq!(decode(b"\x03\x00\x00\x09\x07\x00\x01"), bad(1, 1));
    }

    #[test]
    fn amf0_decoder_rejects_reference_to_a_value_still_being_decoded() {
        // [reference 0], where entry 0 is the array itself.
        assert_eq!(
            decode(b"\x0A\x00\x00\x00\x01\x07\x00\x00"),
            Err(Error::Malformed {
                what: "amf0 reference",
                detail: "points at a value still being decoded (a cycle)",
            })
        );
    }

    #[test]
    fn amf0_decoder_rejects_unknown_and_reserved_markers() {
        for marker in [MOVIECLIP, RECORDSET, 0x12, 0xFF] {
            assert_eq!(
                decode(&[marker]),
                Err(Error::UnknownMarker { version: 0, marker })
            );
        }
    }

    #[test]
    fn amf0_decoder_rejects_object_end_outside_an_object() {
        assert!(matches!(
            decode(b"\x05\x09"),
            Err(Error::Malformed {
                what: "amf0 object end marker",
                ..
            })
        ));
    }

    #[test]
    fn amf0_decoder_returns_truncated_for_every_prefix_of_a_value() {
        for fixture in SINGLE_VALUE_FIXTURES {
            one(fixture);
            for len in 1..fixture.len() {
                let prefix = &fixture[..len];
                assert!(
                    matches!(decode(prefix), Err(Error::Truncated { .. })),
                    "{prefix:02x?}: {:?}",
                    decode(prefix)
                );
            }
        }
    }

    #[test]
    fn amf0_decoder_returns_whole_values_or_truncated_for_every_prefix_of_a_command() {
        let all = ffmpeg_connect();
        for len in 0..FFMPEG_CONNECT.len() {
            match decode(&FFMPEG_CONNECT[..len]) {
                Ok(values) => assert_eq!(values, all[..values.len()], "prefix {len}"),
                Err(error) => assert!(matches!(error, Error::Truncated { .. }), "{error}"),
            }
        }
    }

    #[test]
    fn amf0_decoder_rejects_nesting_deeper_than_depth_max() {
        let nested = |levels: usize| [b"\x0A\x00\x00\x00\x01".repeat(levels), vec![NULL]].concat();
        let max = Limits::default().depth_max;
        assert!(decode(&nested(max)).is_ok());
        assert_eq!(decode(&nested(max + 1)), Err(Error::TooDeep { max }));
        assert_eq!(decode(&nested(100_000)), Err(Error::TooDeep { max }));
    }

    #[test]
    fn amf0_depth_counts_across_the_avm_plus_switch() {
        let nested = |amf0: usize, amf3: usize| {
            [
                b"\x0A\x00\x00\x00\x01".repeat(amf0),
                vec![AVM_PLUS],
                b"\x09\x03\x01".repeat(amf3),
                vec![0x01],
            ]
            .concat()
        };
        let max = Limits::default().depth_max;
        assert!(decode(&nested(20, max - 20)).is_ok());
        assert_eq!(decode(&nested(20, max - 19)), Err(Error::TooDeep { max }));
    }

    #[test]
    fn amf0_decoder_rejects_more_items_than_items_max() {
        let limits = Limits {
            items_max: 5,
            ..Limits::default()
        };
        let bytes = [&b"\x0A\x00\x00\x00\x0A"[..], &[NULL; 10]].concat();
        assert_eq!(
            decode_all(&bytes, &limits),
            Err(Error::TooManyItems { max: 5 })
        );
    }

    #[test]
    fn amf0_decoder_stops_reference_amplification_by_items() {
        // An array of 1000 nulls, then 100 references to it.
        let mut bytes = encoded(&Value::StrictArray(vec![Value::Null; 1000]));
        bytes.extend(b"\x07\x00\x00".repeat(100));
        let max = Limits::default().budget(bytes.len()).items;
        assert_eq!(decode(&bytes), Err(Error::TooManyItems { max }));
    }

    #[test]
    fn amf0_decoder_stops_reference_amplification_by_bytes() {
        // {s: 60 000-byte string}, then 300 references to it: 18 MB of
        // strings from 61 KB of input, stopped at the message's budget.
        let mut bytes = encoded(&Value::object([("s", Value::string("x".repeat(60_000)))]));
        bytes.extend(b"\x07\x00\x00".repeat(300));
        let max = Limits::default().budget(bytes.len()).bytes;
        assert!(max < 200_000);
        assert_eq!(decode(&bytes), Err(Error::TooManyBytes { max }));
    }

    #[test]
    fn amf0_decoder_rejects_counts_past_the_input_before_allocating() {
        for bytes in [
            &b"\x0A\xFF\xFF\xFF\xFF\x05"[..],
            b"\x0C\xFF\xFF\xFF\xFFab",
            b"\x08\xFF\xFF\xFF\xFF",
        ] {
            assert!(
                matches!(decode(bytes), Err(Error::Truncated { .. })),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn amf0_encoder_writes_strings_past_u16_as_long_strings() {
        let short = "a".repeat(SHORT_MAX);
        assert_eq!(
            &encoded(&Value::string(short.clone()))[..3],
            b"\x02\xFF\xFF"
        );
        let long = "a".repeat(SHORT_MAX + 1);
        let bytes = encoded(&Value::string(long.clone()));
        assert_eq!(&bytes[..5], b"\x0C\x00\x01\x00\x00");
        assert_eq!(one(&bytes), Value::String(long));
    }

    #[test]
    fn amf0_encoder_writes_integer_as_number_and_amf3_only_values_after_a_switch() {
        assert_eq!(encoded(&Value::Integer(7)), encoded(&num(7.0)));
        let bytes = encoded(&Value::ByteArray(Bytes::from_static(&[1, 2])));
        assert_eq!(bytes, b"\x11\x0C\x05\x01\x02");
        let dictionary = Value::Dictionary {
            weak_keys: true,
            entries: vec![(Value::Integer(1), Value::Null)],
        };
        assert_eq!(one(&encoded(&dictionary)), dictionary);
    }

    #[test]
    fn amf0_encoder_cuts_names_past_u16_at_a_char_boundary() {
        // 40 000 two-byte chars: 80 000 bytes, cut to 32 767 chars (65 534
        // bytes), since 65 535 would split a char.
        let name = "é".repeat(40_000);
        let cut = "é".repeat(32_767);
        let object = Value::Object(Object {
            class: Some(name.clone()),
            properties: vec![(name, num(1.0))],
        });
        let values = decode(&[encoded(&object), encoded(&Value::Null)].concat()).unwrap();
        let expected = Value::Object(Object {
            class: Some(cut.clone()),
            properties: vec![(cut, num(1.0))],
        });
        assert_eq!(values, [expected, Value::Null]);
    }

    #[test]
    fn amf0_nan_round_trips_bitwise() {
        let nan = f64::from_bits(0xFFF8_0000_0000_0042);
        let Value::Number(decoded) = one(&encoded(&num(nan))) else {
            panic!("not a number");
        };
        assert_eq!(decoded.to_bits(), nan.to_bits());
    }

    #[test]
    fn amf0_decoder_charges_references_as_the_cost_of_their_copies() {
        for fixture in SINGLE_VALUE_FIXTURES {
            assert_charges_exactly(decode_all, fixture);
        }
        assert_charges_exactly(decode_all, FFMPEG_CONNECT);
    }

    // -- Property tests -----------------------------------------------------

    /// Values that come back from AMF0 as they went in: everything but
    /// `Integer` (a number in AMF0) and NaN (tested bitwise above);
    /// AMF3-only values hold AMF3 round-trip values.
    fn amf0_value() -> BoxedStrategy<Value> {
        let leaf = prop_oneof![
            finite().prop_map(Value::Number),
            any::<bool>().prop_map(Value::Boolean),
            text().prop_map(Value::String),
            Just(Value::Null),
            Just(Value::Undefined),
            Just(Value::Unsupported),
            (finite(), any::<i16>()).prop_map(|(millis, timezone_min)| Value::Date {
                millis,
                timezone_min
            }),
            text().prop_map(Value::Xml),
            amf3_only_leaf(),
        ];
        leaf.prop_recursive(3, 48, 4, |inner| {
            let members = || vec((text(), inner.clone()), 0..4);
            prop_oneof![
                (proptest::option::of(text()), members())
                    .prop_map(|(class, properties)| Value::Object(Object { class, properties })),
                members().prop_map(Value::EcmaArray),
                vec(inner, 0..4).prop_map(Value::StrictArray),
                amf3_value().prop_map(|value| Value::VectorObject {
                    fixed: true,
                    type_name: "*".into(),
                    items: vec![value]
                }),
            ]
        })
        .boxed()
    }

    proptest! {
        #[test]
        fn amf0_values_round_trip(value in amf0_value()) {
            prop_assert_eq!(decode(&encoded(&value)), Ok(vec![value]));
        }

        #[test]
        fn amf0_decoder_charges_exactly_the_cost_of_what_it_returns(value in amf0_value()) {
            assert_charges_exactly(decode_all, &encoded(&value));
        }

        #[test]
        fn amf0_decoder_never_panics_on_random_bytes(bytes in vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
            let tight = Limits { depth_max: 3, items_max: 16, bytes_max: 16, reference_table_max: 2 };
            let _ = decode_all(&bytes, &tight);
        }

        #[test]
        fn amf0_decoder_never_panics_on_mutated_encodings(
            value in amf0_value(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = encoded(&value);
            let at = at.index(bytes.len());
            bytes[at] = byte;
            let _ = decode(&bytes);
            // A mutated byte can turn values into references to earlier ones.
            bytes.extend(b"\x07\x00\x00\x07\x00\x01\x11\x0A\x00");
            let _ = decode(&bytes);
        }
    }
}
