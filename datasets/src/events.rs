//! Nested JSON event logs: objects within objects, arrays of objects, fields that are
//! sometimes missing or null, and non-ASCII text, as JSON lines or as one document
//! (`{"events": [...]}`, for `FROM S3Object[*].events[*]`).
//!
//! Each event: `event_id` (int), `ts` (RFC 3339 UTC), `type` (click/view/purchase/signup),
//! `user` {`id`, `name` (unicode), `tags` [strings, 0-3]}, `items` [{`sku`, `qty`, `price`}]
//! (purchases only), `geo` {`country`, `city`} (70% of events), `score` (float, 50%),
//! `ref` (string or null, 20% present).

use crate::rng::Rng;
use serde_json::{Value, json};
use std::io::Write;

const TYPES: [&str; 4] = ["click", "view", "purchase", "signup"];
const NAMES: [&str; 8] = ["Zoë", "Łukasz", "李雷", "Ana María", "Søren", "Ñandú", "Олег", "Amélie"];
const TAGS: [&str; 6] = ["new", "vip", "beta", "mobile", "ünïcode", "emoji 🚀"];
const PLACES: [(&str, &str); 5] = [
    ("DE", "Köln"),
    ("JP", "東京"),
    ("BR", "São Paulo"),
    ("US", "Austin"),
    ("FR", "Besançon"),
];

/// Event `i` for `seed`.
pub fn event(seed: u64, i: u64) -> Value {
    let mut r = Rng::stream(seed, i);
    let kind = r.pick(&TYPES);
    let secs = 1_700_000_000 + i * 7 + r.range(0, 6);
    let ts = time::OffsetDateTime::from_unix_timestamp(secs as i64).expect("in range");
    let ts = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        ts.year(),
        u8::from(ts.month()),
        ts.day(),
        ts.hour(),
        ts.minute(),
        ts.second()
    );
    let ntags = r.range(0, 3) as usize;
    let tags: Vec<&str> = (0..ntags).map(|_| r.pick(&TAGS)).collect();
    let mut e = json!({
        "event_id": i,
        "ts": ts,
        "type": kind,
        "user": {"id": r.range(1, 50_000), "name": r.pick(&NAMES), "tags": tags},
    });
    let obj = e.as_object_mut().expect("object");
    if kind == "purchase" {
        let n = r.range(1, 4);
        let items: Vec<Value> = (0..n).map(|_| json!({"sku": format!("SKU-{:05}", r.range(0, 99_999)), "qty": r.range(1, 5), "price": r.range(99, 99_999) as f64 / 100.0})).collect();
        obj.insert("items".into(), Value::Array(items));
    }
    if r.chance(70) {
        let (country, city) = r.pick(&PLACES);
        obj.insert("geo".into(), json!({"country": country, "city": city}));
    }
    if r.chance(50) {
        obj.insert("score".into(), json!(r.range(0, 10_000) as f64 / 100.0));
    }
    if r.chance(20) {
        let v = if r.chance(50) {
            Value::Null
        } else {
            json!(format!("campaign-{}", r.range(1, 30)))
        };
        obj.insert("ref".into(), v);
    }
    e
}

/// Events `range` as JSON lines.
pub fn write_jsonl(seed: u64, range: std::ops::Range<u64>, out: &mut impl Write) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
    for i in range {
        serde_json::to_writer(&mut w, &event(seed, i))?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Events `range` as one pretty-printed document `{"source": ..., "events": [...]}`.
pub fn write_document(seed: u64, range: std::ops::Range<u64>, out: &mut impl Write) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
    w.write_all(b"{\n  \"source\": \"quarry-datasets\",\n  \"events\": [\n")?;
    let mut first = true;
    for i in range {
        if !first {
            w.write_all(b",\n")?;
        }
        first = false;
        w.write_all(b"    ")?;
        serde_json::to_writer(&mut w, &event(seed, i))?;
    }
    w.write_all(b"\n  ]\n}\n")?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_vary_and_parse() {
        let mut out = Vec::new();
        write_jsonl(3, 0..500, &mut out).unwrap();
        let events: Vec<Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(events.len(), 500);
        assert!(events.iter().any(|e| e.get("geo").is_none()) && events.iter().any(|e| e.get("geo").is_some()));
        assert!(
            events
                .iter()
                .any(|e| e.get("items").is_some_and(|i| i.as_array().unwrap().len() > 1))
        );
        assert!(events.iter().any(|e| e.get("ref") == Some(&Value::Null)));
        let mut doc = Vec::new();
        write_document(3, 0..500, &mut doc).unwrap();
        let d: Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(d["events"].as_array().unwrap().len(), 500);
        assert_eq!(d["events"][7], events[7]);
    }
}
