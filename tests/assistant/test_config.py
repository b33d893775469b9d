"""Configuration: env settings and the YAML file, with one readable message per problem."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from assistant.config import DEMO_CONFIG, ConfigError, load_config, load_settings, parse_config


def _problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "team.yaml")
    return info.value.problems


def test_without_a_file_the_built_in_demo_config_is_used(clean_env: Path) -> None:
    config = load_config(load_settings())
    assert {p.id for p in config.people} >= {"alice", "bob"}
    assert config.on_call[0].schedule == "primary"


def test_the_contract_example_file_loads(clean_env: Path) -> None:
    (clean_env / "gitops-health.yaml").write_text(
        """
people:
  - id: alice
    name: Alice Moreno
    email: alice@example.org
    slack_id: U0ALICE
    teams_id: 29:1alice
    roles: [approver]
  - id: bob
    name: Bob Chen
    email: bob@example.org
    slack_id: U0BOB
    roles: [approver, clinical-safety-officer]
  - {id: carol, name: Carol, roles: []}
  - {id: dave, name: Dave}
channels:
  approvals: {slack: C0APPROVALS, teams: "19:approvals@thread.tacv2"}
  alerts:    {slack: C0ALERTS,    teams: "19:alerts@thread.tacv2"}
teams:
  service_url: https://smba.trafficmanager.net/teams/
on_call:
  - schedule: primary
    members: [carol, dave]
    rotation: weekly
    handoff: "2026-01-05T09:00:00+00:00"
    escalate_after_minutes: 15
    escalate_to: secondary
  - {schedule: secondary, members: [alice], handoff: "2026-01-05T09:00:00+00:00", escalate_after_minutes: 0.05}
approvals:
  expire_after_minutes: 240
""",
        encoding="utf-8",
    )
    config = load_config(load_settings())
    assert config.person("bob").roles == ["approver", "clinical-safety-officer"]
    assert config.on_call[1].escalate_after_minutes == 0.05
    assert config.approvals.expire_after_minutes == 240


def test_a_bad_enum_names_the_key_path_and_the_allowed_values() -> None:
    data = copy.deepcopy(DEMO_CONFIG)
    data["on_call"][0]["rotation"] = "hourly"
    assert _problems(data) == ["on_call[0].rotation: 'hourly' is not one of daily, weekly"]


def test_every_problem_is_reported_not_just_the_first() -> None:
    data = copy.deepcopy(DEMO_CONFIG)
    data["on_call"][0]["rotation"] = "hourly"
    data["people"][1]["colour"] = "blue"
    data["approvals"]["expire_after_minutes"] = "soon"
    problems = _problems(data)
    assert len(problems) == 3
    assert "people[1].colour: unknown key; remove it or fix its spelling" in problems
    assert any(p.startswith("approvals.expire_after_minutes: 'soon' is not a number") for p in problems)


def test_unknown_top_level_keys_are_errors() -> None:
    data = copy.deepcopy(DEMO_CONFIG)
    data["aproovals"] = {}
    assert _problems(data) == ["aproovals: unknown key; remove it or fix its spelling"]


def test_schedule_members_must_be_people() -> None:
    data = copy.deepcopy(DEMO_CONFIG)
    data["on_call"][0]["members"] = ["carol", "zed"]
    [problem] = _problems(data)
    assert problem.startswith("on_call[0].members[1]: 'zed' is not a people id")


def test_escalation_must_name_an_existing_schedule() -> None:
    data = copy.deepcopy(DEMO_CONFIG)
    data["on_call"][0]["escalate_to"] = "tertiary"
    assert _problems(data) == ["on_call[0].escalate_to: 'tertiary' is not a schedule; use one of primary, secondary"]


def test_duplicate_people_ids_and_slack_ids_are_refused() -> None:
    data = copy.deepcopy(DEMO_CONFIG)
    data["people"][1]["id"] = "alice"
    data["people"][2]["slack_id"] = "U0ALICE"
    problems = _problems(data)
    assert any(p.startswith("people[1].id: 'alice' is already used by people[0]") for p in problems)
    assert any(p.startswith("people[2].slack_id") for p in problems)


def test_handoff_needs_a_time_zone() -> None:
    data = copy.deepcopy(DEMO_CONFIG)
    data["on_call"][0]["handoff"] = "2026-01-05T09:00:00"
    [problem] = _problems(data)
    assert problem.startswith("on_call[0].handoff:") and "time zone" in problem


def test_invalid_yaml_names_the_line(clean_env: Path) -> None:
    (clean_env / "bad.yaml").write_text("people:\n  - id: alice\n   name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(load_settings(config_path=clean_env / "bad.yaml"))
    assert "line 3" in info.value.problems[0]


def test_a_missing_config_file_says_how_to_fix_it(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_HEALTH_CONFIG", str(clean_env / "nope.yaml"))
    with pytest.raises(ConfigError) as info:
        load_config(load_settings())
    assert "GITOPS_HEALTH_CONFIG" in info.value.problems[0]


def test_env_values_are_validated_with_the_variable_name(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_HEALTH_LLM", "gpt4")
    monkeypatch.setenv("GITOPS_HEALTH_DATABASE_URL", "mysql://db/x")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = "\n".join(info.value.problems)
    assert "GITOPS_HEALTH_LLM: provider 'gpt4' is not one of" in text
    assert "GITOPS_HEALTH_DATABASE_URL:" in text
    assert "SLACK_API_URL:" in text and "end with '/'" in text


def test_dotenv_is_read_and_secrets_are_not_printed(clean_env: Path) -> None:
    (clean_env / ".env").write_text("GITOPS_HEALTH_WEBHOOK_SECRET=s3cr3t-value\nGITOPS_HEALTH_DATABASE_URL=postgresql://u:pw@h/db\n", encoding="utf-8")
    settings = load_settings()
    assert settings.webhook_secret is not None and settings.webhook_secret.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings)
    assert settings.sqlalchemy_url == "postgresql+psycopg://u:pw@h/db"


def test_no_secret_has_a_built_in_default(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.webhook_secret is None
    assert settings.slack_bot_token is None and settings.slack_signing_secret is None
    assert settings.teams_app_password is None
    assert settings.sqlalchemy_url.endswith(".gitops-health/gitops-health.db")
