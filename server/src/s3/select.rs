//! SelectObjectContent: the request is translated to `quarry-select`'s types, the object is
//! offered to it as a pinned version, and its events become the S3 event stream.

use std::ops::Range;
use std::sync::Arc;

use futures::StreamExt;
use quarry_select as sel;
use quarry_storage::{BucketName, ObjectKey, ObjectMeta, ReadRange, Store, VersionId};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::Quarry;
use super::convert;
use super::error::StorageResultExt;

pub(super) async fn select_object_content(
    q: &Quarry,
    req: S3Request<SelectObjectContentInput>,
) -> S3Result<S3Response<SelectObjectContentOutput>> {
    let input = req.input;
    super::refuse::refuse_customer_key!(input)?;
    let bucket = convert::bucket(&input.bucket)?;
    let key = convert::key(&input.key)?;
    let request = translate(input.request)?;
    let meta = q.store.head_object(&bucket, &key, None).s3()?;
    let source = PinnedObject {
        store: q.store.clone(),
        bucket,
        key,
        version: meta.version_id.as_deref().and_then(|v| VersionId::parse(v).ok()),
        meta,
    };
    let events = q.select.start(request, Arc::new(source)).await.map_err(select_error)?;
    let events = events.map(|e| match e {
        Ok(ev) => Ok(event(ev)),
        Err(err) => Err(select_error(err)),
    });
    Ok(S3Response::new(SelectObjectContentOutput {
        payload: Some(SelectObjectContentEventStream::new(events)),
    }))
}

fn select_error(e: sel::SelectError) -> S3Error {
    let code = S3ErrorCode::from_bytes(e.code.as_str().as_bytes()).unwrap_or(S3ErrorCode::InternalError);
    let mut err = S3Error::with_message(code, e.message);
    if let Ok(status) = http::StatusCode::from_u16(e.code.status()) {
        err.set_status_code(status);
    }
    err
}

fn stats(s: sel::Stats) -> (Option<i64>, Option<i64>, Option<i64>) {
    let i = |v: u64| Some(i64::try_from(v).unwrap_or(i64::MAX));
    (i(s.bytes_processed), i(s.bytes_returned), i(s.bytes_scanned))
}

fn event(e: sel::Event) -> SelectObjectContentEvent {
    match e {
        sel::Event::Records(b) => SelectObjectContentEvent::Records(RecordsEvent { payload: Some(b) }),
        sel::Event::Cont => SelectObjectContentEvent::Cont(ContinuationEvent {}),
        sel::Event::Progress(s) => {
            let (bytes_processed, bytes_returned, bytes_scanned) = stats(s);
            SelectObjectContentEvent::Progress(ProgressEvent {
                details: Some(Progress {
                    bytes_processed,
                    bytes_returned,
                    bytes_scanned,
                }),
            })
        }
        sel::Event::Stats(s) => {
            let (bytes_processed, bytes_returned, bytes_scanned) = stats(s);
            SelectObjectContentEvent::Stats(StatsEvent {
                details: Some(Stats {
                    bytes_processed,
                    bytes_returned,
                    bytes_scanned,
                }),
            })
        }
        sel::Event::End => SelectObjectContentEvent::End(EndEvent {}),
    }
}

fn one_byte(what: &str, v: Option<&String>, default: u8) -> S3Result<u8> {
    match v.map(String::as_str) {
        None | Some("") => Ok(default),
        Some(s) if s.len() == 1 => Ok(s.as_bytes()[0]),
        Some(s) => Err(S3Error::with_message(
            S3ErrorCode::Custom(format!("Invalid{what}").into()),
            format!("the {what} must be one character, found {s:?}"),
        )),
    }
}

fn one_char(what: &str, v: Option<&String>, default: char) -> S3Result<char> {
    match v.map(String::as_str) {
        None | Some("") => Ok(default),
        Some(s) if s.chars().count() == 1 => Ok(s.chars().next().unwrap_or(default)),
        Some(s) => Err(S3Error::with_message(
            S3ErrorCode::Custom(format!("Invalid{what}").into()),
            format!("the {what} must be one character, found {s:?}"),
        )),
    }
}

