//! Select errors, carrying AWS's error codes.

/// AWS S3 Select error codes this crate raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    ParseUnexpectedToken,
    ParseSelectFailure,
    UnsupportedSyntax,
    UnsupportedFunction,
    InvalidColumnIndex,
    CastFailed,
    InvalidDataType,
    MissingHeaders,
    OverMaxRecordSize,
    InvalidCompressionFormat,
    InvalidExpressionType,
    InvalidRequestParameter,
    InvalidTextEncoding,
    JSONParsingError,
    CSVParsingError,
    ParquetParsingError,
    InvalidScanRange,
    Busy,
    InternalError,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ParseUnexpectedToken => "ParseUnexpectedToken",
            Code::ParseSelectFailure => "ParseSelectFailure",
            Code::UnsupportedSyntax => "UnsupportedSyntax",
            Code::UnsupportedFunction => "UnsupportedFunction",
            Code::InvalidColumnIndex => "InvalidColumnIndex",
            Code::CastFailed => "CastFailed",
            Code::InvalidDataType => "InvalidDataType",
            Code::MissingHeaders => "MissingHeaders",
            Code::OverMaxRecordSize => "OverMaxRecordSize",
            Code::InvalidCompressionFormat => "InvalidCompressionFormat",
            Code::InvalidExpressionType => "InvalidExpressionType",
            Code::InvalidRequestParameter => "InvalidRequestParameter",
            Code::InvalidTextEncoding => "InvalidTextEncoding",
            Code::JSONParsingError => "JSONParsingError",
            Code::CSVParsingError => "CSVParsingError",
            Code::ParquetParsingError => "ParquetParsingError",
            Code::InvalidScanRange => "InvalidScanRange",
            Code::Busy => "SlowDown",
            Code::InternalError => "InternalError",
        }
    }

    /// The HTTP status AWS answers with when the error comes before the event stream.
    pub fn status(self) -> u16 {
        match self {
            Code::InternalError => 500,
            Code::Busy => 503,
            _ => 400,
        }
    }

    fn from_str(s: &str) -> Option<Code> {
        ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

const ALL: [Code; 19] = [
    Code::ParseUnexpectedToken,
    Code::ParseSelectFailure,
    Code::UnsupportedSyntax,
    Code::UnsupportedFunction,
    Code::InvalidColumnIndex,
    Code::CastFailed,
    Code::InvalidDataType,
    Code::MissingHeaders,
    Code::OverMaxRecordSize,
    Code::InvalidCompressionFormat,
    Code::InvalidExpressionType,
    Code::InvalidRequestParameter,
    Code::InvalidTextEncoding,
    Code::JSONParsingError,
    Code::CSVParsingError,
    Code::ParquetParsingError,
    Code::InvalidScanRange,
    Code::Busy,
    Code::InternalError,
];

/// A failed query: an AWS error code and a message pointing at the problem.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct SelectError {
    pub code: Code,
    pub message: String,
}

pub type Result<T, E = SelectError> = std::result::Result<T, E>;

impl SelectError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Errors raised inside DataFusion carry our code as a `Code: ` prefix (see
    /// [`SelectError::tagged`]); anything else is a planning or execution failure.
    pub(crate) fn from_datafusion(e: datafusion::error::DataFusionError) -> Self {
        let text = e.to_string();
        for part in text.split(|c: char| !c.is_ascii_alphanumeric()) {
            if let Some(code) = Code::from_str(part)
                && let Some(at) = text.find(&format!("{part}: "))
            {
                let msg = text[at + part.len() + 2..].to_string();
                return Self::new(code, msg);
            }
        }
        let inner = e.find_root().to_string();
        // Arrow's parsers (timestamps, numbers) fail with "Parser error" when a value
        // cannot be read as the type asked for.
        if inner.contains("Cast error")
            || inner.contains("Cannot cast")
            || inner.contains("Parser error")
            || inner.contains("cast") && inner.contains("string")
        {
            return Self::new(Code::CastFailed, inner);
        }
        if matches!(
            e.find_root(),
            datafusion::error::DataFusionError::Plan(_) | datafusion::error::DataFusionError::SchemaError(..)
        ) {
            return Self::new(Code::InvalidDataType, inner);
        }
        if matches!(e.find_root(), datafusion::error::DataFusionError::NotImplemented(_)) {
            return Self::new(Code::UnsupportedSyntax, inner);
        }
        Self::new(Code::InternalError, inner)
    }

    /// An error DataFusion raised while planning a query. Planning looks only at the query
    /// and the input's columns, so what DataFusion calls internal there (types it cannot
    /// coerce in BETWEEN, say) is a fault of the query's types.
    pub(crate) fn from_planning(e: datafusion::error::DataFusionError) -> Self {
        let mut err = Self::from_datafusion(e);
        if err.code == Code::InternalError {
            err.code = Code::InvalidDataType;
            if let Some(i) = err.message.find("\nThis issue was likely caused by a bug") {
                err.message.truncate(i);
            }
            err.message = err.message.trim_start_matches("Internal error: ").to_string();
        }
        err
    }

    /// A DataFusion execution error that [`SelectError::from_datafusion`] maps back to `code`.
    pub(crate) fn tagged(code: Code, message: impl std::fmt::Display) -> datafusion::error::DataFusionError {
        datafusion::error::DataFusionError::Execution(format!("{}: {message}", code.as_str()))
    }
}
