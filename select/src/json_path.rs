//! Streaming a JSON DOCUMENT along `FROM S3Object[*].a.b[*]`: the bytes are scanned once,
//! descending only into the keys of the path, and each element of the target array is cut
//! out as its own record. Memory is one element, however large the document: a multi-GiB
//! `{"events": [...]}` streams element by element.

use std::collections::VecDeque;

use crate::sql::Seg;

/// The keys to descend through, when `path` has the streamable shape
/// `[*]? .key (.key)* [*]`.
pub(crate) fn streamable(path: &[Seg]) -> Option<Vec<String>> {
    let path = path.strip_prefix(&[Seg::Wildcard]).unwrap_or(path);
    let (last, keys) = path.split_last()?;
    if *last != Seg::Wildcard || keys.is_empty() {
        return None;
    }
    keys.iter()
        .map(|s| match s {
            Seg::Key(k) => Some(k.clone()),
            _ => None,
        })
        .collect()
}

struct Frame {
    object: bool,
    /// Path keys matched to reach this container, when it is on the path.
    level: Option<usize>,
    /// Inside an object: the next string is a key.
    expect_key: bool,
    /// The key whose value comes next.
    key: Option<Vec<u8>>,
}

pub(crate) struct PathSplitter {
    keys: Vec<Vec<u8>>,
    stack: Vec<Frame>,
    in_string: bool,
    escaped: bool,
    reading_key: bool,
    key_buf: Vec<u8>,
    /// Depth of the target array whose elements are being cut out.
    target: Option<usize>,
    capture: Vec<u8>,
    capturing: bool,
    cdepth: usize,
    cstring: bool,
    cescaped: bool,
    pub ready: VecDeque<Vec<u8>>,
    pub limit: usize,
}

impl PathSplitter {
    pub fn new(keys: Vec<String>, limit: usize) -> Self {
        Self {
            keys: keys.into_iter().map(String::into_bytes).collect(),
            stack: Vec::new(),
            in_string: false,
            escaped: false,
            reading_key: false,
            key_buf: Vec::new(),
            target: None,
            capture: Vec::new(),
            capturing: false,
            cdepth: 0,
            cstring: false,
            cescaped: false,
            ready: VecDeque::new(),
            limit,
        }
    }

    /// Whether an element being cut out has outgrown the limit.
    pub fn too_large(&self) -> bool {
        self.capture.len() > self.limit
    }

    fn emit(&mut self) {
        let rec = std::mem::take(&mut self.capture);
        if !rec.iter().all(u8::is_ascii_whitespace) {
            self.ready.push_back(rec);
        }
        self.capturing = false;
    }

    /// Scan `chunk`; complete elements land in `ready`.
    pub fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if self.capturing {
                self.capture_byte(b);
                continue;
            }
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                    if self.reading_key {
                        self.reading_key = false;
                        let k = std::mem::take(&mut self.key_buf);
                        if let Some(top) = self.stack.last_mut() {
                            top.key = Some(k);
                        }
                        continue;
                    }
                }
                if self.reading_key {
                    self.key_buf.push(b);
                }
                continue;
            }
            if self.target == Some(self.stack.len()) && !b.is_ascii_whitespace() && b != b',' && b != b']' {
                // An element of the target array starts here.
                self.capturing = true;
                self.cdepth = 0;
                self.cstring = false;
                self.cescaped = false;
                self.capture_byte(b);
                continue;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    self.reading_key = self.stack.last().is_some_and(|f| f.object && f.expect_key);
                    self.key_buf.clear();
                }
                b':' => {
                    if let Some(top) = self.stack.last_mut() {
                        top.expect_key = false;
                    }
                }
                b',' => {
                    if let Some(top) = self.stack.last_mut().filter(|t| t.object) {
                        top.expect_key = true;
                        top.key = None;
                    }
                }
                b'{' | b'[' => {
                    let level = match self.stack.last() {
                        None => Some(0),
                        Some(p) => match (p.level, &p.key) {
                            (Some(l), Some(k)) if p.object && l < self.keys.len() && *k == self.keys[l] => Some(l + 1),
                            _ => None,
                        },
                    };
                    let object = b == b'{';
                    self.stack.push(Frame {
                        object,
                        level,
                        expect_key: object,
                        key: None,
                    });
                    if !object && level == Some(self.keys.len()) {
                        self.target = Some(self.stack.len());
                    }
                }
                b'}' | b']' => {
                    if self.target == Some(self.stack.len()) {
                        self.target = None;
                    }
                    self.stack.pop();
                }
                _ => {}
            }
        }
    }

    fn capture_byte(&mut self, b: u8) {
        if self.cstring {
            self.capture.push(b);
            if self.cescaped {
                self.cescaped = false;
            } else if b == b'\\' {
                self.cescaped = true;
            } else if b == b'"' {
                self.cstring = false;
            }
            return;
        }
        match b {
            b'"' => {
                self.cstring = true;
                self.capture.push(b);
            }
            b'{' | b'[' => {
                self.cdepth += 1;
                self.capture.push(b);
            }
            b'}' | b']' if self.cdepth > 0 => {
                self.cdepth -= 1;
                self.capture.push(b);
                if self.cdepth == 0 {
                    self.emit();
                }
            }
            b']' => {
                // A scalar element ends with its array.
                self.emit();
                if self.target == Some(self.stack.len()) {
                    self.target = None;
                }
                self.stack.pop();
            }
            b',' if self.cdepth == 0 => self.emit(),
            _ => self.capture.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(doc: &str, keys: &[&str], chunk: usize) -> Vec<String> {
        let mut s = PathSplitter::new(keys.iter().map(|k| k.to_string()).collect(), 1 << 20);
        for piece in doc.as_bytes().chunks(chunk) {
            s.feed(piece);
        }
        s.ready
            .into_iter()
            .map(|r| String::from_utf8(r).unwrap().trim().to_string())
            .collect()
    }

    #[test]
    fn cuts_elements_of_the_target_array_only() {
        let doc = r#"{"meta": {"events": [0]}, "x": "\"events\": [9]", "events": [{"a": [1, {"b": "]"}]}, 2, "s,]", [3, 4], null], "tail": [5]}
                     {"events": [{"z": 1}]}"#;
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(
                split(doc, &["events"], chunk),
                vec![r#"{"a": [1, {"b": "]"}]}"#, "2", r#""s,]""#, "[3, 4]", "null", r#"{"z": 1}"#],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn nested_paths() {
        let doc = r#"{"a": {"b": [1, 2], "c": [3]}, "b": [4]}"#;
        assert_eq!(split(doc, &["a", "b"], 5), vec!["1", "2"]);
        assert_eq!(split(doc, &["a", "c"], 5), vec!["3"]);
        assert!(split(doc, &["a", "x"], 5).is_empty());
    }

    #[test]
    fn shapes() {
        assert_eq!(
            streamable(&[Seg::Wildcard, Seg::Key("e".into()), Seg::Wildcard]),
            Some(vec!["e".to_string()])
        );
        assert_eq!(
            streamable(&[Seg::Key("a".into()), Seg::Key("b".into()), Seg::Wildcard]),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(streamable(&[Seg::Wildcard]), None);
        assert_eq!(streamable(&[Seg::Key("a".into())]), None);
        assert_eq!(streamable(&[Seg::Key("a".into()), Seg::Index(0), Seg::Wildcard]), None);
    }
}
