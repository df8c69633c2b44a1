"""ecs-remediate: registers faithful non-privileged copies of privileged ECS task definitions."""

__version__ = "0.1.0"
