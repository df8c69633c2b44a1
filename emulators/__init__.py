"""The project's AWS emulators: where moto 5.2.5 lacks an API or departs from AWS in a way the stack's guarantees
depend on, played from AWS's documentation and botocore's models, never from ecs_remediate (an import contract in
pyproject.toml keeps them apart, so they cannot agree with our code by construction). Used by the tests, the demo
and the benchmarks; not shipped in the function's asset. Each module's docstring ends with where it may differ
from AWS.

server.py              moto's ThreadedMotoServer with the daemon API and Config's queries in front; `local_emulator()`
daemon_emulator.py     the ECS Managed Daemons API: daemon task definitions, tags, Managed Instances capacity providers
daemon_deployments.py  daemons, their revisions and deployments (finished at once, or as a test hook says)
daemon_api.py          botocore's ECS model: request and response checks, errors, ARNs, page tokens
daemon_state.py        the daemon emulator's records, per account and Region
config_queries.py      AWS Config's advanced queries (SelectResourceConfig, SelectAggregateResourceConfig)
moto_fidelity.py       moto's ECS made faithful: registeredBy/At, tags in the response, deployments, revision numbers
throttle_proxy.py      ECS's per-action token buckets and 100-item list pages, as a proxy in front of moto
securityhub.py         moto's Security Hub completed: BatchUpdateFindings, customer fields kept, EQUALS filters
trail.py               CloudTrail: every RegisterTaskDefinition moto answers, recorded for an event to be built from
eventbridge.py         EventBridge's pattern matching (LocalStack's rule engine)
forwarding.py          EventBridge's cross-account delivery: bus policies, dead-letter queues
event_queue.py         Lambda's SQS event source mapping (batches, partial failures, batching window) on moto's SQS
"""
