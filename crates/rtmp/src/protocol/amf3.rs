//! AMF3 (Adobe AMF 3 specification, January 2013): bytes to [`Value`]s and
//! back.
//!
//! Owns the AMF3 wire format: U29 integers (§1.3.1), the string, object and
//! traits reference tables (§2.2), and every type of §3, including the
//! Flash Player 10 vectors and dictionary. An AVM+ switch (AMF0 marker
//! 0x11) continues an AMF0 message in AMF3, so the AMF3 tables outlive any
//! one switched value; the cursor, the running [`Cost`] and the replaying
//! of references are the decoding state both codecs share (`amf`'s
//! `Input` and `Slots`).
//!
//! It must not allocate from a count the remaining input cannot back, recurse
//! deeper than [`Limits::depth_max`], panic on any input, or do I/O.
//!
//! # References
//! Tables live for the whole message (every value of one
//! [`decode_all`], and every AVM+ switch of one AMF0 message). The object
//! table counts a complex value (object, array, date, XML, byte array,
//! vector, dictionary) when it *begins*, as Flash Player and BlazeDS do, so
//! an array's elements are numbered after the array. A reference to a value
//! that has begun but not ended is a cycle, which a tree of [`Value`]s cannot
//! hold: it is rejected as malformed.
//!
//! A reference resolves to a copy of the value, and the copy is charged
//! against the message's budget exactly as [`Value::cost`] counts it. The
//! budget is relative to the message's length ([`Limits::budget`]: three
//! times its length plus a little, in values and in string bytes, under
//! the absolute caps), because references are how a few bytes become many:
//! arrays that each reference the previous one twice double the tree every
//! 7 to 11 bytes, so 1.3 KB would otherwise decode to the absolute caps'
//! 16 MiB. Without references a message decodes to at most one value per
//! byte and three string bytes per byte (an invalid UTF-8 byte becomes
//! U+FFFD), so honest messages fit. The copy is
//! made by decoding the referenced value's bytes again ("replaying" them with
//! the tables frozen) rather than by cloning a stored tree: a stored tree of
//! every complex value would hold each nested value once per enclosing
//! value, up to [`Limits::depth_max`] times the message's budget, outside
//! the budget. Replaying gives an equal value, costs work only in proportion
//! to what it charges, and keeps each table entry at two offsets.
//!
//! # Encoding
//! The encoder writes no references: every value inline, which every reader
//! accepts and which keeps encoding a pure function of one value. `Number`
//! is a double and `Integer` an integer when it fits 29 bits (else a
//! double), so a decoded value encodes back to the same variant. Objects are
//! dynamic with no sealed members. See [`encode`] for what AMF3 cannot carry.

use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};

use super::amf::{
    self, Cost, Error, Input, Limits, Object, Slots, Value, prefix_at_char_boundary, to_usize,
};
use super::reader::Reader;

/// Decodes every value in `bytes` (a command or data message body), with
/// one set of reference tables for the whole message.
pub fn decode_all(bytes: &[u8], limits: &Limits) -> Result<Vec<Value>, Error> {
    let mut tables = Tables::new(limits);
    amf::decode_values(bytes, limits, |input| tables.value(input, 0))
}

/// Appends the AMF3 encoding of `value` to `out`, without references.
///
/// What AMF3 cannot carry: `Unsupported` (AMF0 only) is written as
/// undefined; a date's time zone is dropped (AMF3 dates are UTC); an empty
/// key in an object or ECMA array is skipped, because an empty key ends the
/// dynamic members on the wire; an empty ECMA array reads back as an empty
/// strict array, and a class name of `""` as an anonymous object. Lengths
/// and counts past the 28 bits a U29 length holds (256 MiB) are cut to fit.
pub fn encode(value: &Value, out: &mut BytesMut) {
    match value {
        Value::Undefined | Value::Unsupported => out.put_u8(UNDEFINED),
        Value::Null => out.put_u8(NULL),
        Value::Boolean(false) => out.put_u8(FALSE),
        Value::Boolean(true) => out.put_u8(TRUE),
        Value::Integer(n) if (INTEGER_MIN..=INTEGER_MAX).contains(n) => {
            out.put_u8(INTEGER);
            // Two's complement cut to 29 bits; the decoder sign-extends.
            put_u29(out, (*n as u32) & U29_MAX);
        }
        Value::Integer(n) => put_double(out, f64::from(*n)),
        Value::Number(n) => put_double(out, *n),
        Value::String(s) => {
            out.put_u8(STRING);
            put_string(out, s);
        }
        Value::Xml(s) => {
            out.put_u8(XML);
            put_string(out, s);
        }
        Value::Date { millis, .. } => {
            out.put_u8(DATE);
            put_u29(out, 1); // inline, no other bits
            out.put_f64(*millis);
        }
        Value::ByteArray(bytes) => {
            out.put_u8(BYTE_ARRAY);
            let run = capped(bytes);
            put_inline_length(out, run.len());
            out.put_slice(run);
        }
        Value::Object(object) => encode_object(object, out),
        Value::EcmaArray(entries) => {
            out.put_u8(ARRAY);
            put_inline_length(out, 0);
            put_dynamic_members(out, entries);
        }
        Value::StrictArray(items) => {
            out.put_u8(ARRAY);
            let items = capped(items);
            put_inline_length(out, items.len());
            put_string(out, ""); // no associative part
            items.iter().for_each(|item| encode(item, out));
        }
        Value::VectorInt { fixed, items } => {
            put_numbers(out, VECTOR_INT, *fixed, items, BytesMut::put_i32)
        }
        Value::VectorUint { fixed, items } => {
            put_numbers(out, VECTOR_UINT, *fixed, items, BytesMut::put_u32)
        }
        Value::VectorDouble { fixed, items } => {
            put_numbers(out, VECTOR_DOUBLE, *fixed, items, BytesMut::put_f64)
        }
        Value::VectorObject {
            fixed,
            type_name,
            items,
        } => put_object_vector(out, *fixed, type_name, items),
        Value::Dictionary { weak_keys, entries } => put_dictionary(out, *weak_keys, entries),
    }
}

/// Appends the AMF3 encoding of each value, in order.
pub fn encode_all(values: &[Value], out: &mut BytesMut) {
    values.iter().for_each(|value| encode(value, out));
}

