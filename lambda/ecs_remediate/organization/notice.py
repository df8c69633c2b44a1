"""Notices from a hub: every one names the member account by its id first, then (when Organizations tells) the name.

One topic receives the notices of every member account, so the subject starts with the account id and Region, the
text and the JSON carry both, and two message attributes (`account`, `region`) let an SNS subscription filter
policy route one account's notices to its owners. Pure, but for `AccountTopic.publish`.

An account's name is written by that account's administrator (AWS Organizations, or the Account Management API):
the policed party. It can be another account's id, say "compliant", carry control characters, right-to-left
overrides or lookalike letters. So the id, which only AWS sets, comes first everywhere; the name is never in the
subject (99 ASCII characters, where a forged "OK" reads loudest) nor in an attribute (routing goes by id); in the
text it follows the id, quoted, ASCII-escaped (a lookalike letter shows as `\\u0430`) and marked as the member's own
words; in the JSON it is `accountName` without control or format characters, beside `accountNameNote`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..adapters.aws import Topic
from ..core.message import Message, fit_subject
from ..core.notice import CONTROL
from .account_names import clean_name

_ACCOUNT_LINE = "Account:         "
_REGION_LINE = "Region:          "
NAME_NOTE = "as the member account's administrator set it; not verified"


def shown_name(name: str) -> str:
    """How the text shows a member-written name: `clean_name`, in double quotes, non-ASCII escaped ("\\u0430")."""
    return json.dumps(clean_name(name), ensure_ascii=True)


def account_text(account: str, name: str = "") -> str:
    """`111122223333`, or `111122223333 (name "payments-prod", set by ...)`: the id first, the name marked."""
    return f"{account} (name {shown_name(name)}, {NAME_NOTE})" if clean_name(name) else account


def name_account(message: Message, *, account: str, region: str, name: str = "") -> Message:
    """`message` naming `account` (and its member-written `name`, marked) and `region` in its text and payload; the
    id and Region alone in its subject and attributes."""
    subject = _subject(message.subject, account, region)
    lines = [
        _ACCOUNT_LINE + account_text(account, name)
        if line.startswith(_ACCOUNT_LINE)
        else _REGION_LINE + region
        if line.startswith(_REGION_LINE) and region
        else line
        for line in message.text.split("\n")
    ]
    if lines[0] == message.subject:  # the text's first line is the subject (notice.compose)
        lines[0] = subject
    payload: dict[str, Any] = {**message.payload, "account": account, "accountName": clean_name(name)}
    if payload["accountName"]:
        payload["accountNameNote"] = NAME_NOTE
    if region:
        payload["region"] = region
    attributes = {**message.attributes, "account": account}
    if region:
        attributes["region"] = region
    return Message(subject, "\n".join(lines), payload, attributes)


def _subject(subject: str, account: str, region: str) -> str:
    """`[ECS.4] <account id>/<region> <the rest>`, as SNS takes it (aws.fit_subject)."""
    head = f"[{CONTROL}] "
    rest = subject[len(head) :] if subject.startswith(head) else subject
    where = f"{account}/{region}" if region else account
    return fit_subject(f"{head}{where} {rest}")


class AccountTopic(Topic):
    """The hub's topic, publishing for one member account and Region (the account's name looked up when a notice
    is sent, through `name_of`, which never raises)."""

    def __init__(
        self, sns_client: Any, topic_arn: str, *, account: str, region: str, name_of: Callable[[str], str]
    ) -> None:
        super().__init__(sns_client, topic_arn)
        self.account, self.region, self._name_of = account, region, name_of

    def publish(self, message: Message) -> str:
        named = name_account(message, account=self.account, region=self.region, name=self._name_of(self.account))
        return super().publish(named)


__all__ = ["NAME_NOTE", "AccountTopic", "account_text", "name_account", "shown_name"]
