"""Acting in a member account of an Organization: the member role's credentials and clients built from them.

The hub function (and an operator sweeping members) reaches a member account only through
`MemberAccounts.client(service, account, region)`:

  * one AssumeRole of `arn:<partition>:iam::<account>:role/<role name>` per account per credential lifetime,
    through the regional STS endpoint of the caller's Region; the credentials are reused until
    `refresh_margin` before they expire, then renewed (botocore asks for them again, under our lock);
  * thread-safe: one AssumeRole in flight per account, other accounts go on in parallel;
  * a client is built from that account's own session and is cached per (service, account, Region); the
    credentials' account (from AssumedRoleUser.Arn) is checked against the account asked for, so one account's
    credentials never reach another account's client;
  * errors are typed: `MemberRoleUnavailable` (the role is missing, does not trust the hub, or a policy denies:
    permanent, remembered for `failure_ttl` so that a storm of events does not become a storm of AssumeRole
    calls; report a failure, never retry forever) versus `MemberAccessTransient` (throttling, 5xx, network,
    after botocore's own retries: retry the work later).

No secret is ever in a log line, an exception message or a repr.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from ..adapters.aws import BOTO_CONFIG, data_loader, error_code, is_transient, new_client, safe_detail
from ..adapters.aws_errors import withhold_messages
from ..core.config import ENV_MEMBER_ROLE_NAME

DEFAULT_MEMBER_ROLE_NAME = "ecs-remediate-member"
# What a member account's CloudTrail shows as the session: assumed-role/<role name>/ecs-remediate.
SESSION_NAME = "ecs-remediate"
# AssumeRole's default duration; the role's MaxSessionDuration (1 hour unless raised) caps it.
SESSION_SECONDS = 3600
# Credentials are renewed this long before they expire, so that no request goes out with a token about to
# lapse (a sweep's page of calls can take minutes under throttling).
REFRESH_MARGIN = timedelta(minutes=5)
# After a permanent failure, the account is not asked again for this long (the answer is the same).
FAILURE_TTL = timedelta(seconds=60)
# STS errors about the caller's own credentials, not the member's role: worth retrying, never remembered.
_CALLER_SIDE_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_ROLE_NAME_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
_ASSUMED_ROLE_ARN_RE = re.compile(r"^arn:[\w-]+:sts::(\d{12}):assumed-role/([\w+=,.@-]+)/")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class MemberAccessError(Exception):
    """The hub cannot act in `account` (base of the two kinds below)."""

    def __init__(self, account: str, role_arn: str, code: str, detail: str) -> None:
        super().__init__(f"cannot assume {role_arn} in account {account}: {code}: {detail}")
        self.account = account
        self.role_arn = role_arn
        self.code = code


class MemberRoleUnavailable(MemberAccessError):
    """Permanent: the member role is missing, does not trust the caller, or a policy (an SCP) denies.
    Report a failure for the account; do not retry (a retry gets the same answer until someone deploys)."""


class CredentialsAccountMismatch(MemberRoleUnavailable):
    """STS answered with credentials of another account than the one asked for: never used."""


class MemberAccessTransient(MemberAccessError):
    """STS throttled, failed (5xx) or could not be reached, after botocore's retries: retry the work later."""


@dataclass(frozen=True)
class MemberCredentials:
    """Temporary credentials of one member account's role (secrets kept out of the repr)."""

    account: str
    role_arn: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime

    def metadata(self) -> dict[str, str]:
        """What botocore's RefreshableCredentials reads."""
        return {
            "access_key": self.access_key_id,
            "secret_key": self.secret_access_key,
            "token": self.session_token,
            "expiry_time": self.expiration.isoformat(),
            "account_id": self.account,
        }


def check_account(account: str) -> str:
    """A 12-digit account id, or ValueError (the id comes from an event: never trusted unchecked)."""
    if not isinstance(account, str) or not _ACCOUNT_RE.match(account):
        raise ValueError(f"not an AWS account id: {account!r}")
    return account


def check_role_name(name: str) -> str:
    if not isinstance(name, str) or not _ROLE_NAME_RE.match(name):
        raise ValueError(f"not an IAM role name: {name!r} (1-64 of letters, digits and +=,.@_-)")
    return name


