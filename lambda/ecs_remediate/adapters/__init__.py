"""AWS adapters: thin clients and the calls the rest makes (ECS, the daemon API, DynamoDB tables, SNS), one
botocore configuration, errors classified (transient or permanent) and their texts withheld. Each method names the
IAM permission it needs."""