// ---------------------------------------------------------------------------
// Wire constants (§3.1)
// ---------------------------------------------------------------------------

const UNDEFINED: u8 = 0x00;
const NULL: u8 = 0x01;
const FALSE: u8 = 0x02;
const TRUE: u8 = 0x03;
const INTEGER: u8 = 0x04;
const DOUBLE: u8 = 0x05;
const STRING: u8 = 0x06;
const XML_DOCUMENT: u8 = 0x07;
const DATE: u8 = 0x08;
const ARRAY: u8 = 0x09;
const OBJECT: u8 = 0x0A;
const XML: u8 = 0x0B;
const BYTE_ARRAY: u8 = 0x0C;
const VECTOR_INT: u8 = 0x0D;
const VECTOR_UINT: u8 = 0x0E;
const VECTOR_DOUBLE: u8 = 0x0F;
const VECTOR_OBJECT: u8 = 0x10;
const DICTIONARY: u8 = 0x11;

/// The largest U29 (§1.3.1).
const U29_MAX: u32 = 0x1FFF_FFFF;
/// The integer type's range: 29-bit two's complement (§3.6).
const INTEGER_MIN: i32 = -(1 << 28);
const INTEGER_MAX: i32 = (1 << 28) - 1;
/// The largest length or count an inline U29 carries next to its flag bit.
const LENGTH_MAX: usize = (U29_MAX >> 1) as usize;

/// Externalizable classes whose format is known: each wraps exactly one
/// value (Flex `readExternal` reads one object), which stands for them.
const WRAPPER_CLASSES: [&[u8]; 2] = [
    b"flex.messaging.io.ArrayCollection",
    b"flex.messaging.io.ObjectProxy",
];

// ---------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------

/// The AMF3 reference tables of one message (§2.2). Strings and traits are
/// kept as slices of the message, so a reference copies nothing until a
/// value is built from it (and charged).
pub(crate) struct Tables<'a> {
    strings: Vec<&'a [u8]>,
    objects: Slots,
    traits: Vec<Rc<Traits<'a>>>,
    max: usize,
}

/// A class description (§3.12): its name, sealed member names, and flags.
#[derive(Debug)]
struct Traits<'a> {
    class: &'a [u8],
    sealed: Vec<&'a [u8]>,
    dynamic: bool,
    externalizable: bool,
}

/// A U29 with a reference flag in its low bit: the rest is either a table
/// index or, inline, a length, count or flags.
enum Header {
    Inline(u32),
    Reference(usize),
}

impl<'a> Tables<'a> {
    pub(crate) fn new(limits: &Limits) -> Self {
        Tables {
            strings: Vec::new(),
            objects: Slots::new(3, "object", limits.reference_table_max),
            traits: Vec::new(),
            max: limits.reference_table_max,
        }
    }

    /// Decodes one value whose members lie at `depth + 1`.
    pub(crate) fn value(&mut self, input: &mut Input<'a>, depth: usize) -> Result<Value, Error> {
        let start = input.offset();
        let marker = input.read("amf3 type marker", Reader::u8)?;
        let simple = match marker {
            UNDEFINED => Value::Undefined,
            NULL => Value::Null,
            FALSE => Value::Boolean(false),
            TRUE => Value::Boolean(true),
            INTEGER => Value::Integer(sign_extend(u29(input, "amf3 integer")?)),
            DOUBLE => Value::Number(input.read("amf3 double", Reader::f64_be)?),
            STRING => {
                let run = self.string_run(input)?;
                Value::String(input.string(run)?)
            }
            XML_DOCUMENT | XML => return self.xml(input, start, depth),
            DATE => return self.date(input, start, depth),
            ARRAY => return self.array(input, start, depth),
            OBJECT => return self.object(input, start, depth),
            BYTE_ARRAY => return self.byte_array(input, start, depth),
            VECTOR_INT | VECTOR_UINT | VECTOR_DOUBLE => {
                return self.number_vector(input, start, marker, depth);
            }
            VECTOR_OBJECT => return self.object_vector(input, start, depth),
            DICTIONARY => return self.dictionary(input, start, depth),
            _ => return Err(Error::UnknownMarker { version: 3, marker }),
        };
        input.charge_item()?;
        Ok(simple)
    }