def _new_core_session() -> botocore.session.Session:
    """A botocore session of its own (its own credentials) on the process session's data loader: each account has
    a session, and a fresh loader would parse the service models and endpoint data again."""
    core = botocore.session.get_session()
    core.register_component("data_loader", data_loader())
    withhold_messages(core)  # its clients never hold AWS's error messages, as the process session's
    return core


def regional_sts_client(region: str | None = None) -> Any:
    """An STS client on the regional endpoint of `region` (default: the process's Region, as Lambda sets it),
    whatever AWS_STS_REGIONAL_ENDPOINTS says, with the project's botocore Config. From the process session (its
    default is regional), or from a session of its own when the environment asks for the legacy global endpoint."""
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise ValueError("no Region for STS: set AWS_REGION")
    client = new_client("sts", region)
    if urlsplit(client.meta.endpoint_url).hostname != "sts.amazonaws.com":
        return client
    session = _new_core_session()
    session.set_config_variable("sts_regional_endpoints", "regional")
    return boto3.session.Session(botocore_session=session).client("sts", region_name=region, config=BOTO_CONFIG)


class MemberAccounts:
    """Credentials and clients for the member accounts, through the member role `role_name`.

    One instance per process (the function keeps it across invocations, like its clients). `clock` and the
    timings are parameters for tests; `sts` is the client AssumeRole is called on (default: regional STS in
    the process's Region, with the process's own credentials).
    """

    def __init__(
        self,
        role_name: str = DEFAULT_MEMBER_ROLE_NAME,
        *,
        sts: Any = None,
        clock: Clock = utc_now,
        refresh_margin: timedelta = REFRESH_MARGIN,
        session_seconds: int = SESSION_SECONDS,
        failure_ttl: timedelta = FAILURE_TTL,
        session_name: str = SESSION_NAME,
    ) -> None:
        self.role_name = check_role_name(role_name)
        self.sts = sts if sts is not None else regional_sts_client()
        self.partition = str(self.sts.meta.partition)
        self._clock = clock
        self._margin = refresh_margin
        self._session_seconds = session_seconds
        self._failure_ttl = failure_ttl
        self._session_name = session_name
        self._lock = threading.Lock()  # guards the dictionaries below and client creation
        self._account_locks: dict[str, threading.Lock] = {}
        self._credentials: dict[str, MemberCredentials] = {}
        self._failures: dict[str, tuple[datetime, MemberRoleUnavailable]] = {}
        self._sessions: dict[str, boto3.session.Session] = {}
        self._clients: dict[tuple[str, str, str], Any] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> MemberAccounts:
        """The role name from MEMBER_ROLE_NAME (the hub stack sets it), else the default."""
        environ = os.environ if environ is None else environ
        return cls(environ.get(ENV_MEMBER_ROLE_NAME, "").strip() or DEFAULT_MEMBER_ROLE_NAME, **kwargs)

    def role_arn(self, account: str) -> str:
        return f"arn:{self.partition}:iam::{check_account(account)}:role/{self.role_name}"

    def credentials(self, account: str) -> MemberCredentials:
        """The account's cached credentials, or new ones from AssumeRole when they are within the refresh margin
        of their expiry. Raises MemberRoleUnavailable (permanent) or MemberAccessTransient."""
        check_account(account)
        with self._account_lock(account):
            now = self._clock()
            cached = self._credentials.get(account)
            if cached is not None and now < cached.expiration - self._margin:
                return cached
            failed = self._failures.get(account)
            if failed is not None and now < failed[0]:
                raise failed[1]
            try:
                fresh = self._assume(account)
            except MemberRoleUnavailable as error:
                self._failures[account] = (now + self._failure_ttl, error)
                self._credentials.pop(account, None)
                raise
            self._failures.pop(account, None)
            self._credentials[account] = fresh
            return fresh

    def client(self, service: str, account: str, region: str) -> Any:
        """A client of `service` in `region` acting as the member role of `account`, with the project's botocore
        Config. Cached; its credentials renew themselves through `credentials(account)`. Raises as `credentials`."""
        key = (service, check_account(account), region)
        with self._lock:
            if key in self._clients:
                return self._clients[key]
        session = self._session(account)
        with self._lock:  # sessions are not thread-safe; clients are
            if key not in self._clients:
                self._clients[key] = session.client(service, region_name=region, config=BOTO_CONFIG)
            return self._clients[key]

    def new_client(self, service: str, account: str, region: str, config: BotoConfig | None = None) -> Any:
        """A new, uncached client as `client` gives, with `config` (default the project's): for a caller that
        attaches handlers of its own (a sweep's rate limiter) or needs other retries. Raises as `credentials`."""
        check_account(account)
        session = self._session(account)
        with self._lock:
            return session.client(service, region_name=region, config=config or BOTO_CONFIG)

    def forget(self, account: str) -> None:
        """Drop the account's credentials, remembered failure, session and clients (e.g. after its role changed)."""
        with self._lock:
            self._credentials.pop(account, None)
            self._failures.pop(account, None)
            self._sessions.pop(account, None)
            for key in [k for k in self._clients if k[1] == account]:
                del self._clients[key]

    # --- internals ---

    def _account_lock(self, account: str) -> threading.Lock:
        with self._lock:
            return self._account_locks.setdefault(account, threading.Lock())

    def _session(self, account: str) -> boto3.session.Session:
        with self._lock:
            if account in self._sessions:
                return self._sessions[account]
        first = self.credentials(account)  # raises before any client exists for an account we cannot act in

        def refresh() -> dict[str, str]:
            fresh = self.credentials(account)
            if fresh.account != account:  # unreachable by construction; the guarantee is worth the line
                raise CredentialsAccountMismatch(account, fresh.role_arn, "WrongAccount", f"got {fresh.account}")
            return fresh.metadata()

        margin = int(self._margin.total_seconds())
        credentials = RefreshableCredentials(
            access_key=first.access_key_id,
            secret_key=first.secret_access_key,
            token=first.session_token,
            expiry_time=first.expiration,
            refresh_using=refresh,
            method="sts-assume-role",
            time_fetcher=self._clock,
            # botocore refreshes exactly when our cache would: no refresh that returns the same credentials.
            advisory_timeout=margin,
            mandatory_timeout=margin,
            account_id=account,
        )
        core = _new_core_session()
        # As botocore's own assume-role provider equips a session: the credentials object renews itself.
        core._credentials = credentials
        session = boto3.session.Session(botocore_session=core)
        with self._lock:
            return self._sessions.setdefault(account, session)

    def _assume(self, account: str) -> MemberCredentials:
        role_arn = self.role_arn(account)
        try:
            response = self.sts.assume_role(
                RoleArn=role_arn, RoleSessionName=self._session_name, DurationSeconds=self._session_seconds
            )
        except ClientError as error:
            code, detail = error_code(error), safe_detail(error)
            if is_transient(error) or code in _CALLER_SIDE_CODES:
                raise MemberAccessTransient(account, role_arn, code, detail) from None
            raise MemberRoleUnavailable(account, role_arn, code, detail) from None
        except BotoCoreError as error:
            if is_transient(error):
                raise MemberAccessTransient(account, role_arn, type(error).__name__, safe_detail(error)) from None
            raise
        user_arn = str(response.get("AssumedRoleUser", {}).get("Arn", ""))
        match = _ASSUMED_ROLE_ARN_RE.match(user_arn)
        if match is None or match.group(1) != account or match.group(2) != self.role_name:
            raise CredentialsAccountMismatch(account, role_arn, "WrongAccount", f"STS returned {user_arn!r}")
        issued = response["Credentials"]
        expiration = issued["Expiration"]
        if isinstance(expiration, str):
            expiration = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=UTC)
        return MemberCredentials(
            account=account,
            role_arn=role_arn,
            access_key_id=str(issued["AccessKeyId"]),
            secret_access_key=str(issued["SecretAccessKey"]),
            session_token=str(issued["SessionToken"]),
            expiration=expiration,
        )


__all__ = [
    "DEFAULT_MEMBER_ROLE_NAME",
    "ENV_MEMBER_ROLE_NAME",
    "CredentialsAccountMismatch",
    "MemberAccessError",
    "MemberAccessTransient",
    "MemberAccounts",
    "MemberCredentials",
    "MemberRoleUnavailable",
    "check_account",
    "regional_sts_client",
]
