"""CDK constructs of ecs-remediate and the thin stack that composes them."""
