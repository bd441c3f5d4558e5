//! Object integrity values: the MD5 behind ETags and the S3 checksum algorithms
//! (CRC32, CRC32C, CRC64NVME, SHA-1, SHA-256), computed in one pass over a body, plus the
//! rules for combining part checksums into a multipart object's checksum.

use crate::error::{Error, Result};
use md5::Digest as _;
use serde::{Deserialize, Serialize};

/// An S3 checksum algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    /// Every algorithm, in the order S3 documents them.
    pub const ALL: [Self; 5] = [Self::Crc32, Self::Crc32c, Self::Crc64Nvme, Self::Sha1, Self::Sha256];

    /// The name S3 uses in headers and XML (`CRC32`, `SHA256`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// Parse an S3 algorithm name, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// Length of the raw digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    fn crc(self) -> Option<crc_fast::CrcAlgorithm> {
        match self {
            Self::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            Self::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
            Self::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
            Self::Sha1 | Self::Sha256 => None,
        }
    }

    /// Whether the algorithm is a CRC (and so can describe a multipart object as a whole).
    pub fn is_crc(self) -> bool {
        self.crc().is_some()
    }

    /// The digest of `data` in one call.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = Hasher::new(self);
        h.update(data);
        h.finalize()
    }
}

/// Whether a multipart object's checksum covers the whole object or is a checksum of the
/// part checksums (`value-N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumType {
    FullObject,
    Composite,
}

impl ChecksumType {
    /// The name S3 uses (`FULL_OBJECT`, `COMPOSITE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FullObject => "FULL_OBJECT",
            Self::Composite => "COMPOSITE",
        }
    }
}

/// A stored checksum: the algorithm and the value as S3 shows it (base64, with `-N` for a
/// composite multipart checksum).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub value: String,
    pub kind: ChecksumType,
}

impl Checksum {
    /// A full-object checksum from a raw digest.
    pub fn from_digest(algorithm: ChecksumAlgorithm, raw: &[u8]) -> Self {
        Self {
            algorithm,
            value: base64_simd::STANDARD.encode_to_string(raw),
            kind: ChecksumType::FullObject,
        }
    }

    /// The raw digest of a full-object value.
    pub fn raw(&self) -> Result<Vec<u8>> {
        let raw = base64_simd::STANDARD
            .decode_to_vec(self.value.as_bytes())
            .map_err(|_| Error::InvalidChecksum(self.value.clone()))?;
        if raw.len() != self.algorithm.digest_len() {
            return Err(Error::InvalidChecksum(self.value.clone()));
        }
        Ok(raw)
    }

    /// Check a client-supplied value (base64) against this one.
    /// A composite checksum (`<base64>-<parts>`) may be named with or without its part
    /// count, as SDKs send it either way.
    pub fn verify(&self, expected_b64: &str) -> Result<()> {
        let sent = expected_b64.trim();
        let (digest, ours) = match self.kind {
            ChecksumType::Composite => {
                let ours = self.value.rsplit_once('-').map_or(self.value.as_str(), |(d, _)| d);
                let digest = match sent.rsplit_once('-') {
                    Some((d, n)) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
                        if Some(n) != self.value.rsplit_once('-').map(|(_, n)| n) {
                            return Err(self.mismatch(sent));
                        }
                        d
                    }
                    _ => sent,
                };
                (digest, ours)
            }
            ChecksumType::FullObject => (sent, self.value.as_str()),
        };
        let expected = Self {
            algorithm: self.algorithm,
            value: digest.to_owned(),
            kind: ChecksumType::FullObject,
        };
        expected.raw()?;
        if expected.value == ours { Ok(()) } else { Err(self.mismatch(sent)) }
    }

    fn mismatch(&self, sent: &str) -> Error {
        Error::BadChecksum {
            algorithm: self.algorithm.as_str(),
            expected: sent.to_owned(),
            computed: self.value.clone(),
        }
    }
}

