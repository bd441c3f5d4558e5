//! The S3 Select SQL dialect: parsed with `sqlparser`, checked against what AWS accepts,
//! and rewritten into a query DataFusion plans over the `s3object` table.
//!
//! AWS's dialect differs from DataFusion's in ways the rewrite handles:
//! - `FROM S3Object[*].path` selects records inside each JSON value (cut out of the text
//!   before parsing, see [`cut_from_path`]);
//! - column references are resolved here, not by DataFusion: `_N` by position, header names
//!   case-insensitively unless quoted, JSON paths `s.a[0]."b c"`, the alias alone for the
//!   whole record;
//! - CSV and JSON values are untyped: where an expression needs a number (arithmetic,
//!   SUM/AVG/MIN/MAX, comparison with a number) the value is read as one, where it needs a
//!   string it is read as one (the `quarry_*` functions of [`crate::udf`]);
//! - the functions are AWS's list (`DATE_ADD`, `TO_STRING`...), and nothing else.

use std::ops::ControlFlow;

use sqlparser::ast::{
    self, BinaryOperator, CastKind, DataType as SqlType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident,
    ObjectName, ObjectNamePart, SelectItem, SetExpr, Statement, TableFactor, UnaryOperator, Value, VisitMut, VisitorMut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::error::{Code, Result, SelectError};

/// One step of a JSON path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
    /// `[*]`: every element of an array (only in the FROM path).
    Wildcard,
}

/// How values of the input's columns are typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dynamic {
    /// Typed columns (Parquet): no coercion needed.
    Typed,
    /// CSV: every value is a string.
    Csv,
    /// JSON: every value is JSON text (strings quoted).
    Json,
}

/// What a column reference resolves to.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The column's name in the `s3object` table.
    pub column: String,
    /// The name the value takes in JSON output.
    pub out_name: String,
}

/// The input's side of name resolution.
pub trait Resolver {
    fn dynamic(&self) -> Dynamic;
    /// A column reference (alias stripped). `quoted` says whether its first name was quoted.
    fn column(&mut self, path: &[Seg], quoted: bool) -> Result<Resolved>;
    /// The alias alone or `*` on JSON: the whole record.
    fn record(&mut self) -> Result<Resolved>;
    /// Every column, for `SELECT *` on CSV and Parquet.
    fn all_columns(&mut self) -> Result<Vec<Resolved>>;
}

/// How the output writer renders one output column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutKind {
    /// An ordinary value.
    Value,
    /// JSON text of one value (written raw in JSON output).
    JsonValue,
    /// JSON text of a whole record, from `SELECT *` on JSON.
    JsonRecord,
}

#[derive(Clone, Debug)]
pub struct OutColumn {
    pub name: String,
    pub kind: OutKind,
}

/// A parsed query before name resolution.
#[derive(Debug)]
pub struct Parsed {
    statement: Statement,
    alias: Option<String>,
    pub from_path: Vec<Seg>,
}

/// A literal a column is compared with, for pruning Parquet row groups.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Number(f64),
    Text(String),
}

/// `column op literal`, a conjunct of WHERE that every selected row satisfies.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    pub column: String,
    /// One of `=`, `<`, `<=`, `>`, `>=`.
    pub op: &'static str,
    pub value: Lit,
}

impl Planned {
    /// Conjuncts of WHERE of the form `column op literal` (also `literal op column` and
    /// `column BETWEEN a AND b`); sound to prune with, not necessarily complete.
    pub fn bounds(&self) -> Vec<Bound> {
        let mut out = Vec::new();
        if let Statement::Query(q) = &self.statement
            && let SetExpr::Select(s) = q.body.as_ref()
            && let Some(w) = &s.selection
        {
            collect_bounds(w, &mut out);
        }
        out
    }
}

fn literal(e: &Expr) -> Option<Lit> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok().map(Lit::Number),
            Value::SingleQuotedString(s) => Some(Lit::Text(s.clone())),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match literal(expr)? {
            Lit::Number(n) => Some(Lit::Number(-n)),
            Lit::Text(_) => None,
        },
        Expr::Nested(e) => literal(e),
        _ => None,
    }
}

fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(id) if id.quote_style == Some('"') => Some(id.value.clone()),
        Expr::CompoundIdentifier(ids) if ids.last().is_some_and(|i| i.quote_style == Some('"')) => ids.last().map(|i| i.value.clone()),
        Expr::Nested(e) => column_name(e),
        _ => None,
    }
}

fn collect_bounds(e: &Expr, out: &mut Vec<Bound>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            collect_bounds(left, out);
            collect_bounds(right, out);
        }
        Expr::Nested(inner) => collect_bounds(inner, out),
        Expr::BinaryOp { left, op, right } => {
            let flip = |op: &BinaryOperator| -> Option<(&'static str, &'static str)> {
                Some(match op {
                    BinaryOperator::Eq => ("=", "="),
                    BinaryOperator::Lt => ("<", ">"),
                    BinaryOperator::LtEq => ("<=", ">="),
                    BinaryOperator::Gt => (">", "<"),
                    BinaryOperator::GtEq => (">=", "<="),
                    _ => return None,
                })
            };
            let Some((direct, flipped)) = flip(op) else {
                return;
            };
            if let (Some(c), Some(v)) = (column_name(left), literal(right)) {
                out.push(Bound {
                    column: c,
                    op: direct,
                    value: v,
                });
            } else if let (Some(v), Some(c)) = (literal(left), column_name(right)) {
                out.push(Bound {
                    column: c,
                    op: flipped,
                    value: v,
                });
            }
        }
        Expr::Between {
            expr,
            negated: false,
            low,
            high,
        } => {
            if let (Some(c), Some(lo), Some(hi)) = (column_name(expr), literal(low), literal(high)) {
                out.push(Bound {
                    column: c.clone(),
                    op: ">=",
                    value: lo,
                });
                out.push(Bound {
                    column: c,
                    op: "<=",
                    value: hi,
                });
            }
        }
        _ => {}
    }
}