    /// A UTF-8-vr (§1.3.2): an inline run, or a reference to one. Non-empty
    /// inline runs enter the string table; the empty string never does.
    fn string_run(&mut self, input: &mut Input<'a>) -> Result<&'a [u8], Error> {
        match header(input, "amf3 string length")? {
            Header::Reference(index) => {
                self.strings.get(index).copied().ok_or(Error::BadReference {
                    version: 3,
                    table: "string",
                    index,
                    len: self.strings.len(),
                })
            }
            Header::Inline(len) => {
                let run = input.take(to_usize(len), "amf3 string")?;
                if !run.is_empty() && !input.is_replaying() {
                    if self.strings.len() >= self.max {
                        return Err(Error::ReferenceTableFull {
                            table: "string",
                            max: self.max,
                        });
                    }
                    self.strings.push(run);
                }
                Ok(run)
            }
        }
    }

    /// Decodes the value object-table entry `index` refers to, again, at the
    /// reference's depth.
    fn replay(
        &mut self,
        input: &mut Input<'a>,
        index: usize,
        depth: usize,
    ) -> Result<Value, Error> {
        let span = self.objects.locate(index)?;
        input.replay(span, |input| self.value(input, depth))
    }

    /// XMLDocument (§3.9) or XML (§3.13): both a length-prefixed string in the
    /// object table.
    fn xml(&mut self, input: &mut Input<'a>, start: usize, depth: usize) -> Result<Value, Error> {
        let len = match header(input, "amf3 xml length")? {
            Header::Reference(index) => return self.replay(input, index, depth),
            Header::Inline(len) => len,
        };
        let slot = self.objects.open(input, start)?;
        input.charge_item()?;
        let run = input.take(to_usize(len), "amf3 xml")?;
        let xml = input.string(run)?;
        self.objects.close(slot, input.offset());
        Ok(Value::Xml(xml))
    }

    /// Date (§3.10): milliseconds since the epoch, UTC.
    fn date(&mut self, input: &mut Input<'a>, start: usize, depth: usize) -> Result<Value, Error> {
        if let Header::Reference(index) = header(input, "amf3 date header")? {
            return self.replay(input, index, depth);
        }
        let slot = self.objects.open(input, start)?;
        input.charge_item()?;
        let millis = input.read("amf3 date", Reader::f64_be)?;
        self.objects.close(slot, input.offset());
        Ok(Value::Date {
            millis,
            timezone_min: 0,
        })
    }

    /// ByteArray (§3.14).
    fn byte_array(
        &mut self,
        input: &mut Input<'a>,
        start: usize,
        depth: usize,
    ) -> Result<Value, Error> {
        let len = match header(input, "amf3 byte array length")? {
            Header::Reference(index) => return self.replay(input, index, depth),
            Header::Inline(len) => to_usize(len),
        };
        let slot = self.objects.open(input, start)?;
        input.charge(Cost {
            items: 1,
            bytes: len,
        })?;
        let run = input.take(len, "amf3 byte array")?;
        self.objects.close(slot, input.offset());
        Ok(Value::ByteArray(Bytes::copy_from_slice(run)))
    }

    /// Array (§3.11): an associative part (key/value pairs up to an empty
    /// key), then a dense part. Without an associative part it is a strict
    /// array; with one, an ECMA array with the dense items appended under
    /// the keys "0", "1", … (as ActionScript would index them).
    fn array(&mut self, input: &mut Input<'a>, start: usize, depth: usize) -> Result<Value, Error> {
        let dense_count = match header(input, "amf3 array count")? {
            Header::Reference(index) => return self.replay(input, index, depth),
            Header::Inline(count) => to_usize(count),
        };
        let inner = input.nest(depth)?;
        let slot = self.objects.open(input, start)?;
        input.charge_item()?;
        let mut assoc = self.dynamic_members(input, inner)?;
        // Each value takes at least one byte: the input bounds the capacity.
        let mut dense = Vec::with_capacity(dense_count.min(input.remaining()));
        for _ in 0..dense_count {
            dense.push(self.value(input, inner)?);
        }
        self.objects.close(slot, input.offset());
        if assoc.is_empty() {
            return Ok(Value::StrictArray(dense));
        }
        for (index, item) in dense.into_iter().enumerate() {
            let key = index.to_string();
            input.charge(Cost {
                items: 0,
                bytes: key.len(),
            })?;
            assoc.push((key, item));
        }
        Ok(Value::EcmaArray(assoc))
    }

    /// Key/value pairs up to an empty key: an array's associative part or
    /// an object's dynamic members.
    fn dynamic_members(
        &mut self,
        input: &mut Input<'a>,
        inner: usize,
    ) -> Result<Vec<(String, Value)>, Error> {
        let mut members = Vec::new();
        loop {
            let key = self.string_run(input)?;
            if key.is_empty() {
                return Ok(members);
            }
            let key = input.string(key)?;
            members.push((key, self.value(input, inner)?));
        }
    }

    /// Object (§3.12): traits (inline or by reference), then sealed member
    /// values in trait order, then dynamic members if the class is dynamic.
    fn object(
        &mut self,
        input: &mut Input<'a>,
        start: usize,
        depth: usize,
    ) -> Result<Value, Error> {
        let flags = match header(input, "amf3 object header")? {
            Header::Reference(index) => return self.replay(input, index, depth),
            Header::Inline(flags) => flags,
        };
        let inner = input.nest(depth)?;
        let slot = self.objects.open(input, start)?;
        let traits = self.traits(input, flags)?;
        let value = if traits.externalizable {
            if !WRAPPER_CLASSES.contains(&traits.class) {
                return Err(Error::Malformed {
                    what: "amf3 object",
                    detail: "externalizable class with a private format",
                });
            }
            self.value(input, inner)?
        } else {
            Value::Object(self.members(input, &traits, inner)?)
        };
        self.objects.close(slot, input.offset());
        Ok(value)
    }

    /// The traits of an object whose header, past the reference bit, is
    /// `flags`: bit 0 clear is a traits reference (index in the rest);
    /// otherwise bit 1 is externalizable, bit 2 dynamic, and the rest the
    /// sealed member count, followed by the class name and member names.
    fn traits(&mut self, input: &mut Input<'a>, flags: u32) -> Result<Rc<Traits<'a>>, Error> {
        if flags & 0b1 == 0 {
            let index = to_usize(flags >> 1);
            return self.traits.get(index).cloned().ok_or(Error::BadReference {
                version: 3,
                table: "traits",
                index,
                len: self.traits.len(),
            });
        }
        let externalizable = flags & 0b10 != 0;
        let sealed_count = if externalizable {
            0
        } else {
            to_usize(flags >> 3)
        };
        let class = self.string_run(input)?;
        // Every sealed member is a name byte now and an item soon: check
        // both before allocating for them.
        if sealed_count > input.remaining() {
            return Err(Error::Truncated {
                what: "amf3 sealed member names",
            });
        }
        input.ensure_items(sealed_count)?;
        let mut sealed = Vec::with_capacity(sealed_count);
        for _ in 0..sealed_count {
            sealed.push(self.string_run(input)?);
        }
        let traits = Rc::new(Traits {
            class,
            sealed,
            dynamic: flags & 0b100 != 0,
            externalizable,
        });
        if !input.is_replaying() {
            if self.traits.len() >= self.max {
                return Err(Error::ReferenceTableFull {
                    table: "traits",
                    max: self.max,
                });
            }
            self.traits.push(Rc::clone(&traits));
        }
        Ok(traits)
    }

    /// The members of a non-externalizable object with `traits`.
    fn members(
        &mut self,
        input: &mut Input<'a>,
        traits: &Traits<'a>,
        inner: usize,
    ) -> Result<Object, Error> {
        input.charge_item()?;
        // An empty class name is the anonymous Object class.
        let class = match traits.class {
            [] => None,
            name => Some(input.string(name)?),
        };
        input.ensure_items(traits.sealed.len())?;
        let mut properties = Vec::with_capacity(traits.sealed.len());
        for name in &traits.sealed {
            let key = input.string(name)?;
            properties.push((key, self.value(input, inner)?));
        }
        if traits.dynamic {
            properties.extend(self.dynamic_members(input, inner)?);
        }
        Ok(Object { class, properties })
    }

    /// `Vector.<int>`, `Vector.<uint>`, `Vector.<Number>` (§3.15): a count, a
    /// fixed-length flag, then big-endian elements.
    fn number_vector(
        &mut self,
        input: &mut Input<'a>,
        start: usize,
        marker: u8,
        depth: usize,
    ) -> Result<Value, Error> {
        let count = match header(input, "amf3 vector count")? {
            Header::Reference(index) => return self.replay(input, index, depth),
            Header::Inline(count) => to_usize(count),
        };
        let slot = self.objects.open(input, start)?;
        let fixed = input.read("amf3 vector fixed flag", Reader::u8)? != 0;
        let value = match marker {
            VECTOR_INT => Value::VectorInt {
                fixed,
                items: elements(input, count, 4, |r| r.array().map(i32::from_be_bytes))?,
            },
            VECTOR_UINT => Value::VectorUint {
                fixed,
                items: elements(input, count, 4, Reader::u32_be)?,
            },
            _ => Value::VectorDouble {
                fixed,
                items: elements(input, count, 8, Reader::f64_be)?,
            },
        };
        self.objects.close(slot, input.offset());
        Ok(value)
    }

    /// `Vector.<T>` of objects (§3.15): count, fixed flag, the element type
    /// name ("*" for any), then values.
    fn object_vector(
        &mut self,
        input: &mut Input<'a>,
        start: usize,
        depth: usize,
    ) -> Result<Value, Error> {
        let count = match header(input, "amf3 vector count")? {
            Header::Reference(index) => return self.replay(input, index, depth),
            Header::Inline(count) => to_usize(count),
        };
        let inner = input.nest(depth)?;
        let slot = self.objects.open(input, start)?;
        let fixed = input.read("amf3 vector fixed flag", Reader::u8)? != 0;
        let type_name = self.string_run(input)?;
        input.charge_item()?;
        let type_name = input.string(type_name)?;
        let mut items = Vec::with_capacity(count.min(input.remaining()));
        for _ in 0..count {
            items.push(self.value(input, inner)?);
        }
        self.objects.close(slot, input.offset());
        Ok(Value::VectorObject {
            fixed,
            type_name,
            items,
        })
    }

    /// Dictionary (§3.16): count, weak-keys flag, then key/value pairs where
    /// keys are any value.
    fn dictionary(
        &mut self,
        input: &mut Input<'a>,
        start: usize,
        depth: usize,
    ) -> Result<Value, Error> {
        let count = match header(input, "amf3 dictionary count")? {
            Header::Reference(index) => return self.replay(input, index, depth),
            Header::Inline(count) => to_usize(count),
        };
        let inner = input.nest(depth)?;
        let slot = self.objects.open(input, start)?;
        let weak_keys = input.read("amf3 dictionary weak keys flag", Reader::u8)? != 0;
        input.charge_item()?;
        let mut entries = Vec::with_capacity(count.min(input.remaining() / 2));
        for _ in 0..count {
            let key = self.value(input, inner)?;
            entries.push((key, self.value(input, inner)?));
        }
        self.objects.close(slot, input.offset());
        Ok(Value::Dictionary { weak_keys, entries })
    }
}

/// Reads a U29 (§1.3.1): 1 to 3 bytes of 7 bits with a continuation bit,
/// then at most a fourth byte of 8 bits. Shifts cannot overflow: at most 21
/// bits are held before the final shift by 8.
fn u29(input: &mut Input<'_>, what: &'static str) -> Result<u32, Error> {
    let mut value = 0u32;
    for _ in 0..3 {
        let byte = input.read(what, Reader::u8)?;
        value = (value << 7) | u32::from(byte & 0x7F);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    let byte = input.read(what, Reader::u8)?;
    Ok((value << 8) | u32::from(byte))
}

fn header(input: &mut Input<'_>, what: &'static str) -> Result<Header, Error> {
    let u29 = u29(input, what)?;
    Ok(if u29 & 1 == 0 {
        Header::Reference(to_usize(u29 >> 1))
    } else {
        Header::Inline(u29 >> 1)
    })
}

/// A U29 integer as the signed 29-bit value it encodes (§3.6).
fn sign_extend(u29: u32) -> i32 {
    // Move bit 28 to the sign bit, then shift back arithmetically.
    ((u29 << 3) as i32) >> 3
}

/// `count` vector elements of `size` bytes each, charged (one item each,
/// plus the vector) before anything is allocated for them.
fn elements<'a, T>(
    input: &mut Input<'a>,
    count: usize,
    size: usize,
    read: impl Fn(&mut Reader<'a>) -> Option<T>,
) -> Result<Vec<T>, Error> {
    if count.saturating_mul(size) > input.remaining() {
        return Err(Error::Truncated {
            what: "amf3 vector elements",
        });
    }
    input.charge(Cost::items(count.saturating_add(1)))?;
    (0..count)
        .map(|_| input.read("amf3 vector elements", &read))
        .collect()
}

// ---------------------------------------------------------------------------
// Encoder helpers
// ---------------------------------------------------------------------------

/// Writes `value` (at most [`U29_MAX`]) as a U29.
fn put_u29(out: &mut BytesMut, value: u32) {
    let value = value.min(U29_MAX);
    // Each `as u8` keeps the bits the mask or shift selected.
    if value < 0x80 {
        out.put_u8(value as u8);
    } else if value < 0x4000 {
        out.put_slice(&[(value >> 7) as u8 | 0x80, (value & 0x7F) as u8]);
    } else if value < 0x20_0000 {
        out.put_slice(&[
            (value >> 14) as u8 | 0x80,
            ((value >> 7) & 0x7F) as u8 | 0x80,
            (value & 0x7F) as u8,
        ]);
    } else {
        out.put_slice(&[
            (value >> 22) as u8 | 0x80,
            ((value >> 15) & 0x7F) as u8 | 0x80,
            ((value >> 8) & 0x7F) as u8 | 0x80,
            (value & 0xFF) as u8,
        ]);
    }
}

/// Writes an inline length or count: the value, then the inline flag.
fn put_inline_length(out: &mut BytesMut, len: usize) {
    let len = u32::try_from(len.min(LENGTH_MAX)).unwrap_or(0);
    put_u29(out, (len << 1) | 1);
}

fn put_double(out: &mut BytesMut, n: f64) {
    out.put_u8(DOUBLE);
    out.put_f64(n);
}

/// Writes a UTF-8-vr inline, cut at a char boundary if past [`LENGTH_MAX`].
fn put_string(out: &mut BytesMut, s: &str) {
    let s = prefix_at_char_boundary(s, LENGTH_MAX);
    put_inline_length(out, s.len());
    out.put_slice(s.as_bytes());
}

/// The first [`LENGTH_MAX`] items at most, so a count always matches what
/// follows it.
fn capped<T>(items: &[T]) -> &[T] {
    items.get(..items.len().min(LENGTH_MAX)).unwrap_or_default()
}

/// An object as a dynamic object with inline traits and no sealed members.
fn encode_object(object: &Object, out: &mut BytesMut) {
    out.put_u8(OBJECT);
    // 0b1011: inline object, inline traits, not externalizable, dynamic,
    // zero sealed members.
    put_u29(out, 0b1011);
    put_string(out, object.class.as_deref().unwrap_or(""));
    put_dynamic_members(out, &object.properties);
}

/// Key/value pairs then the empty key that ends them; empty keys cannot be
/// written (they would end the list) and are skipped.
fn put_dynamic_members(out: &mut BytesMut, members: &[(String, Value)]) {
    for (key, value) in members.iter().filter(|(key, _)| !key.is_empty()) {
        put_string(out, key);
        encode(value, out);
    }
    put_string(out, "");
}

fn put_vector_header(out: &mut BytesMut, marker: u8, len: usize, fixed: bool) {
    out.put_u8(marker);
    put_inline_length(out, len);
    out.put_u8(u8::from(fixed));
}

/// `Vector.<int>`, `Vector.<uint>` or `Vector.<Number>`: header, then each
/// element big-endian.
fn put_numbers<T: Copy>(
    out: &mut BytesMut,
    marker: u8,
    fixed: bool,
    items: &[T],
    put: fn(&mut BytesMut, T),
) {
    let items = capped(items);
    put_vector_header(out, marker, items.len(), fixed);
    items.iter().for_each(|n| put(out, *n));
}

/// `Vector.<T>` of objects: header, element type name, then each value.
fn put_object_vector(out: &mut BytesMut, fixed: bool, type_name: &str, items: &[Value]) {
    let items = capped(items);
    put_vector_header(out, VECTOR_OBJECT, items.len(), fixed);
    put_string(out, type_name);
    items.iter().for_each(|item| encode(item, out));
}

/// Dictionary: count, weak-keys flag, then keys and values in turn.
fn put_dictionary(out: &mut BytesMut, weak_keys: bool, entries: &[(Value, Value)]) {
    let entries = capped(entries);
    out.put_u8(DICTIONARY);
    put_inline_length(out, entries.len());
    out.put_u8(u8::from(weak_keys));
    for (key, value) in entries {
        encode(key, out);
        encode(value, out);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

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

    fn int(n: i32) -> Value {
        Value::Integer(n)
    }

    // -- Fixtures, written by hand from the spec ----------------------------

    /// A dynamic anonymous object {a: 1, b: "hi"}: header 0x0B (inline
    /// object, inline traits, dynamic, no sealed members), class "".
    const DYNAMIC_OBJECT: &[u8] = b"\x0A\x0B\x01\x03a\x04\x01\x03b\x06\x05hi\x01";

    /// [Point{x: 1, y: 2}, Point{x: 3, y: 4}]: the first with inline traits
    /// (0x23: two sealed members, not dynamic), the second by traits
    /// reference 0 (header 0x01).
    const TYPED_OBJECTS: &[u8] =
        b"\x09\x05\x01\x0A\x23\x0BPoint\x03x\x03y\x04\x01\x04\x02\x0A\x01\x04\x03\x04\x04";

    /// An array with associative part {k: "v"} and dense part [1, 2].
    const MIXED_ARRAY: &[u8] = b"\x09\x05\x03k\x06\x03v\x01\x04\x01\x04\x02";

    /// [obj, ref 1]: the array is object 0, so its element is object 1.
    const OBJECT_REFERENCE: &[u8] = b"\x09\x05\x01\x0A\x0B\x01\x03a\x04\x01\x01\x0A\x02";

    /// ["", "ab", string ref 0]: the empty string takes no table entry.
    const STRING_REFERENCE: &[u8] = b"\x09\x07\x01\x06\x01\x06\x05ab\x06\x00";

    const BYTE_ARRAY_FIXTURE: &[u8] = b"\x0C\x07\x01\x02\x03";
    const VECTOR_INT_FIXTURE: &[u8] = b"\x0D\x05\x00\xFF\xFF\xFF\xFF\x00\x00\x00\x01";
    const VECTOR_UINT_FIXTURE: &[u8] = b"\x0E\x03\x01\xFF\xFF\xFF\xFF";
    const VECTOR_DOUBLE_FIXTURE: &[u8] = b"\x0F\x03\x00\x3F\xF0\x00\x00\x00\x00\x00\x00";
    /// `Vector.<Foo>` ["a", null].
    const VECTOR_OBJECT_FIXTURE: &[u8] = b"\x10\x05\x00\x07Foo\x06\x03a\x01";
    /// Dictionary {"k": 1, 2: "v"}, strong keys.
    const DICTIONARY_FIXTURE: &[u8] = b"\x11\x05\x00\x06\x03k\x04\x01\x04\x02\x06\x03v";
    const DATE_FIXTURE: &[u8] = b"\x08\x01\x42\x75\xD3\xEF\x79\x80\x00\x00";
    /// flex.messaging.io.ArrayCollection (33 bytes: 0x43) wrapping [1].
    const ARRAY_COLLECTION: &[u8] =
        b"\x0A\x07\x43flex.messaging.io.ArrayCollection\x09\x03\x01\x04\x01";

    const SINGLE_VALUE_FIXTURES: [&[u8]; 13] = [
        DYNAMIC_OBJECT,
        TYPED_OBJECTS,
        MIXED_ARRAY,
        OBJECT_REFERENCE,
        STRING_REFERENCE,
        BYTE_ARRAY_FIXTURE,
        VECTOR_INT_FIXTURE,
        VECTOR_UINT_FIXTURE,
        VECTOR_DOUBLE_FIXTURE,
        VECTOR_OBJECT_FIXTURE,
        DICTIONARY_FIXTURE,
        DATE_FIXTURE,
        ARRAY_COLLECTION,
    ];

    /// (U29 bytes, the integer they encode) at each length boundary.
    const U29_BOUNDARIES: [(&[u8], i32); 10] = [
        (b"\x00", 0),
        (b"\x7F", 0x7F),
        (b"\x81\x00", 0x80),
        (b"\xFF\x7F", 0x3FFF),
        (b"\x81\x80\x00", 0x4000),
        (b"\xFF\xFF\x7F", 0x1F_FFFF),
        (b"\x80\xC0\x80\x00", 0x20_0000),
        (b"\xBF\xFF\xFF\xFF", 0x0FFF_FFFF),
        (b"\xFF\xFF\xFF\xFF", -1),
        (b"\xC0\x80\x80\x00", -(1 << 28)),
    ];

    #[test]
    fn amf3_decodes_and_encodes_integers_at_u29_boundaries() {
        for (u29, n) in U29_BOUNDARIES {
            let bytes = [&[INTEGER][..], u29].concat();
            assert_eq!(one(&bytes), int(n), "{u29:02x?}");
            assert_eq!(encoded(&int(n)), bytes, "{n}");
        }
    }

    #[test]
    fn amf3_encoder_writes_integers_outside_29_bits_as_doubles() {
        for n in [1 << 28, -(1 << 28) - 1, i32::MAX, i32::MIN] {
            let bytes = encoded(&int(n));
            assert_eq!(bytes, [&[DOUBLE][..], &f64::from(n).to_be_bytes()].concat());
            assert_eq!(one(&bytes), Value::Number(f64::from(n)));
        }
    }

    #[test]
    fn amf3_decodes_scalars() {
        let bytes = b"\x00\x01\x02\x03\x05\x40\x00\x00\x00\x00\x00\x00\x00\x06\x05hi";
        assert_eq!(
            decode(bytes).unwrap(),
            [
                Value::Undefined,
                Value::Null,
                Value::Boolean(false),
                Value::Boolean(true),
                Value::Number(2.0),
                Value::string("hi"),
            ]
        );
    }

    #[test]
    fn amf3_decodes_dynamic_anonymous_object() {
        let expected = Value::object([("a", int(1)), ("b", Value::string("hi"))]);
        assert_eq!(one(DYNAMIC_OBJECT), expected);
        assert_eq!(encoded(&expected), DYNAMIC_OBJECT);
    }

    #[test]
    fn amf3_decodes_sealed_typed_objects_and_traits_references() {
        let point = |x, y| {
            Value::Object(Object {
                class: Some("Point".into()),
                properties: vec![("x".into(), int(x)), ("y".into(), int(y))],
            })
        };
        assert_eq!(
            one(TYPED_OBJECTS),
            Value::StrictArray(vec![point(1, 2), point(3, 4)])
        );
    }

    #[test]
    fn amf3_array_with_associative_part_becomes_ecma_array_with_dense_keys() {
        assert_eq!(
            one(MIXED_ARRAY),
            Value::EcmaArray(vec![
                ("k".into(), Value::string("v")),
                ("0".into(), int(1)),
                ("1".into(), int(2)),
            ])
        );
    }

    #[test]
    fn amf3_object_reference_resolves_to_a_copy_numbered_when_it_began() {
        let object = Value::object([("a", int(1))]);
        assert_eq!(
            one(OBJECT_REFERENCE),
            Value::StrictArray(vec![object.clone(), object])
        );
    }

    #[test]
    fn amf3_string_reference_resolves_and_empty_string_takes_no_entry() {
        assert_eq!(
            one(STRING_REFERENCE),
            Value::StrictArray(vec![
                Value::string(""),
                Value::string("ab"),
                Value::string("ab")
            ])
        );
    }

    #[test]
    fn amf3_replayed_object_keeps_its_inner_string_and_traits_references() {
        // [Point{x: "s"}, Point{x: string ref 2 ("s")}, object ref 1, "t"],
        // then string ref 3 ("t"). The replay of object 1 meets its inline
        // traits and strings again and must not enter them in the tables a
        // second time, or string 3 would be "Point".
        let bytes =
            b"\x09\x09\x01\x0A\x13\x0BPoint\x03x\x06\x03s\x0A\x01\x06\x04\x0A\x02\x06\x03t\x06\x06";
        let point = |x: &str| {
            Value::Object(Object {
                class: Some("Point".into()),
                properties: vec![("x".into(), Value::string(x))],
            })
        };
        let values = decode(bytes).unwrap();
        assert_eq!(
            values,
            [
                Value::StrictArray(vec![point("s"), point("s"), point("s"), Value::string("t")]),
                Value::string("t"),
            ]
        );
    }

    #[test]
    fn amf3_decodes_byte_array_date_and_xml() {
        assert_eq!(
            one(BYTE_ARRAY_FIXTURE),
            Value::ByteArray(Bytes::from_static(&[1, 2, 3]))
        );
        assert_eq!(
            one(DATE_FIXTURE),
            Value::Date {
                millis: 1_500_000_000_000.0,
                timezone_min: 0
            }
        );
        assert_eq!(one(b"\x0B\x09<a/>"), Value::Xml("<a/>".into()));
        assert_eq!(one(b"\x07\x09<a/>"), Value::Xml("<a/>".into()));
    }

    #[test]
    fn amf3_decodes_vectors() {
        assert_eq!(
            one(VECTOR_INT_FIXTURE),
            Value::VectorInt {
                fixed: false,
                items: vec![-1, 1]
            }
        );
        assert_eq!(
            one(VECTOR_UINT_FIXTURE),
            Value::VectorUint {
                fixed: true,
                items: vec![u32::MAX]
            }
        );
        assert_eq!(
            one(VECTOR_DOUBLE_FIXTURE),
            Value::VectorDouble {
                fixed: false,
                items: vec![1.0]
            }
        );
        assert_eq!(
            one(VECTOR_OBJECT_FIXTURE),
            Value::VectorObject {
                fixed: false,
                type_name: "Foo".into(),
                items: vec![Value::string("a"), Value::Null]
            }
        );
    }

    #[test]
    fn amf3_decodes_dictionary_with_any_keys() {
        assert_eq!(
            one(DICTIONARY_FIXTURE),
            Value::Dictionary {
                weak_keys: false,
                entries: vec![(Value::string("k"), int(1)), (int(2), Value::string("v"))]
            }
        );
    }

    #[test]
    fn amf3_array_collection_stands_for_the_array_it_wraps() {
        assert_eq!(one(ARRAY_COLLECTION), Value::StrictArray(vec![int(1)]));
    }

    #[test]
    fn amf3_decoder_rejects_externalizable_class_with_private_format() {
        assert!(matches!(
            decode(b"\x0A\x07\x07Foo\x01"),
            Err(Error::Malformed {
                what: "amf3 object",
                ..
            })
        ));
    }

    #[test]
    fn amf3_decoder_rejects_self_referencing_object() {
        // {a: object ref 0}, where object 0 is the object itself.
        let cycle = Err(Error::Malformed {
            what: "amf3 object reference",
            detail: "points at a value still being decoded (a cycle)",
        });
        assert_eq!(decode(b"\x0A\x0B\x01\x03a\x0A\x00\x01"), cycle);
        // [array ref 0], where array 0 is the array itself.
        assert_eq!(decode(b"\x09\x03\x01\x09\x00"), cycle);
    }

    #[test]
    fn amf3_decoder_rejects_references_past_table_end() {
        let bad = |table, index, len| {
            Err(Error::BadReference {
                version: 3,
                table,
                index,
                len,
            })
        };
        assert_eq!(decode(b"\x06\x00"), bad("string", 0, 0));
        assert_eq!(decode(b"\x06\x03a\x06\x02"), bad("string", 1, 1));
        assert_eq!(decode(b"\x0A\x02"), bad("object", 1, 0));
        assert_eq!(decode(b"\x08\x00"), bad("object", 0, 0));
        // Header 0x05: inline object, traits reference 1; object 0 exists.
        assert_eq!(decode(b"\x0A\x05"), bad("traits", 1, 0));
    }

    #[test]
    fn amf3_decoder_rejects_reference_table_overflow() {
        let limits = Limits {
            reference_table_max: 2,
            ..Limits::default()
        };
        assert_eq!(
            decode_all(b"\x06\x03a\x06\x03b\x06\x03c", &limits),
            Err(Error::ReferenceTableFull {
                table: "string",
                max: 2
            })
        );
        let dates = [DATE_FIXTURE; 3].concat();
        assert_eq!(
            decode_all(&dates, &limits),
            Err(Error::ReferenceTableFull {
                table: "object",
                max: 2
            })
        );
        // References take no entries.
        let reused = b"\x06\x03a\x06\x03b\x06\x00\x06\x02\x08\x01\0\0\0\0\0\0\0\0\x08\x00";
        assert_eq!(decode_all(reused, &limits).map(|v| v.len()), Ok(6));
    }

    #[test]
    fn amf3_decoder_rejects_unknown_markers() {
        for marker in [0x12, 0x7F, 0xFF] {
            assert_eq!(
                decode(&[marker]),
                Err(Error::UnknownMarker { version: 3, marker })
            );
        }
    }

    #[test]
    fn amf3_decoder_returns_truncated_for_every_prefix_of_a_value() {
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
    fn amf3_decoder_rejects_nesting_deeper_than_depth_max() {
        let nested = |levels: usize| [b"\x09\x03\x01".repeat(levels), vec![NULL]].concat();
        let max = Limits::default().depth_max;
        assert!(decode(&nested(max)).is_ok());
        assert_eq!(decode(&nested(max + 1)), Err(Error::TooDeep { max }));
        assert_eq!(decode(&nested(100_000)), Err(Error::TooDeep { max }));
    }

    #[test]
    fn amf3_decoder_stops_string_reference_amplification() {
        // A 60 000-byte string, then 300 references to it: 18 MB of strings
        // from 60 KB of input, stopped at the message's budget.
        let mut bytes = encoded(&Value::string("x".repeat(60_000)));
        bytes.extend(b"\x06\x00".repeat(300));
        let max = Limits::default().budget(bytes.len()).bytes;
        assert!(max < 200_000);
        assert_eq!(decode(&bytes), Err(Error::TooManyBytes { max }));
    }

    #[test]
    fn amf3_decoder_stops_object_reference_amplification() {
        // An array of 1000 nulls, then 100 references to it.
        let mut bytes = encoded(&Value::StrictArray(vec![Value::Null; 1000]));
        bytes.extend(b"\x09\x00".repeat(100));
        let max = Limits::default().budget(bytes.len()).items;
        assert_eq!(decode(&bytes), Err(Error::TooManyItems { max }));
    }

    #[test]
    fn amf3_decoder_rejects_counts_past_the_input_before_allocating() {
        // Vector.<int> of 2^28 - 1 elements, dictionary and array of as many
        // entries, an object with 2^25 sealed members: all in a few bytes.
        for bytes in [
            &b"\x0D\xFF\xFF\xFF\xFF\x00"[..],
            b"\x11\xFF\xFF\xFF\xFF\x00\x01",
            b"\x09\xFF\xFF\xFF\xFF\x01\x01",
            b"\x0A\xFF\xFF\xFF\xF3\x01",
        ] {
            assert!(
                matches!(decode(bytes), Err(Error::Truncated { .. })),
                "{bytes:02x?}"
            );
        }
    }

    #[test]
    fn amf3_decoder_rejects_sealed_members_past_the_item_budget() {
        let limits = Limits {
            items_max: 3,
            ..Limits::default()
        };
        // Four sealed members, each an empty name.
        let bytes = b"\x0A\x43\x01\x01\x01\x01\x01\x01\x01\x01\x01";
        assert_eq!(
            decode_all(bytes, &limits),
            Err(Error::TooManyItems { max: 3 })
        );
    }

    #[test]
    fn amf3_decodes_non_utf8_strings_lossily() {
        assert_eq!(one(b"\x06\x07a\xFFb"), Value::string("a\u{FFFD}b"));
    }

    #[test]
    fn amf3_encoder_writes_what_amf3_cannot_carry_as_documented() {
        assert_eq!(encoded(&Value::Unsupported), [UNDEFINED]);
        let object = Value::object([("", int(1)), ("a", int(2))]);
        assert_eq!(one(&encoded(&object)), Value::object([("a", int(2))]));
        assert_eq!(
            one(&encoded(&Value::EcmaArray(vec![]))),
            Value::StrictArray(vec![])
        );
        let date = Value::Date {
            millis: 1.0,
            timezone_min: 60,
        };
        assert_eq!(
            one(&encoded(&date)),
            Value::Date {
                millis: 1.0,
                timezone_min: 0
            }
        );
    }

    #[test]
    fn amf3_nan_round_trips_bitwise() {
        let nan = f64::from_bits(0x7FF8_0000_0000_0001);
        let Value::Number(decoded) = one(&encoded(&Value::Number(nan))) else {
            panic!("not a number");
        };
        assert_eq!(decoded.to_bits(), nan.to_bits());
    }

    /// Decodes `bytes` with limits of exactly the cost of the values they
    /// hold, then with one item less, then one byte less: the decoder must
    /// charge exactly what [`Value::cost`] counts, references included.
    pub(crate) fn assert_charges_exactly(
        decode_all: fn(&[u8], &Limits) -> Result<Vec<Value>, Error>,
        bytes: &[u8],
    ) {
        let values = decode_all(bytes, &Limits::default()).unwrap();
        let cost = values
            .iter()
            .fold(Cost::default(), |sum, v| sum.plus(v.cost()));
        let exact = Limits {
            items_max: cost.items,
            bytes_max: cost.bytes,
            ..Limits::default()
        };
        assert_eq!(decode_all(bytes, &exact).as_ref(), Ok(&values));
        if let Some(items_max) = cost.items.checked_sub(1) {
            let limits = Limits { items_max, ..exact };
            assert_eq!(
                decode_all(bytes, &limits),
                Err(Error::TooManyItems { max: items_max })
            );
        }
        if let Some(bytes_max) = cost.bytes.checked_sub(1) {
            let limits = Limits { bytes_max, ..exact };
            assert_eq!(
                decode_all(bytes, &limits),
                Err(Error::TooManyBytes { max: bytes_max })
            );
        }
    }

    #[test]
    fn amf3_decoder_charges_references_as_the_cost_of_their_copies() {
        for fixture in SINGLE_VALUE_FIXTURES {
            assert_charges_exactly(decode_all, fixture);
        }
    }

    // -- Property tests -----------------------------------------------------

    /// Numbers that equal themselves (NaN is tested bitwise above).
    pub(crate) fn finite() -> impl Strategy<Value = f64> {
        any::<f64>().prop_filter("NaN never equals itself", |n| !n.is_nan())
    }

    pub(crate) fn text() -> impl Strategy<Value = String> + Clone {
        ".{0,8}"
    }

    /// AMF3-only values without nested values.
    pub(crate) fn amf3_only_leaf() -> BoxedStrategy<Value> {
        prop_oneof![
            vec(any::<u8>(), 0..16).prop_map(|b| Value::ByteArray(b.into())),
            (any::<bool>(), vec(any::<i32>(), 0..8))
                .prop_map(|(fixed, items)| Value::VectorInt { fixed, items }),
            (any::<bool>(), vec(any::<u32>(), 0..8))
                .prop_map(|(fixed, items)| Value::VectorUint { fixed, items }),
            (any::<bool>(), vec(finite(), 0..8))
                .prop_map(|(fixed, items)| Value::VectorDouble { fixed, items }),
        ]
        .boxed()
    }

    /// Values that come back from AMF3 as they went in: integers within 29
    /// bits, UTC dates, no `Unsupported`, non-empty keys and class names,
    /// non-empty ECMA arrays (see [`encode`]).
    pub(crate) fn amf3_value() -> BoxedStrategy<Value> {
        let leaf = prop_oneof![
            Just(Value::Undefined),
            Just(Value::Null),
            any::<bool>().prop_map(Value::Boolean),
            (INTEGER_MIN..=INTEGER_MAX).prop_map(Value::Integer),
            finite().prop_map(Value::Number),
            text().prop_map(Value::String),
            text().prop_map(Value::Xml),
            finite().prop_map(|millis| Value::Date {
                millis,
                timezone_min: 0
            }),
            amf3_only_leaf(),
        ];
        leaf.prop_recursive(3, 48, 4, |inner| {
            let key = ".{1,6}";
            let members = vec((key, inner.clone()), 0..4);
            prop_oneof![
                (proptest::option::of(key), members.clone()).prop_map(|(class, properties)| {
                    Value::Object(Object { class, properties })
                }),
                vec((key, inner.clone()), 1..4).prop_map(Value::EcmaArray),
                vec(inner.clone(), 0..4).prop_map(Value::StrictArray),
                (any::<bool>(), text(), vec(inner.clone(), 0..4)).prop_map(
                    |(fixed, type_name, items)| Value::VectorObject {
                        fixed,
                        type_name,
                        items
                    }
                ),
                (any::<bool>(), vec((inner.clone(), inner), 0..4))
                    .prop_map(|(weak_keys, entries)| Value::Dictionary { weak_keys, entries }),
            ]
        })
        .boxed()
    }

    proptest! {
        #[test]
        fn amf3_values_round_trip(value in amf3_value()) {
            prop_assert_eq!(decode(&encoded(&value)), Ok(vec![value]));
        }

        #[test]
        fn amf3_decoder_charges_exactly_the_cost_of_what_it_returns(value in amf3_value()) {
            assert_charges_exactly(decode_all, &encoded(&value));
        }

        #[test]
        fn amf3_decoder_never_panics_on_random_bytes(bytes in vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
            let tight = Limits { depth_max: 3, items_max: 16, bytes_max: 16, reference_table_max: 2 };
            let _ = decode_all(&bytes, &tight);
        }

        #[test]
        fn amf3_decoder_never_panics_on_mutated_encodings(
            value in amf3_value(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = encoded(&value);
            let at = at.index(bytes.len());
            bytes[at] = byte;
            let _ = decode(&bytes);
            // A mutated byte can turn values into references to earlier ones.
            bytes.extend(b"\x0A\x00\x09\x00\x06\x00");
            let _ = decode(&bytes);
        }
    }
}
