//! The archiver: confirmed blocks in, segments of verifiable pieces out (spec section 3).
//!
//! A deterministic state machine: the same blocks in give the same segments out. Blocks are appended to the
//! current segment as items; when a segment fills up (free space below the smallest useful item), it is
//! sealed: encoded, erasure coded into pieces and committed to, and its header chained to the previous one.
//! A block that does not fit is split, the rest continuing in the next segment.
//!
//! Because segments are only ever sealed when full (or explicitly, via [`Archiver::close_segment`]), the
//! state after any block is a function of the last sealed header and the blocks after it, which is exactly
//! what [`Archiver::resume`] takes: restarting never changes the segments produced.

use acre_consensus::{
    Blake3Hash, BlockNumber, LastArchivedBlock, Piece, ProtocolParams, SegmentHeader, SegmentIndex,
};
use tracing::debug;

use crate::commitment::commit_segment;
use crate::error::Error;
use crate::segment::{BlockPart, ITEM_HEADER_SIZE, write_block_part, write_parent_header};

/// A sealed segment: its header and all its pieces (source first, then parity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedSegment {
    /// The segment's header.
    pub header: SegmentHeader,
    /// The segment's pieces, by position.
    pub pieces: Vec<Piece>,
}

/// Incremental archiver of a chain's history.
#[derive(Debug, Clone)]
pub struct Archiver {
    params: ProtocolParams,
    /// Header of the last sealed segment, if any.
    last_header: Option<SegmentHeader>,
    /// Encoded items of the segment being filled.
    buffer: Vec<u8>,
    /// Whether `buffer` holds any block data (as opposed to just the parent header).
    has_block_data: bool,
    /// The last block with bytes in `buffer` (or in the last sealed segment).
    last_archived_block: Option<LastArchivedBlock>,
    /// The number the next block must have.
    next_block_number: BlockNumber,
}

impl Archiver {
    /// An archiver for a new chain; the first block added is block 0.
    pub fn new(params: ProtocolParams) -> Result<Self, Error> {
        params.validate().map_err(|_| Error::WrongCount {
            what: "valid parameter sets",
            expected: 1,
            got: 0,
        })?;
        let capacity = params.segment_size();
        Ok(Self {
            params,
            last_header: None,
            buffer: Vec::with_capacity(capacity),
            has_block_data: false,
            last_archived_block: None,
            next_block_number: BlockNumber(0),
        })
    }

    /// Resumes after the segment whose header is `last_header`. If that segment ends with a partially
    /// archived block, `partial_block` must hold that block's bytes; blocks after it follow through
    /// [`Archiver::add_block`].
    pub fn resume(
        params: ProtocolParams,
        last_header: SegmentHeader,
        partial_block: Option<&[u8]>,
    ) -> Result<(Self, Vec<ArchivedSegment>), Error> {
        let mut archiver = Self::new(params)?;
        let last = last_header.last_archived_block;
        archiver.start_segment_after(last_header);
        archiver.next_block_number = BlockNumber(last.number.0 + 1);
        let mut sealed = Vec::new();
        if !last.is_complete() {
            let missing = Error::MissingPartialBlock {
                number: last.number,
                archived_progress: last.archived_progress,
            };
            let block = partial_block.ok_or(missing.clone())?;
            if block.len() <= last.archived_progress as usize {
                return Err(missing);
            }
            archiver.append_block(last.number, block, last.archived_progress as usize, &mut sealed)?;
        }
        Ok((archiver, sealed))
    }

    /// The parameters this archiver uses.
    pub fn params(&self) -> &ProtocolParams {
        &self.params
    }

    /// The number the next block must have.
    pub fn next_block_number(&self) -> BlockNumber {
        self.next_block_number
    }

    /// Header of the last sealed segment.
    pub fn last_header(&self) -> Option<&SegmentHeader> {
        self.last_header.as_ref()
    }