enum Inner {
    Crc(crc_fast::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

/// Incremental digest for one algorithm.
pub struct Hasher {
    algorithm: ChecksumAlgorithm,
    inner: Inner,
}

impl Hasher {
    /// A fresh hasher.
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        let inner = match (algorithm.crc(), algorithm) {
            (Some(crc), _) => Inner::Crc(crc_fast::Digest::new(crc)),
            (None, ChecksumAlgorithm::Sha1) => Inner::Sha1(sha1::Sha1::new()),
            (None, _) => Inner::Sha256(sha2::Sha256::new()),
        };
        Self { algorithm, inner }
    }

    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            Inner::Crc(d) => d.update(data),
            Inner::Sha1(h) => sha1::Digest::update(h, data),
            Inner::Sha256(h) => sha2::Digest::update(h, data),
        }
    }

    /// The raw big-endian digest, `algorithm.digest_len()` bytes.
    pub fn finalize(self) -> Vec<u8> {
        match self.inner {
            Inner::Crc(d) => d.finalize().to_be_bytes()[8 - self.algorithm.digest_len()..].to_vec(),
            Inner::Sha1(h) => sha1::Digest::finalize(h).to_vec(),
            Inner::Sha256(h) => sha2::Digest::finalize(h).to_vec(),
        }
    }
}

/// MD5 (for the ETag) plus at most one S3 checksum, computed in one pass.
pub struct BodyHasher {
    md5: md5::Md5,
    checksum: Option<(ChecksumAlgorithm, Hasher)>,
    len: u64,
}

