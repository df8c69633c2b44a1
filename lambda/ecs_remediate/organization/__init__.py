"""An AWS Organization from one hub account: member events handled in their account through its member
role, member accounts named and swept, the organization sweep's items and summary, the guardrail SCP."""
