//! Listing over an ordered key index: prefix, delimiter roll-up into common prefixes, a
//! resume marker and a page size. Pure logic over a [`Source`] (the index's `Current`
//! table), so a page costs O(page × log n) whatever the bucket's size: each common prefix
//! is skipped with one seek.

use crate::error::Result;
use std::collections::BTreeMap;
use std::ops::Bound;

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct ListQuery<'a> {
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    /// Resume after this key or common prefix (exclusive).
    pub start_after: Option<&'a str>,
    /// Page size; 0 returns an empty, untruncated page.
    pub max: usize,
}

/// One entry of a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListItem<V> {
    Object(String, V),
    CommonPrefix(String),
}

impl<V> ListItem<V> {
    /// The key or prefix, which orders the page.
    pub fn name(&self) -> &str {
        match self {
            Self::Object(k, _) | Self::CommonPrefix(k) => k,
        }
    }
}

/// A page of results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPage<V> {
    pub items: Vec<ListItem<V>>,
    /// Whether more entries follow the last item.
    pub truncated: bool,
}

impl<V> ListPage<V> {
    /// The marker to resume after: the last key or prefix of a truncated page.
    pub fn next_marker(&self) -> Option<&str> {
        if self.truncated {
            self.items.last().map(ListItem::name)
        } else {
            None
        }
    }
}

/// The smallest byte string greater than every string that starts with `p`: UTF-8 never
/// contains 0xFF, so `p` + 0xFF bounds them all.
fn past_prefix(p: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(p.len() + 1);
    v.extend_from_slice(p);
    v.push(0xFF);
    v
}

/// An ordered map of object keys (their UTF-8 bytes) to values that a listing walks: the
/// index's `Current` table in the store, a `BTreeMap` in tests.
pub trait Source {
    type Value;
    /// Visit the entries from `from` on, ascending, until `visit` returns false.
    fn scan_from(&self, from: Bound<&[u8]>, visit: &mut dyn FnMut(&[u8], Self::Value) -> bool) -> Result<()>;
}

impl<V: Clone> Source for BTreeMap<Vec<u8>, V> {
    type Value = V;
    fn scan_from(&self, from: Bound<&[u8]>, visit: &mut dyn FnMut(&[u8], V) -> bool) -> Result<()> {
        for (k, v) in self.range::<[u8], _>((from, Bound::Unbounded)) {
            if !visit(k, v.clone()) {
                break;
            }
        }
        Ok(())
    }
}

/// List one page of `src`. One ordered walk, which seeks again only to skip past a
/// rolled-up common prefix, so a page costs its size (plus a seek per common prefix)
/// whatever the number of keys.
pub fn list<S: Source>(src: &S, q: &ListQuery<'_>) -> Result<ListPage<S::Value>> {
    let mut page = ListPage {
        items: Vec::new(),
        truncated: false,
    };
    if q.max == 0 {
        return Ok(page);
    }
    let prefix = q.prefix.as_bytes();
    let mut lower: Vec<u8> = match q.start_after {
        Some(s) if s.as_bytes() >= prefix => s.as_bytes().to_vec(),
        _ => prefix.to_vec(),
    };
    let mut exclusive = q.start_after.is_some_and(|s| s.as_bytes() >= prefix);
    let delimiter = q.delimiter.filter(|d| !d.is_empty());
    loop {
        let mut next: Option<Vec<u8>> = None;
        let mut done = false;
        let from = if exclusive {
            Bound::Excluded(&lower[..])
        } else {
            Bound::Included(&lower[..])
        };
        src.scan_from(from, &mut |key, value| {
            if !key.starts_with(prefix) {
                done = true;
                return false;
            }
            let rolled = delimiter.and_then(|d| {
                let rest = &key[prefix.len()..];
                memfind(rest, d.as_bytes()).map(|at| &key[..prefix.len() + at + d.len()])
            });
            if let Some(cp) = rolled {
                // A prefix at or before the marker was returned on an earlier page.
                let seen = q.start_after.is_some_and(|s| cp <= s.as_bytes());
                if !seen {
                    if page.items.len() == q.max {
                        page.truncated = true;
                        done = true;
                        return false;
                    }
                    page.items.push(ListItem::CommonPrefix(utf8(cp)));
                }
                next = Some(past_prefix(cp));
                return false;
            }
            if page.items.len() == q.max {
                page.truncated = true;
                done = true;
                return false;
            }
            page.items.push(ListItem::Object(utf8(key), value));
            true
        })?;
        match next {
            Some(n) if !done => {
                lower = n;
                exclusive = false;
            }
            _ => return Ok(page),
        }
    }
}

