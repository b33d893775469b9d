"""Adaptive Cards for deploy requests: the approval card, its decided form, and the notice shown to one clicker.

Pure functions of a `DeploymentView` (and the config, for people's names),
like the Slack cards: every Teams job and every invoke answer re-renders from
the database's current view, so the Teams card and the Slack card of one
request always say the same thing. Buttons are `Action.Execute` (Universal
Actions, Adaptive Cards 1.4): Teams sends them to the bot as an
`adaptiveCard/action` invoke and shows the card the bot answers with. The
reason for a reject is an `Input.Text` on the card itself; Teams puts its
value into the action's data.

Every piece of free text that came from outside (service names, finding
messages, reject reasons, requester addresses) is redacted and has its
markdown neutralised before it is put on a card: cards are seen by the whole
channel, and a crafted `[click](https://...)` in a service name must not
become a link.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timezone
from typing import Any

from assistant.approvals import missing_approvals
from assistant.config import AppConfig
from assistant.deployments import DeploymentView
from assistant.domain import SEVERITY_ORDER
from assistant.redact import redact as _redact_uncached

__all__ = [
    "APPROVE_VERB",
    "CARD_CONTENT_TYPE",
    "REASON_INPUT",
    "REFRESH_VERB",
    "REJECT_VERB",
    "card",
    "decided_answer",
    "display_name",
    "safe",
    "when",
]


@functools.lru_cache(maxsize=4096)
def redact(text: str) -> str:
    """assistant.redact.redact, remembered: a card shows the same service names, people and finding
    messages again and again (every vote re-renders it), and the RE2 passes were a tenth of a card's CPU."""
    return _redact_uncached(text)


CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
APPROVE_VERB = "deployment.approve"
REJECT_VERB = "deployment.reject"
REFRESH_VERB = "deployment.refresh"
REASON_INPUT = "reason"
VERSION = "1.4"
TOP_FINDINGS = 5

_OUTCOME = {"approved": "✅ Approved", "rejected": "❌ Rejected", "expired": "⌛ Expired", "blocked": "⛔ Blocked by policy"}
_OUTCOME_COLOR = {"approved": "Good", "rejected": "Attention", "expired": "Warning", "blocked": "Attention"}
_SEVERITY_COLOR = {"critical": "Attention", "high": "Attention", "medium": "Warning", "low": "Default"}
_MARKDOWN = re.compile(r"([\\`*_\[\]()<>#~|!{}])")


def when(iso: str | None) -> str:
    """An ISO 8601 instant as people read it on a card: 2026-11-25 09:41:07 UTC (the same words as the Slack card)."""
    if not iso:
        return "?"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return safe(iso, 60)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def safe(text: str | None, limit: int = 500) -> str:
    """Outside text as it may appear on a card: redacted, markdown neutralised, one bounded piece."""
    if not text:
        return ""
    cleaned = redact(text).replace("\r", " ").replace("\n", " ")
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return _MARKDOWN.sub(r"\\\1", cleaned)


def display_name(config: AppConfig, who: str | None) -> str:
    """A people id (or requester e-mail) as a name; unknown addresses are redacted like any other PHI-shaped text."""
    if not who:
        return "?"
    if who in ("policy", "expiry"):
        return who
    person = config.person(who)
    if person is None and "@" in who:
        person = next((p for p in config.people if p.email and p.email.lower() == who.lower()), None)
    if person is not None:
        return safe(person.name, 200)
    return safe(who, 200)


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _title(view: DeploymentView) -> str:
    return f"Deploy {safe(view.service, 120)} {safe(view.version, 60)} → {safe(view.environment, 60)}"


def _findings(view: DeploymentView) -> list[dict[str, Any]]:
    blocks = [_text("**Top findings**", spacing="Medium")]
    if not view.findings:
        return [*blocks, _text("None.", isSubtle=True, spacing="None")]
    ranked = sorted(view.findings, key=lambda f: (-SEVERITY_ORDER.get(f.severity, 0), f.file, f.line, f.rule))
    for f in ranked[:TOP_FINDINGS]:
        blocks.append(
            _text(
                f"**{f.severity}** {safe(f.rule, 60)} {safe(f.file, 200)}:{f.line}: {safe(f.message, 300)}",
                color=_SEVERITY_COLOR.get(f.severity, "Default"),
                spacing="None",
            )
        )
    more = len(ranked) - TOP_FINDINGS
    if more > 0:
        blocks.append(_text(f"…and {more} more", isSubtle=True, spacing="None"))
    return blocks


def _approvals(view: DeploymentView, config: AppConfig) -> list[dict[str, Any]]:
    """Each required role with how many of its slots are filled, counting each approver once (the core's matching)."""
    blocks = [_text("**Required approvals**", spacing="Medium")]
    if not view.required_approvals:
        return [*blocks, _text("None.", isSubtle=True, spacing="None")]
    approvers = [v.person for v in view.votes if v.decision == "approve"]

    def roles_of(person_id: str) -> list[str]:
        person = config.person(person_id)
        return list(person.roles) if person else []

    missing = {m.role: m.count for m in missing_approvals(view.required_approvals, approvers, roles_of)}
    facts = []
    for need in view.required_approvals:
        filled = need.count - missing.get(need.role, 0)
        mark = "✅" if filled >= need.count else "⏳"
        facts.append({"title": safe(need.role, 100), "value": f"{mark} {filled} of {need.count}"})
    return [*blocks, {"type": "FactSet", "facts": facts, "spacing": "None"}]


