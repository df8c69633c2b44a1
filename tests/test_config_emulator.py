"""The emulated AWS Config advanced query (emulators/config_queries.py) answers as AWS documents it: requests checked
against botocore's model, Results as JSON strings of the selected fields, QueryInfo, NextToken paging at the
documented page size from one snapshot, records only where a recorder records task definitions (or an aggregator
covers the account and Region), the documented errors, and the test hooks."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from ecs_remediate.sweep.config_queries import ConfigSource, inventory_query, privileged_query
from emulators.config_queries import CONFIGURATION_PROPERTIES, start_recorder, validate_request
from emulators.daemon_api import ApiError

REGION = "us-east-1"
ACCOUNT = "123456789012"
PRIVILEGED = {"name": "app", "image": "nginx", "memory": 64, "privileged": True}
PLAIN = {"name": "app", "image": "nginx", "memory": 64}
RECORDER = ConfigSource()
ALL = inventory_query(RECORDER, REGION)
PRIVILEGED_ONLY = privileged_query(RECORDER, REGION)


def post(moto: str, path: str, body: dict[str, Any] | None = None) -> None:
    data = json.dumps(body or {}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{moto}{path}", data=data, method="POST")).read()


def client(moto: str, service: str, **credentials: str) -> Any:
    # No client-side validation: the emulator's own checks are under test.
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=moto,
        config=BotoConfig(parameter_validation=False, retries={"total_max_attempts": 1}),
        **credentials,
    )


@pytest.fixture
def moto(moto_server: str) -> str:
    post(moto_server, "/moto-api/reset")
    return moto_server


def register(moto: str, family: str, *containers: dict[str, Any], **extra: Any) -> str:
    ecs = client(moto, "ecs")
    return str(
        ecs.register_task_definition(family=family, containerDefinitions=list(containers), **extra)["taskDefinition"][
            "taskDefinitionArn"
        ]
    )


def recording(moto: str, **kwargs: Any) -> Any:
    config = client(moto, "config")
    start_recorder(config, client(moto, "s3"), **kwargs)
    return config


def error_code(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**params)
    return str(raised.value.response["Error"]["Code"])


def test_results_are_json_strings_of_the_selected_fields_in_cloudformation_names(moto: str) -> None:
    privileged = register(
        moto,
        "agent",
        {**PRIVILEGED, "linuxParameters": {"capabilities": {"add": ["SYS_ADMIN"]}}},
        volumes=[{"name": "v", "dockerVolumeConfiguration": {"driver": "local", "driverOpts": {"o": "bind"}}}],
        pidMode="host",
        tags=[{"key": "team", "value": "infra"}],
    )
    plain = register(moto, "web", PLAIN)
    config = recording(moto)

    answer = config.select_resource_config(Expression=ALL, Limit=100)
    assert answer["QueryInfo"] == {"SelectFields": [{"Name": "arn"}, {"Name": "configuration"}, {"Name": "tags"}]}
    assert "NextToken" not in answer
    results = {json.loads(text)["arn"]: json.loads(text) for text in answer["Results"]}
    assert set(results) == {privileged, plain}
    record = results[privileged]
    assert set(record) == {"arn", "configuration", "tags"}
    assert set(record["configuration"]) <= CONFIGURATION_PROPERTIES
    assert record["configuration"]["TaskDefinitionArn"] == privileged
    assert record["configuration"]["PidMode"] == "host"
    [container] = record["configuration"]["ContainerDefinitions"]
    assert container["Privileged"] is True and container["LinuxParameters"] == {"Capabilities": {"Add": ["SYS_ADMIN"]}}
    [volume] = record["configuration"]["Volumes"]
    assert volume["DockerVolumeConfiguration"]["DriverOpts"] == {"o": "bind"}  # map keys are data: untouched
    assert record["tags"] == [{"key": "team", "value": "infra"}]

    only = config.select_resource_config(Expression=PRIVILEGED_ONLY)
    assert [json.loads(text) for text in only["Results"]] == [{"arn": privileged}]
    assert only["QueryInfo"] == {"SelectFields": [{"Name": "arn"}]}


def test_pages_at_limit_or_25_from_one_snapshot(moto: str) -> None:
    arns = {register(moto, f"f{n % 7}", PLAIN) for n in range(60)}
    config = recording(moto)
    first = config.select_resource_config(Expression=ALL)
    assert len(first["Results"]) == 25 and first["NextToken"]  # the documented default page size
    register(moto, "late", PLAIN)  # after the first page: not in this query's pages
    seen = [json.loads(text)["arn"] for text in first["Results"]]
    token = first["NextToken"]
    while token:
        page = config.select_resource_config(Expression=ALL, NextToken=token, Limit=10)
        assert len(page["Results"]) <= 10
        seen += [json.loads(text)["arn"] for text in page["Results"]]
        token = page.get("NextToken")
    assert sorted(seen) == sorted(arns)
    paginated = [
        json.loads(text)["arn"]
        for page in config.get_paginator("select_resource_config").paginate(
            Expression=ALL, PaginationConfig={"PageSize": 100}
        )
        for text in page["Results"]
    ]
    assert len(paginated) == 61  # a new query sees the late one


def test_documented_errors(moto: str) -> None:
    config = recording(moto)
    select = config.select_resource_config
    assert error_code(select, Expression=ALL, Limit=101) == "InvalidLimitException"
    assert error_code(select, Expression="") == "ValidationException"  # min length 1
    assert error_code(select, Expression="x" * 4097) == "ValidationException"
    assert error_code(select, Limit=5) == "ValidationException"  # Expression is required
    with pytest.raises(ApiError) as unknown:  # boto3 cannot even send an unknown member: checked directly
        validate_request("SelectResourceConfig", {"Expression": ALL, "Unknown": 1})
    assert unknown.value.code == "ValidationException"
    assert error_code(select, Expression=ALL, NextToken="forged:0") == "InvalidNextTokenException"
    page = select(Expression=ALL, Limit=1)
    assert "NextToken" not in page  # no records yet; a token from another query is refused
    for expression in (
        "SELECT * WHERE resourceType = 'AWS::ECS::TaskDefinition'",
        "SELECT arn WHERE resourceType = 'AWS::S3::Bucket'",
        "SELECT arn WHERE configuration.ContainerDefinitions.Privileged = true",
        "SELECT arn, arn WHERE resourceType = 'AWS::ECS::TaskDefinition'",
        ALL + " AND accountId = '123456789012' AND awsRegion = 'us-east-1'",  # the recorder is not narrowed
        ALL + " OR resourceType = 'AWS::IAM::Role'",
        "DELETE arn WHERE resourceType = 'AWS::ECS::TaskDefinition'",
    ):
        assert error_code(select, Expression=expression) == "InvalidExpressionException", expression
    aggregate = config.select_aggregate_resource_config
    narrowed = inventory_query(ConfigSource("org", account=ACCOUNT), REGION)
    assert error_code(aggregate, Expression=narrowed, ConfigurationAggregatorName="org") == (
        "NoSuchConfigurationAggregatorException"
    )
    assert error_code(aggregate, Expression=narrowed, ConfigurationAggregatorName="bad name") == "ValidationException"
    config.put_configuration_aggregator(
        ConfigurationAggregatorName="org", AccountAggregationSources=[{"AccountIds": [ACCOUNT], "AllAwsRegions": True}]
    )
    assert error_code(aggregate, Expression=ALL, ConfigurationAggregatorName="org") == "InvalidExpressionException"
    assert error_code(aggregate, Expression=narrowed, ConfigurationAggregatorName="org", MaxResults=500) == (
        "InvalidLimitException"
    )


def test_records_only_where_a_recorder_records_task_definitions(moto: str) -> None:
    register(moto, "web", PLAIN)
    config = client(moto, "config")
    assert config.select_resource_config(Expression=ALL)["Results"] == []  # no recorder: no records, no error
    start_recorder(config, client(moto, "s3"), resource_types=["AWS::S3::Bucket"])
    assert config.select_resource_config(Expression=ALL)["Results"] == []  # task definitions not recorded
    config.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": f"arn:aws:iam::{ACCOUNT}:role/config",
            "recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::ECS::TaskDefinition"]},
        }
    )
    assert len(config.select_resource_config(Expression=ALL)["Results"]) == 1
    config.stop_configuration_recorder(ConfigurationRecorderName="default")
    assert config.select_resource_config(Expression=ALL)["Results"] == []


def test_config_remembers_deregistered_revisions(moto: str) -> None:
    arn = register(moto, "gone", PRIVILEGED)
    client(moto, "ecs").deregister_task_definition(taskDefinition=arn)
    config = recording(moto)
    [record] = [json.loads(text) for text in config.select_resource_config(Expression=ALL)["Results"]]
    assert record["configuration"]["Status"] == "INACTIVE"
    assert [json.loads(t)["arn"] for t in config.select_resource_config(Expression=PRIVILEGED_ONLY)["Results"]] == [arn]


def test_aggregator_covers_authorized_accounts_and_organization_members(moto: str) -> None:
    hub_config = recording(moto)
    register(moto, "hub-web", PLAIN)
    sts = client(moto, "sts")
    member = "210987654321"
    keys = sts.assume_role(RoleArn=f"arn:aws:iam::{member}:role/x", RoleSessionName="s")["Credentials"]
    member_credentials = {
        "aws_access_key_id": keys["AccessKeyId"],
        "aws_secret_access_key": keys["SecretAccessKey"],
        "aws_session_token": keys["SessionToken"],
    }
    member_ecs = client(moto, "ecs", **member_credentials)
    member_arn = member_ecs.register_task_definition(family="member-web", containerDefinitions=[PRIVILEGED])[
        "taskDefinition"
    ]["taskDefinitionArn"]
    member_config = client(moto, "config", **member_credentials)
    start_recorder(member_config, client(moto, "s3", **member_credentials), bucket="member-config")
    hub_config.put_configuration_aggregator(
        ConfigurationAggregatorName="accounts",
        AccountAggregationSources=[{"AccountIds": [member], "AwsRegions": [REGION]}],
    )
    query = privileged_query(ConfigSource("accounts", account=member), REGION)

    def results(name: str) -> list[str]:
        answer = hub_config.select_aggregate_resource_config(Expression=query, ConfigurationAggregatorName=name)
        return [json.loads(text)["arn"] for text in answer["Results"]]

    assert results("accounts") == []  # the member has not authorized the hub
    member_config.put_aggregation_authorization(AuthorizedAccountId=ACCOUNT, AuthorizedAwsRegion=REGION)
    assert results("accounts") == [member_arn]
    other_region = privileged_query(ConfigSource("accounts", account=member), "eu-west-1")
    answer = hub_config.select_aggregate_resource_config(
        Expression=other_region, ConfigurationAggregatorName="accounts"
    )
    assert answer["Results"] == []  # not a Region of the aggregator

    organizations = client(moto, "organizations")
    organizations.create_organization(FeatureSet="ALL")
    hub_config.put_configuration_aggregator(
        ConfigurationAggregatorName="org",
        OrganizationAggregationSource={"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/agg", "AllAwsRegions": True},
    )
    assert results("org") == []  # not a member of the organization
    organizations.create_account(AccountName="m", Email="m@example.com")
    [created] = [a["Id"] for a in organizations.list_accounts()["Accounts"] if a["Id"] != ACCOUNT]
    other_query = privileged_query(ConfigSource("org", account=created), REGION)
    answer = hub_config.select_aggregate_resource_config(Expression=other_query, ConfigurationAggregatorName="org")
    assert answer["Results"] == []  # a member without a recorder has no records


def test_hooks_fail_and_forget_over_http(moto: str) -> None:
    arns = [register(moto, "web", PLAIN) for _ in range(3)]
    config = recording(moto)
    post(moto, "/moto-api/config-queries/forget", {"arns": arns[:1]})
    assert len(config.select_resource_config(Expression=ALL)["Results"]) == 2
    post(
        moto,
        "/moto-api/config-queries/fail",
        {"operation": "SelectResourceConfig", "code": "ThrottlingException", "times": 2, "afterPages": 1},
    )
    config.select_resource_config(Expression=ALL)  # the one normal answer
    assert error_code(config.select_resource_config, Expression=ALL) == "ThrottlingException"
    assert error_code(config.select_resource_config, Expression=ALL) == "ThrottlingException"
    assert len(config.select_resource_config(Expression=ALL)["Results"]) == 2  # times spent
    post(moto, "/moto-api/config-queries/reset")
    assert len(config.select_resource_config(Expression=ALL)["Results"]) == 3
    with pytest.raises(urllib.error.HTTPError):
        post(moto, "/moto-api/config-queries/nonsense")
