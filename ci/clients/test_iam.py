"""IAM users, groups, policies and keys through boto3's IAM and STS clients, the AWS CLI and
`quarry admin`; then each identity's S3 requests are allowed or refused as its policies say."""

import json
import os
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import REPO, SECRET, USER, Server, make_client

CFG = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})


def iam(server, key=USER, secret=SECRET, token=None):
    return boto3.client("iam", endpoint_url=server.url, aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token, region_name="us-east-1", config=CFG)


def sts(server, key, secret, validate=True):
    # boto3 checks DurationSeconds >= 900 itself; the expiry test asks for seconds.
    cfg = CFG.merge(Config(parameter_validation=validate))
    return boto3.client("sts", endpoint_url=server.url, aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1", config=cfg)


def s3_as(server, key, secret, token=None):
    return boto3.client("s3", endpoint_url=server.url, aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token, region_name="us-east-1", config=CFG)


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def denied(call, expect="AccessDenied"):
    with pytest.raises(ClientError) as e:
        call()
    assert code(e) == expect, e.value.response
    return e.value.response


def read_prefix_policy(bucket, prefix):
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"},
                {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}", "Condition": {"StringLike": {"s3:prefix": f"{prefix}*"}}},
            ],
        }
    )


def new_user(admin, policy=None):
    name = "u-" + uuid.uuid4().hex[:10]
    admin.create_user(UserName=name)
    if policy:
        admin.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    key = admin.create_access_key(UserName=name)["AccessKey"]
    return name, key["AccessKeyId"], key["SecretAccessKey"]


def remove_user(admin, name):
    for k in admin.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        admin.delete_access_key(UserName=name, AccessKeyId=k["AccessKeyId"])
    for p in admin.list_user_policies(UserName=name)["PolicyNames"]:
        admin.delete_user_policy(UserName=name, PolicyName=p)
    for p in admin.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
        admin.detach_user_policy(UserName=name, PolicyArn=p["PolicyArn"])
    for g in admin.list_groups_for_user(UserName=name)["Groups"]:
        admin.remove_user_from_group(GroupName=g["GroupName"], UserName=name)
    admin.delete_user(UserName=name)


@pytest.mark.ops(
    "IAM CreateUser",
    "IAM GetUser",
    "IAM ListUsers",
    "IAM DeleteUser",
    "IAM CreateAccessKey",
    "IAM ListAccessKeys",
    "IAM DeleteAccessKey",
    "IAM PutUserPolicy",
    "IAM GetUserPolicy",
    "IAM ListUserPolicies",
    "IAM DeleteUserPolicy",
)
def test_read_only_user_reads_one_prefix_and_nothing_else(server, s3, bucket):
    admin = iam(server)
    s3.put_object(Bucket=bucket, Key="train/shard-0.tar", Body=b"train data")
    s3.put_object(Bucket=bucket, Key="test/shard-0.tar", Body=b"test data")
    name, key, secret = new_user(admin, read_prefix_policy(bucket, "train/"))
    try:
        user = admin.get_user(UserName=name)["User"]
        assert user["Arn"] == f"arn:aws:iam::000000000000:user/{name}" and user["UserId"].startswith("AIDA")
        assert name in [u["UserName"] for u in admin.list_users()["Users"]]
        doc = admin.get_user_policy(UserName=name, PolicyName="p")["PolicyDocument"]
        assert doc["Statement"][0]["Resource"] == f"arn:aws:s3:::{bucket}/train/*"
        assert admin.list_user_policies(UserName=name)["PolicyNames"] == ["p"]

        reader = s3_as(server, key, secret)
        assert reader.get_object(Bucket=bucket, Key="train/shard-0.tar")["Body"].read() == b"train data"
        assert [o["Key"] for o in reader.list_objects_v2(Bucket=bucket, Prefix="train/")["Contents"]] == ["train/shard-0.tar"]
        denied(lambda: reader.get_object(Bucket=bucket, Key="test/shard-0.tar"))
        denied(lambda: reader.list_objects_v2(Bucket=bucket))
        denied(lambda: reader.list_objects_v2(Bucket=bucket, Prefix="test/"))
        denied(lambda: reader.put_object(Bucket=bucket, Key="train/new", Body=b"x"))
        denied(lambda: reader.delete_object(Bucket=bucket, Key="train/shard-0.tar"))
        denied(lambda: reader.create_bucket(Bucket="u-" + uuid.uuid4().hex[:10]))
        # A presigned URL carries the permissions of the key that signed it.
        ok = reader.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "train/shard-0.tar"})
        assert urllib.request.urlopen(ok).read() == b"train data"
        bad = reader.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "test/shard-0.tar"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad)
        assert e.value.code == 403
        # A user can't manage identities without iam: permissions.
        denied(lambda: iam(server, key, secret).create_user(UserName="intruder"))
        # A user may read itself only if allowed; GetUser without a name means the caller.
        denied(lambda: iam(server, key, secret).get_user())
    finally:
        remove_user(admin, name)
    denied(lambda: admin.get_user(UserName=name), "NoSuchEntity")
    denied(lambda: s3_as(server, key, secret).get_object(Bucket=bucket, Key="train/shard-0.tar"), "InvalidAccessKeyId")