/// The query ready for DataFusion.
#[derive(Debug)]
pub struct Planned {
    pub statement: Statement,
    pub outputs: Vec<OutColumn>,
    pub has_limit_zero: bool,
}

/// Parse `sql` as AWS S3 Select SQL.
pub fn parse(sql: &str) -> Result<Parsed> {
    let text = rewrite_trim(&rewrite_missing(sql));
    let (text, from_path) = cut_from_path(&text)?;
    let dialect = GenericDialect {};
    let mut statements = Parser::parse_sql(&dialect, &text).map_err(|e| parse_error(&e))?;
    if statements.len() != 1 {
        return Err(SelectError::new(
            Code::ParseUnexpectedToken,
            "expected exactly one SELECT statement",
        ));
    }
    let statement = statements.remove(0);
    let alias = {
        let select = select_of(&statement)?;
        if select.from.len() != 1 || !select.from[0].joins.is_empty() {
            return Err(SelectError::new(Code::UnsupportedSyntax, "FROM takes exactly one source, S3Object"));
        }
        match &select.from[0].relation {
            TableFactor::Table {
                name, alias, args: None, ..
            } if is_s3object(name) => alias.as_ref().map(|a| a.name.value.clone()),
            other => {
                return Err(SelectError::new(
                    Code::UnsupportedSyntax,
                    format!("FROM must name S3Object, found `{other}`"),
                ));
            }
        }
    };
    Ok(Parsed {
        statement,
        alias,
        from_path,
    })
}

fn parse_error(e: &sqlparser::parser::ParserError) -> SelectError {
    SelectError::new(Code::ParseUnexpectedToken, e.to_string())
}

fn is_s3object(name: &ObjectName) -> bool {
    name.0.len() == 1 && matches!(&name.0[0], ObjectNamePart::Identifier(i) if i.value.eq_ignore_ascii_case("s3object"))
}

fn select_of(statement: &Statement) -> Result<&ast::Select> {
    let Statement::Query(q) = statement else {
        return Err(SelectError::new(Code::ParseSelectFailure, "only SELECT queries are allowed"));
    };
    if q.with.is_some() {
        return Err(SelectError::new(Code::UnsupportedSyntax, "WITH is not supported"));
    }
    match q.body.as_ref() {
        SetExpr::Select(s) => Ok(s),
        _ => Err(SelectError::new(
            Code::UnsupportedSyntax,
            "only a single SELECT is supported (no UNION, VALUES or subqueries)",
        )),
    }
}

fn select_of_mut(statement: &mut Statement) -> &mut ast::Select {
    match statement {
        Statement::Query(q) => match q.body.as_mut() {
            SetExpr::Select(s) => s,
            _ => unreachable!("checked by parse"),
        },
        _ => unreachable!("checked by parse"),
    }
}

/// `x IS [NOT] MISSING` becomes `x IS [NOT] UNKNOWN`, which the rewrite turns into a test
/// of the raw column (an absent value), while `IS NULL` also holds for JSON `null`.
fn rewrite_missing(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let tokens = split_outside_quotes(sql);
    for (quoted, piece) in tokens {
        if quoted {
            out.push_str(piece);
            continue;
        }
        let lower = piece.to_ascii_lowercase();
        let mut at = 0;
        let mut last = 0;
        while let Some(found) = lower[at..].find("missing") {
            let start = at + found;
            let end = start + "missing".len();
            let word_start = start == 0 || !is_word(lower.as_bytes()[start - 1]);
            let word_end = end == lower.len() || !is_word(lower.as_bytes()[end]);
            let before = lower[..start].trim_end();
            let after_is = before.ends_with(" is") || before.ends_with(" not") && before[..before.len() - 3].trim_end().ends_with(" is");
            if word_start && word_end && after_is {
                out.push_str(&piece[last..start]);
                out.push_str("UNKNOWN");
                last = end;
            }
            at = end;
        }
        out.push_str(&piece[last..]);
    }
    out
}

