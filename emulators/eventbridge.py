"""EventBridge's event pattern matching, as EventBridge does it, without a server.

`matches` uses LocalStack's rule engine (`localstack.services.events.event_rule_engine`), which implements
EventBridge's array semantics: a pattern field inside an array of objects matches when any element matches (moto's
matcher does not). An invalid pattern raises, as PutRule would refuse it.

Where it may differ from AWS:
- the matching is LocalStack's reading of EventBridge's documented pattern syntax (prefix, suffix, anything-but,
  numeric, exists, cidr, wildcard, $or, equals-ignore-case), not EventBridge's own engine: an operator combination
  the documentation leaves open may match differently, and no test here compares it with AWS;
- which patterns are refused, and with what message, is LocalStack's compiler's decision, not PutRule's
  InvalidEventPatternException text; EventBridge's limits on a pattern (its size, the number of value
  combinations it expands to) are not enforced;
- only matching: delivery, retries, input transformers and the event's size limit are not modelled here
  (emulators/forwarding.py plays cross-account delivery).
"""

from __future__ import annotations

from functools import cache
from typing import Any


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """True when EventBridge would deliver `event` to a rule with `pattern` (which must be valid)."""
    compiler, engine = _engine()
    compiled = compiler.compile_event_pattern(pattern)  # raises on an invalid pattern, as PutRule would
    return bool(engine.evaluate_pattern_on_event(compiled, event))


@cache
def _engine() -> tuple[Any, Any]:
    from localstack.services.events.event_rule_engine import EventPatternCompiler, EventRuleEngine

    return EventPatternCompiler(), EventRuleEngine()
