"""Infrastructure as code, offline (`ecs-remediate fix`): CloudFormation templates, Terraform plans and Terraform
sources read with exact source positions, fixed byte for byte, and what cannot be read reported. CLI only."""
