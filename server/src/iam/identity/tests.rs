use super::*;
use crate::iam::api::allows;
use crate::iam::policy::Request;

const READ_TRAIN: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::datasets/train/*"}]}"#;
const WRITE_OUT: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::out/${aws:username}/*"}]}"#;
const DENY_SECRET: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::datasets/train/secret/*"}]}"#;

fn s3(cred: &Credential, action: &str, resource: &str) -> bool {
    let mut context = HashMap::new();
    let principal = crate::iam::api::identity_context(cred, &mut context);
    let req = Request {
        action: action.into(),
        resource: resource.into(),
        principal,
        context,
    };
    allows(cred, &req, None)
}

#[test]
fn users_groups_and_attached_policies_compile_into_credentials() {
    let mut s = State::default();
    s.create_user("reader", "/").unwrap();
    s.create_user("writer", "/teams/").unwrap();
    s.put_user_policy("reader", "read", READ_TRAIN).unwrap();
    let (pname, _) = s.create_policy("write-own", "/", WRITE_OUT, "").unwrap();
    let arn = policy_arn("/", &pname.clone());
    s.attach_user_policy("writer", &arn).unwrap();
    s.create_group("auditors", "/").unwrap();
    s.put_group_policy("auditors", "deny-secret", DENY_SECRET).unwrap();
    s.add_user_to_group("auditors", "reader").unwrap();
    let (rk, _) = s.create_access_key("reader").unwrap();
    let (wk, _) = s.create_access_key("writer").unwrap();

    let dir = Directory::build(&s, "root", "rootsecret");
    let reader = &dir.keys[&rk];
    let writer = &dir.keys[&wk];
    assert_eq!(writer.principal.arn, "arn:aws:iam::000000000000:user/teams/writer");
    assert!(s3(reader, "s3:GetObject", "arn:aws:s3:::datasets/train/a.tar"));
    assert!(!s3(reader, "s3:GetObject", "arn:aws:s3:::datasets/test/a.tar"));
    assert!(!s3(reader, "s3:PutObject", "arn:aws:s3:::datasets/train/a.tar"));
    // The group's explicit Deny beats the user's Allow.
    assert!(!s3(reader, "s3:GetObject", "arn:aws:s3:::datasets/train/secret/x"));
    // Policy variables: the writer's own prefix only.
    assert!(s3(writer, "s3:PutObject", "arn:aws:s3:::out/writer/part-0.parquet"));
    assert!(!s3(writer, "s3:PutObject", "arn:aws:s3:::out/reader/part-0.parquet"));
    assert!(s3(&dir.keys["root"], "s3:DeleteBucket", "arn:aws:s3:::anything"));
}

#[test]
fn iam_errors_are_aws_codes() {
    let mut s = State::default();
    s.create_user("alice", "/").unwrap();
    let e = s.create_user("ALICE", "/").err().unwrap();
    assert_eq!((e.code(), e.status()), ("EntityAlreadyExists", 409));
    let e = s.user("bob").err().unwrap();
    assert_eq!((e.code(), e.status()), ("NoSuchEntity", 404));
    assert_eq!(s.create_user("bad/name", "/").err().unwrap().code(), "ValidationError");
    assert_eq!(s.create_user("x", "no-slash").err().unwrap().code(), "ValidationError");
    let e = s
        .put_user_policy("alice", "p", r#"{"Statement":[{"Effect":"Allow"}]}"#)
        .err()
        .unwrap();
    assert_eq!((e.code(), e.status()), ("MalformedPolicyDocument", 400));
    s.create_access_key("alice").unwrap();
    s.create_access_key("alice").unwrap();
    let e = s.create_access_key("alice").err().unwrap();
    assert_eq!((e.code(), e.status()), ("LimitExceeded", 409));
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{}/*"}}]}}"#,
        "b".repeat(2100)
    );
    assert_eq!(s.put_user_policy("alice", "big", &big).err().unwrap().code(), "LimitExceeded");
    // A user with keys cannot be deleted.
    assert_eq!(s.delete_user("alice").err().unwrap().code(), "DeleteConflict");
    let ids: Vec<String> = s.keys.keys().cloned().collect();
    for id in &ids {
        s.delete_access_key("alice", id).unwrap();
    }
    s.delete_user("alice").unwrap();
    assert!(s.users.is_empty());
    assert_eq!(
        s.attach_user_policy("nobody", "arn:aws:iam::000000000000:policy/none")
            .err()
            .unwrap()
            .code(),
        "NoSuchEntity"
    );
}

#[test]
fn inactive_keys_and_sessions() {
    let mut s = State::default();
    s.create_user("job", "/").unwrap();
    s.put_user_policy("job", "read", READ_TRAIN).unwrap();
    let (k, _) = s.create_access_key("job").unwrap();
    s.update_access_key("job", &k, "Inactive").unwrap();
    assert!(!Directory::build(&s, "root", "secret").keys[&k].active);
    assert_eq!(s.update_access_key("job", &k, "Paused").err().unwrap().code(), "ValidationError");
    assert_eq!(s.update_access_key("other", &k, "Active").err().unwrap().code(), "NoSuchEntity");

    // A session policy narrows the parent's permissions; it never widens them.
    let narrow =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::datasets/train/shard-1*"}]}"#;
    let (sid, sess) = s
        .create_session(
            Some("job"),
            None,
            "arn:aws:iam::000000000000:role/train",
            "run-1",
            900,
            Some(narrow),
        )
        .unwrap();
    let (rid, _) = s
        .create_session(None, None, "arn:aws:iam::000000000000:role/admin", "ops", 900, Some(narrow))
        .unwrap();
    assert!(sid.starts_with("ASIA") && sess.token.len() >= 64);
    let dir = Directory::build(&s, "root", "secret");
    let c = &dir.keys[&sid];
    assert!(s3(c, "s3:GetObject", "arn:aws:s3:::datasets/train/shard-1.tar"));
    assert!(!s3(c, "s3:GetObject", "arn:aws:s3:::datasets/train/shard-2.tar"));
    assert!(!s3(c, "s3:PutObject", "arn:aws:s3:::datasets/train/shard-1.tar"));
    let root_session = &dir.keys[&rid];
    assert!(s3(root_session, "s3:PutObject", "arn:aws:s3:::datasets/train/shard-1.tar"));
    assert!(!s3(root_session, "s3:PutObject", "arn:aws:s3:::other/x"));
    // Expired sessions are forgotten at the next change.
    s.sessions.get_mut(&sid).unwrap().expires = now() - 1;
    s.purge_expired();
    assert!(!s.sessions.contains_key(&sid) && s.sessions.contains_key(&rid));
}

#[test]
fn the_store_round_trips_through_json() {
    let mut s = State::default();
    s.create_user("u", "/").unwrap();
    s.create_access_key("u").unwrap();
    let text = serde_json::to_string(&s).unwrap();
    let back: State = serde_json::from_str(&text).unwrap();
    assert_eq!(back.keys.len(), 1);
    assert_eq!(back.users["u"].id, s.users["u"].id);
}

#[test]
fn no_stored_key_stands_in_for_the_root_key() {
    let mut s = State::default();
    s.create_user("mallory", "/").unwrap();
    s.keys.insert(
        "root".into(),
        AccessKey {
            user: "mallory".into(),
            secret: "guessable".into(),
            active: true,
            created: 0,
        },
    );
    let dir = Directory::build(&s, "root", "rootsecret");
    assert!(dir.keys["root"].principal.root);
    assert_eq!(dir.keys["root"].secret, "rootsecret");
}