    /// Index the next sealed segment will have.
    pub fn next_segment_index(&self) -> SegmentIndex {
        self.last_header
            .map_or(SegmentIndex(0), |header| header.segment_index.next())
    }

    /// Archives block `number`, returning every segment this seals (none, one or several).
    pub fn add_block(&mut self, number: BlockNumber, bytes: &[u8]) -> Result<Vec<ArchivedSegment>, Error> {
        if number != self.next_block_number {
            return Err(Error::UnexpectedBlockNumber {
                expected: self.next_block_number,
                got: number,
            });
        }
        let max = u32::MAX as usize;
        if bytes.len() >= max {
            return Err(Error::BlockTooLarge {
                number,
                len: bytes.len(),
                max: max - 1,
            });
        }
        let mut sealed = Vec::new();
        self.append_block(number, bytes, 0, &mut sealed)?;
        self.next_block_number = BlockNumber(number.0 + 1);
        Ok(sealed)
    }

    /// Seals the current segment with padding if it holds any block data (used for the genesis segment,
    /// at the end of a file, and by tests).
    pub fn close_segment(&mut self) -> Result<Option<ArchivedSegment>, Error> {
        if !self.has_block_data {
            return Ok(None);
        }
        self.seal().map(Some)
    }

    /// Appends `bytes[offset..]` of block `number`, sealing segments as they fill.
    fn append_block(
        &mut self,
        number: BlockNumber,
        bytes: &[u8],
        mut offset: usize,
        sealed: &mut Vec<ArchivedSegment>,
    ) -> Result<(), Error> {
        let segment_size = self.params.segment_size();
        loop {
            let free = segment_size - self.buffer.len() - ITEM_HEADER_SIZE;
            let rest = &bytes[offset..];
            let first = offset == 0;
            if rest.len() <= free {
                let part = if first {
                    BlockPart::Whole
                } else {
                    BlockPart::Continuation
                };
                write_block_part(&mut self.buffer, part, rest);
                self.record_progress(number, 0);
                if segment_size - self.buffer.len() <= ITEM_HEADER_SIZE {
                    sealed.push(self.seal()?);
                }
                return Ok(());
            }
            let part = if first {
                BlockPart::Start
            } else {
                BlockPart::Continuation
            };
            write_block_part(&mut self.buffer, part, &rest[..free]);
            offset += free;
            let progress = u32::try_from(offset).expect("block sizes are checked below u32::MAX");
            self.record_progress(number, progress);
            sealed.push(self.seal()?);
        }
    }

    fn record_progress(&mut self, number: BlockNumber, archived_progress: u32) {
        self.has_block_data = true;
        self.last_archived_block = Some(LastArchivedBlock {
            number,
            archived_progress,
        });
    }

    /// Pads, erasure codes and commits to the current segment, then opens the next one.
    fn seal(&mut self) -> Result<ArchivedSegment, Error> {
        let segment_index = self.next_segment_index();
        let last_archived_block = self
            .last_archived_block
            .expect("a segment is sealed only after block data");
        self.buffer.resize(self.params.segment_size(), 0);
        let (segment_root, pieces) = commit_segment(&self.params, &self.buffer)?;
        let header = SegmentHeader {
            version: SegmentHeader::VERSION,
            segment_index,
            segment_root,
            prev_segment_header_hash: self.last_header.map_or(Blake3Hash::ZERO, |header| header.hash()),
            last_archived_block,
        };
        debug!(
            target: "acre::archiver",
            segment = %segment_index,
            last_block = %last_archived_block.number,
            progress = last_archived_block.archived_progress,
            root = %segment_root.0,
            "sealed segment"
        );
        self.start_segment_after(header);
        Ok(ArchivedSegment { header, pieces })
    }

    fn start_segment_after(&mut self, header: SegmentHeader) {
        self.last_header = Some(header);
        self.last_archived_block = Some(header.last_archived_block);
        self.buffer.clear();
        self.has_block_data = false;
        write_parent_header(&mut self.buffer, &header);
    }
}
