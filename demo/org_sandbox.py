"""An AWS Organization in the emulator: the hub (moto's default account, where the fake credentials act) is the
management account; member accounts are created through Organizations and reached through moto's STS.

MOTO_ACCOUNT_ID is never set: moto maps the keys its STS issues to the assumed role's account, so a member's
client (credentials from AssumeRole into that account) acts in that account's state, as in AWS. Used by the demo's
organization scene and the organization tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
from botocore.loaders import create_loader

from demo.sandbox import ACCOUNT as HUB
from demo.sandbox import REGION, Sandbox

# What a member's own administrator uses to set things up (in the emulator the role need not exist).
ADMIN_ROLE = "OrganizationAccountAccessRole"
MEMBER_ROLE = "ecs-remediate-member"
_LOADER = create_loader()


@dataclass
class Organization:
    endpoint_url: str | None = None
    region: str = REGION  # the hub's Region (Organizations, STS)
    members: dict[str, str] = field(default_factory=dict)  # account id -> name
    _sessions: dict[str, boto3.session.Session] = field(default_factory=dict, repr=False)
    _clients: dict[tuple[str, str, str], Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def create(self, names: list[str]) -> Organization:
        """An organization managed from the hub, with one ACTIVE member account per name."""
        organizations = self.hub_client("organizations")
        organizations.create_organization(FeatureSet="ALL")
        for name in names:
            status = organizations.create_account(AccountName=name, Email=f"{name}@example.com")
            self.members[str(status["CreateAccountStatus"]["AccountId"])] = name
        return self

    @property
    def accounts(self) -> list[str]:
        return list(self.members)

    def hub_client(self, service: str, region: str | None = None) -> Any:
        return boto3.client(service, region_name=region or self.region, endpoint_url=self.endpoint_url)

    def client(self, service: str, account: str, region: str) -> Any:
        """A client acting in `account` (its administrator's credentials, from moto's STS), cached."""
        key = (service, account, region)
        with self._lock:
            if key in self._clients:
                return self._clients[key]
        session = self._session(account)
        with self._lock:  # sessions are not thread-safe; clients are
            if key not in self._clients:
                self._clients[key] = session.client(service, region_name=region, endpoint_url=self.endpoint_url)
            return self._clients[key]

    def register(self, account: str, region: str, params: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.client("ecs", account, region).register_task_definition(**params)
        return response

    def event_for(
        self, account: str, region: str, params: dict[str, Any], response: dict[str, Any] | None, **kwargs: Any
    ) -> dict[str, Any]:
        """The event as the hub's rule delivers it: the member's CloudTrail event, forwarded with its own envelope
        (`account` and `region` are the member's; EventBridge keeps them when a rule forwards to another bus)."""
        user = kwargs.pop("user_arn", f"arn:aws:sts::{account}:assumed-role/Dev/alice")
        return Sandbox(region=region).event_for(params, response, account=account, user_arn=user, **kwargs)

    def task_definitions(self, account: str, region: str) -> list[str]:
        """Every ACTIVE revision ARN of `account` in `region`."""
        ecs = self.client("ecs", account, region) if account != HUB else self.hub_client("ecs", region)
        return [
            arn
            for page in ecs.get_paginator("list_task_definitions").paginate(status="ACTIVE")
            for arn in page["taskDefinitionArns"]
        ]

    def _session(self, account: str) -> boto3.session.Session:
        with self._lock:
            if account in self._sessions:
                return self._sessions[account]
        issued = self.hub_client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{ADMIN_ROLE}", RoleSessionName="setup"
        )["Credentials"]
        core = botocore.session.get_session()
        core.register_component("data_loader", _LOADER)  # one parse of each service model for every account
        session = boto3.session.Session(
            botocore_session=core,
            aws_access_key_id=issued["AccessKeyId"],
            aws_secret_access_key=issued["SecretAccessKey"],
            aws_session_token=issued["SessionToken"],
        )
        with self._lock:
            return self._sessions.setdefault(account, session)


__all__ = ["ADMIN_ROLE", "HUB", "MEMBER_ROLE", "Organization"]
