//! A SelectObjectContent request, independent of any HTTP or S3 wire types.

/// What to run and how to read and write it.
#[derive(Clone, Debug)]
pub struct SelectRequest {
    pub expression: String,
    pub input: Input,
    pub compression: Compression,
    pub output: Output,
    /// Send Progress events while scanning.
    pub request_progress: bool,
    pub scan_range: Option<ScanRange>,
}

#[derive(Clone, Debug)]
pub enum Input {
    Csv(CsvInput),
    Json(JsonInput),
    Parquet,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileHeaderInfo {
    /// The first record names the columns.
    Use,
    /// The first record is skipped.
    Ignore,
    /// There is no header; columns are `_1`, `_2`...
    #[default]
    None,
}

#[derive(Clone, Debug)]
pub struct CsvInput {
    pub file_header_info: FileHeaderInfo,
    pub field_delimiter: u8,
    /// `None` is AWS's default: `\n`, with `\r\n` accepted too.
    pub record_delimiter: Option<u8>,
    pub quote: u8,
    pub quote_escape: u8,
    pub comments: Option<u8>,
    pub allow_quoted_record_delimiter: bool,
}

impl Default for CsvInput {
    fn default() -> Self {
        Self {
            file_header_info: FileHeaderInfo::None,
            field_delimiter: b',',
            record_delimiter: None,
            quote: b'"',
            quote_escape: b'"',
            comments: None,
            allow_quoted_record_delimiter: false,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JsonType {
    /// One JSON value per line.
    #[default]
    Lines,
    /// One document, or a stream of whitespace-separated documents.
    Document,
}

#[derive(Clone, Debug, Default)]
pub struct JsonInput {
    pub kind: JsonType,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Bzip2,
    Zstd,
}

#[derive(Clone, Debug)]
pub enum Output {
    Csv(CsvOutput),
    Json(JsonOutput),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum QuoteFields {
    Always,
    #[default]
    AsNeeded,
}

#[derive(Clone, Debug)]
pub struct CsvOutput {
    pub quote_fields: QuoteFields,
    pub field_delimiter: String,
    pub record_delimiter: String,
    pub quote: char,
    pub quote_escape: char,
}

impl Default for CsvOutput {
    fn default() -> Self {
        Self {
            quote_fields: QuoteFields::AsNeeded,
            field_delimiter: ",".into(),
            record_delimiter: "\n".into(),
            quote: '"',
            quote_escape: '"',
        }
    }
}

#[derive(Clone, Debug)]
pub struct JsonOutput {
    pub record_delimiter: String,
}

impl Default for JsonOutput {
    fn default() -> Self {
        Self {
            record_delimiter: "\n".into(),
        }
    }
}

/// `ScanRange`: bytes of the object whose records are processed. A record belongs to the
/// range it starts in (AWS's rule for CSV and JSON lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanRange {
    pub start: Option<u64>,
    pub end: Option<u64>,
}
