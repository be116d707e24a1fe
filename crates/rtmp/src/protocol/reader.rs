//! A checked cursor over a byte slice: every read says whether the bytes
//! were there, so decoders never index past the end (rustls' `Reader`).

/// Reads big-endian integers and byte runs from a slice; `None` means the
/// input ended first, and the cursor is left where it was.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, offset: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.offset..).unwrap_or_default()
    }

    pub(crate) fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.offset.checked_add(len)?;
        let run = self.bytes.get(self.offset..end)?;
        self.offset = end;
        Some(run)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    pub(crate) fn u16_be(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u24_be(&mut self) -> Option<u32> {
        let [a, b, c] = self.array()?;
        Some(u32::from_be_bytes([0, a, b, c]))
    }

    pub(crate) fn u32_be(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32_le(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn f64_be(&mut self) -> Option<f64> {
        Some(f64::from_be_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reads_big_endian_and_stops_at_the_end() {
        let mut r = Reader::new(&[0x01, 0x02, 0x03, 0x04, 0x05, 0x06]);
        assert_eq!(r.u16_be(), Some(0x0102));
        assert_eq!(r.u24_be(), Some(0x030405));
        assert_eq!(r.u32_be(), None);
        assert_eq!(r.offset(), 5);
        assert_eq!(r.u8(), Some(6));
        assert!(r.is_empty());
        assert_eq!(r.take(1), None);
    }

    #[test]
    fn reader_reads_little_endian_stream_ids() {
        let mut r = Reader::new(&[0x01, 0x00, 0x00, 0x00]);
        assert_eq!(r.u32_le(), Some(1));
    }
}
