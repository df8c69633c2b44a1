"""What the commands that call AWS share: `--profile`, and telling "AWS could not be asked at all" (exit 3, one
line) from what AWS answered.

The first call of a scan is sts:GetCallerIdentity (it needs no permission): it resolves the credentials and reaches an
endpoint, so a missing profile, missing or refused credentials and an endpoint that does not answer stop the scan
there, in a second or two, instead of as one ERROR row per Region after every retry.
"""

from __future__ import annotations

import argparse
import os

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..adapters import aws
from .common import Unjudged, UsageError, one_line

# The preflight gives up fast: a refused connection fails at once, a black-holed endpoint within 2 x 5 s.
_PREFLIGHT = BotoConfig(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=5, read_timeout=10)
# What STS answers for credentials it does not accept (expired, unknown, mistyped secret).
REJECTED_CREDENTIALS = frozenset(
    {
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
        "AuthFailure",
        "InvalidAccessKeyId",
    }
)
_ENV_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def add_profile_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="the named profile of the AWS config files, as the AWS CLI's --profile (it wins over AWS_PROFILE and "
        "over credentials in the environment)",
    )


def use_profile(name: str | None) -> None:
    """`--profile NAME`: what the AWS CLI does with it. The process's own sessions read AWS_PROFILE; the keys in the
    environment would otherwise win over it (botocore's chain puts them first unless a profile is passed in code)."""
    if not name:
        return
    os.environ["AWS_PROFILE"] = name
    for variable in _ENV_CREDENTIALS:
        os.environ.pop(variable, None)
    aws.reset_clients()


def session() -> boto3.session.Session:
    """A session on the standard chain; Unjudged when its profile does not exist."""
    try:
        return aws.new_session()  # its clients never hold AWS's error messages (adapters.aws_errors.withhold_message)
    except BotoCoreError as error:
        reason = unjudged(error)
        assert reason is not None  # every BotoCoreError is one
        raise reason from None


def caller_arn(region: str | None) -> str | None:
    """sts:GetCallerIdentity in `region`: the caller's ARN. Unjudged when AWS cannot be asked (see `unjudged`); None
    when STS answered with another error (the scan goes on without knowing who it runs as, as before)."""
    try:
        if session().get_credentials() is None:
            raise NoCredentialsError()
        client = session().client("sts", region_name=region, config=aws.BOTO_CONFIG.merge(_PREFLIGHT))
        return str(client.get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError) as error:
        if (reason := unjudged(error)) is not None:
            raise reason from None
        return None
    except KeyError:
        return None


def unjudged(error: BaseException) -> Unjudged | None:
    """The one-line Unjudged for an error that means AWS could not be asked at all; None for an answer of AWS's
    (access denied, throttling, ...: the caller reports those as it always did)."""
    if isinstance(error, ProfileNotFound):
        name = error.kwargs.get("profile", "")
        return Unjudged(f"the AWS profile {name!r} is not in the AWS config files (aws configure list-profiles)")
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return Unjudged(
            "no AWS credentials: pass --profile or set AWS_PROFILE, or sign in (aws configure, aws sso login)"
        )
    if isinstance(error, BotoConnectionError | ConnectionClosedError | ReadTimeoutError):
        return Unjudged(f"cannot reach AWS: {one_line(str(error))}")
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in REJECTED_CREDENTIALS:
            return Unjudged(f"AWS refused the credentials: {aws.safe_error(error)}")
        return None
    if isinstance(error, BotoCoreError):  # the SDK could not send the request: credentials, configuration, SSO
        return Unjudged(f"cannot ask AWS: {aws.safe_error(error)}")
    return None


__all__ = [
    "REJECTED_CREDENTIALS",
    "add_profile_argument",
    "approver_arn",
    "caller_arn",
    "describe_session",
    "session",
    "unjudged",
    "use_profile",
]


def describe_session(profile: str | None) -> boto3.session.Session:
    """`--describe-profile`'s session (where the revision lives), else the caller's."""
    if not profile:
        return session()
    try:
        return aws.new_session(profile_name=profile)
    except BotoCoreError as error:
        reason = unjudged(error)
        assert reason is not None  # every BotoCoreError is one
        raise reason from None


def approver_arn() -> str:
    """The approver `exempt` records: the caller, as STS names it (a usage error when STS cannot tell)."""
    try:
        return str(session().client("sts", config=aws.BOTO_CONFIG).get_caller_identity()["Arn"])
    except (ClientError, BotoCoreError) as error:
        if (unreachable := unjudged(error)) is not None:
            raise unreachable from None
        raise UsageError(f"cannot tell who you are (sts:GetCallerIdentity): {aws.error_code(error)}") from None
    except KeyError:
        raise UsageError("cannot tell who you are (sts:GetCallerIdentity): no Arn in the answer") from None