/// `TRIM(LEADING FROM s)` (AWS's form without characters) becomes `TRIM(LEADING ' ' FROM s)`.
fn rewrite_trim(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for (quoted, piece) in split_outside_quotes(sql) {
        if quoted {
            out.push_str(piece);
            continue;
        }
        let lower = piece.to_ascii_lowercase();
        let b = lower.as_bytes();
        let mut last = 0;
        let mut search = 0;
        while let Some(found) = lower[search..].find("trim") {
            let at = search + found;
            search = at + 4;
            if at > 0 && is_word(b[at - 1]) {
                continue;
            }
            let skip_ws = |mut i: usize| {
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                i
            };
            let mut i = skip_ws(at + 4);
            if b.get(i) != Some(&b'(') {
                continue;
            }
            i = skip_ws(i + 1);
            let Some(side) = ["leading", "trailing", "both"].iter().find(|k| lower[i..].starts_with(*k)) else {
                continue;
            };
            let side_end = i + side.len();
            let j = skip_ws(side_end);
            let from_follows = j > side_end && lower[j..].starts_with("from") && b.get(j + 4).is_none_or(|&c| !is_word(c));
            if from_follows {
                out.push_str(&piece[last..side_end]);
                out.push_str(" ' '");
                last = side_end;
            }
        }
        out.push_str(&piece[last..]);
    }
    out
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Split into (inside quotes?, text) pieces; quotes are `'...'` and `"..."` with doubling.
fn split_outside_quotes(sql: &str) -> Vec<(bool, &str)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut start = 0;
    while i < b.len() {
        if b[i] == b'\'' || b[i] == b'"' {
            let q = b[i];
            if start < i {
                out.push((false, &sql[start..i]));
            }
            let open = i;
            i += 1;
            while i < b.len() {
                if b[i] == q {
                    if i + 1 < b.len() && b[i + 1] == q {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            out.push((true, &sql[open..i]));
            start = i;
        } else {
            i += 1;
        }
    }
    if start < b.len() {
        out.push((false, &sql[start..]));
    }
    out
}

/// Find `S3Object` followed by a path (`[*]`, `[0]`, `.name`, `."quoted name"`), remove the
/// path from the text and return it.
fn cut_from_path(sql: &str) -> Result<(String, Vec<Seg>)> {
    let b = sql.as_bytes();
    let mut offset = 0;
    for (quoted, piece) in split_outside_quotes(sql) {
        if !quoted {
            let lower = piece.to_ascii_lowercase();
            let mut search = 0;
            while let Some(found) = lower[search..].find("s3object") {
                let start = offset + search + found;
                let end = start + "s3object".len();
                let word_start = start == 0 || !is_word(b[start - 1]);
                let word_end = end == b.len() || !is_word(b[end]);
                if word_start && word_end {
                    let (path, path_end) = scan_path(sql, end)?;
                    let mut text = String::with_capacity(sql.len());
                    text.push_str(&sql[..end]);
                    text.push_str(&sql[path_end..]);
                    return Ok((text, path));
                }
                search += found + 1;
            }
        }
        offset += piece.len();
    }
    Err(SelectError::new(Code::ParseSelectFailure, "the query must select FROM S3Object"))
}

fn scan_path(sql: &str, mut i: usize) -> Result<(Vec<Seg>, usize)> {
    let b = sql.as_bytes();
    let mut path = Vec::new();
    loop {
        match b.get(i) {
            Some(b'[') => {
                let close = sql[i..]
                    .find(']')
                    .map(|c| i + c)
                    .ok_or_else(|| SelectError::new(Code::ParseUnexpectedToken, "unclosed `[` in the FROM path"))?;
                let inner = sql[i + 1..close].trim();
                if inner == "*" {
                    path.push(Seg::Wildcard);
                } else if let Ok(n) = inner.parse::<usize>() {
                    path.push(Seg::Index(n));
                } else if inner.len() >= 2 && inner.starts_with('\'') && inner.ends_with('\'') {
                    path.push(Seg::Key(inner[1..inner.len() - 1].replace("''", "'")));
                } else {
                    return Err(SelectError::new(
                        Code::ParseUnexpectedToken,
                        format!("unexpected `[{inner}]` in the FROM path"),
                    ));
                }
                i = close + 1;
            }
            Some(b'.') => {
                let rest = &sql[i + 1..];
                if let Some(quoted) = rest.strip_prefix('"') {
                    let close = quoted
                        .find('"')
                        .ok_or_else(|| SelectError::new(Code::ParseUnexpectedToken, "unclosed quote in the FROM path"))?;
                    path.push(Seg::Key(quoted[..close].to_string()));
                    i += 1 + close + 2;
                } else {
                    let len = rest.bytes().take_while(|&c| is_word(c)).count();
                    if len == 0 {
                        return Err(SelectError::new(
                            Code::ParseUnexpectedToken,
                            "expected a name after `.` in the FROM path",
                        ));
                    }
                    path.push(Seg::Key(rest[..len].to_string()));
                    i += 1 + len;
                }
            }
            _ => return Ok((path, i)),
        }
    }
}

/// Names of AWS's functions, in upper case, and what their arguments want.
fn function_args(name: &str) -> Option<ArgWant> {
    Some(match name {
        "COUNT" => ArgWant::Any,
        "SUM" | "AVG" | "MIN" | "MAX" => ArgWant::Number,
        "CHAR_LENGTH" | "CHARACTER_LENGTH" | "LOWER" | "UPPER" => ArgWant::String,
        "COALESCE" | "NULLIF" => ArgWant::Any,
        "DATE_ADD" | "DATE_DIFF" | "TO_STRING" | "TO_TIMESTAMP" | "UTCNOW" | "EXTRACT" => ArgWant::Special,
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ArgWant {
    Any,
    Number,
    String,
    Special,
}

/// What an expression is known to produce, looking only at its shape.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hint {
    Number,
    String,
    Timestamp,
    Unknown,
}

impl Parsed {
    /// Resolve names against the input and rewrite for DataFusion.
    pub fn plan(mut self, resolver: &mut dyn Resolver) -> Result<Planned> {
        let alias = self.alias.clone();
        let dynamic = resolver.dynamic();
        let mut outputs = Vec::new();
        let mut has_limit_zero = false;
        let mut rewriter = Rewriter {
            alias: alias.as_deref(),
            resolver,
            dynamic,
            error: None,
        };
        {
            let select = select_of_mut(&mut self.statement);
            let items = std::mem::take(&mut select.projection);
            let mut projection = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                        // JSON: the whole record, one column; CSV and Parquet: every column.
                        let kind = if dynamic == Dynamic::Json {
                            OutKind::JsonRecord
                        } else {
                            OutKind::Value
                        };
                        for r in rewriter.resolver.all_columns()? {
                            projection.push(SelectItem::ExprWithAlias {
                                expr: Expr::Identifier(Ident::with_quote('"', r.column)),
                                alias: Ident::with_quote('"', format!("__o{}", projection.len() + 1)),
                            });
                            outputs.push(OutColumn { name: r.out_name, kind });
                        }
                    }
                    SelectItem::UnnamedExpr(mut expr) => {
                        let (name, kind) = rewriter.output_of(&expr, i);
                        rewriter.rewrite(&mut expr)?;
                        let kind = if kind == OutKind::JsonValue && dynamic == Dynamic::Json {
                            kind
                        } else {
                            OutKind::Value
                        };
                        projection.push(SelectItem::ExprWithAlias {
                            expr,
                            alias: Ident::with_quote('"', format!("__o{}", projection.len() + 1)),
                        });
                        outputs.push(OutColumn { name, kind });
                    }
                    SelectItem::ExprWithAlias { mut expr, alias } => {
                        let (_, kind) = rewriter.output_of(&expr, i);
                        rewriter.rewrite(&mut expr)?;
                        let kind = if kind == OutKind::JsonValue && dynamic == Dynamic::Json {
                            kind
                        } else {
                            OutKind::Value
                        };
                        outputs.push(OutColumn {
                            name: alias.value.clone(),
                            kind,
                        });
                        projection.push(SelectItem::ExprWithAlias {
                            expr,
                            alias: Ident::with_quote('"', alias.value),
                        });
                    }
                    other => {
                        return Err(SelectError::new(
                            Code::UnsupportedSyntax,
                            format!("unsupported select item `{other}`"),
                        ));
                    }
                }
            }
            select.projection = projection;
            // The source is the `s3object` table, under the query's alias if it has one.
            if let TableFactor::Table { name, .. } = &mut select.from[0].relation {
                *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote('"', "s3object"))]);
            }
            if let Some(sel) = &mut select.selection {
                rewriter.rewrite(sel)?;
            }
            if let Some(h) = &mut select.having {
                rewriter.rewrite(h)?;
            }
            if let GroupByExpr::Expressions(exprs, _) = &mut select.group_by {
                for e in exprs {
                    rewriter.rewrite(e)?;
                }
            }
        }
        if let Statement::Query(q) = &mut self.statement {
            if let Some(order) = &mut q.order_by
                && let ast::OrderByKind::Expressions(list) = &mut order.kind
            {
                for o in list {
                    // ORDER BY may name an output alias: leave those to DataFusion.
                    let is_alias = matches!(&o.expr, Expr::Identifier(id) if outputs.iter().any(|c| c.name == id.value));
                    if is_alias {
                        if let Expr::Identifier(id) = &mut o.expr {
                            id.quote_style = Some('"');
                        }
                    } else {
                        rewriter.rewrite(&mut o.expr)?;
                    }
                }
            }
            if let Some(ast::LimitClause::LimitOffset {
                limit: Some(l), offset, ..
            }) = &q.limit_clause
            {
                if offset.is_some() {
                    return Err(SelectError::new(Code::UnsupportedSyntax, "OFFSET is not supported"));
                }
                match l {
                    Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n.parse::<u64>().is_ok()) => {
                        has_limit_zero = matches!(&v.value, Value::Number(n, _) if n.parse::<u64>() == Ok(0));
                    }
                    other => {
                        return Err(SelectError::new(
                            Code::ParseUnexpectedToken,
                            format!("LIMIT takes a non-negative integer, found `{other}`"),
                        ));
                    }
                }
            }
        }
        Ok(Planned {
            statement: self.statement,
            outputs,
            has_limit_zero,
        })
    }
}

