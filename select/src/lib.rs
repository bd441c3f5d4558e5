//! `quarry-select`: S3 Select (SelectObjectContent) for Quarry.
//!
//! A [`SelectRequest`] (SQL in AWS's S3 Select dialect, input and output serialization) is
//! run over an [`ObjectSource`] (a byte-stream trait the server implements over storage) by
//! an [`Engine`], which yields [`Event`]s: Records in bounded chunks, Cont keep-alives,
//! Progress, Stats, End. The SQL is parsed with `sqlparser`, names are resolved against the
//! input here ([`sql`]), and DataFusion plans and executes the query over a streaming table
//! fed by the CSV, JSON or Parquet readers. The crate never depends on `quarry-server` or
//! HTTP types; [`event_stream`] holds the wire framing for tests and tools.
//!
//! ```
//! use quarry_select::event_stream::{Message, decode, records};
//! let frame = records(b"a,b\n").encode();
//! let (msg, used) = decode(&frame).unwrap();
//! assert_eq!(used, frame.len());
//! assert_eq!(msg.header(":event-type"), Some("Records"));
//! ```

mod blocks;
mod csv;
mod error;
pub mod event_stream;
mod exec;
mod json;
mod json_path;
mod output;
mod parquet;
mod request;
mod source;
pub mod sql;
mod task;
mod udf;

pub use error::{Code, Result, SelectError};
pub use exec::{Engine, EventStream, Limits};
pub use request::*;
pub use source::{ByteStream, MemorySource, ObjectSource};

/// Byte counts reported by Progress and Stats events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub bytes_scanned: u64,
    pub bytes_processed: u64,
    pub bytes_returned: u64,
}

/// One event of a Select response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Records(bytes::Bytes),
    Cont,
    Progress(Stats),
    Stats(Stats),
    End,
}
