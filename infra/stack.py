"""The stack: composes the constructs; holds no resources and no logic of its own."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from .bundling import function_code
from .notifications import Notifications
from .remediator import RUNTIME, Remediator
from .settings import StackSettings


class EcsRemediateStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: StackSettings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.notifications = Notifications(
            self,
            "Notifications",
            emails=settings.notification_emails,
            alarm_name_prefix=f"{self.stack_name}-",
        )
        self.remediator = Remediator(
            self,
            "Remediator",
            settings=settings,
            code=function_code(RUNTIME),
            notifications=self.notifications,
        )
