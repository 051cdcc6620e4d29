//! The protobuf wire format: varints, field keys and the four wire types Kubernetes uses.
//!
//! Every read is bounds-checked; malformed input ends in a [`DecodeError`], never a panic.

use super::DecodeError;

/// One field's payload, as the wire type delimits it.
#[derive(Clone, Copy, Debug)]
pub(super) enum WireValue<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (`double`, `fixed64`).
    Fixed64(u64),
    /// Wire type 2: strings, bytes, embedded messages, packed repeated scalars.
    Bytes(&'a [u8]),
    /// Wire type 5 (`float`, `fixed32`): no Kubernetes field has it, but it must be framed
    /// to skip unknown fields.
    Fixed32,
}

/// Iterates over the `(field number, value)` pairs of one message.
///
/// Yields at most one error, then stops: after a malformed key nothing that follows can be
/// framed.
pub(super) struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Fields { buf }
    }

    fn next_field(&mut self) -> Result<(u32, WireValue<'a>), DecodeError> {
        let key = read_varint(&mut self.buf)?;
        let number = key >> 3;
        // Field numbers are 1..2^29-1; anything else is not protobuf.
        if number == 0 || number > (1 << 29) - 1 {
            return Err(DecodeError::Malformed("invalid field number"));
        }
        let value = match key & 7 {
            0 => WireValue::Varint(read_varint(&mut self.buf)?),
            1 => WireValue::Fixed64(u64::from_le_bytes(take_array(&mut self.buf)?)),
            2 => {
                let len = usize::try_from(read_varint(&mut self.buf)?)
                    .map_err(|_| DecodeError::Truncated)?;
                if len > self.buf.len() {
                    return Err(DecodeError::Truncated);
                }
                let (bytes, rest) = self.buf.split_at(len);
                self.buf = rest;
                WireValue::Bytes(bytes)
            }
            5 => {
                take_array::<4>(&mut self.buf)?;
                WireValue::Fixed32
            }
            // 3 and 4 are proto2 groups, which no Kubernetes message uses.
            _ => return Err(DecodeError::Malformed("unsupported wire type")),
        };
        Ok((number as u32, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, WireValue<'a>), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let item = self.next_field();
        if item.is_err() {
            self.buf = &[];
        }
        Some(item)
    }
}

/// A base-128 varint of at most ten bytes.
pub(super) fn read_varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = buf.split_first().ok_or(DecodeError::Truncated)?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::Malformed("varint longer than ten bytes"))
}

fn take_array<const N: usize>(buf: &mut &[u8]) -> Result<[u8; N], DecodeError> {
    let (head, rest) = buf.split_first_chunk::<N>().ok_or(DecodeError::Truncated)?;
    *buf = rest;
    Ok(*head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_values() {
        let mut b: &[u8] = &[0x96, 0x01];
        assert_eq!(read_varint(&mut b).ok(), Some(150));
        // -1 as int32/int64 is ten bytes of sign extension.
        let mut b: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read_varint(&mut b).ok(), Some(u64::MAX));
        let mut b: &[u8] = &[0xff; 11];
        assert!(read_varint(&mut b).is_err());
        let mut b: &[u8] = &[0x80];
        assert!(matches!(read_varint(&mut b), Err(DecodeError::Truncated)));
    }

    #[test]
    fn fields_stop_after_an_error() {
        // Field 1, length 5, but only 2 bytes follow.
        let mut f = Fields::new(&[0x0a, 0x05, b'a', b'b']);
        assert!(matches!(f.next(), Some(Err(DecodeError::Truncated))));
        assert!(f.next().is_none());
    }
}