impl BodyHasher {
    /// Hash with MD5 and, when given, `algorithm`.
    pub fn new(algorithm: Option<ChecksumAlgorithm>) -> Self {
        Self {
            md5: md5::Md5::new(),
            checksum: algorithm.map(|a| (a, Hasher::new(a))),
            len: 0,
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        if let Some((_, h)) = &mut self.checksum {
            h.update(data);
        }
        self.len += data.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The MD5 digest and the checksum.
    pub fn finalize(self) -> ([u8; 16], Option<Checksum>) {
        let md5: [u8; 16] = self.md5.finalize().into();
        let checksum = self.checksum.map(|(a, h)| Checksum::from_digest(a, &h.finalize()));
        (md5, checksum)
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    hex_simd::encode_to_string(bytes, hex_simd::AsciiCase::Lower)
}

/// The ETag of a multipart object: MD5 of the concatenated binary part MD5s, then `-N`.
pub fn multipart_etag(part_etags: &[&str]) -> Result<String> {
    let mut h = md5::Md5::new();
    for e in part_etags {
        let raw = hex_simd::decode_to_vec(e.as_bytes()).map_err(|_| Error::InvalidArgument(format!("part ETag {e:?} is not an MD5")))?;
        h.update(&raw);
    }
    Ok(format!("{}-{}", hex(&h.finalize()), part_etags.len()))
}

/// The checksum of a multipart object from its parts' checksums and sizes.
///
/// `Composite` is the algorithm over the concatenated raw part digests, shown as `value-N`;
/// `FullObject` (CRCs only) combines the part CRCs into the CRC of the whole object.
pub fn combine_parts(algorithm: ChecksumAlgorithm, kind: ChecksumType, parts: &[(&Checksum, u64)]) -> Result<Checksum> {
    match kind {
        ChecksumType::Composite => {
            let mut h = Hasher::new(algorithm);
            for (c, _) in parts {
                h.update(&c.raw()?);
            }
            let value = format!("{}-{}", base64_simd::STANDARD.encode_to_string(h.finalize()), parts.len());
            Ok(Checksum { algorithm, value, kind })
        }
        ChecksumType::FullObject => {
            let crc = algorithm
                .crc()
                .ok_or_else(|| Error::InvalidArgument(format!("{} cannot be a full-object checksum", algorithm.as_str())))?;
            let mut acc: Option<u64> = None;
            for (c, size) in parts {
                let raw = c.raw()?;
                let mut v = [0u8; 8];
                v[8 - raw.len()..].copy_from_slice(&raw);
                let v = u64::from_be_bytes(v);
                acc = Some(match acc {
                    None => v,
                    Some(a) => crc_fast::checksum_combine(crc, a, v, *size),
                });
            }
            let v = acc.unwrap_or_else(|| crc_fast::checksum(crc, b""));
            let bytes = v.to_be_bytes();
            Ok(Checksum::from_digest(algorithm, &bytes[8 - algorithm.digest_len()..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(a: ChecksumAlgorithm, data: &[u8]) -> String {
        Checksum::from_digest(a, &a.digest(data)[..]).value
    }

    #[test]
    fn known_vectors() {
        // Values as AWS documents/returns them for "hello world".
        let data = b"hello world";
        let mut h = BodyHasher::new(Some(ChecksumAlgorithm::Crc32));
        h.update(data);
        let (md5, c) = h.finalize();
        assert_eq!(hex(&md5), "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(c.unwrap().value, "DUoRhQ==");
        let crc32c = {
            let mut h = BodyHasher::new(Some(ChecksumAlgorithm::Crc32c));
            h.update(data);
            h.finalize().1.unwrap().value
        };
        assert_eq!(crc32c, "yZRlqg==");
        assert_eq!(b64(ChecksumAlgorithm::Sha256, b""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_eq!(b64(ChecksumAlgorithm::Sha1, b""), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
    }

    #[test]
    fn full_object_combine_equals_whole() {
        for a in [ChecksumAlgorithm::Crc32, ChecksumAlgorithm::Crc32c, ChecksumAlgorithm::Crc64Nvme] {
            let whole: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
            let (p1, p2, p3) = (&whole[..40_000], &whole[40_000..90_000], &whole[90_000..]);
            let cs: Vec<Checksum> = [p1, p2, p3].iter().map(|p| Checksum::from_digest(a, &a.digest(p))).collect();
            let parts: Vec<(&Checksum, u64)> = cs.iter().zip([p1, p2, p3]).map(|(c, p)| (c, p.len() as u64)).collect();
            let combined = combine_parts(a, ChecksumType::FullObject, &parts).unwrap();
            assert_eq!(combined.value, b64(a, &whole), "{a:?}");
        }
    }

    #[test]
    fn composite_has_part_count() {
        let a = ChecksumAlgorithm::Sha256;
        let c1 = Checksum::from_digest(a, &a.digest(b"one"));
        let c2 = Checksum::from_digest(a, &a.digest(b"two"));
        let out = combine_parts(a, ChecksumType::Composite, &[(&c1, 3), (&c2, 3)]).unwrap();
        assert!(out.value.ends_with("-2"));
        // Named with or without its part count; a wrong count or digest is a mismatch.
        let digest = out.value.trim_end_matches("-2").to_owned();
        out.verify(&out.value.clone()).unwrap();
        out.verify(&digest).unwrap();
        assert!(matches!(out.verify(&format!("{digest}-3")), Err(Error::BadChecksum { .. })));
        assert!(matches!(out.verify(&c1.value), Err(Error::BadChecksum { .. })));
        assert!(matches!(out.verify("bad"), Err(Error::InvalidChecksum(_))));
    }

    #[test]
    fn multipart_etag_shape() {
        let e = multipart_etag(&["5eb63bbbe01eeed093cb22bb8f5acdc3", "5eb63bbbe01eeed093cb22bb8f5acdc3"]).unwrap();
        assert!(e.ends_with("-2") && e.len() == 34);
        assert!(multipart_etag(&["zz"]).is_err());
    }

    #[test]
    fn verify_rejects_garbage_and_mismatch() {
        let c = Checksum::from_digest(ChecksumAlgorithm::Crc32, &ChecksumAlgorithm::Crc32.digest(b"x"));
        assert!(matches!(c.verify("not base64!"), Err(Error::InvalidChecksum(_))));
        assert!(matches!(c.verify("AAAAAA=="), Err(Error::BadChecksum { .. })));
        c.verify(&c.value.clone()).unwrap();
    }
}
