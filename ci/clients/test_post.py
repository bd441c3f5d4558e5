"""Browser-form POST uploads (PostObject): boto3's generate_presigned_post with SigV4 and
SigV2 policies, conditions enforced, success_action_status."""

import urllib.error
import urllib.request
import http.client
import urllib.parse
import uuid

import pytest
from conftest import make_client


def form_body(fields, data, filename):
    """A browser's multipart/form-data body: (body, content type)."""
    boundary = "----quarry" + uuid.uuid4().hex
    body = b""
    for k, v in fields.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    body += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\nContent-Type: text/plain\r\n\r\n'.encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post_form(url, fields, data, filename="x.txt"):
    body, ctype = form_body(fields, data, filename)
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def post_form_no_redirect(url, fields, data, filename):
    """POST the form without following a redirect: (status, Location)."""
    body, ctype = form_body(fields, data, filename)
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port)
    conn.request("POST", u.path or "/", body=body, headers={"Content-Type": ctype})
    r = conn.getresponse()
    r.read()
    return r.status, r.getheader("Location")


@pytest.mark.ops("PostObject")
@pytest.mark.parametrize("sig", ["s3v4", "s3"])
def test_post_upload_with_policy_conditions(server, s3, bucket, sig):
    signer = make_client(server, signature_version=sig)
    conditions = [["content-length-range", 1, 64], ["starts-with", "$key", "inbox/"], {"success_action_status": "201"}]
    p = signer.generate_presigned_post(bucket, "inbox/form.txt", Fields={"success_action_status": "201"}, Conditions=conditions, ExpiresIn=300)
    status, body = post_form(p["url"], p["fields"], b"uploaded from a form")
    assert status == 201, body
    assert b"<PostResponse>" in body and b"<Key>inbox/form.txt</Key>" in body
    assert s3.get_object(Bucket=bucket, Key="inbox/form.txt")["Body"].read() == b"uploaded from a form"
    # Conditions: too large, a key outside the allowed prefix, a tampered policy. None stores anything.
    status, body = post_form(p["url"], p["fields"], b"x" * 100)
    assert status == 400 and b"EntityTooLarge" in body
    status, body = post_form(p["url"], {**p["fields"], "key": "elsewhere/form.txt"}, b"small")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"Invalid according to Policy" in body, body
    status, body = post_form(p["url"], {**p["fields"], "x-amz-meta-extra": "not in the policy"}, b"small")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body, body
    sig_field = "x-amz-signature" if sig == "s3v4" else "signature"
    status, body = post_form(p["url"], {**p["fields"], sig_field: "AAAA" + p["fields"][sig_field][4:]}, b"small")
    assert status == 403 and b"SignatureDoesNotMatch" in body
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["inbox/form.txt"]


@pytest.mark.ops("PostObject")
def test_post_default_status_is_204(server, s3, bucket):
    p = make_client(server).generate_presigned_post(bucket, "plain.txt", ExpiresIn=300)
    status, body = post_form(p["url"], p["fields"], b"plain")
    assert status == 204 and body == b""
    assert s3.get_object(Bucket=bucket, Key="plain.txt")["Body"].read() == b"plain"


@pytest.mark.ops("PostObject")
def test_post_filename_variable_takes_the_uploaded_files_name(server, s3, bucket):
    def form(**extra):
        """A presigned form for `uploads/${filename}` with `extra` fields, each in its policy."""
        conditions = [["starts-with", "$key", "uploads/"]] + [{k: v} for k, v in extra.items()]
        return make_client(server).generate_presigned_post(bucket, "uploads/${filename}", Fields=extra, Conditions=conditions, ExpiresIn=300)

    p = form()
    status, body = post_form(p["url"], p["fields"], b"data", filename="photo 1.jpg")
    assert status == 204, body
    assert s3.get_object(Bucket=bucket, Key="uploads/photo 1.jpg")["Body"].read() == b"data"
    # A field whose value looks like the file's headers does not fool it.
    note = 'name="file"; filename="evil.txt"'
    p = form(**{"x-amz-meta-note": note})
    status, body = post_form(p["url"], p["fields"], b"more", filename="second.txt")
    assert status == 204, body
    assert s3.head_object(Bucket=bucket, Key="uploads/second.txt")["Metadata"] == {"note": note}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["uploads/photo 1.jpg", "uploads/second.txt"]
    # The 201 PostResponse names the stored key.
    p = form(success_action_status="201")
    status, body = post_form(p["url"], p["fields"], b"third", filename="a&b.txt")
    assert status == 201, body
    assert b"<Key>uploads/a&amp;b.txt</Key>" in body and b"${filename}" not in body, body
    assert s3.get_object(Bucket=bucket, Key="uploads/a&b.txt")["Body"].read() == b"third"
    # So does the 303 redirect's query.
    target = "http://example.invalid/done"
    p = form(success_action_redirect=target)
    status, location = post_form_no_redirect(p["url"], p["fields"], b"fourth", filename="d.txt")
    assert status == 303, location
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert query["key"] == ["uploads/d.txt"] and query["bucket"] == [bucket], location


