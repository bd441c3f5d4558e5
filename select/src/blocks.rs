//! Input cut into blocks that end after a record delimiter, so the blocks can be parsed on
//! several tasks at once and their rows taken back in order.

use bytes::Bytes;
use futures::StreamExt;

use crate::error::Result;
use crate::source::{ByteStream, io_error};
use crate::task::async_stream;

/// Input is cut into blocks of about this size.
pub(crate) const BLOCK: usize = 1024 * 1024;

/// A run of input bytes that starts at a record boundary (or is believed to).
pub(crate) struct Block {
    pub data: Bytes,
    /// Offset of `data` in the decompressed stream, for error messages.
    pub offset: u64,
}

/// Cut the stream into blocks of about [`BLOCK`] bytes, each ending just after a record
/// delimiter (the last one ends where the input does).
pub(crate) fn cut_blocks(
    first: Bytes,
    mut stream: ByteStream,
    delimiter: u8,
    offset: u64,
    max_record: usize,
) -> impl futures::Stream<Item = Result<Block>> + Send {
    async_stream(move |tx| async move {
        let mut pending = bytes::BytesMut::with_capacity(BLOCK + 64 * 1024);
        pending.extend_from_slice(&first);
        let mut offset = offset;
        let mut eof = false;
        loop {
            // Where this block ends, once enough is pending to say.
            let cut = if eof {
                Some(pending.len())
            } else if pending.len() < BLOCK {
                None
            } else {
                match memchr::memrchr(delimiter, &pending) {
                    Some(i) => Some(i + 1),
                    // One record longer than a block: read on, up to the record limit
                    // (the parser reports a record past it).
                    None if pending.len() <= max_record + BLOCK => None,
                    None => Some(pending.len()),
                }
            };
            let Some(cut) = cut else {
                match stream.next().await {
                    Some(Ok(c)) => pending.extend_from_slice(&c),
                    Some(Err(e)) => {
                        let _ = tx.send(Err(io_error(e))).await;
                        return;
                    }
                    None => eof = true,
                }
                continue;
            };
            if cut == 0 {
                return;
            }
            let data = pending.split_to(cut).freeze();
            let len = data.len() as u64;
            if tx.send(Ok(Block { data, offset })).await.is_err() {
                return;
            }
            offset += len;
        }
    })
}
