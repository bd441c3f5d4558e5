//! Start a real `quarry` process on a free port with a temporary data directory, and build
//! aws-sdk-s3 clients for it.
#![allow(dead_code)]

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const USER: &str = "quarryadmin";
pub const SECRET: &str = "quarryadmin";

pub struct Server {
    pub child: Child,
    pub url: String,
    pub addr: String,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A server on a fresh temporary data directory.
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        let mut s = Self::start_on(&dir, "127.0.0.1:0");
        s._tmp = Some(tmp);
        s
    }

    /// A server on `dir` (kept after the server stops).
    pub fn start_on(dir: &Path, addr: &str) -> Self {
        Self::start_set(&[dir.to_owned()], &["--address", addr])
    }

    /// A server on the erasure set `drives` (kept after it stops), with extra flags.
    pub fn start_set(drives: &[PathBuf], flags: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_quarry"))
            .arg("server")
            .args(drives)
            .args(if flags.contains(&"--address") {
                &[][..]
            } else {
                &["--address", "127.0.0.1:0"][..]
            })
            .args(flags)
            .env("QUARRY_ROOT_USER", USER)
            .env("QUARRY_ROOT_PASSWORD", SECRET)
            .env("QUARRY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn quarry");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read banner");
        let url = line
            .trim()
            .strip_prefix("quarry listening on ")
            .unwrap_or_else(|| panic!("unexpected banner {line:?}"))
            .to_owned();
        let addr = url.trim_start_matches("http://").to_owned();
        Self {
            child,
            url,
            addr,
            dir: drives[0].clone(),
            _tmp: None,
        }
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        self.client_with(USER, SECRET)
    }

    pub fn client_with(&self, user: &str, secret: &str) -> aws_sdk_s3::Client {
        self.client_with_token(user, secret, None)
    }

    /// A client signing with temporary credentials (`token`: the STS session token).
    pub fn client_with_token(&self, user: &str, secret: &str, token: Option<&str>) -> aws_sdk_s3::Client {
        let http = aws_smithy_http_client::Builder::new().build_http();
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new(user, secret, token.map(str::to_owned), None, "test"))
            .force_path_style(true)
            .http_client(http)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) with a pid we own; no memory is touched.
        unsafe {
            libc_kill(self.child.id() as i32, 15);
        }
        self.child.wait().expect("wait")
    }

    /// Send a raw HTTP/1.1 request and return (status, body).
    pub fn raw(&self, request: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.addr).expect("connect");
        s.write_all(request.as_bytes()).expect("write");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The S3 error code of an SDK error, if it carries one.
pub fn code<E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String {
    match e {
        aws_sdk_s3::error::SdkError::ServiceError(s) => s.err().code().unwrap_or("").to_owned(),
        other => format!("{other:?}"),
    }
}

/// The HTTP status of an SDK error response.
pub fn status<E>(e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> u16 {
    e.raw_response().map_or(0, |r| r.status().as_u16())
}

/// GET `bucket/key` (optionally a range) and collect the body.
pub async fn read_body(c: &aws_sdk_s3::Client, bucket: &str, key: &str, range: Option<&str>) -> Vec<u8> {
    c.get_object()
        .bucket(bucket)
        .key(key)
        .set_range(range.map(str::to_owned))
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
        .to_vec()
}

/// Deterministic bytes for a seed.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
