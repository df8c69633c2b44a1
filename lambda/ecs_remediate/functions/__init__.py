"""Lambda entry points, thin: the event function (EventBridge through the event queue), the scheduled sweep
and the organization sweep's steps. Each parses, hands over to a capability, logs and counts."""
