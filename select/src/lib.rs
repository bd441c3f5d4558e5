//! `quarry-select`: S3 Select (SelectObjectContent) for Quarry.
//!
//! The finished crate turns an S3 Select request into a DataFusion plan over an object's
//! bytes and streams results back as the S3 event stream; that is the S3 Select issue. It
//! must never depend on `quarry-server` or HTTP types: it reads a byte stream and writes
//! event-stream frames. Today it holds the event-stream framing ([`event_stream`]), the
//! wire format every Select response is made of.
//!
//! ```
//! use quarry_select::event_stream::{Message, decode, records};
//! let frame = records(b"a,b\n").encode();
//! let (msg, used) = decode(&frame).unwrap();
//! assert_eq!(used, frame.len());
//! assert_eq!(msg.header(":event-type"), Some("Records"));
//! ```

pub mod event_stream;
