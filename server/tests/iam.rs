//! IAM identities end to end with aws-sdk-rust: a user made with `quarry admin`, and STS
//! temporary credentials (session token) asked for with a SigV4-signed AssumeRole, each
//! allowed and refused by its policies.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use common::{SECRET, Server, USER, code};
use std::process::Command;

/// A signed IAM/STS form POST through a raw socket; (status, body).
fn call(server: &Server, service: &str, key: &str, secret: &str, body: &str) -> (u16, String) {
    let headers = quarry_server::iam::sigv4::sign_post(
        &server.addr,
        body.as_bytes(),
        key,
        secret,
        "us-east-1",
        service,
        time::OffsetDateTime::now_utc(),
    );
    let mut req = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        server.addr,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    server.raw(&req)
}

fn tag<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let start = xml.find(&open).unwrap_or_else(|| panic!("no <{name}> in {xml}")) + open.len();
    &xml[start..start + xml[start..].find('<').unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_sessions_are_authorised_by_their_policies() {
    let server = Server::start();
    let root = server.client();
    root.create_bucket().bucket("data").send().await.unwrap();
    for key in ["train/a", "train/b", "test/c"] {
        root.put_object()
            .bucket("data")
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap();
    }

    // quarry admin, as an operator runs it.
    let policy =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/train/*"}]}"#;
    let out = Command::new(env!("CARGO_BIN_EXE_quarry"))
        .args(["admin", "--endpoint", &server.url, "user", "add", "trainer", "--policy", policy])
        .env("QUARRY_ROOT_USER", USER)
        .env("QUARRY_ROOT_PASSWORD", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
            .trim()
            .to_owned()
    };
    let (key, secret) = (field("access key:"), field("secret key:"));

    let user = server.client_with(&key, &secret);
    user.get_object().bucket("data").key("train/a").send().await.unwrap();
    let e = user.get_object().bucket("data").key("test/c").send().await.unwrap_err();
    assert_eq!(code(&e), "AccessDenied");
    let e = user
        .put_object()
        .bucket("data")
        .key("train/new")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "AccessDenied");

    // STS: a session narrowed to train/a.
    let narrow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::data/train/a"}]}"#;
    let body = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aminio%3Aiam%3A%3A%3Arole%2Ftrain&RoleSessionName=run-1&Policy={}",
        quarry_server::iam::sigv4::uri_encode(narrow, false)
    );
    let (status, xml) = call(&server, "sts", &key, &secret, &body);
    assert_eq!(status, 200, "{xml}");
    let (ak, sk, token) = (tag(&xml, "AccessKeyId"), tag(&xml, "SecretAccessKey"), tag(&xml, "SessionToken"));
    assert!(ak.starts_with("ASIA"));
    let session = server.client_with_token(ak, sk, Some(token));
    session.get_object().bucket("data").key("train/a").send().await.unwrap();
    let e = session.get_object().bucket("data").key("train/b").send().await.unwrap_err();
    assert_eq!(code(&e), "AccessDenied");
    let e = server
        .client_with_token(ak, sk, Some("forged"))
        .get_object()
        .bucket("data")
        .key("train/a")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidToken");

    // The IAM API refuses a user without iam: permissions, and a bad signature.
    let (status, xml) = call(&server, "iam", &key, &secret, "Action=ListUsers&Version=2010-05-08");
    assert_eq!((status, tag(&xml, "Code")), (403, "AccessDenied"));
    let (status, xml) = call(&server, "iam", &key, "wrong-secret", "Action=ListUsers&Version=2010-05-08");
    assert_eq!((status, tag(&xml, "Code")), (403, "SignatureDoesNotMatch"));
    let (status, xml) = call(&server, "iam", USER, SECRET, "Action=GetUser&Version=2010-05-08&UserName=nobody");
    assert_eq!((status, tag(&xml, "Code")), (404, "NoSuchEntity"));
}
