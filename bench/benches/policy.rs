//! The cost of authorising one request: an identity policy of 20 statements (prefix-scoped
//! grants, a conditional deny, policy variables) evaluated against one request, next to a
//! one-statement policy, through `quarry-server`'s public `iam::policy` API.
//!
//! `cargo bench -p quarry-bench --bench policy`

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use quarry_server::iam::policy::{Policy, Request, decide};

fn twenty_statements() -> String {
    let mut s: Vec<String> = (0..17)
        .map(|i| {
            format!(
                r#"{{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::team{i}/data/${{aws:username}}/*"}}"#
            )
        })
        .collect();
    s.push(
        r#"{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::datasets", "Condition": {"StringLike": {"s3:prefix": "train/*"}}}"#
            .into(),
    );
    s.push(r#"{"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::datasets/train/*"}"#.into());
    s.push(
        r#"{"Effect": "Deny", "NotAction": "s3:Get*", "Resource": "*", "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}}"#
            .into(),
    );
    format!(r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#, s.join(","))
}

fn policies(c: &mut Criterion) {
    let big = Policy::parse(&twenty_statements(), false).expect("valid policy");
    let one = Policy::parse(r#"{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}"#, false).expect("valid policy");
    let mut context = HashMap::new();
    context.insert("aws:username".to_string(), vec!["alice".to_string()]);
    context.insert("aws:sourceip".to_string(), vec!["10.1.2.3".to_string()]);
    let req = Request {
        action: "s3:GetObject".into(),
        resource: "arn:aws:s3:::datasets/train/shard-00042.tar".into(),
        principal: "arn:aws:iam::000000000000:user/alice".into(),
        context,
    };
    assert!(decide([&big], &req));
    let mut g = c.benchmark_group("policy");
    g.bench_function("20 statements, allowed by the 19th", |b| {
        b.iter(|| decide([black_box(&big)], black_box(&req)))
    });
    g.bench_function("1 statement", |b| b.iter(|| decide([black_box(&one)], black_box(&req))));
    g.bench_function("parse 20 statements", |b| {
        b.iter(|| Policy::parse(black_box(&twenty_statements()), false))
    });
    g.finish();
}

criterion_group!(benches, policies);
criterion_main!(benches);
