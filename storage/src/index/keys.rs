//! Key layouts of the index tables: byte strings whose bytewise order is the order S3
//! lists in.
//!
//! - A bucket's keys start with its name and a 0 byte (bucket names never hold one).
//! - `Current`: bucket prefix, then the object key's bytes as they are.
//! - `Versions`/`Inline`: bucket prefix, the object key escaped (0x00 -> 0x00 0xFF) and
//!   terminated (0x00 0x01), then `!order` big-endian (newest first). The escape keeps
//!   the keys' own order and makes one key's versions a contiguous run that no longer key
//!   interleaves with.
//! - `Uploads`: bucket prefix, escaped and terminated key, upload id.
//! - `Parts`: bucket prefix, upload id, 0x00, part number big-endian.
//! - `Buckets`: the bucket name; `BucketConfigs`: bucket prefix, document name.
//! - `Data`: bucket prefix, shard file id.
//!
//! "Every key starting with P" is the range `[P, successor(P))`, successor(P) being P
//! with its last byte incremented (`prefix_end`).

/// `bucket 0x00`: the start of every key of a bucket.
pub fn bucket_prefix(bucket: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1);
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k
}

/// The first byte string after every string that starts with `prefix` (its last byte
/// below 0xFF incremented, what follows it dropped). Every prefix the index builds has
/// such a byte (a bucket prefix ends in 0x00); for one made only of 0xFF bytes, nothing
/// is after, and this is `None`.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let keep = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut k = prefix[..=keep].to_vec();
    k[keep] += 1;
    Some(k)
}

/// [`prefix_successor`] for the prefixes the index builds, which always have one.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    prefix_successor(prefix).expect("index prefixes always hold a byte below 0xFF")
}

/// `Current` key of an object.
pub fn current(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The object key of a `Current` key of `bucket`.
pub fn current_object_key<'a>(bucket: &str, k: &'a [u8]) -> Option<&'a str> {
    let rest = k.strip_prefix(bucket.as_bytes())?.strip_prefix(&[0])?;
    std::str::from_utf8(rest).ok()
}

fn push_escaped(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
}

/// Escaped form of a key prefix inside a bucket (no terminator): the start of the range of
/// every escaped key that begins with `prefix`.
pub fn escaped_prefix(bucket: &str, prefix: &str) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    push_escaped(&mut k, prefix.as_bytes());
    k
}

/// Every `Versions`/`Inline`/`Uploads` key of one object key starts with this.
pub fn object(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = escaped_prefix(bucket, key);
    k.extend_from_slice(&[0, 1]);
    k
}

/// `Versions`/`Inline` key of one version, by its order stamp (higher is newer).
pub fn version(bucket: &str, key: &str, order: u64) -> Vec<u8> {
    let mut k = object(bucket, key);
    k.extend_from_slice(&(!order).to_be_bytes());
    k
}

/// Split a `Versions` key of `bucket` into its object key and order stamp.
pub fn parse_version(bucket: &str, k: &[u8]) -> Option<(String, u64)> {
    let rest = k.strip_prefix(bucket.as_bytes())?.strip_prefix(&[0])?;
    let (key, tail) = unescape(rest)?;
    let order: [u8; 8] = tail.try_into().ok()?;
    Some((key, !u64::from_be_bytes(order)))
}

/// `Uploads` key.
pub fn upload(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut k = object(bucket, key);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

/// Split an `Uploads` key of `bucket` into object key and upload id.
pub fn parse_upload(bucket: &str, k: &[u8]) -> Option<(String, String)> {
    let rest = k.strip_prefix(bucket.as_bytes())?.strip_prefix(&[0])?;
    let (key, tail) = unescape(rest)?;
    Some((key, String::from_utf8(tail.to_vec()).ok()?))
}

/// Every `Parts` key of an upload starts with this.
pub fn parts_of(bucket: &str, upload_id: &str) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    k.extend_from_slice(upload_id.as_bytes());
    k.push(0);
    k
}

/// `Parts` key.
pub fn part(bucket: &str, upload_id: &str, number: u32) -> Vec<u8> {
    let mut k = parts_of(bucket, upload_id);
    k.extend_from_slice(&number.to_be_bytes());
    k
}

/// `Data` key of a shard file id.
pub fn data(bucket: &str, id: &str) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    k.extend_from_slice(id.as_bytes());
    k
}

/// `BucketConfigs` key.
pub fn bucket_config(bucket: &str, kind: &str) -> Vec<u8> {
    let mut k = bucket_prefix(bucket);
    k.extend_from_slice(kind.as_bytes());
    k
}

/// Undo `push_escaped` up to the terminator; the key and what follows it.
fn unescape(s: &[u8]) -> Option<(String, &[u8])> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == 0 {
            match s.get(i + 1)? {
                0xFF => out.push(0),
                1 => return Some((String::from_utf8(out).ok()?, &s[i + 2..])),
                _ => return None,
            }
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Escaped keys sort as the keys do, one key's versions sort newest first, and no
        /// other key's versions fall between them.
        #[test]
        fn escaped_order_is_key_order(a in "[a\\x00b/]{0,6}", b in "[a\\x00b/]{0,6}", oa: u64, ob: u64) {
            let (ka, kb) = (version("bk", &a, oa), version("bk", &b, ob));
            if a != b {
                prop_assert_eq!(a.as_bytes().cmp(b.as_bytes()), ka.cmp(&kb));
            } else {
                prop_assert_eq!(ob.cmp(&oa), ka.cmp(&kb));
            }
            prop_assert_eq!(parse_version("bk", &ka), Some((a.clone(), oa)));
            // The prefix range of a holds exactly the keys starting with a.
            let (lo, hi) = (escaped_prefix("bk", &a), prefix_end(&escaped_prefix("bk", &a)));
            prop_assert_eq!(kb >= lo && kb < hi, b.starts_with(a.as_str()));
        }
    }

    #[test]
    fn a_keys_versions_are_inside_its_prefix_range() {
        let obj = object("b", "k");
        let end = prefix_end(&obj);
        for order in [0, 1, 7, u64::MAX - 1, u64::MAX] {
            let v = version("b", "k", order);
            assert!(v >= obj && v < end, "order {order}");
        }
        assert!(version("b", "k/", 1) >= end);
        assert_eq!(prefix_successor(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF]), None);
    }

    #[test]
    fn buckets_do_not_overlap() {
        // "ab" < "ab-x" as names, and no key of "ab" sorts inside "ab-x"'s range.
        let end = prefix_end(&bucket_prefix("ab"));
        assert!(current("ab", "\u{10FFFF}zzz") < end);
        assert!(current("ab-x", "") > end);
        assert_eq!(current_object_key("ab", &current("ab", "k/ü")), Some("k/ü"));
        let u = upload("b", "k\0", "u1");
        assert_eq!(parse_upload("b", &u), Some(("k\0".to_owned(), "u1".to_owned())));
        assert!(part("b", "u1", 2) > part("b", "u1", 1) && part("b", "u1", 1).starts_with(&parts_of("b", "u1")));
        assert!(part("b", "u1", u32::MAX) < prefix_end(&bucket_prefix("b")));
    }
}