/// The S3 request in `quarry-select`'s terms, with AWS's defaults and validation.
fn translate(r: SelectObjectContentRequest) -> S3Result<sel::SelectRequest> {
    if r.expression_type.as_str() != "SQL" {
        return Err(S3Error::with_message(
            S3ErrorCode::Custom("InvalidExpressionType".into()),
            "the ExpressionType must be SQL",
        ));
    }
    let ins = r.input_serialization;
    let given = usize::from(ins.csv.is_some()) + usize::from(ins.json.is_some()) + usize::from(ins.parquet.is_some());
    if given != 1 {
        return Err(S3Error::with_message(
            S3ErrorCode::Custom("InvalidRequestParameter".into()),
            "InputSerialization must name exactly one of CSV, JSON or Parquet",
        ));
    }
    let compression = match ins.compression_type.as_ref().map(CompressionType::as_str) {
        None | Some("NONE") => sel::Compression::None,
        Some("GZIP") => sel::Compression::Gzip,
        Some("BZIP2") => sel::Compression::Bzip2,
        Some("ZSTD") => sel::Compression::Zstd,
        Some(other) => {
            return Err(S3Error::with_message(
                S3ErrorCode::Custom("InvalidCompressionFormat".into()),
                format!("unknown CompressionType {other:?} (NONE, GZIP, BZIP2, ZSTD)"),
            ));
        }
    };
    let input = if let Some(c) = ins.csv {
        let header = match c.file_header_info.as_ref().map(FileHeaderInfo::as_str) {
            None | Some("NONE") => sel::FileHeaderInfo::None,
            Some("USE") => sel::FileHeaderInfo::Use,
            Some("IGNORE") => sel::FileHeaderInfo::Ignore,
            Some(other) => {
                return Err(S3Error::with_message(
                    S3ErrorCode::Custom("InvalidFileHeaderInfo".into()),
                    format!("unknown FileHeaderInfo {other:?} (USE, IGNORE, NONE)"),
                ));
            }
        };
        let record_delimiter = match c.record_delimiter.as_deref() {
            None | Some("") | Some("\n") | Some("\r\n") => None,
            Some(d) => Some(one_byte("RecordDelimiter", Some(&d.to_string()), b'\n')?),
        };
        let quote = one_byte("QuoteCharacter", c.quote_character.as_ref(), b'"')?;
        sel::Input::Csv(sel::CsvInput {
            file_header_info: header,
            field_delimiter: one_byte("FieldDelimiter", c.field_delimiter.as_ref(), b',')?,
            record_delimiter,
            quote,
            quote_escape: one_byte("QuoteEscapeCharacter", c.quote_escape_character.as_ref(), quote)?,
            comments: match c.comments.as_deref() {
                None | Some("") => None,
                Some(s) => Some(one_byte("Comments", Some(&s.to_string()), b'#')?),
            },
            allow_quoted_record_delimiter: c.allow_quoted_record_delimiter.unwrap_or(false),
        })
    } else if let Some(j) = ins.json {
        let kind = match j.type_.as_ref().map(JSONType::as_str) {
            Some("DOCUMENT") => sel::JsonType::Document,
            Some("LINES") => sel::JsonType::Lines,
            None => {
                return Err(S3Error::with_message(
                    S3ErrorCode::Custom("MissingRequiredParameter".into()),
                    "JSON input needs a Type (DOCUMENT or LINES)",
                ));
            }
            Some(other) => {
                return Err(S3Error::with_message(
                    S3ErrorCode::Custom("InvalidJsonType".into()),
                    format!("unknown JSON Type {other:?} (DOCUMENT, LINES)"),
                ));
            }
        };
        sel::Input::Json(sel::JsonInput { kind })
    } else {
        sel::Input::Parquet
    };
    let outs = r.output_serialization;
    let output = match (outs.csv, outs.json) {
        (Some(c), None) => {
            let quote = one_char("QuoteCharacter", c.quote_character.as_ref(), '"')?;
            sel::Output::Csv(sel::CsvOutput {
                quote_fields: match c.quote_fields.as_ref().map(QuoteFields::as_str) {
                    Some("ALWAYS") => sel::QuoteFields::Always,
                    None | Some("ASNEEDED") => sel::QuoteFields::AsNeeded,
                    Some(other) => {
                        return Err(S3Error::with_message(
                            S3ErrorCode::Custom("InvalidQuoteFields".into()),
                            format!("unknown QuoteFields {other:?} (ALWAYS, ASNEEDED)"),
                        ));
                    }
                },
                field_delimiter: c.field_delimiter.filter(|s| !s.is_empty()).unwrap_or_else(|| ",".into()),
                record_delimiter: c.record_delimiter.filter(|s| !s.is_empty()).unwrap_or_else(|| "\n".into()),
                quote,
                quote_escape: one_char("QuoteEscapeCharacter", c.quote_escape_character.as_ref(), quote)?,
            })
        }
        (None, Some(j)) => sel::Output::Json(sel::JsonOutput {
            record_delimiter: j.record_delimiter.filter(|s| !s.is_empty()).unwrap_or_else(|| "\n".into()),
        }),
        _ => {
            return Err(S3Error::with_message(
                S3ErrorCode::Custom("InvalidRequestParameter".into()),
                "OutputSerialization must name exactly one of CSV or JSON",
            ));
        }
    };
    let scan_range = match r.scan_range {
        None => None,
        Some(s) => {
            let u = |v: Option<i64>| -> S3Result<Option<u64>> {
                v.map(|x| {
                    u64::try_from(x).map_err(|_| {
                        S3Error::with_message(
                            S3ErrorCode::Custom("InvalidScanRange".into()),
                            "ScanRange values must not be negative",
                        )
                    })
                })
                .transpose()
            };
            Some(sel::ScanRange {
                start: u(s.start)?,
                end: u(s.end)?,
            })
        }
    };
    Ok(sel::SelectRequest {
        expression: r.expression,
        input,
        compression,
        output,
        request_progress: r.request_progress.and_then(|p| p.enabled).unwrap_or(false),
        scan_range,
    })
}

/// One version of an object, as the query saw it when it started. Reads of an unversioned
/// key that has been overwritten since fail instead of mixing two versions.
struct PinnedObject {
    store: Store,
    bucket: BucketName,
    key: ObjectKey,
    version: Option<VersionId>,
    meta: Arc<ObjectMeta>,
}

#[async_trait::async_trait]
impl sel::ObjectSource for PinnedObject {
    fn size(&self) -> u64 {
        self.meta.size
    }

    async fn read(&self, range: Range<u64>) -> std::io::Result<sel::ByteStream> {
        if range.start >= range.end {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let r = ReadRange::From {
            first: range.start,
            last: Some(range.end - 1),
        };
        let reader = self
            .store
            .get_object(&self.bucket, &self.key, self.version.as_ref(), r)
            .await
            .map_err(std::io::Error::other)?;
        if reader.meta.etag != self.meta.etag || reader.meta.last_modified != self.meta.last_modified {
            return Err(std::io::Error::other("the object was overwritten while the query ran"));
        }
        Ok(reader.body)
    }
}