def _votes(view: DeploymentView, config: AppConfig) -> list[dict[str, Any]]:
    if not view.votes:
        return []
    blocks = [_text("**Votes**", spacing="Medium")]
    for vote in view.votes:
        verb = "✅ approved" if vote.decision == "approve" else "❌ rejected"
        line = f"{display_name(config, vote.person)} {verb} via {vote.via} at {when(vote.at)}"
        if vote.reason:
            line += f": {safe(vote.reason, 300)}"
        blocks.append(_text(line, spacing="None"))
    return blocks


def _outcome(view: DeploymentView, config: AppConfig) -> list[dict[str, Any]]:
    head = _OUTCOME.get(view.status, view.status)
    color = _OUTCOME_COLOR.get(view.status, "Default")
    if view.status == "blocked":
        blocks = [_text(f"**{head}** at {when(view.decided_at)}; no approval can override it.", color=color, separator=True, spacing="Medium")]
        reasons = [f"{safe(v.rule, 80)}: {safe(v.reason, 300)}" for v in view.violations] or ([safe(view.reason, 500)] if view.reason else [])
        blocks += [_text(f"• {r}", spacing="None") for r in reasons]
        return blocks
    if view.status == "expired":
        return [_text(f"**{head}** at {when(view.decided_at)}: no decision within the approval window.", color=color, separator=True, spacing="Medium")]
    blocks = [_text(f"**{head}** by {display_name(config, view.decided_by)} at {when(view.decided_at)}", color=color, separator=True, spacing="Medium")]
    if view.status == "rejected" and view.reason:
        blocks.append(_text(f"Reason: {safe(view.reason, 1000)}", spacing="None"))
    return blocks


def card(view: DeploymentView, config: AppConfig, *, interactive: bool = True, notice: str | None = None) -> dict[str, Any]:
    """The Adaptive Card of the request as it stands; live buttons only while it is pending and ``interactive``.

    ``notice`` is a line for the one person whose click is being answered
    (a refusal, "your vote was recorded"); Teams shows an invoke's answer to
    that person only, the way Slack shows an ephemeral message.
    """
    body: list[dict[str, Any]] = []
    if notice:
        body.append({
            "type": "Container",
            "style": "emphasis",
            "items": [_text(notice, weight="Bolder")],
        })
    body.append(_text(_title(view), size="Large", weight="Bolder"))
    body.append({
        "type": "FactSet",
        "facts": [
            {"title": "Service", "value": safe(view.service, 200)},
            {"title": "Version", "value": safe(view.version, 200)},
            {"title": "Environment", "value": safe(view.environment, 100)},
            {"title": "Risk", "value": f"{view.risk.score}/100 ({view.risk.level})"},
            {"title": "Change", "value": f"{safe(view.repository, 300)} @ {safe(view.commit, 100)}"},
            {"title": "Requested by", "value": display_name(config, view.requested_by)},
        ],
    })
    body += _findings(view)
    body += _approvals(view, config)
    body += _votes(view, config)
    result: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": VERSION,
        "body": body,
        # Universal Actions: Teams asks the bot for the current card when someone opens it (or asks to refresh).
        "refresh": {"action": {"type": "Action.Execute", "verb": REFRESH_VERB, "data": {"deployment_id": view.id}}},
    }
    if view.status == "pending":
        body.append(_text(f"Pending · expires {when(view.expires_at)} · {view.id}", isSubtle=True, size="Small", spacing="Medium"))
        if interactive:
            body.append({
                "type": "Input.Text",
                "id": REASON_INPUT,
                "label": "Reason (needed to reject; shown on the card and sent to CI)",
                "isMultiline": True,
                "maxLength": 2000,
                "placeholder": "What must change before this can ship?",
            })
            result["actions"] = [
                {"type": "Action.Execute", "title": "Approve", "verb": APPROVE_VERB, "style": "positive",
                 "data": {"deployment_id": view.id}, "associatedInputs": "none"},
                {"type": "Action.Execute", "title": "Reject", "verb": REJECT_VERB, "style": "destructive",
                 "data": {"deployment_id": view.id}, "associatedInputs": "auto"},
            ]
    else:
        body += _outcome(view, config)
        body.append(_text(view.id, isSubtle=True, size="Small", spacing="None"))
    return result


def fallback_text(view: DeploymentView) -> str:
    """The notification line Teams shows in the activity feed and where cards cannot be rendered."""
    state = "waiting for approval" if view.status == "pending" else view.status
    return f"Deploy {safe(view.service, 200)} {safe(view.version, 100)} to {safe(view.environment, 100)}: {state} (risk {view.risk.score}, {view.risk.level}) [{view.id}]"


def decided_answer(view: DeploymentView, config: AppConfig) -> str:
    """What a late click is told: the request is decided, by whom and when; nothing changed."""
    if view.status == "blocked":
        return f"This request was blocked by policy at {when(view.decided_at)}; there is nothing to vote on."
    if view.status == "expired":
        return f"This request expired at {when(view.decided_at)} without a decision; nothing changed. Ask CI to request it again."
    return f"This request was already {view.status} by {display_name(config, view.decided_by)} at {when(view.decided_at)}; your click changed nothing."
