#!/usr/bin/env python3
"""What authorising a request costs end to end: quarry-bench against one Quarry server,
A = an IAM user whose managed policy has 20 statements (the one that allows the benchmark
bucket is the last; a conditional Deny and policy variables are among the others), B = the
root user (no policy evaluated). Same server, same objects, rounds alternate A B A B, so the
ratio is the cost of evaluation per request.

    python3 bench/iam/cost.py --quarry target/ci/quarry --bench target/ci/quarry-bench
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile

import boto3

ROOT_KEY, ROOT_SECRET = "bench-root", "bench-root-secret"


def policy(bucket, statements):
    """`statements` statements; the last allows the benchmark bucket."""
    if statements == 1:
        return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]})
    s = [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": f"arn:aws:s3:::team{i}/data/${{aws:username}}/*"}
        for i in range(statements - 3)
    ]
    s.append({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::datasets", "Condition": {"StringLike": {"s3:prefix": "train/*"}}})
    s.append({"Effect": "Deny", "NotAction": "s3:Get*", "Resource": "arn:aws:s3:::datasets/*", "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "127.0.0.0/8"]}}})
    s.append({"Effect": "Allow", "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]})
    return json.dumps({"Version": "2012-10-17", "Statement": s})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quarry", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--workloads", default="get,head")
    ap.add_argument("--sizes", default="4KiB")
    ap.add_argument("--concurrency", default="16")
    ap.add_argument("--duration", default="5")
    ap.add_argument("--rounds", default="3")
    ap.add_argument("--statements", type=int, default=20, help="statements in the user's policy (1, or 4 and more)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="quarry-iam-bench-") as tmp:
        env = {"QUARRY_ROOT_USER": ROOT_KEY, "QUARRY_ROOT_PASSWORD": ROOT_SECRET, "QUARRY_LOG": "warn", "PATH": "/usr/bin:/bin"}
        srv = subprocess.Popen([args.quarry, "server", tmp, "--address", "127.0.0.1:0", "--fsync", "false"], stdout=subprocess.PIPE, env=env, text=True)
        try:
            url = re.match(r"quarry listening on (\S+)", srv.stdout.readline()).group(1)
            iam = boto3.client("iam", endpoint_url=url, aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET, region_name="us-east-1")
            pol = iam.create_policy(PolicyName="twenty", PolicyDocument=policy("quarry-bench", args.statements))["Policy"]
            iam.create_user(UserName="bench")
            iam.attach_user_policy(UserName="bench", PolicyArn=pol["Arn"])
            key = iam.create_access_key(UserName="bench")["AccessKey"]
            boto3.client("s3", endpoint_url=url, aws_access_key_id=ROOT_KEY, aws_secret_access_key=ROOT_SECRET, region_name="us-east-1").create_bucket(Bucket="quarry-bench")
            cmd = [
                args.bench, "run",
                "--endpoint", url, "--access-key", key["AccessKeyId"], "--secret-key", key["SecretAccessKey"],
                "--vs", url, "--vs-access-key", ROOT_KEY, "--vs-secret-key", ROOT_SECRET,
                "--workloads", args.workloads, "--sizes", args.sizes, "--concurrency", args.concurrency,
                "--duration", args.duration, "--rounds", args.rounds,
            ]
            print(f"A = IAM user with a {args.statements}-statement policy, B = root; same server", flush=True)
            sys.exit(subprocess.run(cmd).returncode)
        finally:
            srv.terminate()
            srv.wait()


if __name__ == "__main__":
    main()
