"""Settings from the environment (and `.env`) and the YAML team config, as pydantic models.

A bad value must stop start-up with one line per problem naming the key path
and the fix, because the people reading it are operators at 2 a.m.; hence
the error formatting below instead of pydantic's default dump.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LLM_PROVIDERS = ("none", "ollama", "openai", "anthropic", "azure-openai", "google")


class ConfigError(Exception):
    """Configuration that cannot be used; `problems` holds one human line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


# --------------------------------------------------------------------------- environment


class Settings(BaseSettings):
    """Process settings; secrets only ever come from here, never from the command line."""

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore", populate_by_name=True)

    config_path: Path | None = Field(None, validation_alias="GITOPS_HEALTH_CONFIG")
    data_dir: Path = Field(Path(".gitops-health"), validation_alias="GITOPS_HEALTH_DATA_DIR")
    database_url: str | None = Field(None, validation_alias="GITOPS_HEALTH_DATABASE_URL")
    chroma_url: str | None = Field(None, validation_alias="GITOPS_HEALTH_CHROMA_URL")
    webhook_secret: SecretStr | None = Field(None, validation_alias="GITOPS_HEALTH_WEBHOOK_SECRET")
    public_url: str = Field("http://localhost:3000", validation_alias="GITOPS_HEALTH_PUBLIC_URL")
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str | None = Field(None, validation_alias="SLACK_API_URL")
    teams_app_id: str | None = Field(None, validation_alias="TEAMS_APP_ID")
    teams_app_password: SecretStr | None = Field(None, validation_alias="TEAMS_APP_PASSWORD")
    teams_tenant_id: str | None = Field(None, validation_alias="TEAMS_TENANT_ID")
    llm: str = Field("none", validation_alias="GITOPS_HEALTH_LLM")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError(f"{value.split(':', 1)[0]!r} is not supported; use sqlite:///path or postgresql://user:pass@host/db")
        return value

    @field_validator("public_url", "slack_api_url", "chroma_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL; write it as http://host:port/...")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _slack_api_url(cls, value: str | None) -> str | None:
        if value is not None and not value.endswith("/"):
            raise ValueError(f"{value!r} must end with '/' (e.g. https://slack.com/api/)")
        return value

    @field_validator("llm")
    @classmethod
    def _llm(cls, value: str) -> str:
        provider, _, model = value.partition(":")
        if provider not in LLM_PROVIDERS:
            raise ValueError(f"provider {provider!r} is not one of {', '.join(LLM_PROVIDERS)}")
        if provider != "none" and not model:
            raise ValueError(f"name the model after the provider, e.g. {provider}:<model>")
        return value

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL in SQLAlchemy's spelling (psycopg 3 for Postgres; SQLite in the data dir by default)."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'gitops-health.db').as_posix()}"
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


_ENV_NAMES = {name: field.validation_alias for name, field in Settings.model_fields.items()}


