"""Notices from a hub: every one names the member account (id, and its name when Organizations tells) and Region.

One topic receives the notices of every member account, so the subject starts with the account and Region, the
text and the JSON carry both, and two message attributes (`account`, `region`) let an SNS subscription filter
policy route one account's notices to its owners. Pure, but for `AccountTopic.publish`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .aws import Message, Topic, fit_subject
from .notice import CONTROL

_ACCOUNT_LINE = "Account:         "
_REGION_LINE = "Region:          "
_LABEL_LIMIT = 30  # of the subject's 99 characters


def name_account(message: Message, *, account: str, region: str, name: str = "") -> Message:
    """`message` naming `account` (and `name`) and `region` in its subject, text, payload and attributes."""
    shown = f"{account} ({name})" if name else account
    lines = [
        _ACCOUNT_LINE + shown
        if line.startswith(_ACCOUNT_LINE)
        else _REGION_LINE + region
        if line.startswith(_REGION_LINE) and region
        else line
        for line in message.text.split("\n")
    ]
    payload: dict[str, Any] = {**message.payload, "account": account, "accountName": name}
    if region:
        payload["region"] = region
    attributes = {**message.attributes, "account": account}
    if region:
        attributes["region"] = region
    return Message(_subject(message.subject, name or account, region), "\n".join(lines), payload, attributes)


def _subject(subject: str, label: str, region: str) -> str:
    """`[ECS.4] <account name or id>/<region> <the rest>`, ASCII, under SNS's 100 characters."""
    head = f"[{CONTROL}] "
    rest = subject[len(head) :] if subject.startswith(head) else subject
    label = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in label)[:_LABEL_LIMIT]
    where = f"{label}/{region}" if region else label
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


__all__ = ["AccountTopic", "name_account"]
