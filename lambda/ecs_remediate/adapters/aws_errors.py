"""AWS errors: classified (transient or permanent), and said outside the process without AWS's own text.

An AWS error message can echo the request: ECS's ClientException on RegisterTaskDefinition quotes the value it
refuses (an environment value, a secret's ARN, a command line, a docker label), and botocore's validation errors
print parameters (ParamValidationError prints the invalid value). The no-secrets rule holds for them:

- `withhold_message`, a botocore `after-call` handler on every session the project makes (`aws.new_session`, the
  member accounts' sessions), replaces AWS's message in the parsed answer before the SDK builds its error, so no
  ClientError of ours holds it: not its text, not a traceback, not what the X-Ray SDK records of a failed call;
- `safe_error(error)` is what every notice, log line, sweep row, report, Security Hub finding and CLI message says
  of an error:

    AccessDeniedException: RegisterTaskDefinition was denied (needs iam:PassRole); AWS's message is withheld, as it
    can echo the request (request id 8a3f...)

  the error code (AWS's fixed vocabulary), the operation, our words for the kind of failure and the request id,
  under which CloudTrail records the call's full errorMessage for those allowed to read it; of an AccessDenied, the
  action it names (matched as `service:Action`, nothing else);
- `scrub` and `withhold_aws_text` replace, in place, the text of an error about to be logged with its traceback or
  raised out of a Lambda handler (Lambda logs it; Step Functions copies it into a Catch's Cause).

Why drop AWS's text rather than scrub the quoted parts: what a message echoes, and how it quotes it, is undocumented
and differs by service and by message (quotes, brackets, `value:`, bare text); a scrubber is a deny-list that misses
the next format. The code, the operation and the request id are what an operator acts on.

Exceptions of this package carry our own words (built with `safe_error` where they wrap an AWS error) and are said
as they are; botocore's errors about configuration, credentials and the network name only what the operator
configured (a profile, a file, an endpoint) and are said as they are too. Any other exception (a library's,
Python's) is said by its type and where it was raised: a library's text can quote data (Powertools' idempotency
errors quote the DynamoDB error; `int()` quotes its input).
"""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    RangeError,
    ReadTimeoutError,
    UnknownKeyError,
    ValidationError,
)

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
        "ProvisionedThroughputExceededException",
    }
)
_NETWORK_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)
_PACKAGE = __name__.split(".", 1)[0]  # ecs_remediate: errors of our own say only our words
TEXT_LIMIT = 1000
_WITHHELD = "AWS's message is withheld, as it can echo the request"
# What AWS's own words may contribute: the action an AccessDenied names (`not authorized to perform: iam:PassRole`).
_DENIED_ACTION = re.compile(r"not authorized to perform:? ([a-z0-9-]{2,40}:[A-Za-z0-9*]{1,100})(?![^\s;,.)])")
_TOKEN = re.compile(r"[^A-Za-z0-9._:-]")
# botocore's own errors that print a request's values (its parameter validation); the others name only what the
# operator configured (a profile, a file, an endpoint, the credentials' source) and are said as they are.
_QUOTING_BOTOCORE_ERRORS = (ParamValidationError, ValidationError, UnknownKeyError, RangeError)


def error_code(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "Unknown"))
    return type(error).__name__


def is_transient(error: BaseException) -> bool:
    """True for errors worth retrying later (throttling, 5xx, network); False for permanent ones."""
    if isinstance(error, ClientError):
        return error_code(error) in TRANSIENT_CODES or _status(error) >= 500
    return isinstance(error, _NETWORK_ERRORS)


def safe_error(error: BaseException) -> str:
    """One line about `error` that never carries AWS's or a library's message text (see the module's docstring)."""
    if isinstance(error, ClientError):
        return _client_error(error)
    if isinstance(error, BotoCoreError):
        return _botocore_error(error)
    if type(error).__module__.startswith(_PACKAGE):
        return _one_line(str(error)) or type(error).__name__
    text = f"{type(error).__name__} (its text is withheld){_where(error)}"
    cause = _aws_cause(error)
    return _one_line(f"{text}: {safe_error(cause)}" if cause is not None else text)


# Messages kept because the code reads them and they quote nothing of a task definition: ECS's answer for a revision
# it does not know, CloudFormation's for a stack that does not exist (its name is the operator's --stack-name).
_KEPT_MESSAGES = re.compile(
    r"^(Unable to describe (daemon )?task definition\.?|Stack with id [A-Za-z0-9:/._-]{1,256} does not exist)$"
)
# What an AccessDenied says of why, in IAM's fixed words (`with an explicit deny in a service control policy`).
_DENIED_WHY = re.compile(r"\b(with an explicit deny in an? [a-z -]{1,40}policy|because no [a-z -]{1,40}policy allows)")


