//! AWS event-stream framing (`application/vnd.amazon.eventstream`): each message is
//! `total_len u32 | headers_len u32 | prelude CRC32 | headers | payload | message CRC32`,
//! big-endian, CRC32 (ISO-HDLC) over the prelude and over everything before the last field.

/// A framing error when decoding.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame is truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("prelude CRC mismatch")]
    PreludeCrc,
    #[error("message CRC mismatch")]
    MessageCrc,
    #[error("malformed header at byte {0}")]
    Header(usize),
}

/// One event-stream message with string-valued headers (all S3 Select uses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

const STRING: u8 = 7;

fn crc32(data: &[u8]) -> u32 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32IsoHdlc, data) as u32
}

impl Message {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Frame the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            headers.push(u8::try_from(name.len()).expect("header names are short"));
            headers.extend_from_slice(name.as_bytes());
            headers.push(STRING);
            headers.extend_from_slice(&u16::try_from(value.len()).expect("header values are short").to_be_bytes());
            headers.extend_from_slice(value.as_bytes());
        }
        let total = 12 + headers.len() + self.payload.len() + 4;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&u32::try_from(total).expect("frames are under 4 GiB").to_be_bytes());
        out.extend_from_slice(&u32::try_from(headers.len()).expect("headers are small").to_be_bytes());
        let prelude_crc = crc32(&out);
        out.extend_from_slice(&prelude_crc.to_be_bytes());
        out.extend_from_slice(&headers);
        out.extend_from_slice(&self.payload);
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }
}

/// A `Records` event carrying `payload`.
pub fn records(payload: &[u8]) -> Message {
    Message {
        headers: vec![
            (":event-type".into(), "Records".into()),
            (":content-type".into(), "application/octet-stream".into()),
            (":message-type".into(), "event".into()),
        ],
        payload: payload.to_vec(),
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Decode the first message of `buf`, returning it and the bytes it used.
pub fn decode(buf: &[u8]) -> Result<(Message, usize), FrameError> {
    if buf.len() < 16 {
        return Err(FrameError::Truncated { need: 16, have: buf.len() });
    }
    let total = be32(&buf[0..4]) as usize;
    let headers_len = be32(&buf[4..8]) as usize;
    if crc32(&buf[0..8]) != be32(&buf[8..12]) {
        return Err(FrameError::PreludeCrc);
    }
    if total < 16 + headers_len {
        return Err(FrameError::Header(12));
    }
    if buf.len() < total {
        return Err(FrameError::Truncated {
            need: total,
            have: buf.len(),
        });
    }
    if crc32(&buf[..total - 4]) != be32(&buf[total - 4..total]) {
        return Err(FrameError::MessageCrc);
    }
    let mut headers = Vec::new();
    let mut at = 12;
    let end = 12 + headers_len;
    while at < end {
        let bad = FrameError::Header(at);
        let name_len = buf[at] as usize;
        let name_end = at + 1 + name_len;
        if name_end + 3 > end || buf[name_end] != STRING {
            return Err(bad);
        }
        let name = std::str::from_utf8(&buf[at + 1..name_end]).map_err(|_| FrameError::Header(at))?;
        let value_len = u16::from_be_bytes([buf[name_end + 1], buf[name_end + 2]]) as usize;
        let value_end = name_end + 3 + value_len;
        if value_end > end {
            return Err(bad);
        }
        let value = std::str::from_utf8(&buf[name_end + 3..value_end]).map_err(|_| FrameError::Header(at))?;
        headers.push((name.to_owned(), value.to_owned()));
        at = value_end;
    }
    Ok((
        Message {
            headers,
            payload: buf[end..total - 4].to_vec(),
        },
        total,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_iso_hdlc() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn round_trip_and_corruption() {
        let m = records(b"1,2,3\n");
        let f = m.encode();
        assert_eq!(decode(&f).unwrap(), (m, f.len()));
        for i in 0..f.len() {
            let mut bad = f.clone();
            bad[i] ^= 1;
            assert!(decode(&bad).is_err(), "flip at {i}");
        }
        assert!(matches!(decode(&f[..f.len() - 1]), Err(FrameError::Truncated { .. })));
    }

    #[test]
    fn end_event_has_no_payload() {
        let end = Message {
            headers: vec![(":event-type".into(), "End".into()), (":message-type".into(), "event".into())],
            payload: vec![],
        };
        let f = end.encode();
        assert_eq!(be32(&f[0..4]) as usize, f.len());
        assert_eq!(decode(&f).unwrap().0.header(":event-type"), Some("End"));
    }
}
