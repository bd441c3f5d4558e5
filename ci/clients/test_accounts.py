"""Two accounts on one server, as S3 users see them: each owns its buckets, lists only its
own, is refused on the other's unless a bucket policy or an ACL grants it, and ACLs work
on buckets whose Object Ownership allows them (boto3 and the AWS CLI)."""

import json
import os
import re
import subprocess
import sys
import uuid

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import SECRET, USER

CFG = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
DEFAULT_ACCOUNT = "000000000000"


def admin(server, *args):
    env = dict(os.environ, QUARRY_ENDPOINT=server.url, QUARRY_ROOT_USER=USER, QUARRY_ROOT_PASSWORD=SECRET)
    binary = os.environ.get("QUARRY_BIN")
    r = subprocess.run([binary, "admin", *args], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


class Account:
    def __init__(self, server, name, email=None):
        out = admin(server, "account", "add", name, *(["--email", email] if email else []))
        field = lambda f: re.search(rf"^{f}: (\S+)$", out, re.M).group(1)
        self.id, self.canonical = field("account id"), field("canonical id")
        self.key, self.secret = field("access key"), field("secret key")
        self.name, self.email = name, email
        self.s3 = boto3.client("s3", endpoint_url=server.url, aws_access_key_id=self.key, aws_secret_access_key=self.secret, region_name="us-east-1", config=CFG)


@pytest.fixture(scope="module")
def alt(server):
    return Account(server, "alt-" + uuid.uuid4().hex[:8], email=f"alt-{uuid.uuid4().hex[:6]}@example.com")


def new_name():
    return "acct-" + uuid.uuid4().hex[:16]


def err(call):
    with pytest.raises(ClientError) as e:
        call()
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def anonymous(server):
    return boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", config=CFG.merge(Config(signature_version=UNSIGNED)))


@pytest.mark.ops("ListBuckets", "CreateBucket")
def test_each_account_owns_and_lists_its_buckets(server, s3, alt):
    mine, theirs = new_name(), new_name()
    s3.create_bucket(Bucket=mine)
    alt.s3.create_bucket(Bucket=theirs)
    main_list = s3.list_buckets()
    alt_list = alt.s3.list_buckets()
    assert mine in [b["Name"] for b in main_list["Buckets"]] and theirs not in [b["Name"] for b in main_list["Buckets"]]
    assert [b["Name"] for b in alt_list["Buckets"]] == [theirs]
    assert alt_list["Owner"] == {"DisplayName": alt.name, "ID": alt.canonical}
    assert main_list["Owner"]["ID"] != alt.canonical
    # One namespace: the other account's name is taken; one's own answers 200 in
    # us-east-1 (AWS's legacy there).
    assert err(lambda: alt.s3.create_bucket(Bucket=mine)) == (409, "BucketAlreadyExists")
    s3.create_bucket(Bucket=mine)
    assert err(lambda: s3.create_bucket(Bucket=theirs)) == (409, "BucketAlreadyExists")
    assert alt.s3.get_bucket_acl(Bucket=theirs)["Owner"]["ID"] == alt.canonical
    # ExpectedBucketOwner names the owning account.
    alt.s3.head_bucket(Bucket=theirs, ExpectedBucketOwner=alt.id)
    assert err(lambda: alt.s3.head_bucket(Bucket=theirs, ExpectedBucketOwner=DEFAULT_ACCOUNT))[0] == 403
    alt.s3.delete_bucket(Bucket=theirs)
    s3.delete_bucket(Bucket=mine)


def test_accounts_are_refused_on_each_others_buckets(s3, alt, bucket):
    s3.put_object(Bucket=bucket, Key="private", Body=b"main's")
    assert err(lambda: alt.s3.get_object(Bucket=bucket, Key="private")) == (403, "AccessDenied")
    assert err(lambda: alt.s3.list_objects_v2(Bucket=bucket)) == (403, "AccessDenied")
    assert err(lambda: alt.s3.put_object(Bucket=bucket, Key="x", Body=b"x")) == (403, "AccessDenied")
    assert err(lambda: alt.s3.delete_object(Bucket=bucket, Key="private")) == (403, "AccessDenied")
    assert err(lambda: alt.s3.get_bucket_acl(Bucket=bucket)) == (403, "AccessDenied")
    assert err(lambda: alt.s3.put_bucket_policy(Bucket=bucket, Policy="{}")) == (403, "AccessDenied")
    theirs = new_name()
    alt.s3.create_bucket(Bucket=theirs)
    alt.s3.put_object(Bucket=theirs, Key="k", Body=b"alt's")
    # The default account's root is an account like any other on another account's bucket.
    assert err(lambda: s3.get_object(Bucket=theirs, Key="k")) == (403, "AccessDenied")
    assert err(lambda: s3.delete_bucket(Bucket=theirs)) == (403, "AccessDenied")
    # Copying from a bucket one may not read is refused too.
    assert err(lambda: alt.s3.copy_object(Bucket=theirs, Key="stolen", CopySource={"Bucket": bucket, "Key": "private"})) == (403, "AccessDenied")
    alt.s3.delete_object(Bucket=theirs, Key="k")
    alt.s3.delete_bucket(Bucket=theirs)


def test_bucket_policy_grants_another_account(s3, alt, bucket):
    s3.put_object(Bucket=bucket, Key="shared/a", Body=b"shared")
    s3.put_object(Bucket=bucket, Key="other/b", Body=b"other")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{alt.id}:root"}, "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/shared/*"}],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert alt.s3.get_object(Bucket=bucket, Key="shared/a")["Body"].read() == b"shared"
    assert err(lambda: alt.s3.get_object(Bucket=bucket, Key="other/b")) == (403, "AccessDenied")
    assert err(lambda: alt.s3.list_objects_v2(Bucket=bucket)) == (403, "AccessDenied")
    # A grant to the account id alone means the same.
    policy["Statement"][0]["Principal"] = {"AWS": alt.id}
    policy["Statement"][0]["Action"] = "s3:ListBucket"
    policy["Statement"][0]["Resource"] = f"arn:aws:s3:::{bucket}"
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert [o["Key"] for o in alt.s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["other/b", "shared/a"]
    assert err(lambda: alt.s3.get_object(Bucket=bucket, Key="shared/a")) == (403, "AccessDenied")
    s3.delete_bucket_policy(Bucket=bucket)


def test_bucket_policy_conditions_on_what_a_write_asks(s3, alt, bucket):
    """s3:x-amz-copy-source, s3:RequestObjectTag/<key> and s3:x-amz-acl are read from the
    request: a policy can let another account copy only from one prefix, or write only
    objects tagged a certain way."""
    src = new_name()
    s3.create_bucket(Bucket=src)
    s3.put_object(Bucket=src, Key="public/a", Body=b"pa")
    s3.put_object(Bucket=src, Key="private/b", Body=b"pb")
    principal = {"AWS": f"arn:aws:iam::{alt.id}:root"}
    read_src = {"Effect": "Allow", "Principal": principal, "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{src}/*"}
    s3.put_bucket_policy(Bucket=src, Policy=json.dumps({"Version": "2012-10-17", "Statement": [read_src]}))
    write = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": {"StringLike": {"s3:x-amz-copy-source": f"{src}/public/*"}},
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [write]}))
    alt.s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": src, "Key": "public/a"})
    assert s3.get_object(Bucket=bucket, Key="copied")["Body"].read() == b"pa"
    assert err(lambda: alt.s3.copy_object(Bucket=bucket, Key="no", CopySource={"Bucket": src, "Key": "private/b"})) == (403, "AccessDenied")
    assert err(lambda: alt.s3.put_object(Bucket=bucket, Key="plain", Body=b"x")) == (403, "AccessDenied")

    write["Condition"] = {"StringEquals": {"s3:RequestObjectTag/security": "public"}}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [write]}))
    alt.s3.put_object(Bucket=bucket, Key="tagged", Body=b"t", Tagging="security=public&x=1")
    assert err(lambda: alt.s3.put_object(Bucket=bucket, Key="t2", Body=b"t", Tagging="security=secret")) == (403, "AccessDenied")
    assert err(lambda: alt.s3.put_object(Bucket=bucket, Key="t3", Body=b"t")) == (403, "AccessDenied")
    s3.delete_bucket_policy(Bucket=bucket)
    for k in ("public/a", "private/b"):
        s3.delete_object(Bucket=src, Key=k)
    s3.delete_bucket(Bucket=src)


def test_not_principal_only_narrows_a_deny(s3, alt, bucket):
    stmt = {"Effect": "Allow", "NotPrincipal": {"AWS": f"arn:aws:iam::{alt.id}:root"}, "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"}
    assert err(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [stmt]}))) == (400, "MalformedPolicy")
    stmt["Effect"] = "Deny"
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [stmt]}))
    s3.delete_bucket_policy(Bucket=bucket)


@pytest.mark.ops("PutBucketAcl", "GetBucketAcl", "PutObjectAcl", "GetObjectAcl", "PutBucketOwnershipControls", "GetBucketOwnershipControls", "DeleteBucketOwnershipControls")
def test_acls_on_an_object_writer_bucket(server, s3, alt):
    name = new_name()
    s3.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter")
    assert s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "ObjectWriter"}]
    main_canonical = s3.get_bucket_acl(Bucket=name)["Owner"]["ID"]
    assert err(lambda: alt.s3.list_objects(Bucket=name)) == (403, "AccessDenied")
    # READ on the bucket lets alt list it, and nothing more.
    s3.put_bucket_acl(Bucket=name, GrantRead=f'id="{alt.canonical}"', GrantFullControl=f'id="{main_canonical}"')
    grants = s3.get_bucket_acl(Bucket=name)["Grants"]
    assert {"Grantee": {"DisplayName": alt.name, "ID": alt.canonical, "Type": "CanonicalUser"}, "Permission": "READ"} in grants
    alt.s3.list_objects(Bucket=name)
    assert err(lambda: alt.s3.put_object(Bucket=name, Key="x", Body=b"x")) == (403, "AccessDenied")
    # WRITE (granted by e-mail address) lets alt write; the object is alt's.
    s3.put_bucket_acl(Bucket=name, GrantWrite=f'emailAddress="{alt.email}"', GrantRead=f'id="{alt.canonical}"', GrantFullControl=f'id="{main_canonical}"')
    alt.s3.put_object(Bucket=name, Key="alts", Body=b"written by alt")
    assert alt.s3.get_object_acl(Bucket=name, Key="alts")["Owner"]["ID"] == alt.canonical
    assert s3.list_objects(Bucket=name)["Contents"][0]["Owner"] == {"DisplayName": alt.name, "ID": alt.canonical}
    # The bucket owner reads another account's object only if its ACL says so.
    assert err(lambda: s3.get_object(Bucket=name, Key="alts")) == (403, "AccessDenied")
    alt.s3.put_object_acl(Bucket=name, Key="alts", ACL="bucket-owner-read")
    assert s3.get_object(Bucket=name, Key="alts")["Body"].read() == b"written by alt"
    # A public-read object is readable anonymously; a private one is not.
    s3.put_object(Bucket=name, Key="public", Body=b"for everyone", ACL="public-read")
    s3.put_object(Bucket=name, Key="private", Body=b"mine")
    anon = anonymous(server)
    assert anon.get_object(Bucket=name, Key="public")["Body"].read() == b"for everyone"
    assert err(lambda: anon.get_object(Bucket=name, Key="private"))[0] == 403
    assert err(lambda: anon.list_objects(Bucket=name))[0] == 403
    acl = s3.get_object_acl(Bucket=name, Key="public")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"} in acl
    # Bad grants: an unknown canonical id, an unknown e-mail address.
    assert err(lambda: s3.put_bucket_acl(Bucket=name, GrantRead='id="' + "0" * 64 + '"')) == (400, "InvalidArgument")
    assert err(lambda: s3.put_bucket_acl(Bucket=name, GrantRead='emailAddress="nobody@example.com"')) == (400, "UnresolvableGrantByEmailAddress")
    # Turning ACLs off needs a bucket ACL that grants only the owner.
    enforced = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert err(lambda: s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=enforced)) == (400, "InvalidBucketAclWithObjectOwnership")
    s3.put_bucket_acl(Bucket=name, ACL="private")
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=enforced)
    assert err(lambda: s3.put_bucket_acl(Bucket=name, ACL="public-read")) == (400, "AccessControlListNotSupported")
    # ACLs off: the bucket owner owns everything, and the public object is no longer public.
    assert s3.get_object(Bucket=name, Key="alts")["Body"].read() == b"written by alt"
    assert err(lambda: anon.get_object(Bucket=name, Key="public"))[0] == 403
    s3.delete_bucket_ownership_controls(Bucket=name)
    assert err(lambda: s3.get_bucket_ownership_controls(Bucket=name)) == (404, "OwnershipControlsNotFoundError")
    for k in ["alts", "public", "private"]:
        s3.delete_object(Bucket=name, Key=k)
    s3.delete_bucket(Bucket=name)


def test_bucket_owner_preferred_takes_objects_written_with_full_control(s3, alt):
    name = new_name()
    s3.create_bucket(Bucket=name, ObjectOwnership="BucketOwnerPreferred", ACL="public-read-write")
    alt.s3.put_object(Bucket=name, Key="given", Body=b"g", ACL="bucket-owner-full-control")
    alt.s3.put_object(Bucket=name, Key="kept", Body=b"k")
    main_canonical = s3.get_bucket_acl(Bucket=name)["Owner"]["ID"]
    assert s3.get_object_acl(Bucket=name, Key="given")["Owner"]["ID"] == main_canonical
    assert alt.s3.get_object_acl(Bucket=name, Key="kept")["Owner"]["ID"] == alt.canonical
    assert s3.get_object(Bucket=name, Key="given")["Body"].read() == b"g"
    assert err(lambda: s3.get_object(Bucket=name, Key="kept")) == (403, "AccessDenied")
    for k in ["given", "kept"]:
        s3.delete_object(Bucket=name, Key=k)
    s3.delete_bucket(Bucket=name)


def test_acls_stay_off_by_default(s3, bucket):
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert err(lambda: s3.put_bucket_acl(Bucket=bucket, ACL="public-read")) == (400, "AccessControlListNotSupported")
    assert err(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"v", ACL="public-read")) == (400, "AccessControlListNotSupported")
    assert err(lambda: s3.create_bucket(Bucket=new_name(), ACL="public-read")) == (400, "InvalidBucketAclWithObjectOwnership")
    s3.put_object(Bucket=bucket, Key="k", Body=b"v", ACL="bucket-owner-full-control")


def test_awscli_with_two_accounts(server, alt, tmp_path):
    def aws(key, secret, *args):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        return subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", server.url, *args], env=env, capture_output=True, text=True, timeout=120)

    name = new_name()
    assert aws(alt.key, alt.secret, "s3", "mb", f"s3://{name}").returncode == 0
    assert name in aws(alt.key, alt.secret, "s3", "ls").stdout
    assert name not in aws(USER, SECRET, "s3", "ls").stdout
    f = tmp_path / "f.txt"
    f.write_text("from alt\n")
    assert aws(alt.key, alt.secret, "s3", "cp", str(f), f"s3://{name}/f.txt").returncode == 0
    refused = aws(USER, SECRET, "s3", "cp", f"s3://{name}/f.txt", str(tmp_path / "g.txt"))
    assert refused.returncode != 0 and "403" in refused.stderr
    aws(alt.key, alt.secret, "s3", "rm", f"s3://{name}/f.txt")
    assert aws(alt.key, alt.secret, "s3", "rb", f"s3://{name}").returncode == 0


def test_account_admin(server, alt):
    listed = admin(server, "account", "list")
    assert alt.id in listed and alt.key in listed and alt.secret not in listed
    gone = Account(server, "short-lived-" + uuid.uuid4().hex[:6])
    name = new_name()
    gone.s3.create_bucket(Bucket=name)
    env = dict(os.environ, QUARRY_ENDPOINT=server.url, QUARRY_ROOT_USER=USER, QUARRY_ROOT_PASSWORD=SECRET)
    r = subprocess.run([os.environ["QUARRY_BIN"], "admin", "account", "remove", gone.id], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "DeleteConflict" in r.stderr
    gone.s3.delete_bucket(Bucket=name)
    admin(server, "account", "remove", gone.id)
    assert err(lambda: gone.s3.list_buckets())[0] == 403
    # Only the default account's root manages accounts; other accounts have no IAM users.
    iam = boto3.client("iam", endpoint_url=server.url, aws_access_key_id=alt.key, aws_secret_access_key=alt.secret, region_name="us-east-1", config=CFG)
    assert err(lambda: iam.create_user(UserName="nope"))[0] == 501


def test_a_missing_object_is_404_only_to_who_may_list(s3, alt, bucket):
    s3.put_object(Bucket=bucket, Key="public/here", Body=b"h")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": alt.id}, "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Effect": "Allow", "Principal": {"AWS": alt.id}, "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}", "Condition": {"StringLike": {"s3:prefix": "public/*"}}},
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert alt.s3.get_object(Bucket=bucket, Key="public/here")["Body"].read() == b"h"
    # Allowed to read, and to list the name's prefix: it learns the object is missing.
    assert err(lambda: alt.s3.get_object(Bucket=bucket, Key="public/missing")) == (404, "NoSuchKey")
    assert err(lambda: alt.s3.head_object(Bucket=bucket, Key="public/missing"))[0] == 404
    # Allowed to read but not to list there: 403, as on AWS, so names cannot be probed.
    assert err(lambda: alt.s3.get_object(Bucket=bucket, Key="private/missing")) == (403, "AccessDenied")
    assert err(lambda: alt.s3.head_object(Bucket=bucket, Key="private/missing"))[0] == 403
    s3.delete_bucket_policy(Bucket=bucket)
    # A bucket that does not exist is NoSuchBucket to anyone, anonymous callers too.
    anon = boto3.client("s3", endpoint_url=s3.meta.endpoint_url, region_name="us-east-1", config=CFG.merge(Config(signature_version=UNSIGNED)))
    assert err(lambda: anon.get_object(Bucket=new_name(), Key="k")) == (404, "NoSuchBucket")


def test_owner_enforced_bucket_takes_another_accounts_writes_as_its_own(s3, alt, bucket):
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": alt.id}, "Action": ["s3:PutObject", "s3:GetObject"], "Resource": f"arn:aws:s3:::{bucket}/*"}]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    alt.s3.put_object(Bucket=bucket, Key="plain", Body=b"p")
    alt.s3.put_object(Bucket=bucket, Key="given", Body=b"g", ACL="bucket-owner-full-control")
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]
    for k in ["plain", "given"]:
        assert s3.get_object_acl(Bucket=bucket, Key=k)["Owner"] == owner
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() in (b"p", b"g")
    # From another account, `private` would name the writer: refused, as on AWS.
    assert err(lambda: alt.s3.put_object(Bucket=bucket, Key="mine", Body=b"m", ACL="private")) == (400, "AccessControlListNotSupported")
    s3.put_object(Bucket=bucket, Key="own", Body=b"o", ACL="private")
    # The same holds for the ACL operations: the owner may restate `private`, no one else.
    policy["Statement"].append({"Effect": "Allow", "Principal": {"AWS": alt.id}, "Action": ["s3:PutBucketAcl", "s3:PutObjectAcl"], "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert err(lambda: alt.s3.put_bucket_acl(Bucket=bucket, ACL="private")) == (400, "AccessControlListNotSupported")
    assert err(lambda: alt.s3.put_object_acl(Bucket=bucket, Key="plain", ACL="private")) == (400, "AccessControlListNotSupported")
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    s3.put_object_acl(Bucket=bucket, Key="plain", ACL="private")
    s3.delete_bucket_policy(Bucket=bucket)
