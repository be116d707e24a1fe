//! AMF0 (Adobe AMF0 specification): stub, being written.

use bytes::BytesMut;

use super::amf::{Error, Limits, Value};

/// Decodes every value in `bytes` (a command or data message body).
pub fn decode_all(bytes: &[u8], limits: &Limits) -> Result<Vec<Value>, Error> {
    let _ = (bytes, limits);
    todo!()
}

/// Appends the AMF0 encoding of `value` to `out`.
pub fn encode(value: &Value, out: &mut BytesMut) {
    let _ = (value, out);
    todo!()
}
