"""Block Kit for deploy requests: the approval card, its decided form, the reject modal, refusal texts.

Pure functions of a `DeploymentView` (and the config, for people's names), so
the card shown after any vote, from any chat, is whatever the database says
now: the outbox handlers re-render from the current view every time. Every
piece of free text that came from outside (service names, finding messages,
reject reasons, requester addresses) goes through `assistant.redact.redact`
and Slack's mrkdwn escaping before it is put on a card: cards are seen by the
whole channel and kept by Slack.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from typing import Any

from assistant.approvals import missing_approvals
from assistant.config import AppConfig
from assistant.deployments import DeploymentView
from assistant.domain import SEVERITY_ORDER
from assistant.redact import redact as _redact_uncached

__all__ = [
    "APPROVE_ACTION",
    "REASON_ACTION",
    "REASON_BLOCK",
    "REJECT_ACTION",
    "REJECT_MODAL",
    "card",
    "decided_answer",
    "display_name",
    "modal_metadata",
    "reject_modal",
    "when",
]


@functools.lru_cache(maxsize=4096)
def redact(text: str) -> str:
    """assistant.redact.redact, remembered: a card shows the same service names, people and finding
    messages again and again (every vote re-renders it), and the RE2 passes were a tenth of a card's CPU."""
    return _redact_uncached(text)


APPROVE_ACTION = "deployment.approve"
REJECT_ACTION = "deployment.reject"
REJECT_MODAL = "deployment.reject_reason"
REASON_BLOCK = "reason"
REASON_ACTION = "reason"
ACTIONS_BLOCK = "deployment_actions"

TOP_FINDINGS = 5
_SECTION_LIMIT = 3000  # Slack refuses a section text longer than this
_HEADER_LIMIT = 150
_FIELD_LIMIT = 2000

_OUTCOME = {
    "approved": ":white_check_mark: *Approved*",
    "rejected": ":x: *Rejected*",
    "expired": ":hourglass: *Expired*",
    "blocked": ":no_entry: *Blocked by policy*",
}
_SEVERITY_MARK = {"critical": ":red_circle:", "high": ":large_orange_circle:", "medium": ":large_yellow_circle:", "low": ":white_circle:"}