struct Rewriter<'a> {
    alias: Option<&'a str>,
    resolver: &'a mut dyn Resolver,
    dynamic: Dynamic,
    error: Option<SelectError>,
}

impl Rewriter<'_> {
    fn rewrite(&mut self, expr: &mut Expr) -> Result<()> {
        let _ = expr.visit(self);
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The output name and kind of a select item (before rewriting).
    fn output_of(&self, expr: &Expr, index: usize) -> (String, OutKind) {
        match reference_path(expr, self.alias) {
            Some((path, _)) if !path.is_empty() => match path.last() {
                Some(Seg::Key(k)) => (k.clone(), OutKind::JsonValue),
                _ => (format!("_{}", index + 1), OutKind::JsonValue),
            },
            Some(_) => (format!("_{}", index + 1), OutKind::JsonRecord),
            None => (format!("_{}", index + 1), OutKind::Value),
        }
    }

    fn is_dynamic_ref(&self, e: &Expr) -> bool {
        self.dynamic != Dynamic::Typed && reference_path(e, self.alias).is_some()
    }

    /// Wrap `e` in the conversion `want` asks for, if `e` is an untyped reference.
    fn coerce(&self, e: &mut Expr, want: Hint) {
        if !self.is_dynamic_ref(e) {
            return;
        }
        let f = match (want, self.dynamic) {
            (Hint::Number, Dynamic::Csv) => "quarry_csv_num",
            (Hint::Number, Dynamic::Json) => "quarry_json_num",
            (Hint::String, Dynamic::Json) => "quarry_json_str",
            (Hint::Timestamp, Dynamic::Csv) => "quarry_to_timestamp",
            (Hint::Timestamp, Dynamic::Json) => {
                let inner = std::mem::replace(e, Expr::value(Value::Null));
                *e = call("quarry_to_timestamp", vec![call("quarry_json_str", vec![inner])]);
                return;
            }
            _ => return,
        };
        let inner = std::mem::replace(e, Expr::value(Value::Null));
        *e = call(f, vec![inner]);
    }

    fn hint(&self, e: &Expr) -> Hint {
        match e {
            Expr::Value(v) => match &v.value {
                Value::Number(..) => Hint::Number,
                Value::SingleQuotedString(_) | Value::DoubleQuotedString(_) => Hint::String,
                _ => Hint::Unknown,
            },
            Expr::UnaryOp {
                op: UnaryOperator::Minus | UnaryOperator::Plus,
                expr,
            } => self.hint(expr),
            Expr::Nested(e) => self.hint(e),
            Expr::BinaryOp { op, .. } => match op {
                BinaryOperator::Plus
                | BinaryOperator::Minus
                | BinaryOperator::Multiply
                | BinaryOperator::Divide
                | BinaryOperator::Modulo => Hint::Number,
                BinaryOperator::StringConcat => Hint::String,
                _ => Hint::Unknown,
            },
            Expr::Cast { data_type, .. } => match data_type {
                SqlType::Int(_) | SqlType::Integer(_) | SqlType::BigInt(_) | SqlType::Float(_) | SqlType::Double(_) | SqlType::Real => {
                    Hint::Number
                }
                SqlType::Decimal(_) | SqlType::Numeric(_) | SqlType::DoublePrecision => Hint::Number,
                SqlType::String(_) | SqlType::Varchar(_) | SqlType::Char(_) | SqlType::Text => Hint::String,
                SqlType::Timestamp(..) => Hint::Timestamp,
                _ => Hint::Unknown,
            },
            Expr::Function(f) => {
                let name = function_name(f);
                match name.as_str() {
                    "SUM" | "AVG" | "COUNT" | "CHAR_LENGTH" | "CHARACTER_LENGTH" | "DATE_DIFF" => Hint::Number,
                    "LOWER" | "UPPER" | "TO_STRING" => Hint::String,
                    "UTCNOW" | "TO_TIMESTAMP" | "DATE_ADD" => Hint::Timestamp,
                    _ => Hint::Unknown,
                }
            }
            Expr::Substring { .. } | Expr::Trim { .. } => Hint::String,
            Expr::Extract { .. } => Hint::Number,
            _ => Hint::Unknown,
        }
    }

    fn fail(&mut self, e: SelectError) -> ControlFlow<()> {
        self.error = Some(e);
        ControlFlow::Break(())
    }

    fn pre(&mut self, expr: &mut Expr) -> Result<()> {
        if let Some((path, quoted)) = reference_path(expr, self.alias) {
            let r = if path.is_empty() {
                self.resolver.record()?
            } else {
                self.resolver.column(&path, quoted)?
            };
            *expr = Expr::Identifier(Ident::with_quote('"', r.column));
            return Ok(());
        }
        match expr {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::CompoundFieldAccess { .. } => {
                return Err(SelectError::new(
                    Code::InvalidColumnIndex,
                    format!("`{expr}` does not name a column"),
                ));
            }
            Expr::BinaryOp { left, op, right } => match op {
                BinaryOperator::Plus
                | BinaryOperator::Minus
                | BinaryOperator::Multiply
                | BinaryOperator::Divide
                | BinaryOperator::Modulo => {
                    self.coerce(left, Hint::Number);
                    self.coerce(right, Hint::Number);
                }
                BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq => {
                    let (hl, hr) = (self.hint(left), self.hint(right));
                    let both = self.is_dynamic_ref(left) && self.is_dynamic_ref(right);
                    if both {
                        self.coerce(left, Hint::String);
                        self.coerce(right, Hint::String);
                    } else {
                        self.coerce(left, hr);
                        self.coerce(right, hl);
                    }
                }
                BinaryOperator::StringConcat => {
                    self.coerce(left, Hint::String);
                    self.coerce(right, Hint::String);
                }
                BinaryOperator::And | BinaryOperator::Or => {}
                other => {
                    return Err(SelectError::new(
                        Code::UnsupportedSyntax,
                        format!("operator `{other}` is not supported"),
                    ));
                }
            },
            Expr::UnaryOp { op, expr: inner } => match op {
                UnaryOperator::Minus | UnaryOperator::Plus => self.coerce(inner, Hint::Number),
                UnaryOperator::Not => {}
                other => {
                    return Err(SelectError::new(
                        Code::UnsupportedSyntax,
                        format!("operator `{other}` is not supported"),
                    ));
                }
            },
            Expr::Between { expr: e, low, high, .. } => {
                let h = match self.hint(low) {
                    Hint::Unknown => self.hint(high),
                    h => h,
                };
                self.coerce(e, h);
            }
            Expr::InList { expr: e, list, .. } => {
                let h = list
                    .iter()
                    .map(|x| self.hint(x))
                    .find(|h| *h != Hint::Unknown)
                    .unwrap_or(Hint::Unknown);
                self.coerce(e, if h == Hint::Unknown { Hint::String } else { h });
                for x in list.iter_mut() {
                    self.coerce(x, if h == Hint::Unknown { Hint::String } else { h });
                }
            }
            Expr::Like {
                expr: e,
                pattern,
                any: false,
                escape_char,
                ..
            } => {
                self.coerce(e, Hint::String);
                self.coerce(pattern, Hint::String);
                normalize_escape(pattern, escape_char)?;
            }
            Expr::Substring {
                expr: e,
                substring_from,
                substring_for,
                ..
            } => {
                self.coerce(e, Hint::String);
                if let Some(f) = substring_from {
                    self.coerce(f, Hint::Number);
                }
                if let Some(f) = substring_for {
                    self.coerce(f, Hint::Number);
                }
            }
            Expr::Trim {
                expr: e,
                trim_what,
                trim_characters: None,
                ..
            } => {
                self.coerce(e, Hint::String);
                if let Some(w) = trim_what {
                    self.coerce(w, Hint::String);
                }
            }
            Expr::Extract { expr: e, .. } => {
                if matches!(e.as_ref(), Expr::Value(v) if v.value == Value::Null) {
                    // A bare NULL has no type; EXTRACT of it is NULL, as on AWS.
                    **e = call("quarry_to_timestamp", vec![Expr::value(Value::Null)]);
                } else {
                    self.coerce(e, Hint::Timestamp);
                }
            }
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                if let Some(op) = operand {
                    let h = conditions
                        .iter()
                        .map(|c| self.hint(&c.condition))
                        .find(|h| *h != Hint::Unknown)
                        .unwrap_or(Hint::String);
                    self.coerce(op, h);
                }
                for c in conditions.iter_mut() {
                    self.coerce(&mut c.result, Hint::String);
                }
                if let Some(e) = else_result {
                    self.coerce(e, Hint::String);
                }
            }
            Expr::Cast {
                kind,
                expr: e,
                data_type,
                format: None,
                ..
            } => {
                if !matches!(kind, CastKind::Cast) {
                    return Err(SelectError::new(Code::UnsupportedSyntax, "only CAST(x AS type) is supported"));
                }
                let target = cast_target(data_type)?;
                if self.dynamic == Dynamic::Json {
                    self.coerce(e, Hint::String);
                }
                match target {
                    CastTo::Sql(t) => *data_type = t,
                    CastTo::Timestamp => {
                        let inner = std::mem::replace(e.as_mut(), Expr::value(Value::Null));
                        *expr = call("quarry_to_timestamp", vec![inner]);
                    }
                    CastTo::Bool => {
                        let inner = std::mem::replace(e.as_mut(), Expr::value(Value::Null));
                        *expr = call("quarry_to_bool", vec![inner]);
                    }
                }
            }
            Expr::Function(f) => self.function(f)?,
            Expr::IsNull(inner) | Expr::IsNotNull(inner) => self.coerce(inner, Hint::String),
            Expr::IsUnknown(inner) => *expr = Expr::IsNull(std::mem::replace(inner, Box::new(Expr::value(Value::Null)))),
            Expr::IsNotUnknown(inner) => *expr = Expr::IsNotNull(std::mem::replace(inner, Box::new(Expr::value(Value::Null)))),
            Expr::Nested(_) | Expr::Value(_) => {}
            Expr::IsTrue(_) | Expr::IsFalse(_) | Expr::IsNotTrue(_) | Expr::IsNotFalse(_) => {}
            other => {
                return Err(SelectError::new(
                    Code::UnsupportedSyntax,
                    format!("unsupported expression `{other}`"),
                ));
            }
        }
        if let Expr::Function(f) = expr
            && let Some(new) = self.rename_function(f)?
        {
            *expr = new;
        }
        Ok(())
    }

    fn function(&mut self, f: &mut ast::Function) -> Result<()> {
        let name = function_name(f);
        if name.starts_with("QUARRY_") {
            return Ok(());
        }
        let want = function_args(&name)
            .ok_or_else(|| SelectError::new(Code::UnsupportedFunction, format!("function {name} is not supported by S3 Select")))?;
        if f.over.is_some() || f.filter.is_some() {
            return Err(SelectError::new(
                Code::UnsupportedSyntax,
                format!("window or FILTER clauses on {name} are not supported"),
            ));
        }
        let dynamic = self.dynamic;
        let alias = self.alias;
        let FunctionArguments::List(list) = &mut f.args else {
            if name == "UTCNOW" {
                return Ok(());
            }
            return Err(SelectError::new(
                Code::ParseUnexpectedToken,
                format!("{name} needs an argument list"),
            ));
        };
        let n = list.args.len();
        for (i, arg) in list.args.iter_mut().enumerate() {
            let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg else {
                continue;
            };
            let want_here = match (want, name.as_str(), i) {
                (ArgWant::Number, _, _) => Hint::Number,
                (ArgWant::String, _, _) => Hint::String,
                (ArgWant::Special, "DATE_ADD", 0) | (ArgWant::Special, "DATE_DIFF", 0) => {
                    // The date part is a bare word: pass it as a string.
                    let part = match e {
                        Expr::Identifier(id) => id.value.to_ascii_lowercase(),
                        other => {
                            return Err(SelectError::new(
                                Code::ParseUnexpectedToken,
                                format!("{name} expects a date part (year, month, day, hour, minute, second), found `{other}`"),
                            ));
                        }
                    };
                    *e = Expr::value(Value::SingleQuotedString(part));
                    continue;
                }
                (ArgWant::Special, "DATE_ADD", 1) => Hint::Number,
                (ArgWant::Special, "DATE_ADD", 2) | (ArgWant::Special, "DATE_DIFF", _) => Hint::Timestamp,
                (ArgWant::Special, "TO_STRING", 0) => Hint::Timestamp,
                (ArgWant::Special, "TO_TIMESTAMP", _) | (ArgWant::Special, "TO_STRING", _) => Hint::String,
                _ => Hint::Unknown,
            };
            if dynamic != Dynamic::Typed && reference_path(e, alias).is_some() {
                self.coerce(e, want_here);
            }
        }
        let arity_ok = match name.as_str() {
            "COUNT" | "SUM" | "AVG" | "MIN" | "MAX" | "CHAR_LENGTH" | "CHARACTER_LENGTH" | "LOWER" | "UPPER" | "TO_TIMESTAMP" => n == 1,
            "NULLIF" | "TO_STRING" => n == 2,
            "DATE_ADD" | "DATE_DIFF" => n == 3,
            "UTCNOW" => n == 0,
            _ => n >= 1,
        };
        if !arity_ok {
            return Err(SelectError::new(
                Code::ParseUnexpectedToken,
                format!("wrong number of arguments ({n}) for {name}"),
            ));
        }
        Ok(())
    }

    /// AWS functions DataFusion lacks or defines differently run as our own UDFs.
    fn rename_function(&mut self, f: &mut ast::Function) -> Result<Option<Expr>> {
        let name = function_name(f);
        let ours = match name.as_str() {
            "DATE_ADD" => "quarry_date_add",
            "DATE_DIFF" => "quarry_date_diff",
            "TO_STRING" => "quarry_to_string",
            "TO_TIMESTAMP" => "quarry_to_timestamp",
            "UTCNOW" => "quarry_utcnow",
            _ => return Ok(None),
        };
        let args = match &f.args {
            FunctionArguments::List(l) => l
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e.clone()),
                    other => Err(SelectError::new(
                        Code::ParseUnexpectedToken,
                        format!("unexpected argument `{other}`"),
                    )),
                })
                .collect::<Result<Vec<_>>>()?,
            _ => Vec::new(),
        };
        Ok(Some(call(ours, args)))
    }
}

