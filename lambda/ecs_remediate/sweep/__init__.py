"""The sweep of what exists (`ecs-remediate scan`, the schedule): list, judge in parallel at the account's
rates, fix through the remediation path, and report rows, counts and the summary notice."""