def withhold_message(parsed: Any = None, **_: Any) -> None:
    """botocore `after-call` handler: AWS's error message is replaced by our words in the parsed answer, before the
    SDK builds its error from it, so that no ClientError of ours ever holds it: not in its text, not in what the
    X-Ray SDK records of a failed call (the function's Tracer patches botocore), not in a log or a traceback."""
    error = parsed.get("Error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return
    # The modeled error's own `message` member (ECS's ClientException has one) holds the same text; other members
    # stay (DynamoDB's ConditionalCheckFailed returns the item, which Powertools' idempotency reads).
    denied = _denied(str(error.get("Code", "")))
    for holder, key in ((error, "Message"), (parsed, "message"), (parsed, "Message")):
        text = holder.get(key)
        if isinstance(text, str) and text and not _KEPT_MESSAGES.match(text):
            holder[key] = _withheld(text, denied)


def _withheld(message: str, denied: bool) -> str:
    """What replaces an AWS message: our sentence, and of an AccessDenied the action it names (`service:Action`) and
    IAM's words for why (an explicit deny in a service control policy, no identity-based policy that allows it)."""
    action = _DENIED_ACTION.search(message) if denied else None
    why = _DENIED_WHY.search(message) if denied else None
    text = f"{_WITHHELD}; not authorized to perform: {action[1]}" if action else _WITHHELD
    return f"{text} {why[1]}" if why else text


def _denied(code: str) -> bool:
    return "AccessDenied" in code or "Unauthorized" in code or code in ("AuthorizationError", "AuthFailure")


def withhold_messages(events: Any) -> None:
    """Install `withhold_message` on a session's events (every client made from the session afterwards has it)."""
    events.register("after-call", withhold_message, unique_id="ecs-remediate-withhold-message")


def safe_detail(error: BaseException) -> str:
    """`safe_error` without its leading `Code: ` (for a record that keeps the code apart, as a notice's errorCode)."""
    text, code = safe_error(error), f"{_token(error_code(error)) or 'Unknown'}: "
    return text[len(code) :] if text.startswith(code) else text


def safe_failure(code: Any, operation: str) -> str:
    """An error AWS reports per item (Security Hub's FailedFindings: ErrorCode and ErrorMessage), its message left
    out as `safe_error` leaves it out."""
    return f"{_token(code) or 'Unknown'}: {operation} refused it; {_WITHHELD}"


Handler = TypeVar("Handler", bound=Callable[..., Any])


def withhold_aws_text(handler: Handler) -> Handler:
    """A Lambda handler whose raised error says `safe_error` instead of AWS's or a library's text: Lambda logs the
    raised error's type and text, and Step Functions copies them into a Catch's Cause. The error itself is raised
    (same type, same traceback: Lambda's retries, the dead-letter queue and the state machine's Retry rules see what
    they saw); only its text, and that of the AWS errors in its chain, is replaced."""

    @functools.wraps(handler)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except Exception as error:
            scrub(error)
            raise

    return run  # type: ignore[return-value]


def scrub(error: BaseException) -> str:
    """Replace, in place, the text of `error` and of every exception in its chain of causes, except this package's
    own, with `safe_error`'s (so that a traceback logged or printed afterwards holds no AWS or library text).
    Returns `safe_error(error)`."""
    said = safe_error(error)
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if not type(current).__module__.startswith(_PACKAGE):
            text = safe_error(current)
            if isinstance(current, ClientError):
                withhold_message(current.response)
            fields = vars(current)
            if "kwargs" in fields:  # botocore's errors keep what they were built from (ParamValidationError: values)
                fields["kwargs"] = {}
            if "details" in fields:  # Powertools' idempotency errors print `message - (details)`
                fields["message"], fields["details"] = text, None
            current.args = (text,)
        current = current.__cause__ or current.__context__
    return said


def _client_error(error: ClientError) -> str:
    code = _token(error_code(error)) or "Unknown"
    operation = _token(getattr(error, "operation_name", "")) or "the call"
    status = _status(error)
    message = str(error.response.get("Error", {}).get("Message", "") or "")
    request = _token(error.response.get("ResponseMetadata", {}).get("RequestId", ""))
    if _denied(code):
        action, why = _DENIED_ACTION.search(message), _DENIED_WHY.search(message)
        what = f"{operation} was denied"
        what += f" {why[1]}{' it' if why[1].endswith('allows') else ''}" if why else ""
        what += f" (needs {action[1]})" if action else ""
    elif is_transient(error) and status < 500:
        what = f"{operation} was throttled, after the SDK's retries"
    elif status >= 500:
        what = f"{operation} failed on the service's side (HTTP {status}), after the SDK's retries"
    elif "NotFound" in code or code in ("NoSuchKey", "NoSuchEntity", "404"):
        what = f"{operation}: the service does not know the resource"
    else:
        what = f"{operation} was refused by the service"
    return f"{code}: {what}; {_WITHHELD}" + (f" (request id {request})" if request else "")


def _botocore_error(error: BotoCoreError) -> str:
    if isinstance(error, _QUOTING_BOTOCORE_ERRORS):
        return f"{type(error).__name__}: the request failed the SDK's validation (its report prints values: withheld)"
    return _one_line(f"{type(error).__name__}: {error}")


def _aws_cause(error: BaseException) -> BaseException | None:
    """The first AWS error in `error`'s chain of causes (a library's error wrapping one), if any."""
    seen: set[int] = set()
    current: BaseException | None = error.__cause__ or error.__context__
    while current is not None and id(current) not in seen:
        if isinstance(current, ClientError | BotoCoreError):
            found: BaseException = current
            return found
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _where(error: BaseException) -> str:
    """` at folder/file.py:line`: the innermost frame of this package the error passed through ("" when none)."""
    marker = f"/{_PACKAGE}/"
    paths = [(f.filename.replace("\\", "/"), f.lineno) for f in traceback.extract_tb(error.__traceback__)]
    ours = [(path.rsplit(marker, 1)[1], line) for path, line in paths if marker in path]
    return f" at {ours[-1][0]}:{ours[-1][1]}" if ours else ""


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _token(value: Any) -> str:
    """An error code, operation or request id as AWS writes them: letters, digits and ._:- only, 100 at most."""
    return _TOKEN.sub("", str(value or ""))[:100]


def _one_line(text: str) -> str:
    return " ".join(text.split())[:TEXT_LIMIT]


__all__ = [
    "TRANSIENT_CODES",
    "error_code",
    "is_transient",
    "safe_detail",
    "safe_error",
    "safe_failure",
    "scrub",
    "withhold_aws_text",
    "withhold_message",
    "withhold_messages",
]