def load_settings(**overrides: Any) -> Settings:
    """Read the environment and `.env`; raise ConfigError naming the variable on a bad value."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            env = _ENV_NAMES.get(key, key)
            problems.append(f"{env}: {_describe(err)}")
        raise ConfigError("environment", problems) from None


# --------------------------------------------------------------------------- YAML config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")
    slack_id: str | None = None
    teams_id: str | None = None
    aad_object_id: str | None = None
    roles: list[str] = Field(default_factory=list)


class ChannelRef(_Strict):
    slack: str | None = None
    teams: str | None = None


class Channels(_Strict):
    approvals: ChannelRef = ChannelRef()
    alerts: ChannelRef = ChannelRef()


class TeamsSettings(_Strict):
    service_url: str = "https://smba.trafficmanager.net/teams/"

    @field_validator("service_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class OnCallSchedule(_Strict):
    schedule: str = Field(min_length=1)
    members: list[str] = Field(min_length=1)
    rotation: Literal["daily", "weekly"] = "weekly"
    handoff: datetime
    escalate_after_minutes: float = Field(15, gt=0)
    escalate_to: str | None = None

    @field_validator("handoff")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-01-05T09:00:00+00:00")
        return value


class ApprovalSettings(_Strict):
    expire_after_minutes: float = Field(240, gt=0)


class AppConfig(_Strict):
    people: list[Person] = Field(default_factory=list)
    channels: Channels = Channels()
    teams: TeamsSettings = TeamsSettings()
    on_call: list[OnCallSchedule] = Field(default_factory=list)
    approvals: ApprovalSettings = ApprovalSettings()

    @model_validator(mode="after")
    def _references(self) -> AppConfig:
        problems: list[tuple[str, str]] = []
        seen: dict[str, int] = {}
        for i, person in enumerate(self.people):
            if person.id in seen:
                problems.append((f"people[{i}].id", f"{person.id!r} is already used by people[{seen[person.id]}]; ids must be unique"))
            seen.setdefault(person.id, i)
        for attr in ("email", "slack_id", "teams_id"):
            owners: dict[str, int] = {}
            for i, person in enumerate(self.people):
                value = getattr(person, attr)
                if value is None:
                    continue
                key = value.lower() if attr == "email" else value
                if key in owners:
                    problems.append((f"people[{i}].{attr}", f"{value!r} is also people[{owners[key]}].{attr}; each must be unique"))
                owners.setdefault(key, i)
        names = {s.schedule for s in self.on_call}
        schedules_seen: set[str] = set()
        for i, sched in enumerate(self.on_call):
            if sched.schedule in schedules_seen:
                problems.append((f"on_call[{i}].schedule", f"{sched.schedule!r} is defined twice; schedule names must be unique"))
            schedules_seen.add(sched.schedule)
            for j, member in enumerate(sched.members):
                if member not in seen:
                    problems.append(
                        (f"on_call[{i}].members[{j}]", f"{member!r} is not a people id; add it under people or use one of {', '.join(sorted(seen)) or '(none defined)'}")
                    )
            if sched.escalate_to is not None:
                if sched.escalate_to not in names:
                    problems.append((f"on_call[{i}].escalate_to", f"{sched.escalate_to!r} is not a schedule; use one of {', '.join(sorted(names))}"))
                elif sched.escalate_to == sched.schedule:
                    problems.append((f"on_call[{i}].escalate_to", "a schedule cannot escalate to itself"))
        if problems:
            raise _ReferenceErrors(problems)
        return self

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)


class _ReferenceErrors(ValueError):
    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{k}: {m}" for k, m in problems))
        self.problems = problems


DEMO_CONFIG: dict[str, Any] = {
    "people": [
        {"id": "alice", "name": "Alice Moreno", "email": "alice@example.org", "slack_id": "U0ALICE", "teams_id": "29:1alice", "roles": ["approver"]},
        {"id": "bob", "name": "Bob Chen", "email": "bob@example.org", "slack_id": "U0BOB", "teams_id": "29:1bob", "roles": ["approver", "clinical-safety-officer"]},
        {"id": "carol", "name": "Carol Diaz", "email": "carol@example.org", "slack_id": "U0CAROL", "teams_id": "29:1carol", "roles": ["on-call"]},
        {"id": "dave", "name": "Dave Okafor", "email": "dave@example.org", "slack_id": "U0DAVE", "teams_id": "29:1dave", "roles": ["on-call"]},
        {"id": "erin", "name": "Erin Walsh", "email": "erin@example.org", "slack_id": "U0ERIN", "teams_id": "29:1erin", "roles": ["on-call", "approver"]},
    ],
    "channels": {
        "approvals": {"slack": "C0APPROVALS", "teams": "19:approvals@thread.tacv2"},
        "alerts": {"slack": "C0ALERTS", "teams": "19:alerts@thread.tacv2"},
    },
    "teams": {"service_url": "https://smba.trafficmanager.net/teams/"},
    "on_call": [
        {"schedule": "primary", "members": ["carol", "dave"], "rotation": "weekly", "handoff": "2026-01-05T09:00:00+00:00", "escalate_after_minutes": 15, "escalate_to": "secondary"},
        {"schedule": "secondary", "members": ["erin"], "rotation": "weekly", "handoff": "2026-01-05T09:00:00+00:00", "escalate_after_minutes": 15},
    ],
    "approvals": {"expire_after_minutes": 240},
}


def parse_config(data: Any, source: str = "config") -> AppConfig:
    """Validate a loaded YAML document; raise ConfigError with one line per problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"(top level): expected a mapping of keys (people, channels, ...), got {type(data).__name__}"])
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors():
            ctx_error = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_error, _ReferenceErrors):
                problems.extend(f"{k}: {m}" for k, m in ctx_error.problems)
                continue
            problems.append(f"{_path(err['loc'])}: {_describe(err)}")
        raise ConfigError(source, problems) from None


def load_config(settings: Settings | None = None) -> AppConfig:
    """The YAML config named by GITOPS_HEALTH_CONFIG, else ./gitops-health.yaml, else the built-in demo."""
    settings = settings or load_settings()
    path = settings.config_path
    if path is None:
        default = Path("gitops-health.yaml")
        if not default.exists():
            return parse_config(DEMO_CONFIG, "built-in demo config")
        path = default
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, ["file not found; fix GITOPS_HEALTH_CONFIG or create the file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [f"cannot read it: {exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}not valid YAML: {problem}"]) from None
    return parse_config(data, source)


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _describe(err: dict[str, Any]) -> str:
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        options = ", ".join(o.strip().strip("'\"") for o in expected.replace(" or ", ", ").split(","))
        return f"{value!r} is not one of {options}"
    if kind == "extra_forbidden":
        return "unknown key; remove it or fix its spelling"
    if kind == "missing":
        return "required; add it"
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not have the expected form ({ctx.get('pattern')})"
    if kind in ("greater_than", "greater_than_equal"):
        return f"{value!r} must be greater than {ctx.get('gt', ctx.get('ge'))}"
    if kind == "too_short":
        return "must not be empty"
    if kind in ("float_parsing", "float_type", "int_parsing", "int_type"):
        return f"{value!r} is not a number"
    if kind.startswith("datetime"):
        return f"{value!r} is not an ISO 8601 date-time (e.g. 2026-01-05T09:00:00+00:00)"
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address or a name) is this machine."""
    from ipaddress import ip_address

    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def teams_cards_deliverable(settings: Settings, config: AppConfig) -> tuple[bool, str | None]:
    """Whether approval cards can reach Teams from here, and if not, what to set.

    Without TEAMS_APP_ID the bot cannot sign in, so only a local connector
    (the Bot Framework Emulator) takes its cards: the core enqueues no Teams
    card jobs that could never be delivered.
    """
    from urllib.parse import urlsplit

    if not config.channels.approvals.teams:
        return False, "channels.approvals.teams is not set in the config; no approval cards go to Teams"
    app_id = (settings.teams_app_id or "").strip() or None
    if app_id is None and not is_loopback(urlsplit(config.teams.service_url).hostname):
        return False, (
            f"TEAMS_APP_ID is not set, so the bot cannot sign in to post cards to {config.teams.service_url}; "
            "set TEAMS_APP_ID, TEAMS_APP_PASSWORD (and TEAMS_TENANT_ID for a single-tenant bot), "
            "or point teams.service_url at a local connector (the Bot Framework Emulator)"
        )
    return True, None


def data_dir(settings: Settings) -> Path:
    """The data directory, created on first use with owner-only permissions."""
    path = settings.data_dir
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    return path
