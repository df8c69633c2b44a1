"""What only ECS Managed Daemons need: daemon events, daemon task definitions behind the remediation path's
interface, the daemons that run a revision and their rollout, the daemon notice. Where the logic is the same as
for task definitions, the same modules do it."""
