"""The `ecs-remediate` command: `fix`, `scan`, `exempt`, `guardrail`, `verify`. Terminal glue only (arguments,
exit codes, tables, Ctrl-C); what it runs lives in the capability folders. Never in the function's asset."""
