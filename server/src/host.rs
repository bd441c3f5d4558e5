//! Virtual-host-style addressing: `bucket.DOMAIN[:port]` names a bucket for each configured
//! domain; every other Host (the bare domain, an IP address, `localhost`) is path-style.

use s3s::S3Result;
use s3s::host::{S3Host, VirtualHost};

/// The configured base domains, lowercased, longest first.
#[derive(Debug)]
pub struct Domains(Vec<String>);

impl Domains {
    /// Accept `bucket.d` for each `d` in `domains`.
    pub fn new(domains: &[String]) -> Self {
        let mut v: Vec<String> = domains
            .iter()
            .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|d| !d.is_empty())
            .collect();
        v.sort_by_key(|d| std::cmp::Reverse(d.len()));
        Self(v)
    }

    /// Whether a request with this Host header names its bucket in the host.
    pub fn is_virtual_host(&self, host: &str) -> bool {
        self.bucket_of(&without_port(host).to_ascii_lowercase()).is_some()
    }

    fn bucket_of<'a>(&self, host: &'a str) -> Option<&'a str> {
        self.0.iter().find_map(|d| {
            let bucket = host.strip_suffix(d.as_str())?.strip_suffix('.')?;
            (!bucket.is_empty()).then_some(bucket)
        })
    }
}

/// The host without a port (IPv6 literals keep their brackets).
fn without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map_or(host, |(h, _)| &host[..=h.len()]);
    }
    host.rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

impl S3Host for Domains {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        let name = without_port(host);
        match self.bucket_of(&name.to_ascii_lowercase()) {
            Some(bucket) => Ok(VirtualHost::new(name).with_bucket(bucket.to_owned())),
            None => Ok(VirtualHost::new(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(host: &str) -> Option<String> {
        let d = Domains::new(&["s3.example.test".into()]);
        d.parse_host_header(host).unwrap().bucket().map(str::to_owned)
    }

    #[test]
    fn buckets_from_subdomains_only() {
        assert_eq!(parse("data.s3.example.test:9000").as_deref(), Some("data"));
        assert_eq!(parse("my.dotted.bucket.s3.example.test").as_deref(), Some("my.dotted.bucket"));
        assert_eq!(parse("s3.example.test:9000"), None);
        assert_eq!(parse("127.0.0.1:9000"), None);
        assert_eq!(parse("localhost"), None);
        assert_eq!(parse("[::1]:9000"), None);
        assert_eq!(parse("other.test"), None);
    }
}
