//! The segment item stream (spec section 3.2).
//!
//! A segment is `source records × record size` bytes holding a sequence of items, each a one-byte tag, a
//! little-endian `u32` length and that many payload bytes. A block that does not fit is split into a
//! `BlockStart` and one or more `BlockContinuation`s in the following segments; every segment after the
//! first opens with its parent's header. The rest of a segment after a `Padding` tag is zero.

use acre_consensus::{SegmentHeader, SegmentIndex};

use crate::error::Error;

/// Bytes of an item's tag and length (defined in consensus, whose parameter validation relies on it).
pub const ITEM_HEADER_SIZE: usize = acre_consensus::params::SEGMENT_ITEM_HEADER_SIZE;

const TAG_PADDING: u8 = 0;
const TAG_BLOCK: u8 = 1;
const TAG_BLOCK_START: u8 = 2;
const TAG_BLOCK_CONTINUATION: u8 = 3;
const TAG_PARENT_SEGMENT_HEADER: u8 = 4;

/// One item of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentItem {
    /// The rest of the segment is zero.
    Padding,
    /// A whole block.
    Block(Vec<u8>),
    /// The first part of a block continued in the next segment.
    BlockStart(Vec<u8>),
    /// A further part of the block begun in an earlier segment.
    BlockContinuation(Vec<u8>),
    /// The previous segment's header (first item of every segment but the genesis one).
    ParentSegmentHeader(SegmentHeader),
}

/// The kinds of block data item, for writers that hold a borrowed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockPart {
    Whole,
    Start,
    Continuation,
}

/// Appends a block-data item to `segment`.
pub(crate) fn write_block_part(segment: &mut Vec<u8>, part: BlockPart, payload: &[u8]) {
    let tag = match part {
        BlockPart::Whole => TAG_BLOCK,
        BlockPart::Start => TAG_BLOCK_START,
        BlockPart::Continuation => TAG_BLOCK_CONTINUATION,
    };
    write_item(segment, tag, payload);
}

/// Appends a parent-segment-header item to `segment`.
pub(crate) fn write_parent_header(segment: &mut Vec<u8>, header: &SegmentHeader) {
    write_item(segment, TAG_PARENT_SEGMENT_HEADER, &header.encode());
}

fn write_item(segment: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("callers bound payloads by the segment size");
    segment.push(tag);
    segment.extend_from_slice(&len.to_le_bytes());
    segment.extend_from_slice(payload);
}

/// Decodes the items of an encoded segment. Errors name the offset of the first malformed byte.
pub fn decode_items(segment_index: SegmentIndex, bytes: &[u8]) -> Result<Vec<SegmentItem>, Error> {
    let malformed = |offset, reason| Error::MalformedSegment {
        segment_index,
        offset,
        reason,
    };
    let mut items = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let tag = bytes[offset];
        if tag == TAG_PADDING {
            if bytes[offset..].iter().any(|&byte| byte != 0) {
                return Err(malformed(offset, "non-zero bytes in padding"));
            }
            items.push(SegmentItem::Padding);
            break;
        }
        let header_end = offset + ITEM_HEADER_SIZE;
        let len_bytes = bytes
            .get(offset + 1..header_end)
            .ok_or(malformed(offset, "truncated item header"))?;
        let len = u32::from_le_bytes(len_bytes.try_into().expect("slice of four bytes")) as usize;
        let payload = header_end
            .checked_add(len)
            .and_then(|end| bytes.get(header_end..end))
            .ok_or(malformed(offset, "item longer than the segment"))?;
        items.push(match tag {
            TAG_BLOCK => SegmentItem::Block(payload.to_vec()),
            TAG_BLOCK_START => SegmentItem::BlockStart(payload.to_vec()),
            TAG_BLOCK_CONTINUATION => SegmentItem::BlockContinuation(payload.to_vec()),
            TAG_PARENT_SEGMENT_HEADER => SegmentItem::ParentSegmentHeader(
                SegmentHeader::decode(payload)
                    .map_err(|_| malformed(offset, "invalid parent segment header"))?,
            ),
            _ => return Err(malformed(offset, "unknown item tag")),
        });
        offset = header_end + len;
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_was_written_and_rejects_garbage() {
        let mut segment = Vec::new();
        write_block_part(&mut segment, BlockPart::Whole, b"hello");
        write_block_part(&mut segment, BlockPart::Start, b"wor");
        segment.resize(64, 0);
        let items = decode_items(SegmentIndex(0), &segment).expect("valid");
        assert_eq!(
            items,
            vec![
                SegmentItem::Block(b"hello".to_vec()),
                SegmentItem::BlockStart(b"wor".to_vec()),
                SegmentItem::Padding
            ]
        );

        let mut bad_padding = segment.clone();
        bad_padding[63] = 1;
        assert!(decode_items(SegmentIndex(0), &bad_padding).is_err());
        let mut bad_tag = segment.clone();
        bad_tag[0] = 9;
        assert!(decode_items(SegmentIndex(0), &bad_tag).is_err());
        assert!(decode_items(SegmentIndex(0), &segment[..12]).is_err());
        let mut huge = segment;
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_items(SegmentIndex(0), &huge).is_err());
    }
}
