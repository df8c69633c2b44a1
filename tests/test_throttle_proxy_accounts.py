"""The throttling proxy keeps ECS's buckets per account when moto runs elsewhere: the emulator's
/moto-api/account-of hook names the account of credentials moto's STS issued (bench/hub_burst.py runs moto in a
process of its own, where the bench's process knows none of moto's keys)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from emulators.server import account_of
from emulators.throttle_proxy import BucketRate, ThrottleProxy

MEMBERS = ("111111111111", "222222222222")
TASK = {"family": "web", "containerDefinitions": [{"name": "a", "image": "x", "memory": 64}]}


def member_ecs(endpoint: str, account: str) -> Any:
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=endpoint)
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/member", RoleSessionName="hub")["Credentials"]
    return boto3.client(
        "ecs",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(retries={"mode": "standard", "max_attempts": 0}),
    )


def test_the_hook_names_the_account_of_assumed_role_credentials(moto_endpoint: str) -> None:
    ask = account_of(moto_endpoint)
    for account in MEMBERS:
        key = member_ecs(moto_endpoint, account)._request_signer._credentials.access_key
        assert ask(key) == account
    assert ask("AKIANOTAKEYMOTOKNOWS") == "123456789012"  # moto's default account, as moto answers it


def test_one_members_empty_register_bucket_does_not_throttle_another(moto_endpoint: str) -> None:
    limits = {"RegisterTaskDefinition": BucketRate(0.001, 1)}  # one registration each, no refill to speak of
    with ThrottleProxy(moto_endpoint, limits, account_of=account_of(moto_endpoint)) as proxy:
        noisy, quiet = (member_ecs(proxy.url, account) for account in MEMBERS)
        noisy.register_task_definition(**TASK)
        with pytest.raises(ClientError) as throttled:
            noisy.register_task_definition(**TASK)
        assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
        quiet.register_task_definition(**TASK)  # its own bucket: not throttled
    assert proxy.throttles == {"RegisterTaskDefinition": 1}