impl VisitorMut for Rewriter<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match self.pre(expr) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => self.fail(e),
        }
    }

    fn pre_visit_query(&mut self, _: &mut ast::Query) -> ControlFlow<()> {
        self.fail(SelectError::new(Code::UnsupportedSyntax, "subqueries are not supported"))
    }
}

/// DataFusion's LIKE escapes with a backslash only: a pattern literal with another ESCAPE
/// character is rewritten to backslash escapes (a literal backslash becomes `\\`).
fn normalize_escape(pattern: &mut Expr, escape: &mut Option<ast::ValueWithSpan>) -> Result<()> {
    let Some(esc) = escape.as_ref() else {
        return Ok(());
    };
    let e = match &esc.value {
        Value::SingleQuotedString(s) if s.chars().count() == 1 => s.chars().next().unwrap_or('\\'),
        other => {
            return Err(SelectError::new(
                Code::ParseUnexpectedToken,
                format!("ESCAPE takes one character, found {other}"),
            ));
        }
    };
    if e == '\\' {
        return Ok(());
    }
    let Expr::Value(v) = pattern else {
        return Err(SelectError::new(
            Code::UnsupportedSyntax,
            "LIKE with ESCAPE needs a literal pattern",
        ));
    };
    let Value::SingleQuotedString(p) = &v.value else {
        return Err(SelectError::new(Code::UnsupportedSyntax, "LIKE with ESCAPE needs a string pattern"));
    };
    let mut out = String::with_capacity(p.len() + 4);
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == e {
            let Some(n) = chars.next() else {
                return Err(SelectError::new(
                    Code::ParseUnexpectedToken,
                    "the LIKE pattern ends with its escape character",
                ));
            };
            if matches!(n, '%' | '_' | '\\') {
                out.push('\\');
            }
            out.push(n);
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    v.value = Value::SingleQuotedString(out);
    *escape = None;
    Ok(())
}

enum CastTo {
    Sql(SqlType),
    Timestamp,
    Bool,
}

fn cast_target(t: &SqlType) -> Result<CastTo> {
    Ok(match t {
        SqlType::Int(_) | SqlType::Integer(_) | SqlType::BigInt(_) | SqlType::SmallInt(_) | SqlType::TinyInt(_) => {
            CastTo::Sql(SqlType::BigInt(None))
        }
        SqlType::Float(_) | SqlType::Double(_) | SqlType::DoublePrecision | SqlType::Real => {
            CastTo::Sql(SqlType::Double(ast::ExactNumberInfo::None))
        }
        SqlType::Decimal(_) | SqlType::Numeric(_) => CastTo::Sql(SqlType::Double(ast::ExactNumberInfo::None)),
        SqlType::String(_) | SqlType::Varchar(_) | SqlType::Char(_) | SqlType::Text | SqlType::CharVarying(_) => {
            CastTo::Sql(SqlType::Varchar(None))
        }
        SqlType::Bool | SqlType::Boolean => CastTo::Bool,
        SqlType::Timestamp(..) => CastTo::Timestamp,
        other => {
            return Err(SelectError::new(
                Code::InvalidDataType,
                format!("CAST to {other} is not supported (INT, FLOAT, DECIMAL, STRING, BOOL, TIMESTAMP are)"),
            ));
        }
    })
}

fn function_name(f: &ast::Function) -> String {
    f.name.to_string().trim_matches('"').to_ascii_uppercase()
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(ast::Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: args.into_iter().map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e))).collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// If `e` is a column reference, its path with the alias removed (empty: the alias alone,
/// the whole record) and whether its first name was quoted.
fn reference_path(e: &Expr, alias: Option<&str>) -> Option<(Vec<Seg>, bool)> {
    let mut idents: Vec<&Ident> = Vec::new();
    let mut tail: Vec<Seg> = Vec::new();
    match e {
        Expr::Identifier(id) => idents.push(id),
        Expr::CompoundIdentifier(ids) => idents.extend(ids.iter()),
        Expr::CompoundFieldAccess { root, access_chain } => {
            match root.as_ref() {
                Expr::Identifier(id) => idents.push(id),
                Expr::CompoundIdentifier(ids) => idents.extend(ids.iter()),
                _ => return None,
            }
            for a in access_chain {
                match a {
                    ast::AccessExpr::Dot(Expr::Identifier(id)) => tail.push(Seg::Key(id.value.clone())),
                    // A keyword such as `user` parses as a call without arguments.
                    ast::AccessExpr::Dot(Expr::Function(f)) if matches!(f.args, FunctionArguments::None) && f.name.0.len() == 1 => {
                        tail.push(Seg::Key(f.name.to_string()));
                    }
                    ast::AccessExpr::Subscript(ast::Subscript::Index { index: Expr::Value(v) }) => match &v.value {
                        Value::Number(n, _) => tail.push(Seg::Index(n.parse().ok()?)),
                        Value::SingleQuotedString(s) => tail.push(Seg::Key(s.clone())),
                        _ => return None,
                    },
                    _ => return None,
                }
            }
        }
        _ => return None,
    }
    let mut quoted = idents.first().is_some_and(|i| i.quote_style.is_some());
    let mut start = 0;
    if let (Some(first), Some(a)) = (idents.first(), alias)
        && (first.quote_style.is_none() && first.value.eq_ignore_ascii_case(a) || first.value == a)
    {
        start = 1;
        quoted = idents.get(1).is_some_and(|i| i.quote_style.is_some());
    }
    let mut path: Vec<Seg> = idents[start..].iter().map(|i| Seg::Key(i.value.clone())).collect();
    path.extend(tail);
    Some((path, quoted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_paths_are_cut_out() {
        let (t, p) = cut_from_path("SELECT * FROM S3Object[*].a.\"b c\"[0] s WHERE x = 's3object.y'").unwrap();
        assert_eq!(t, "SELECT * FROM S3Object s WHERE x = 's3object.y'");
        assert_eq!(p, vec![Seg::Wildcard, Seg::Key("a".into()), Seg::Key("b c".into()), Seg::Index(0)]);
        assert!(cut_from_path("SELECT 1 FROM t").is_err());
    }

    #[test]
    fn missing_becomes_null() {
        assert_eq!(
            rewrite_missing("SELECT * FROM S3Object s WHERE s.a IS MISSING"),
            "SELECT * FROM S3Object s WHERE s.a IS UNKNOWN"
        );
        assert_eq!(
            rewrite_missing("WHERE s.a is not missing AND b = 'is missing'"),
            "WHERE s.a is not UNKNOWN AND b = 'is missing'"
        );
        assert_eq!(rewrite_missing("SELECT missing FROM S3Object"), "SELECT missing FROM S3Object");
    }

    #[test]
    fn trim_without_characters() {
        assert_eq!(rewrite_trim("TRIM(LEADING FROM s)"), "TRIM(LEADING ' ' FROM s)");
        assert_eq!(rewrite_trim("trim( both  from s)"), "trim( both ' '  from s)");
        assert_eq!(rewrite_trim("TRIM(LEADING 'x' FROM s)"), "TRIM(LEADING 'x' FROM s)");
        assert_eq!(rewrite_trim("SELECT leading FROM S3Object"), "SELECT leading FROM S3Object");
    }

    #[test]
    fn only_select_from_s3object() {
        assert_eq!(parse("SELECT * FROM t").unwrap_err().code, Code::ParseSelectFailure);
        assert_eq!(parse("DELETE FROM S3Object").unwrap_err().code, Code::ParseSelectFailure);
        assert_eq!(parse("SELECT * FROM S3Object WHERE").unwrap_err().code, Code::ParseUnexpectedToken);
        assert!(parse("select * from s3object s where s._1 = 'a'").is_ok());
    }
}
