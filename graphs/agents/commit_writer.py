"""The commit-writer agent: a conventional commit message with compliance trailers.

The deterministic draft is the product: type, scope, subject, body and the
`Risk:` / `Regulations:` / `Safety-Class:` trailers all come from the diff and
the review, byte for byte the same for the same input. An LLM, when given, may
only re-word the subject and body from a redacted summary; the type, the
scope and the trailers are ours, and anything odd in its answer (too long,
several lines, a trailer of its own, nothing at all) means the deterministic
draft is used instead.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from assistant.diffs import FileDiff
from assistant.domain import SEVERITY_ORDER, ClinicalSafety, Finding, Risk
from assistant.filekinds import kind_of
from graphs.agents.change_facts import (
    all_unique,
    definitions,
    facts,
    facts_cache,
    infer_scope,
    infer_type,
    scope_word,
)

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel

__all__ = ["COMMIT_TYPES", "write_commit_message", "infer_type", "infer_scope", "trailers"]

COMMIT_TYPES = ("feat", "fix", "refactor", "test", "docs", "chore", "ci", "build", "perf")
SUBJECT_MAX = 72
BODY_WIDTH = 72
MAX_BODY_FILES = 12
LLM_TIMEOUT_S = 20.0

_TRAILER_LINE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*:\s")
_CONVENTIONAL_PREFIX = re.compile(r"^(?:[a-z]+)(?:\([^)]*\))?!?:\s*")


def _subject(kind: str, files: Sequence[FileDiff], scope: str | None, room: int) -> str:
    """The best subject that fits in `room` characters: full names first, then shorter forms."""
    options = _subject_options(kind, files, scope)
    for option in options:
        if len(option) <= room:
            return option
    return options[-1]


def _named(verb: str, names: Sequence[str], where: str, noun: str) -> list[str]:
    out = [f"{verb} {_list(names)}{where}", f"{verb} {_list(names)}"]
    if len(names) > 1:
        out += [f"{verb} {_list(names, 1)}{where}", f"{verb} {_list(names, 1)}"]
    out += [f"{verb} {len(names)} {noun}{'s' if len(names) != 1 else ''}{where}",
            f"{verb} {len(names)} {noun}{'s' if len(names) != 1 else ''}"]
    return out


def _subject_options(kind: str, files: Sequence[FileDiff], scope: str | None) -> list[str]:
    code = [f for f in files if kind_of(f.path) == "code"] or list(files)
    per_file = [facts(f) for f in code]
    added_defs = all_unique(x.added_defs for x in per_file)
    removed_defs = set(all_unique(x.removed_defs for x in per_file))
    new_defs = [d for d in added_defs if d not in removed_defs]
    touched = [h.header for f in code for h in f.hunks if h.header]
    touched_defs = definitions(touched)
    where = _where(code, scope)

    if not files:
        return ["record an empty change"]
    if kind == "docs":
        if len(files) <= 2:
            return _named("update", [posixpath.basename(f.path) for f in files], "", "file")
        return [f"update documentation{where}"]
    if kind == "test":
        if len(files) <= 2:
            return _named("cover", [posixpath.basename(f.path) for f in files], "", "file")
        return [f"extend tests{where}"]
    if kind == "ci":
        if len(files) <= 2:
            return _named("update", [posixpath.basename(f.path) for f in files], "", "file")
        return ["update pipelines"]
    if kind == "build":
        if len(files) <= 2:
            return _named("update", [posixpath.basename(f.path) for f in files], "", "file")
        return ["update build configuration"]
    if kind == "chore":
        if len(files) <= 2:
            return _named("update", [posixpath.basename(f.path) for f in files], "", "file")
        return [f"tidy {len(files)} files"]
    if kind == "refactor":
        renamed = [f for f in code if f.status == "renamed"]
        if renamed and len(renamed) == len(code) == 1:
            return [f"move {renamed[0].old_path} to {renamed[0].path}", f"move {posixpath.basename(renamed[0].old_path or '')} to {renamed[0].path}", f"move {posixpath.basename(renamed[0].path)}"]
        if all(f.status == "deleted" for f in code):
            return _named("remove", [posixpath.basename(f.path) for f in code], "", "file")
        gone = [d for d in all_unique(x.removed_defs for x in per_file) if d not in set(added_defs)]
        if gone:
            return _named("remove", gone, where, "definition")
        if touched_defs:
            return _named("restructure", touched_defs, where, "definition")
        return _named("restructure", [posixpath.basename(f.path) for f in code], "", "file")
    if kind == "feat":
        routes = [r for r in all_unique(x.added_routes for x in per_file) if r not in set(all_unique(x.removed_routes for x in per_file))]
        if routes:
            return _named("add", routes, "", "endpoint")
        if new_defs:
            return _named("add", new_defs, where, "definition")
        added_files = [f for f in code if f.status == "added"]
        if added_files:
            return _named("add", [posixpath.basename(f.path) for f in added_files], "", "file")
        return _named("extend", [posixpath.basename(f.path) for f in code], "", "file")
    if kind == "fix":
        if touched_defs:
            return _named("correct", touched_defs, where, "definition")
        return _named("correct", [posixpath.basename(f.path) for f in code], "", "file")
    if kind == "perf":
        if touched_defs:
            return _named("speed up", touched_defs, where, "function")
        return _named("speed up", [posixpath.basename(f.path) for f in code], "", "file")
    return _named("update", [posixpath.basename(f.path) for f in files], "", "file")


def _where(code: Sequence[FileDiff], scope: str | None) -> str:
    if len({f.path for f in code}) == 1:
        stem = posixpath.basename(code[0].path).split(".")[0]
        return "" if scope and scope_word(stem) == scope else f" in {posixpath.basename(code[0].path)}"
    return ""


def _list(names: Sequence[str], limit: int = 2) -> str:
    if len(names) <= limit:
        return " and ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


def _fit(prefix: str, subject: str) -> str:
    """Shorten the subject to keep the first line within 72 characters, at a word boundary."""
    room = SUBJECT_MAX - len(prefix)
    subject = subject.strip().rstrip(".")
    if len(subject) <= room:
        return subject
    cut = subject[: room - 1]
    if " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:") + "…"


def _wrap(text: str, indent: str = "  ") -> list[str]:
    words = text.split()
    lines: list[str] = []
    line = ""
    for word in words:
        if line and len(line) + 1 + len(word) > BODY_WIDTH:
            lines.append(line)
            line = indent + word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def _file_line(f: FileDiff) -> str:
    found = facts(f)
    added, removed = len(found.added), len(found.removed)
    if f.binary:
        change = f"{f.status} (binary)"
    elif f.status == "renamed":
        change = f"renamed from {f.old_path} (+{added} -{removed})"
    else:
        change = f"{f.status} (+{added} -{removed})"
    if f.old_mode and f.new_mode and f.old_mode != f.new_mode and f.status != "added":
        change += f", mode {f.old_mode} -> {f.new_mode}"
    defs = [d for d in found.added_defs if d not in set(found.removed_defs)]
    if defs:
        change += f"; adds {_list(defs, 4)}"
    return f"- {f.path}: {change}"


def _body(files: Sequence[FileDiff], findings: Sequence[Finding], clinical: ClinicalSafety) -> list[str]:
    lines: list[str] = []
    ordered = sorted(files, key=lambda f: f.path)
    if len(ordered) <= MAX_BODY_FILES:
        for f in ordered:
            lines.extend(_wrap(_file_line(f)))
    else:
        areas: dict[str, list[FileDiff]] = {}
        for f in ordered:
            area = f.path.split("/", 1)[0] + "/" if "/" in f.path else "(root)"
            areas.setdefault(area, []).append(f)
        lines.append(f"{len(ordered)} files changed:")
        for area, group in sorted(areas.items()):
            added = sum(len(facts(f).added) for f in group)
            removed = sum(len(facts(f).removed) for f in group)
            statuses = Counter(f.status for f in group)
            detail = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
            lines.extend(_wrap(f"- {area}: {len(group)} files ({detail}; +{added} -{removed})"))

    if findings:
        counts = Counter(f.severity for f in findings)
        summary = ", ".join(f"{counts[s]} {s}" for s in ("critical", "high", "medium", "low") if counts.get(s))
        lines.append("")
        lines.append(f"Review: {len(findings)} finding{'s' if len(findings) != 1 else ''} ({summary}).")
        worst = sorted(findings, key=lambda x: (-SEVERITY_ORDER[x.severity], x.file, x.line, x.rule))[:5]
        for x in worst:
            lines.extend(_wrap(f"- {x.rule} {x.file}:{x.line} ({x.severity}, {x.category})"))
        if len(findings) > 5:
            lines.append(f"- ... and {len(findings) - 5} more")
    if clinical.safety_critical or clinical.iec62304_class != "A":
        lines.append("")
        verdict = "safety-critical" if clinical.safety_critical else "not safety-critical"
        tests = "tests changed" if clinical.tests_changed else "no tests changed"
        lines.extend(_wrap(f"Clinical safety: {verdict}, IEC 62304 class {clinical.iec62304_class}, {tests}."))
        for note in clinical.notes[:5]:
            lines.extend(_wrap(f"- {note}"))
    return lines


def regulations(findings: Sequence[Finding], clinical: ClinicalSafety) -> list[str]:
    """Every regulation the findings touch, plus IEC 62304 when the change touches a safety class above A."""
    regs = {r for f in findings for r in f.regulations}
    if clinical.safety_critical or clinical.iec62304_class != "A":
        if not any(r.startswith("IEC 62304") for r in regs):
            regs.add("IEC 62304")
    return sorted(regs)


def trailers(findings: Sequence[Finding], clinical: ClinicalSafety, risk: Risk) -> list[str]:
    regs = regulations(findings, clinical)
    return [
        f"Risk: {risk.level} ({risk.score})",
        f"Regulations: {', '.join(regs) if regs else 'none'}",
        f"Safety-Class: {clinical.iec62304_class}",
    ]


def _compose(prefix: str, subject: str, body: Sequence[str], trailer_lines: Sequence[str]) -> str:
    parts = [prefix + _fit(prefix, subject)]
    if body:
        parts.append("")
        parts.extend(body)
    parts.append("")
    parts.extend(trailer_lines)
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- the LLM, optionally


def _llm_prompt(files: Sequence[FileDiff], kind: str, scope: str | None, body: Sequence[str]) -> str:
    # Masked, not only redacted: `redact` catches labelled names and numbers, and a fixture's
    # `"Rosa Delgado"` or `lookup(90817263)` carries no label.
    from assistant.llm import masked_excerpt

    excerpt = masked_excerpt(files, budget=4000)
    head = f"{kind}({scope})" if scope else kind
    return (
        f"Write the subject and body of a git commit message of type {head}.\n"
        f"First line: the subject only, imperative mood, lower case, no type prefix, no trailing period, "
        f"at most {SUBJECT_MAX - len(head) - 2} characters.\n"
        "Then a blank line, then at most six short lines of body saying what changed and why.\n"
        "Do not write trailers such as Risk:, Regulations: or Signed-off-by:.\n\n"
        "Summary of the change:\n" + "\n".join(body) + "\n\nAdded lines (excerpt):\n" + excerpt
    )


def _accept_llm(text: str, prefix: str) -> tuple[str, list[str]] | None:
    """(subject, body) from a model's answer, or None when it does not meet the rules."""
    lines = text.strip().splitlines()
    if not lines:
        return None
    subject = _CONVENTIONAL_PREFIX.sub("", lines[0].strip().strip("`*#\"' "))
    if (
        not subject
        or len(prefix) + len(subject) > SUBJECT_MAX
        or _TRAILER_LINE.match(subject)
        or any(ord(c) < 32 for c in subject)
    ):
        return None
    body: list[str] = []
    for raw in lines[1:]:
        line = raw.rstrip()
        if _TRAILER_LINE.match(line.strip()) and line.split(":", 1)[0].strip().lower() in {
            "risk", "regulations", "safety-class", "signed-off-by", "co-authored-by", "reviewed-by", "approved-by",
        }:
            continue  # trailers never come from the model
        body.append(line)
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    wrapped: list[str] = []
    for line in body:
        wrapped.extend(_wrap(line, indent="") if len(line) > BODY_WIDTH else [line])
    return subject.rstrip("."), wrapped