@pytest.mark.ops(
    "IAM CreateGroup",
    "IAM AddUserToGroup",
    "IAM RemoveUserFromGroup",
    "IAM PutGroupPolicy",
    "IAM ListGroupsForUser",
    "IAM CreatePolicy",
    "IAM AttachUserPolicy",
    "IAM AttachGroupPolicy",
    "IAM DetachUserPolicy",
    "IAM ListAttachedUserPolicies",
)
def test_prefix_writer_and_group_member(server, s3, bucket):
    admin = iam(server)
    tag = uuid.uuid4().hex[:8]
    writer_doc = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"], "Resource": f"arn:aws:s3:::{bucket}/out/${{aws:username}}/*"},
            ],
        }
    )
    pol = admin.create_policy(PolicyName=f"writer-{tag}", PolicyDocument=writer_doc, Description="own prefix")["Policy"]
    assert pol["Arn"] == f"arn:aws:iam::000000000000:policy/writer-{tag}" and pol["DefaultVersionId"] == "v1"
    name, key, secret = new_user(admin)
    group = f"readers-{tag}"
    try:
        admin.attach_user_policy(UserName=name, PolicyArn=pol["Arn"])
        assert [p["PolicyArn"] for p in admin.list_attached_user_policies(UserName=name)["AttachedPolicies"]] == [pol["Arn"]]
        writer = s3_as(server, key, secret)
        # Multipart upload into its own prefix (what Spark/pyarrow writers do).
        up = writer.create_multipart_upload(Bucket=bucket, Key=f"out/{name}/part-0.parquet")
        part = writer.upload_part(Bucket=bucket, Key=f"out/{name}/part-0.parquet", UploadId=up["UploadId"], PartNumber=1, Body=b"p" * 1024)
        writer.complete_multipart_upload(
            Bucket=bucket, Key=f"out/{name}/part-0.parquet", UploadId=up["UploadId"], MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
        )
        assert s3.get_object(Bucket=bucket, Key=f"out/{name}/part-0.parquet")["ContentLength"] == 1024
        denied(lambda: writer.put_object(Bucket=bucket, Key="out/someone-else/x", Body=b"x"))
        denied(lambda: writer.get_object(Bucket=bucket, Key="train/shard-0.tar"))

        # Group membership grants the group's inline policy; leaving the group takes it away.
        s3.put_object(Bucket=bucket, Key="shared/readme.txt", Body=b"hi")
        admin.create_group(GroupName=group)
        admin.put_group_policy(GroupName=group, PolicyName="read-shared", PolicyDocument=read_prefix_policy(bucket, "shared/"))
        denied(lambda: writer.get_object(Bucket=bucket, Key="shared/readme.txt"))
        admin.add_user_to_group(GroupName=group, UserName=name)
        assert [g["GroupName"] for g in admin.list_groups_for_user(UserName=name)["Groups"]] == [group]
        assert writer.get_object(Bucket=bucket, Key="shared/readme.txt")["Body"].read() == b"hi"
        # A managed policy attached to the group with an explicit Deny beats every Allow.
        deny = admin.create_policy(
            PolicyName=f"deny-{tag}",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/shared/*"}]}),
        )["Policy"]
        admin.attach_group_policy(GroupName=group, PolicyArn=deny["Arn"])
        denied(lambda: writer.get_object(Bucket=bucket, Key="shared/readme.txt"))
        admin.detach_group_policy(GroupName=group, PolicyArn=deny["Arn"])
        admin.remove_user_from_group(GroupName=group, UserName=name)
        denied(lambda: writer.get_object(Bucket=bucket, Key="shared/readme.txt"))
        admin.detach_user_policy(UserName=name, PolicyArn=pol["Arn"])
        denied(lambda: writer.put_object(Bucket=bucket, Key=f"out/{name}/y", Body=b"y"))
        admin.delete_policy(PolicyArn=deny["Arn"])
    finally:
        remove_user(admin, name)
        admin.delete_group_policy(GroupName=group, PolicyName="read-shared")
        admin.delete_group(GroupName=group)
        admin.delete_policy(PolicyArn=pol["Arn"])


@pytest.mark.ops("IAM UpdateAccessKey")
def test_disabled_key_is_refused_until_enabled(server, s3, bucket):
    admin = iam(server)
    s3.put_object(Bucket=bucket, Key="train/a", Body=b"a")
    name, key, secret = new_user(admin, read_prefix_policy(bucket, "train/"))
    try:
        user_s3 = s3_as(server, key, secret)
        assert user_s3.get_object(Bucket=bucket, Key="train/a")["Body"].read() == b"a"
        admin.update_access_key(UserName=name, AccessKeyId=key, Status="Inactive")
        assert admin.list_access_keys(UserName=name)["AccessKeyMetadata"][0]["Status"] == "Inactive"
        denied(lambda: user_s3.get_object(Bucket=bucket, Key="train/a"), "InvalidAccessKeyId")
        denied(lambda: iam(server, key, secret).list_access_keys(), "InvalidClientTokenId")
        admin.update_access_key(UserName=name, AccessKeyId=key, Status="Active")
        assert user_s3.get_object(Bucket=bucket, Key="train/a")["Body"].read() == b"a"
    finally:
        remove_user(admin, name)


def test_iam_errors_are_aws_codes(server):
    admin = iam(server)
    name, key, secret = new_user(admin)
    try:
        denied(lambda: admin.create_user(UserName=name), "EntityAlreadyExists")
        denied(lambda: admin.get_user(UserName="nobody-" + name), "NoSuchEntity")
        denied(lambda: admin.put_user_policy(UserName=name, PolicyName="p", PolicyDocument='{"Statement": [{"Effect": "Allow"}]}'), "MalformedPolicyDocument")
        denied(lambda: admin.put_user_policy(UserName=name, PolicyName="p", PolicyDocument="not json"), "MalformedPolicyDocument")
        admin.create_access_key(UserName=name)
        denied(lambda: admin.create_access_key(UserName=name), "LimitExceeded")
        denied(lambda: admin.delete_user(UserName=name), "DeleteConflict")
        denied(lambda: admin.create_user(UserName="bad/name"), "ValidationError")
        # What Quarry does not keep is refused, not dropped.
        denied(lambda: admin.create_user(UserName="tagged-" + name, Tags=[{"Key": "team", "Value": "ml"}]), "NotImplemented")
        denied(lambda: admin.get_user(UserName="tagged-" + name), "NoSuchEntity")
        denied(lambda: admin.create_role(RoleName="r", AssumeRolePolicyDocument="{}"), "MalformedPolicyDocument")
        denied(lambda: admin.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::000000000000:policy/none"), "NoSuchEntity")
        # A user whose policy allows iam:* manages identities like root.
        admin.put_user_policy(UserName=name, PolicyName="admin", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}))
        delegate = iam(server, key, secret)
        other, _, _ = new_user(delegate)
        remove_user(delegate, other)
        # Signed with a wrong secret.
        denied(lambda: iam(server, key, "wrong" + secret).list_users(), "SignatureDoesNotMatch")
        denied(lambda: iam(server, "AKIANOTAKEY000000000", secret).list_users(), "InvalidClientTokenId")
    finally:
        remove_user(admin, name)


@pytest.mark.ops("STS AssumeRole", "STS GetCallerIdentity")
def test_assumed_role_session_narrows_and_expires(s3, bucket):
    # A server of its own, where sessions may be as short as 2 s (AWS's floor is 900 s).
    binary = os.environ.get("QUARRY_BIN", os.path.join(REPO, "target", "ci", "quarry"))
    with tempfile.TemporaryDirectory(prefix="quarry-sts-") as tmp:
        srv = Server(binary, tmp, extra_args=["--sts-min-duration", "2"])
        try:
            root = make_client(srv)
            root.create_bucket(Bucket="data")
            root.put_object(Bucket="data", Key="train/a", Body=b"a")
            root.put_object(Bucket="data", Key="train/b", Body=b"b")
            admin = iam(srv)
            name, key, secret = new_user(admin, read_prefix_policy("data", "train/"))
            ident = sts(srv, key, secret).get_caller_identity()
            assert ident["Arn"] == f"arn:aws:iam::000000000000:user/{name}" and ident["Account"] == "000000000000"
            narrow = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::data/train/a", "arn:aws:s3:::data/other/*"]}]})
            resp = sts(srv, key, secret, validate=False).assume_role(RoleArn="arn:minio:iam:::role/trainer", RoleSessionName="job-1", DurationSeconds=4, Policy=narrow)
            c = resp["Credentials"]
            assert c["AccessKeyId"].startswith("ASIA") and c["SessionToken"]
            assert resp["AssumedRoleUser"]["Arn"] == "arn:aws:sts::000000000000:assumed-role/trainer/job-1"
            sess = s3_as(srv, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
            assert sess.get_object(Bucket="data", Key="train/a")["Body"].read() == b"a"
            # Presigned with temporary credentials: the token rides in the query string.
            url = sess.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "train/a"})
            assert "x-amz-security-token" in url.lower() and urllib.request.urlopen(url).read() == b"a"
            v4 = boto3.client("s3", endpoint_url=srv.url, aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"], region_name="us-east-1", config=CFG.merge(Config(signature_version="s3v4")))
            url = v4.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "train/a"})
            assert "X-Amz-Security-Token" in url and urllib.request.urlopen(url).read() == b"a"
            # The session policy narrows (train/b) and never widens (other/ is not the user's).
            denied(lambda: sess.get_object(Bucket="data", Key="train/b"))
            denied(lambda: sess.put_object(Bucket="data", Key="other/x", Body=b"x"))
            # Without its token the temporary key is refused.
            denied(lambda: s3_as(srv, c["AccessKeyId"], c["SecretAccessKey"]).get_object(Bucket="data", Key="train/a"), "InvalidToken")
            denied(lambda: sts(srv, key, secret, validate=False).assume_role(RoleArn="arn:minio:iam:::role/trainer", RoleSessionName="xy", DurationSeconds=1), "ValidationError")
            time.sleep(5)
            denied(lambda: sess.get_object(Bucket="data", Key="train/a"), "ExpiredToken")
        finally:
            srv.stop()


def test_identity_store_survives_restart_privately_and_secrets_stay_out_of_logs(tmp_path):
    binary = os.environ.get("QUARRY_BIN", os.path.join(REPO, "target", "ci", "quarry"))
    data = str(tmp_path / "data")
    log = tmp_path / "server.log"
    with open(log, "w") as err:
        srv = Server(binary, data, log_level="debug,s3s=debug", stderr=err)
        admin = iam(srv)
        name, key, secret = new_user(admin, read_prefix_policy("bkt", ""))
        root = make_client(srv)
        root.create_bucket(Bucket="bkt")
        root.put_object(Bucket="bkt", Key="k", Body=b"v")
        denied(lambda: s3_as(srv, key, secret + "x").get_object(Bucket="bkt", Key="k"), "SignatureDoesNotMatch")
        srv.stop()
        srv = Server(binary, data, log_level="debug,s3s=debug", stderr=err)
        assert s3_as(srv, key, secret).get_object(Bucket="bkt", Key="k")["Body"].read() == b"v"
        assert iam(srv).get_user(UserName=name)["User"]["UserName"] == name
        srv.stop()
    text = log.read_text()
    assert "identity store loaded" in text
    assert secret not in text and SECRET not in text
    # The identity store lives in the drive's metadata index, readable by the server's
    # user only.
    index = os.path.join(data, ".quarry", "index.redb")
    assert stat.S_IMODE(os.stat(index).st_mode) == 0o600


def test_awscli_creates_a_user_whose_key_reads_one_prefix(server, s3, bucket, tmp_path):
    from test_awscli import aws

    s3.put_object(Bucket=bucket, Key="train/x.txt", Body=b"x")
    s3.put_object(Bucket=bucket, Key="secret/y.txt", Body=b"y")
    name = "cli-" + uuid.uuid4().hex[:8]
    aws(server, "iam", "create-user", "--user-name", name)
    aws(server, "iam", "put-user-policy", "--user-name", name, "--policy-name", "read", "--policy-document", read_prefix_policy(bucket, "train/"))
    key = json.loads(aws(server, "iam", "create-access-key", "--user-name", name).stdout)["AccessKey"]
    assert name in aws(server, "iam", "list-users").stdout
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"], AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    run = lambda *a: subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", server.url, *a], env=env, capture_output=True, text=True, timeout=120)
    ok = run("s3", "cp", f"s3://{bucket}/train/x.txt", str(tmp_path / "x.txt"))
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "x.txt").read_bytes() == b"x"
    no = run("s3", "cp", f"s3://{bucket}/secret/y.txt", str(tmp_path / "y.txt"))
    assert no.returncode != 0 and "403" in no.stderr
    remove_user(iam(server), name)


def test_quarry_admin_adds_lists_disables_and_removes(server, s3, bucket):
    binary = os.environ.get("QUARRY_BIN", os.path.join(REPO, "target", "ci", "quarry"))
    env = dict(os.environ, QUARRY_ROOT_USER=USER, QUARRY_ROOT_PASSWORD=SECRET, QUARRY_ENDPOINT=server.url)
    admin = lambda *a: subprocess.run([binary, "admin", *a], env=env, capture_output=True, text=True, timeout=60)
    s3.put_object(Bucket=bucket, Key="train/x", Body=b"x")
    name = "adm-" + uuid.uuid4().hex[:8]
    r = admin("user", "add", name, "--policy", read_prefix_policy(bucket, "train/"))
    assert r.returncode == 0, r.stderr
    lines = dict(l.split(": ", 1) for l in r.stdout.splitlines() if ": " in l)
    key, secret = lines["access key"], lines["secret key"]
    assert s3_as(server, key, secret).get_object(Bucket=bucket, Key="train/x")["Body"].read() == b"x"
    listed = admin("user", "list")
    assert listed.returncode == 0 and any(name in l and key in l and "Active" in l for l in listed.stdout.splitlines())
    assert admin("key", "disable", key).returncode == 0
    denied(lambda: s3_as(server, key, secret).get_object(Bucket=bucket, Key="train/x"), "InvalidAccessKeyId")
    assert admin("key", "enable", key).returncode == 0
    assert s3_as(server, key, secret).get_object(Bucket=bucket, Key="train/x")["Body"].read() == b"x"
    dup = admin("user", "add", name)
    assert dup.returncode != 0 and "EntityAlreadyExists" in dup.stderr
    assert admin("user", "remove", name).returncode == 0
    denied(lambda: iam(server).get_user(UserName=name), "NoSuchEntity")


def test_existing_object_tag_condition(server, s3, bucket):
    admin = iam(server)
    s3.put_object(Bucket=bucket, Key="doc/open.txt", Body=b"open", Tagging="classification=public")
    s3.put_object(Bucket=bucket, Key="doc/closed.txt", Body=b"closed", Tagging="classification=internal")
    s3.put_object(Bucket=bucket, Key="doc/untagged.txt", Body=b"?")
    doc = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*", "Condition": {"StringEquals": {"s3:ExistingObjectTag/classification": "public"}}}
            ],
        }
    )
    name, key, secret = new_user(admin, doc)
    try:
        user = s3_as(server, key, secret)
        assert user.get_object(Bucket=bucket, Key="doc/open.txt")["Body"].read() == b"open"
        denied(lambda: user.get_object(Bucket=bucket, Key="doc/closed.txt"))
        denied(lambda: user.get_object(Bucket=bucket, Key="doc/untagged.txt"))
        # Retagging changes the answer at once.
        s3.put_object_tagging(Bucket=bucket, Key="doc/closed.txt", Tagging={"TagSet": [{"Key": "classification", "Value": "public"}]})
        assert user.get_object(Bucket=bucket, Key="doc/closed.txt")["Body"].read() == b"closed"
    finally:
        remove_user(admin, name)


@pytest.mark.ops("DeleteObjects")
def test_delete_objects_is_authorised_key_by_key(server, s3, bucket):
    admin = iam(server)
    for k in ("tmp/a", "tmp/b", "keep/c"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{bucket}/tmp/*"}]})
    name, key, secret = new_user(admin, doc)
    try:
        out = s3_as(server, key, secret).delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "tmp/a"}, {"Key": "keep/c"}, {"Key": "tmp/b"}]})
        assert sorted(d["Key"] for d in out["Deleted"]) == ["tmp/a", "tmp/b"]
        assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("keep/c", "AccessDenied")]
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["keep/c"]
    finally:
        remove_user(admin, name)


def test_bucket_policy_grants_a_named_user_and_v2_presigned_urls_carry_the_users_rights(server, s3, bucket):
    admin = iam(server)
    s3.put_object(Bucket=bucket, Key="shared/a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="private/b", Body=b"b")
    name, key, secret = new_user(admin)
    try:
        user = s3_as(server, key, secret)
        denied(lambda: user.get_object(Bucket=bucket, Key="shared/a"))
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::000000000000:user/{name}"}, "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/shared/*"}],
        }
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        assert user.get_object(Bucket=bucket, Key="shared/a")["Body"].read() == b"a"
        denied(lambda: user.get_object(Bucket=bucket, Key="private/b"))
        v2 = boto3.client("s3", endpoint_url=server.url, aws_access_key_id=key, aws_secret_access_key=secret, region_name="us-east-1", config=Config(signature_version="s3", s3={"addressing_style": "path"}))
        assert urllib.request.urlopen(v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "shared/a"})).read() == b"a"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "private/b"}))
        assert e.value.code == 403
        s3.delete_bucket_policy(Bucket=bucket)
    finally:
        remove_user(admin, name)


def test_post_form_signed_by_a_user_is_authorised_on_its_key(server, s3, bucket):
    from test_post import post_form

    admin = iam(server)
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/inbox/*"}]})
    name, key, secret = new_user(admin, doc)
    try:
        user = s3_as(server, key, secret)
        p = user.generate_presigned_post(bucket, "inbox/${filename}", ExpiresIn=300)
        status, body = post_form(p["url"], p["fields"], b"mine", filename="a.txt")
        assert status == 204, body
        assert s3.get_object(Bucket=bucket, Key="inbox/a.txt")["Body"].read() == b"mine"
        p = user.generate_presigned_post(bucket, "other/b.txt", ExpiresIn=300)
        status, body = post_form(p["url"], p["fields"], b"not mine")
        assert status == 403 and b"AccessDenied" in body
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["inbox/a.txt"]
    finally:
        remove_user(admin, name)


@pytest.mark.ops(
    "IAM CreateRole",
    "IAM GetRole",
    "IAM ListRoles",
    "IAM UpdateRole",
    "IAM DeleteRole",
    "IAM PutRolePolicy",
    "IAM GetRolePolicy",
    "IAM ListRolePolicies",
    "IAM DeleteRolePolicy",
    "IAM AttachRolePolicy",
    "IAM DetachRolePolicy",
    "IAM ListAttachedRolePolicies",
    "STS AssumeRole",
)
def test_roles_are_assumed_by_whom_their_trust_policy_names(server, s3, bucket):
    """The vending pattern of analytics catalogs: a role with a prefix's permissions, a
    trusted caller allowed sts:AssumeRole, an inline session policy narrowing further."""
    admin = iam(server)
    s3.put_object(Bucket=bucket, Key="tables/t1/part-0.parquet", Body=b"t1")
    s3.put_object(Bucket=bucket, Key="tables/t2/part-0.parquet", Body=b"t2")
    s3.put_object(Bucket=bucket, Key="secret/x", Body=b"x")
    assume = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})
    vendor, vkey, vsecret = new_user(admin, assume)
    outsider, okey, osecret = new_user(admin, assume)
    untrusting, ukey, usecret = new_user(admin)
    role = "reader-" + uuid.uuid4().hex[:8]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::000000000000:user/{vendor}", f"arn:aws:iam::000000000000:user/{untrusting}"]}, "Action": "sts:AssumeRole"}],
    }
    try:
        r = admin.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust), Description="table reader", MaxSessionDuration=7200)["Role"]
        arn = r["Arn"]
        assert arn == f"arn:aws:iam::000000000000:role/{role}" and r["RoleId"].startswith("AROA")
        denied(lambda: admin.create_role(RoleName=role.upper(), AssumeRolePolicyDocument=json.dumps(trust)), "EntityAlreadyExists")
        tables = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/tables/*"}]}
        admin.put_role_policy(RoleName=role, PolicyName="tables", PolicyDocument=json.dumps(tables))
        assert admin.list_role_policies(RoleName=role)["PolicyNames"] == ["tables"]
        assert admin.get_role_policy(RoleName=role, PolicyName="tables")["PolicyDocument"] == tables
        got = admin.get_role(RoleName=role)["Role"]
        assert got["Description"] == "table reader" and got["MaxSessionDuration"] == 7200 and got["AssumeRolePolicyDocument"] == trust
        admin.update_role(RoleName=role, MaxSessionDuration=3600)
        assert admin.get_role(RoleName=role)["Role"]["MaxSessionDuration"] == 3600
        assert role in [x["RoleName"] for x in admin.list_roles()["Roles"]]

        # The trusted caller gets the role's permissions (not its own), narrowed by the session policy.
        narrow = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/tables/t1/*"}]})
        creds = sts(server, vkey, vsecret).assume_role(RoleArn=arn, RoleSessionName="job-1", Policy=narrow)
        c = creds["Credentials"]
        assert creds["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::000000000000:assumed-role/{role}/job-1"
        session = s3_as(server, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        assert session.get_object(Bucket=bucket, Key="tables/t1/part-0.parquet")["Body"].read() == b"t1"
        denied(lambda: session.get_object(Bucket=bucket, Key="tables/t2/part-0.parquet"))
        denied(lambda: session.get_object(Bucket=bucket, Key="secret/x"))
        denied(lambda: session.put_object(Bucket=bucket, Key="tables/t1/new", Body=b"n"))
        who = boto3.client("sts", endpoint_url=server.url, aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"], region_name="us-east-1", config=CFG)
        assert who.get_caller_identity()["Arn"] == f"arn:aws:sts::000000000000:assumed-role/{role}/job-1"
        # Not trusted (though allowed sts:AssumeRole): refused. Named in the trust policy
        # itself: enough without an identity policy, as on AWS.
        denied(lambda: sts(server, okey, osecret).assume_role(RoleArn=arn, RoleSessionName="x1"))
        sts(server, ukey, usecret).assume_role(RoleArn=arn, RoleSessionName="x2")
        denied(lambda: sts(server, vkey, vsecret).assume_role(RoleArn=arn + "-gone", RoleSessionName="x3"))
        # A role that trusts the whole account: a caller also needs sts:AssumeRole itself.
        acct_role = role + "-acct"
        acct_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"}, "Action": "sts:AssumeRole"}]}
        acct_arn = admin.create_role(RoleName=acct_role, AssumeRolePolicyDocument=json.dumps(acct_trust))["Role"]["Arn"]
        sts(server, vkey, vsecret).assume_role(RoleArn=acct_arn, RoleSessionName="y1")
        denied(lambda: sts(server, ukey, usecret).assume_role(RoleArn=acct_arn, RoleSessionName="y2"))
        admin.delete_role(RoleName=acct_role)
        denied(lambda: sts(server, vkey, vsecret).assume_role(RoleArn=arn, RoleSessionName="x4", DurationSeconds=7200), "ValidationError")

        # Attached managed policies count too; a role with policies cannot be deleted.
        pol = admin.create_policy(PolicyName="secret-" + role, PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/secret/*"}]}))["Policy"]["Arn"]
        admin.attach_role_policy(RoleName=role, PolicyArn=pol)
        assert [p["PolicyArn"] for p in admin.list_attached_role_policies(RoleName=role)["AttachedPolicies"]] == [pol]
        c = sts(server, vkey, vsecret).assume_role(RoleArn=arn, RoleSessionName="job-2")["Credentials"]
        assert s3_as(server, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]).get_object(Bucket=bucket, Key="secret/x")["Body"].read() == b"x"
        denied(lambda: admin.delete_role(RoleName=role), "DeleteConflict")
        admin.detach_role_policy(RoleName=role, PolicyArn=pol)
        admin.delete_policy(PolicyArn=pol)
        admin.delete_role_policy(RoleName=role, PolicyName="tables")
        admin.delete_role(RoleName=role)
        denied(lambda: admin.get_role(RoleName=role), "NoSuchEntity")
        # The role's sessions end with it.
        denied(lambda: s3_as(server, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]).get_object(Bucket=bucket, Key="secret/x"), "InvalidAccessKeyId")
    finally:
        for u in (vendor, outsider, untrusting):
            remove_user(admin, u)


@pytest.mark.ops("STS GetSessionToken")
def test_session_token_carries_the_users_permissions(server, s3, bucket):
    admin = iam(server)
    s3.put_object(Bucket=bucket, Key="train/a", Body=b"a")
    name, key, secret = new_user(admin, read_prefix_policy(bucket, "train/"))
    try:
        c = sts(server, key, secret).get_session_token(DurationSeconds=900)["Credentials"]
        assert c["AccessKeyId"].startswith("ASIA")
        session = s3_as(server, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        assert session.get_object(Bucket=bucket, Key="train/a")["Body"].read() == b"a"
        denied(lambda: session.put_object(Bucket=bucket, Key="train/b", Body=b"b"))
        who = boto3.client("sts", endpoint_url=server.url, aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"], region_name="us-east-1", config=CFG)
        assert who.get_caller_identity()["Arn"] == f"arn:aws:iam::000000000000:user/{name}"
        denied(lambda: sts(server, c["AccessKeyId"], c["SecretAccessKey"]).get_session_token(), "InvalidClientTokenId")
    finally:
        remove_user(admin, name)