def escape(text: str) -> str:
    """Slack mrkdwn control characters; without this a '<!channel>' in a service name would ping a channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe(text: str | None, limit: int = 500) -> str:
    """Outside text as it may appear on a card: redacted, escaped, one bounded piece."""
    if not text:
        return ""
    cleaned = escape(redact(text))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def when(iso: str | None) -> str:
    """An ISO 8601 instant as people read it on a card: 2026-11-25 09:41:07 UTC."""
    if not iso:
        return "?"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return escape(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def display_name(config: AppConfig, who: str | None) -> str:
    """A people id (or requester e-mail) as a name; unknown addresses are redacted like any other PHI-shaped text."""
    if not who:
        return "?"
    if who == "policy":
        return "policy"
    if who == "expiry":
        return "expiry"
    person = config.person(who)
    if person is None and "@" in who:
        person = next((p for p in config.people if p.email and p.email.lower() == who.lower()), None)
    if person is not None:
        return escape(person.name)
    return safe(who, 200)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _title(view: DeploymentView) -> str:
    return _clip(f"Deploy {redact(view.service)} {redact(view.version)} → {redact(view.environment)}", _HEADER_LIMIT)


def fallback_text(view: DeploymentView) -> str:
    """The notification / screen-reader line Slack shows where blocks cannot be rendered."""
    state = "waiting for approval" if view.status == "pending" else view.status
    return f"Deploy {safe(view.service, 200)} {safe(view.version, 100)} to {safe(view.environment, 100)}: {state} (risk {view.risk.score}, {view.risk.level}) [{view.id}]"


def _findings_text(view: DeploymentView) -> str:
    if not view.findings:
        return "*Top findings*\nNone."
    ranked = sorted(view.findings, key=lambda f: (-SEVERITY_ORDER.get(f.severity, 0), f.file, f.line, f.rule))
    lines = [
        f"{_SEVERITY_MARK.get(f.severity, '')} *{f.severity}* `{escape(f.rule)}` {safe(f.file, 200)}:{f.line}: {safe(f.message, 300)}"
        for f in ranked[:TOP_FINDINGS]
    ]
    more = len(ranked) - TOP_FINDINGS
    if more > 0:
        lines.append(f"_…and {more} more_")
    return _clip("*Top findings*\n" + "\n".join(lines), _SECTION_LIMIT)


def _approvals_text(view: DeploymentView, config: AppConfig) -> str:
    """Each required role with how many of its slots are filled, counting each approver once (the core's matching)."""
    if not view.required_approvals:
        return "*Required approvals*\nNone."
    approvers = [v.person for v in view.votes if v.decision == "approve"]

    def roles_of(person_id: str) -> list[str]:
        person = config.person(person_id)
        return list(person.roles) if person else []

    missing = {m.role: m.count for m in missing_approvals(view.required_approvals, approvers, roles_of)}
    lines = []
    for need in view.required_approvals:
        filled = need.count - missing.get(need.role, 0)
        mark = ":white_check_mark:" if filled >= need.count else ":hourglass_flowing_sand:"
        lines.append(f"{mark} *{escape(need.role)}*: {filled} of {need.count}")
    return _clip("*Required approvals*\n" + "\n".join(lines), _SECTION_LIMIT)


def _votes_text(view: DeploymentView, config: AppConfig) -> str | None:
    if not view.votes:
        return None
    lines = []
    for vote in view.votes:
        mark, verb = (":white_check_mark:", "approved") if vote.decision == "approve" else (":x:", "rejected")
        line = f"{mark} {display_name(config, vote.person)} {verb} via {vote.via} at {when(vote.at)}"
        if vote.reason:
            line += f": {safe(vote.reason, 300)}"
        lines.append(line)
    return _clip("*Votes*\n" + "\n".join(lines), _SECTION_LIMIT)


def _outcome_text(view: DeploymentView, config: AppConfig) -> str:
    head = _OUTCOME.get(view.status, f"*{view.status}*")
    if view.status == "blocked":
        reasons = [f"• `{escape(v.rule)}`: {safe(v.reason, 300)}" for v in view.violations] or ([f"• {safe(view.reason, 500)}"] if view.reason else [])
        body = f"{head} at {when(view.decided_at)}; no approval can override it."
        return _clip(body + ("\n" + "\n".join(reasons) if reasons else ""), _SECTION_LIMIT)
    if view.status == "expired":
        return _clip(f"{head} at {when(view.decided_at)}: no decision within the approval window.", _SECTION_LIMIT)
    text = f"{head} by {display_name(config, view.decided_by)} at {when(view.decided_at)}"
    if view.status == "rejected" and view.reason:
        text += f"\nReason: {safe(view.reason, 1000)}"
    return _clip(text, _SECTION_LIMIT)


def card(view: DeploymentView, config: AppConfig, *, interactive: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of the request as it stands; live buttons only while it is pending and ``interactive``."""
    fields = [
        ("Service", safe(view.service, 200)),
        ("Version", safe(view.version, 200)),
        ("Environment", safe(view.environment, 100)),
        ("Risk", f"{view.risk.score}/100 ({view.risk.level})"),
        ("Change", f"{safe(view.repository, 300)} @ `{safe(view.commit, 100)}`"),
        ("Requested by", display_name(config, view.requested_by)),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _title(view), "emoji": True}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _clip(f"*{k}*\n{v}", _FIELD_LIMIT)} for k, v in fields]},
        {"type": "section", "text": {"type": "mrkdwn", "text": _findings_text(view)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _approvals_text(view, config)}},
    ]
    votes = _votes_text(view, config)
    if votes:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": votes}})
    if view.status == "pending":
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Pending · expires {when(view.expires_at)} · `{view.id}`"}]})
        if interactive:
            blocks.append({
                "type": "actions",
                "block_id": ACTIONS_BLOCK,
                "elements": [
                    {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": view.id,
                     "text": {"type": "plain_text", "text": "Approve"}},
                    {"type": "button", "action_id": REJECT_ACTION, "style": "danger", "value": view.id,
                     "text": {"type": "plain_text", "text": "Reject"}},
                ],
            })
    else:
        blocks.append({"type": "divider"})
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _outcome_text(view, config)}})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"`{view.id}`"}]})
    return fallback_text(view), blocks


def decided_answer(view: DeploymentView, config: AppConfig) -> str:
    """What a late click is told: the request is decided, by whom and when; nothing changed."""
    if view.status == "blocked":
        return f"This request was blocked by policy at {when(view.decided_at)}; there is nothing to vote on."
    if view.status == "expired":
        return f"This request expired at {when(view.decided_at)} without a decision; nothing changed. Ask CI to request it again."
    return f"This request was already {view.status} by {display_name(config, view.decided_by)} at {when(view.decided_at)}; your click changed nothing."


def modal_metadata(deployment_id: str, channel: str | None) -> str:
    return json.dumps({"deployment_id": deployment_id, "channel": channel}, separators=(",", ":"))


def reject_modal(view: DeploymentView, channel: str | None) -> dict[str, Any]:
    """The modal a Reject click opens: the reason is required and goes on the card and into the callback."""
    return {
        "type": "modal",
        "callback_id": REJECT_MODAL,
        "private_metadata": modal_metadata(view.id, channel),
        "title": {"type": "plain_text", "text": "Reject deployment"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(f"*{escape(_title(view))}*\nRisk {view.risk.score}/100 ({view.risk.level}) · `{view.id}`", _SECTION_LIMIT)}},
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why are you rejecting it?"},
                "element": {"type": "plain_text_input", "action_id": REASON_ACTION, "multiline": True, "max_length": 2000,
                            "placeholder": {"type": "plain_text", "text": "The reason is shown on the card and sent to CI"}},
            },
        ],
    }
