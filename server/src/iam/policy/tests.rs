use super::*;
use proptest::prelude::*;

fn req(action: &str, resource: &str) -> Request {
    let mut context = HashMap::new();
    context.insert("aws:username".into(), vec!["alice".into()]);
    context.insert("aws:sourceip".into(), vec!["10.1.2.3".into()]);
    context.insert("aws:securetransport".into(), vec!["false".into()]);
    Request {
        action: action.into(),
        resource: resource.into(),
        principal: "arn:aws:iam::000000000000:user/alice".into(),
        context,
    }
}

fn with(mut r: Request, key: &str, values: &[&str]) -> Request {
    r.context
        .insert(key.to_ascii_lowercase(), values.iter().map(|s| s.to_string()).collect());
    r
}

fn identity(json: &str) -> Policy {
    Policy::parse(json, false).unwrap_or_else(|e| panic!("{e}: {json}"))
}

const READ_PREFIX: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::datasets/train/*"},
    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::datasets",
     "Condition": {"StringLike": {"s3:prefix": ["train/*", "train/"]}}}
  ]
}"#;

#[test]
fn allow_is_scoped_to_actions_and_resources() {
    let p = identity(READ_PREFIX);
    let ok = |a: &str, r: &str| decide([&p], &req(a, r));
    assert!(ok("s3:GetObject", "arn:aws:s3:::datasets/train/a.tar"));
    assert!(ok("s3:GetObject", "arn:aws:s3:::datasets/train/deep/er/b.tar"));
    assert!(!ok("s3:GetObject", "arn:aws:s3:::datasets/test/a.tar"));
    assert!(!ok("s3:GetObject", "arn:aws:s3:::datasets2/train/a.tar"));
    assert!(!ok("s3:PutObject", "arn:aws:s3:::datasets/train/a.tar"));
    // Actions are case-insensitive; resources are not.
    assert!(ok("S3:getobject", "arn:aws:s3:::datasets/train/a.tar"));
    assert!(!ok("s3:GetObject", "arn:aws:s3:::datasets/TRAIN/a.tar"));
    // ListBucket only with a prefix inside train/.
    let list = req("s3:ListBucket", "arn:aws:s3:::datasets");
    assert!(!decide([&p], &list), "no prefix given");
    assert!(decide([&p], &with(list.clone(), "s3:prefix", &["train/x"])));
    assert!(!decide([&p], &with(list, "s3:prefix", &["test/"])));
}

#[test]
fn explicit_deny_wins_over_any_allow() {
    let allow_all = identity(r#"{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}"#);
    let deny_delete = identity(
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:Delete*", "Resource": "arn:aws:s3:::logs/*"}]}"#,
    );
    assert!(decide([&allow_all, &deny_delete], &req("s3:GetObject", "arn:aws:s3:::logs/x")));
    assert!(!decide([&allow_all, &deny_delete], &req("s3:DeleteObject", "arn:aws:s3:::logs/x")));
    assert!(!decide(
        [&deny_delete, &allow_all],
        &req("s3:DeleteObjectVersion", "arn:aws:s3:::logs/x")
    ));
    assert!(decide([&allow_all, &deny_delete], &req("s3:DeleteObject", "arn:aws:s3:::other/x")));
    // Nothing applies: implicit deny.
    assert!(!decide([&deny_delete], &req("s3:GetObject", "arn:aws:s3:::logs/x")));
    assert!(!decide(std::iter::empty::<&Policy>(), &req("s3:GetObject", "arn:aws:s3:::logs/x")));
}

#[test]
fn not_action_and_not_resource() {
    // AWS's example: allow everything except IAM.
    let p = identity(r#"{"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}"#);
    assert!(decide([&p], &req("s3:PutObject", "arn:aws:s3:::b/k")));
    assert!(!decide([&p], &req("iam:CreateUser", "arn:aws:iam::000000000000:user/bob")));
    // Deny everything outside one bucket.
    let fence = identity(
        r#"{"Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "s3:*", "NotResource": ["arn:aws:s3:::mine", "arn:aws:s3:::mine/*"]}
        ]}"#,
    );
    assert!(decide([&fence], &req("s3:GetObject", "arn:aws:s3:::mine/k")));
    assert!(!decide([&fence], &req("s3:GetObject", "arn:aws:s3:::theirs/k")));
}

#[test]
fn policy_variables_scope_home_directories() {
    let p = identity(r#"{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::home/${aws:username}/*"}]}"#);
    assert!(decide([&p], &req("s3:PutObject", "arn:aws:s3:::home/alice/notes.txt")));
    assert!(!decide([&p], &req("s3:PutObject", "arn:aws:s3:::home/bob/notes.txt")));
    // A variable with no value matches nothing.
    let mut anon = req("s3:PutObject", "arn:aws:s3:::home//notes.txt");
    anon.context.remove("aws:username");
    assert!(!decide([&p], &anon));
    // `${*}` is a literal star.
    let lit = identity(r#"{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/${*}"}]}"#);
    assert!(decide([&lit], &req("s3:GetObject", "arn:aws:s3:::b/*")));
    assert!(!decide([&lit], &req("s3:GetObject", "arn:aws:s3:::b/x")));
}

#[test]
fn conditions_from_the_aws_docs() {
    let cond = |c: &str| {
        identity(&format!(
            r#"{{"Statement": [{{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {c}}}]}}"#
        ))
    };
    let r = req("s3:GetObject", "arn:aws:s3:::b/k");
    let yes = |c: &str, r: &Request| decide([&cond(c)], r);
    assert!(yes(r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#, &r));
    assert!(!yes(r#"{"IpAddress": {"aws:SourceIp": ["192.168.0.0/16", "172.16.0.0/12"]}}"#, &r));
    assert!(yes(r#"{"NotIpAddress": {"aws:SourceIp": "192.168.0.0/16"}}"#, &r));
    assert!(!yes(r#"{"Bool": {"aws:SecureTransport": "true"}}"#, &r));
    assert!(yes(r#"{"Bool": {"aws:SecureTransport": false}}"#, &r));
    assert!(yes(r#"{"StringEquals": {"aws:username": "alice"}}"#, &r));
    assert!(!yes(r#"{"StringEquals": {"aws:username": "Alice"}}"#, &r));
    assert!(yes(r#"{"StringEqualsIgnoreCase": {"aws:username": "Alice"}}"#, &r));
    assert!(yes(r#"{"StringNotLike": {"aws:username": "b*"}}"#, &r));
    // Several keys and operators: all must hold.
    assert!(!yes(
        r#"{"StringEquals": {"aws:username": "alice"}, "Bool": {"aws:SecureTransport": "true"}}"#,
        &r
    ));
    let lim = with(r.clone(), "s3:max-keys", &["50"]);
    assert!(yes(r#"{"NumericLessThanEquals": {"s3:max-keys": "100"}}"#, &lim));
    assert!(!yes(r#"{"NumericLessThan": {"s3:max-keys": 10}}"#, &lim));
    // A missing key: false, except for IfExists and negated operators.
    assert!(!yes(r#"{"NumericLessThan": {"s3:max-keys": 10}}"#, &r));
    assert!(yes(r#"{"NumericLessThanIfExists": {"s3:max-keys": 10}}"#, &r));
    assert!(yes(r#"{"StringNotEquals": {"s3:x-amz-acl": "public-read"}}"#, &r));
    assert!(yes(r#"{"Null": {"s3:x-amz-acl": "true"}}"#, &r));
    assert!(!yes(r#"{"Null": {"s3:x-amz-acl": "false"}}"#, &r));
    let now = with(r.clone(), "aws:CurrentTime", &["2026-11-26T04:00:00Z"]);
    assert!(yes(r#"{"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}"#, &now));
    assert!(!yes(r#"{"DateGreaterThan": {"aws:CurrentTime": "2027-01-01"}}"#, &now));
    // Multi-valued keys.
    let tags = with(r.clone(), "aws:TagKeys", &["team", "env"]);
    assert!(yes(
        r#"{"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env", "cost"]}}"#,
        &tags
    ));
    assert!(!yes(r#"{"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}"#, &tags));
    assert!(yes(r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}"#, &tags));
    assert!(!yes(r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": ["owner"]}}"#, &tags));
    // Policy variables in condition values.
    let p = with(r, "s3:prefix", &["home/alice/docs"]);
    assert!(yes(r#"{"StringLike": {"s3:prefix": "home/${aws:username}/*"}}"#, &p));
}

#[test]
fn bucket_policies_name_principals() {
    let public = Policy::parse(
        r#"{"Version": "2012-10-17", "Statement": [{"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
            "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::open-data/*"]}]}"#,
        true,
    )
    .unwrap();
    assert!(public.is_public());
    let mut anon = req("s3:GetObject", "arn:aws:s3:::open-data/x.parquet");
    anon.principal = "*".into();
    assert!(decide([&public], &anon));
    assert!(!decide([&public], &req("s3:PutObject", "arn:aws:s3:::open-data/x.parquet")));
    let one = Policy::parse(
        r#"{"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::000000000000:user/bob"]},
            "Action": "s3:*", "Resource": "arn:aws:s3:::shared/*"}]}"#,
        true,
    )
    .unwrap();
    assert!(!one.is_public());
    assert!(!decide([&one], &req("s3:GetObject", "arn:aws:s3:::shared/k")), "alice is not bob");
    let mut bob = req("s3:GetObject", "arn:aws:s3:::shared/k");
    bob.principal = "arn:aws:iam::000000000000:user/bob".into();
    assert!(decide([&one], &bob));
}

#[test]
fn malformed_policies_are_refused() {
    for (json, resource_policy) in [
        ("not json", false),
        ("[]", false),
        (r#"{"Statement": []}"#, false),
        (
            r#"{"Version": "2020-01-01", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}"#,
            false,
        ),
        (r#"{"Statement": {"Effect": "Permit", "Action": "s3:*", "Resource": "*"}}"#, false),
        (r#"{"Statement": {"Effect": "Allow", "Resource": "*"}}"#, false),
        (
            r#"{"Statement": {"Effect": "Allow", "Action": "s3:*", "NotAction": "iam:*", "Resource": "*"}}"#,
            false,
        ),
        (
            r#"{"Statement": {"Effect": "Allow", "Action": "GetObject", "Resource": "*"}}"#,
            false,
        ),
        (r#"{"Statement": {"Effect": "Allow", "Action": "s3:*"}}"#, false),
        (
            r#"{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "bucket/key"}}"#,
            false,
        ),
        (
            r#"{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}}"#,
            false,
        ),
        (r#"{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}"#, true),
        (
            r#"{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringFuzzy": {"a": "b"}}}}"#,
            false,
        ),
        (
            r#"{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/99"}}}}"#,
            false,
        ),
        (
            r#"{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"NumericLessThan": {"s3:max-keys": "ten"}}}}"#,
            false,
        ),
        (
            r#"{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Extra": 1}}"#,
            false,
        ),
        (
            r#"{"Statement": {"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:*", "Resource": "*"}}"#,
            true,
        ),
    ] {
        assert!(Policy::parse(json, resource_policy).is_err(), "accepted: {json}");
    }
    // NotPrincipal narrows a Deny.
    Policy::parse(
        r#"{"Statement": {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"}, "Action": "s3:*", "Resource": "*"}}"#,
        true,
    )
    .unwrap();
}

#[test]
fn glob_matches_like_aws() {
    assert!(glob(b"*", b""));
    assert!(glob(b"a*c", b"abbbc"));
    assert!(glob(b"a*c", b"ac"));
    assert!(!glob(b"a*c", b"acb"));
    assert!(glob(b"a?c", b"abc"));
    assert!(!glob(b"a?c", b"ac"));
    assert!(glob(b"*/train/*", b"x/train/y/z"));
    assert!(glob(b"**a", b"bba"));
}

fn arb_statement() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["Allow", "Deny"][..]),
        prop::sample::select(&["s3:*", "s3:Get*", "s3:GetObject", "s3:PutObject", "s3:List*", "*"][..]),
        any::<bool>(),
        prop::sample::select(&["*", "arn:aws:s3:::b", "arn:aws:s3:::b/*", "arn:aws:s3:::b/a*", "arn:aws:s3:::c/*"][..]),
        any::<bool>(),
        prop::option::of(prop::sample::select(
            &[
                r#"{"StringEquals": {"aws:username": "alice"}}"#,
                r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#,
                r#"{"Bool": {"aws:SecureTransport": "true"}}"#,
            ][..],
        )),
    )
        .prop_map(|(effect, action, not_action, resource, not_resource, cond)| {
            let a = if not_action { "NotAction" } else { "Action" };
            let r = if not_resource { "NotResource" } else { "Resource" };
            let c = cond.map(|c| format!(r#", "Condition": {c}"#)).unwrap_or_default();
            format!(r#"{{"Effect": "{effect}", "{a}": "{action}", "{r}": "{resource}"{c}}}"#)
        })
}

proptest! {
    /// Adding a policy with a Deny statement never turns a denied request into an allowed one.
    #[test]
    fn a_deny_never_grants(
        stmts in prop::collection::vec(arb_statement(), 1..5),
        deny in arb_statement(),
        action in prop::sample::select(&["s3:GetObject", "s3:PutObject", "s3:ListBucket", "iam:CreateUser"][..]),
        resource in prop::sample::select(&["arn:aws:s3:::b", "arn:aws:s3:::b/a1", "arn:aws:s3:::c/x"][..]),
    ) {
        let base = identity(&format!(r#"{{"Statement": [{}]}}"#, stmts.join(",")));
        let deny = deny.replacen("\"Allow\"", "\"Deny\"", 1);
        let extra = identity(&format!(r#"{{"Statement": [{deny}]}}"#));
        let r = req(action, resource);
        let before = decide([&base], &r);
        let after = decide([&base, &extra], &r);
        prop_assert!(!after || before, "a Deny statement granted access");
        // And order does not matter.
        prop_assert_eq!(after, decide([&extra, &base], &r));
    }
}

#[test]
fn a_policy_knows_the_context_it_reads() {
    let p = Policy::parse(
        r#"{"Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::home/${aws:username}/*"},
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::home",
             "Condition": {"StringLike": {"s3:prefix": ["${aws:username}/*", "${*}"]}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]}"#,
        false,
    )
    .unwrap();
    assert_eq!(p.needs(), ["aws:sourceip", "aws:username", "s3:prefix"]);
    let plain = Policy::parse(r#"{"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}"#, false).unwrap();
    assert!(plain.needs().is_empty());
}

#[test]
fn a_bucket_policy_resource_may_be_a_wildcard_that_names_the_bucket() {
    let within = |resource: &str| {
        let text = format!(r#"{{"Statement": {{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "{resource}"}}}}"#);
        Policy::parse(&text, true).unwrap().resources_within("logs")
    };
    for ok in [
        "arn:aws:s3:::logs",
        "arn:aws:s3:::logs/*",
        "arn:aws:s3:::*",
        "arn:aws:s3:::*/*",
        "arn:aws:s3:::lo*",
        "arn:aws:s3:::l?gs/a",
        "arn:aws:s3:::*/2026/*.csv",
    ] {
        assert!(within(ok), "{ok} should be accepted");
    }
    for bad in [
        "arn:aws:s3:::other",
        "arn:aws:s3:::other/*",
        "arn:aws:s3:::logs2",
        "arn:aws:s3:::log",
        "arn:aws:s3:::x*/*",
    ] {
        assert!(!within(bad), "{bad} should be refused");
    }
}