fn utf8(b: &[u8]) -> String {
    // Index keys come from validated `ObjectKey`s, and a cut after a complete delimiter
    // (itself UTF-8) keeps the string valid.
    String::from_utf8(b.to_vec()).expect("index keys are UTF-8")
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return hay.iter().position(|b| *b == needle[0]);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn index(keys: &[&str]) -> BTreeMap<Vec<u8>, ()> {
        keys.iter().map(|k| (k.as_bytes().to_vec(), ())).collect()
    }

    fn names(p: &ListPage<()>) -> Vec<String> {
        p.items
            .iter()
            .map(|i| match i {
                ListItem::Object(k, _) => k.clone(),
                ListItem::CommonPrefix(p) => format!("{p}*"),
            })
            .collect()
    }

    #[test]
    fn delimiter_rolls_up() {
        let idx = index(&["a", "a/b", "a/c/d", "b/x", "b/y", "c"]);
        let p = list(
            &idx,
            &ListQuery {
                delimiter: Some("/"),
                max: 1000,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(names(&p), ["a", "a/*", "b/*", "c"]);
        let p = list(
            &idx,
            &ListQuery {
                prefix: "a/",
                delimiter: Some("/"),
                max: 1000,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(names(&p), ["a/b", "a/c/*"]);
    }

    #[test]
    fn pages_resume_after_prefix() {
        let idx = index(&["a/1", "a/2", "b/1", "c"]);
        let q = |after| ListQuery {
            delimiter: Some("/"),
            start_after: after,
            max: 1,
            ..Default::default()
        };
        let p1 = list(&idx, &q(None)).unwrap();
        assert_eq!((names(&p1), p1.truncated), (vec!["a/*".to_string()], true));
        let p2 = list(&idx, &q(p1.next_marker())).unwrap();
        assert_eq!(names(&p2), ["b/*"]);
        let p3 = list(&idx, &q(p2.next_marker())).unwrap();
        assert_eq!((names(&p3), p3.truncated), (vec!["c".to_string()], false));
    }

    fn model(keys: &[String], prefix: &str, delim: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in keys {
            if !k.starts_with(prefix) || k.ends_with('é') {
                continue;
            }
            let name = match delim.and_then(|d| k[prefix.len()..].find(d).map(|i| (i, d))) {
                Some((i, d)) => format!("{}*", &k[..prefix.len() + i + d.len()]),
                None => k.clone(),
            };
            if out.last() != Some(&name) {
                out.push(name);
            }
        }
        out
    }

    proptest! {
        #[test]
        fn paging_equals_model(keys in proptest::collection::btree_set("[ab/é]{1,5}", 0..40), prefix in "[ab/]{0,2}", page in 1usize..5, use_delim: bool) {
            let keys: Vec<String> = keys.into_iter().collect();
            // Keys ending in 'é' stand for keys whose current version is a delete marker.
            // (The source holds only visible keys, as `Current` does.)
            let idx: BTreeMap<Vec<u8>, ()> = keys.iter().filter(|k| !k.ends_with('é')).map(|k| (k.as_bytes().to_vec(), ())).collect();
            let delim = use_delim.then_some("/");
            let mut got = Vec::new();
            let mut marker: Option<String> = None;
            loop {
                let p = list(&idx, &ListQuery { prefix: &prefix, delimiter: delim, start_after: marker.as_deref(), max: page }).unwrap();
                prop_assert!(p.items.len() <= page);
                got.extend(p.items.iter().map(|i| match i {
                    ListItem::Object(k, _) => k.clone(),
                    ListItem::CommonPrefix(p) => format!("{p}*"),
                }));
                match p.next_marker() { Some(m) => marker = Some(m.to_owned()), None => break }
            }
            prop_assert_eq!(got, model(&keys, &prefix, delim));
        }
    }
}