def write_commit_message(
    files: Sequence[FileDiff],
    findings: Sequence[Finding],
    clinical: ClinicalSafety,
    risk: Risk,
    *,
    llm: BaseChatModel | None = None,
    timeout_s: float = LLM_TIMEOUT_S,
) -> str:
    """A conventional commit message (`type(scope): subject`, body, trailers) ending in a newline.

    Deterministic without `llm`. With one, the subject and body may be
    drafted by the model from a redacted summary; type, scope and trailers
    never are, and any problem with the model's answer gives the
    deterministic message.
    """
    with facts_cache():
        return _write(list(files), findings, clinical, risk, llm, timeout_s)


def _write(
    files: list[FileDiff],
    findings: Sequence[Finding],
    clinical: ClinicalSafety,
    risk: Risk,
    llm: BaseChatModel | None,
    timeout_s: float,
) -> str:
    kind = infer_type(files)
    scope = infer_scope(files)
    prefix = f"{kind}({scope}): " if scope else f"{kind}: "
    subject = _subject(kind, files, scope, SUBJECT_MAX - len(prefix))
    body = _body(files, findings, clinical)
    trailer_lines = trailers(findings, clinical, risk)
    deterministic = _compose(prefix, subject, body, trailer_lines)
    if llm is None:
        return deterministic

    from assistant.llm import draft

    answer = draft(
        llm,
        _llm_prompt(files, kind, scope, body),
        fallback="",
        timeout_s=timeout_s,
        system="You write concise git commit messages for a regulated healthcare code base.",
    )
    accepted = _accept_llm(answer, prefix) if answer else None
    if accepted is None:
        return deterministic
    llm_subject, llm_body = accepted
    # The review summary stays ours, under the model's prose.
    review_part = body[body.index("") + 1:] if "" in body else []
    merged_body = llm_body + ([""] + review_part if review_part else [])
    return _compose(prefix, llm_subject, merged_body, trailer_lines)
