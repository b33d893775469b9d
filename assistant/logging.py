"""Structured JSON logs that cannot carry PHI or secrets.

Logs leave the core (files, log shippers, support tickets), so every string
value of every record -- ours, uvicorn's, any library's through stdlib
logging -- runs through :func:`assistant.redact.redact`, and keys that name
credentials are dropped before rendering. One configuration for structlog
and stdlib so nothing reaches stderr by a side door.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import structlog

__all__ = [
    "SECRET_KEY_PARTS",
    "configure_logging",
    "drop_secret_keys",
    "get_logger",
    "redact_values",
    "scrub_secrets",
]

# A key containing any of these (case-insensitive) is dropped, value and all.
SECRET_KEY_PARTS: tuple[str, ...] = (
    "authorization",
    "token",
    "password",
    "passwd",
    "secret",
    "signature",
    "cookie",
    "api_key",
    "apikey",
)

_LEVELS = {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}

# Credentials that show up inside free text (exception messages, URLs, headers
# echoed by libraries) rather than under a key we could drop.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"(?i)\b((?:authorization|token|access_token|password|passwd|secret|"
            r"signature|cookie|api_key|apikey)[\"']?\s*[:=]\s*[\"']?)"
            r"(?:(?:bearer|basic)\s+)?[^\s\"',;&]+"
        ),
        r"\1[REDACTED]",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [REDACTED]"),
    # userinfo in URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):[^@/\s]+@"), r"\1:[REDACTED]@"),
    # well-known token shapes: Slack, GitHub, OpenAI/Anthropic-style keys, JWTs
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "[REDACTED]"),
    (re.compile(r"\bxapp-[A-Za-z0-9-]{10,}"), "[REDACTED]"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), "[REDACTED]"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "[REDACTED]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "[REDACTED]"),
)


def scrub_secrets(text: str) -> str:
    """Mask credentials embedded in free text (``Bearer ...``, ``password=...``)."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _is_secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    lowered = key.lower().replace("-", "_")
    return any(part in lowered for part in SECRET_KEY_PARTS)


def _phi_kind(key: object, value: Any) -> str | None:
    """Placeholder kind when ``key`` says its value is PHI (``dob``, ``patient_name``, ``ssn``)."""
    if not isinstance(key, str) or value is None or isinstance(value, bool) or value in ("", [], {}):
        return None
    if key in _RESERVED_KEYS or (isinstance(value, int) and key.lower() in {"line", "lineno"}):
        return None
    from assistant.redact import is_phi_key

    return is_phi_key(key)


# Keys our own processors write; their values are ours, not the caller's.
_RESERVED_KEYS = frozenset({"timestamp", "level", "logger", "event", "request_id"})


def _clean(value: Any, redact: Callable[[str], str], depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact(scrub_secrets(value))
    if depth > 8:
        return "[TRUNCATED]"
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if _is_secret_key(k):
                continue
            kind = _phi_kind(k, v)
            out[k] = f"[REDACTED:{kind}]" if kind else _clean(v, redact, depth + 1)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v, redact, depth + 1) for v in value]
    if isinstance(value, bytes):
        return redact(scrub_secrets(value.decode("utf-8", "replace")))
    if value is None or isinstance(value, (bool, int, float)):
        return value
    # Anything else is rendered by the JSON renderer via str(); do it here so
    # the text is redacted too.
    return redact(scrub_secrets(str(value)))


def drop_secret_keys(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Remove top-level keys naming credentials (``authorization``, ``x_signature`` ...)."""
    for key in [k for k in event_dict if _is_secret_key(k) or k in _NOISE_KEYS]:
        del event_dict[key]
    return event_dict


# uvicorn duplicates its messages with ANSI colour codes under this key.
_NOISE_KEYS = frozenset({"color_message"})


def _redactor() -> Callable[[str], str]:
    # Imported here so that a missing or broken redact module fails loudly at
    # configure time rather than silently logging PHI.
    from assistant.redact import redact

    return redact


def redact_values(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Redact PHI and secrets from every value, nested ones included."""
    redact = _redactor()
    for key, value in list(event_dict.items()):
        if _is_secret_key(key):
            del event_dict[key]
            continue
        if key in {"timestamp", "level", "logger"}:
            continue
        kind = _phi_kind(key, value)
        event_dict[key] = f"[REDACTED:{kind}]" if kind else _clean(value, redact)
    return event_dict


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at write time (test runners and daemons swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(
    level: str = "INFO", json: bool = True, stream: TextIO | None = None
) -> None:
    """Route structlog and stdlib logging to one redacting renderer on stderr.

    ``stream`` exists so tests can capture exactly what an operator would see.
    """
    name = level.upper()
    if name not in _LEVELS:
        raise ValueError(
            f"log level {level!r} is not one of {', '.join(sorted(_LEVELS))}; "
            "set GITOPS_HEALTH_LOG_LEVEL to one of them"
        )
    _redactor()  # fail now, not on the first log line
    out = stream if stream is not None else _CurrentStderr()

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            drop_secret_keys,
            redact_values,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(name)
    # uvicorn installs its own handlers only when given a log_config; make sure
    # its loggers propagate to ours and do not print request lines themselves
    # (our middleware writes the one access line, with the route template).
    for noisy in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(noisy)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # httpx logs every outbound URL at INFO; URLs may carry ids or query text.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "gitops_health") -> Any:
    return structlog.stdlib.get_logger(name)
