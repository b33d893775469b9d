"""Clinical-safety validator: which changes touch safety-critical medical logic, and how critical they are.

A change is clinical when what it changes -- a constant, a formula, a
comparison, an early return -- sits in dosing, unit conversion, infusion,
alarm or device-control logic. That is judged from words, not values: the
identifiers on the changed line (`MAX_DAILY_MG_PER_KG`, `mlPerHour`), and the
context around it (the file path `alarms/dispatch.go`, the enclosing YAML keys
`adult.spo2`, the function in the hunk header). Tests, documentation,
imports, comments, logging and pure renames or moves are not clinical
changes, however clinical their words.

IEC 62304 software safety class: C when a change could contribute to serious
injury (dose limits and calculation, unit conversion, infusion rates, alarm
thresholds and suppression, device control), B for other clinical logic
(decision rules and scores that a clinician reviews), A otherwise. The class,
the reasons and whether the diff also changes tests for the touched units are
facts for risk and policy; this module decides nothing else.

`scan_file` keeps no line text (only line numbers, kinds and identifier
names), so a streamed 100 MB diff is assessed in bounded memory; `combine`
turns the scans into the verdict.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.diffs import DiffLine, FileDiff, Hunk
from assistant.domain import ClinicalSafety, Finding
from assistant.review import re2fast as re2
from assistant.review._structure import enclosing_keys, words_of
from assistant.review.context import is_test_path
from assistant.review.vocabulary import split_words

# Kinds of clinical change, most serious first, with their IEC 62304 class.
KIND_CLASS: dict[str, str] = {
    "alarm-suppression": "C",
    "dose": "C",
    "infusion-rate": "C",
    "unit-conversion": "C",
    "device-control": "C",
    "alarm-threshold": "C",
    "decision-rule": "B",
}
KIND_TEXT: dict[str, str] = {
    "alarm-suppression": "alarm suppression or silencing",
    "dose": "dose calculation or dose limit",
    "infusion-rate": "infusion rate calculation",
    "unit-conversion": "unit conversion",
    "device-control": "device control loop",
    "alarm-threshold": "alarm threshold",
    "decision-rule": "clinical decision rule",
}

_DOSE = frozenset({
    "dose", "doses", "dosing", "dosage", "dosages", "mg", "mcg", "ug", "microgram", "micrograms", "milligram",
    "milligrams", "titration", "titrate", "titrated", "basal", "bolus", "insulin", "heparin", "warfarin",
    "anticoagulant", "opioid", "opioids", "mme", "morphine", "acetaminophen", "paracetamol", "ibuprofen", "vancomycin", "gentamicin",
    "potassium", "dextrose", "iu", "meq", "nomogram", "carb", "carbs", "icr",
})
_INFUSION = frozenset({"infusion", "infusions", "infuse", "drip", "drips", "ml", "mlh", "vtbi", "gtt", "pump"})
_UNITS = frozenset({"mmol", "mgdl", "dl", "lb", "lbs", "kg", "mg", "mcg", "ml", "l", "oz", "celsius", "fahrenheit",
                    "kpa", "mmhg", "g", "ug", "iu", "meq", "units", "unit"})
_ALARM = frozenset({
    "alarm", "alarms", "spo2", "bradycardia", "tachycardia", "apnea", "apnoea", "desat", "desaturation", "arrhythmia",
    "asystole", "vfib", "systolic", "diastolic", "bpm", "etco2", "hypoxia", "hypoxemia", "arterial", "hypotension",
    "hypertension", "hypotensive", "tachypnea", "bradypnea", "hypothermia", "hyperthermia", "fever",
})
_VITAL = frozenset({"spo2", "hr", "heart", "rate", "resp", "rr", "temp", "temperature", "bp", "map", "pulse", "etco2", "sat"})
_SUPPRESS = frozenset({"silence", "silenced", "silent", "mute", "muted", "suppress", "suppressed", "suppression",
                       "snooze", "snoozed", "inhibit", "inhibited", "disable", "disabled", "pause", "paused", "skip",
                       "ignore", "ignored", "quiet"})
_DEVICE = frozenset({"ventilator", "vent", "peep", "fio2", "tidal", "actuator", "motor", "firmware", "kp", "ki", "kd",
                     "pid", "setpoint", "closed", "loop", "gain", "cycle", "delivery", "deliver", "stepper",
                     "occlusion", "pressure"})
_DECISION = frozenset({"cds", "sepsis", "news2", "mews", "qsofa", "sofa", "triage", "glucose", "hypoglycemia",
                       "hyperglycemia", "hypo", "creatinine", "egfr", "inr", "lactate", "troponin", "score",
                       "threshold", "target", "escalate", "escalation", "contraindication", "interaction",
                       "hemoglobin", "hgb", "transfusion", "qtc", "bilirubin", "phototherapy", "crcl", "platelet",
                       "platelets", "neutrophil", "anc", "aptt", "ptt", "sodium", "magnesium"})
# Words that make a path (or enclosing section) clinical by themselves.
_CONTEXT = frozenset({
    "dose", "doses", "dosing", "dosage", "infusion", "infusions", "pump", "pumps", "titration", "insulin", "alarm",
    "alarms", "ventilator", "cds", "firmware", "glucose", "heparin",
    "anticoagulation", "drip", "bolus", "nomogram", "sepsis", "news2", "mews", "pews", "ews", "triage", "spo2",
    "basal", "closedloop", "apnea", "vent", "peep", "ventilation", "bilirubin", "phototherapy", "transfusion", "qtc",
    "hemoglobin", "anticoagulant", "opioid", "opioids", "fluids",
})
_CONTEXT_PAIRS = (("control", "loop"), ("closed", "loop"), ("decision", "support"), ("early", "warning"),
                  ("ml", "hour"), ("ml", "hr"), ("ml", "min"))  # a rate unit in a name: `maintenanceMlPerHour`
_NOT_CLINICAL_LANGUAGES = frozenset({"terraform", "markdown", "text", "dockerfile"})
_DOC_DIRS = ("docs/", "doc/", "documentation/")

_IMPORT_RE = re2.compile(
    r"^\s*(?:import\s|from\s+\S+\s+import\s|using\s|package\s|#include|require\(|const\s+\{?[\w\s,]+\}?\s*=\s*require\(|\"[\w./-]+\"\s*$)"
)
_COMMENT_RE = re2.compile(r"^\s*(?:#|//|/\*|\*|--|<!--|\"\"\"|''')")
_LOG_RE = re2.compile(
    r"^\s*(?:(?:self\.|this\.)?(?:log|logger|LOG|LOGGER|_log|_logger|console|slog|zap|Log)\s*\.\s*\w+\s*\(|print\(|println|"
    r"System\.out|fmt\.Print|Console\.Write|debug\()"
)
_IDENT_RE = re2.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re2.compile(r"(?:^|[^\w.])\d+(?:\.\d+)?")
_ARITH_RE = re2.compile(r"[\w)\]]\s*[*/]\s*[\w(]|[\w)\]]\s+[-+]\s+[\w(]")
_COMPARE_RE = re2.compile(r"[<>]=?|==|!=|\bif\b|\breturn\b|\bcontinue\b|\bbreak\b|\?|\bmin\(|\bmax\(|\bclamp\b|Math\.(?:min|max)")
_EARLY_EXIT_RE = re2.compile(r"\breturn\b\s*(?:nil|None|null|false|False|;|$|//|#)|\bcontinue\b|\bbreak\b")
_DEF_RE = re2.compile(
    r"^\s*(?:(?:public|private|protected|internal|static|final|async|export|override|virtual|def|func|function|fn)\s+)+"
    r"(?:\([^)]*\)\s*)?(?:[\w<>\[\],.?]+\s+)?([A-Za-z_]\w*)\s*\("
)
_ASSIGN_RE = re2.compile(r"^\s*(?:(?:const|let|var|final|static|public|private|protected|readonly|val|double|int|float|long|decimal)\s+)*([A-Za-z_]\w*)\s*(?::\s*[\w\[\]<>.]+\s*)?(?:=|:)(?:[^=]|$)")
_HEADER_NAME_RE = re2.compile(r"([A-Za-z_]\w*)\s*\(")


@dataclass(frozen=True, slots=True)
class ClinicalChange:
    """One clinically significant changed line: where, what kind, and which identifier (no line text)."""

    line: int
    kind: str
    symbol: str


@dataclass(frozen=True, slots=True)
class ClinicalFileScan:
    """What one file of a diff contributes to the clinical verdict; small enough to keep per file."""

    path: str
    is_test: bool
    changes: tuple[ClinicalChange, ...] = ()
    units: frozenset[str] = field(default_factory=frozenset)  # module and function names touched
    references: frozenset[str] = field(default_factory=frozenset)  # test files: names they mention
    clinical_test: bool = False  # a test file whose words are clinical


def is_doc_path(path: str) -> bool:
    low = path.lower()
    return low.startswith(_DOC_DIRS) or "/docs/" in low or low.rsplit(".", 1)[-1] in ("md", "rst", "txt", "adoc")


def _words(text: str) -> set[str]:
    """Lowercase words of identifiers, with a trailing number glued back on (`SpO2` -> sp, o, spo2)."""
    parts = [w for w in words_of(text) if w]
    words = set(parts)
    for i in range(1, len(parts)):
        if parts[i].isdigit():
            words.add(parts[i - 1] + parts[i])
            if i >= 2 and len(parts[i - 1]) == 1:
                words.add(parts[i - 2] + parts[i - 1] + parts[i])
    return words


# (not `resp`, `bp`, `temperature`: an HTTP response, a Flask blueprint and an LLM setting are everywhere)
_VITAL_SIGNS = frozenset({"heart", "hr", "spo2", "pulse", "systolic", "diastolic", "etco2"})
_LIMIT_WORDS = frozenset({"limit", "limits", "threshold", "thresholds", "band", "bands"})


def _has_context(words: set[str]) -> bool:
    if not _CONTEXT.isdisjoint(words):
        return True
    if not _VITAL_SIGNS.isdisjoint(words) and not _LIMIT_WORDS.isdisjoint(words):
        return True  # vital-sign limits (`Limits/PediatricHeartRate.cs`): alarm bands
    return any(a in words and b in words for a, b in _CONTEXT_PAIRS)


# A string that carries a value: a number with its unit ("0.5 mg/kg/day") or an expression ("spo2 < 90" in a rule DSL).
_VALUE_STRING_RE = re2.compile(r"^\s*[<>=~]*\s*-?\d[\d,_]*(?:\.\d+)?\s*[A-Za-z/%. ]{0,16}$|[<>]|[=!]=")
_CALLED_RE = re2.compile(r"(\.|\b)(round|ceil|floor|min|max|abs|trunc|pow|sqrt|exp|log|quantize|clamp|"
                         r"to_integral_value|setScale|Round|Ceiling|Floor|Min|Max|Abs|Truncate)\s*\(")
_STRING_RE = re2.compile(r"\"[^\"]*\"|'[^']*'|`[^`]*`")
_DIGIT_SEPARATOR_RE = re2.compile(r"(\d)_(\d)")
_ROUNDING_MODE_RE = re2.compile(r"\bROUND_[A-Z0-9_]+\b")
_ENUM_MEMBER_RE = re2.compile(r"\b([A-Z]\w*\.[A-Z][A-Z0-9_]*)\b([^\w(]|$)")
_SWITCH_VALUE_RE = re2.compile(r"\b(?i:true|false|on|off|yes|no)\b")
# A setting switched by a boolean: `enabled: false`, `APNEA_ALARM_ENABLED = False`, `"muted": true`.
_SWITCH_RE = re2.compile(
    r"^\s*[\"']?([A-Za-z_][\w.-]*)[\"']?\s*(?::=|:|=)\s*[\"']?(?i:(true|yes|on)|false|no|off)[\"']?\s*[,;]?\s*(?:#.*|//.*)?$"
)
# Words of a switch's name that keep something working while they are true (`enabled`, `audible`): set false,
# the thing stops; the thing itself (`apnea: off`) stops the same way.
_ON_WORDS = frozenset({"enabled", "enable", "active", "armed", "audible", "on", "alerting", "notify", "sound", "visible"})


def _canonical(text: str) -> str:
    """The line with identifiers, type annotations and string words abstracted away.

    Equal canonical forms mean a rename, a re-typing or a restyle, not a
    behaviour change; digits inside strings are kept (`Decimal("90")`).
    """
    code = text.split("//", 1)[0] if "//" in text and "://" not in text else text
    code = code.split(" #", 1)[0]
    code = _STRING_RE.sub(lambda m: '"' + m.group(0)[1:-1].strip() + '"' if _VALUE_STRING_RE.search(m.group(0)[1:-1]) else '""', code)
    if "_" in code:
        code = _DIGIT_SEPARATOR_RE.sub(r"\1\2", code)  # 4_000 == 4000: a restyle, not a new value
    if _DEF_RE.search(code):
        code = re2.sub(r"->[^:{]*", "", code)
        code = re2.sub(r":\s*[A-Za-z_][\w.\[\]|, ]*?(\s*[,)=])", r"\1", code)
    else:
        # Which method or math function is called is behaviour (`Math.round` -> `Math.ceil`), not naming.
        code = _CALLED_RE.sub(lambda m: m.group(1) + "@" + str(zlib.crc32(m.group(2).encode())) + "(", code)
        # so is which enum member a rule compares with (`Severity.MODERATE` -> `Severity.MAJOR`, `TimeUnit.SECONDS`)
        if "." in code:
            code = _ENUM_MEMBER_RE.sub(lambda m: "@" + str(zlib.crc32(m.group(1).encode())) + m.group(2), code)
        # and which rounding mode (Python's decimal constants are bare names: ROUND_DOWN -> ROUND_HALF_UP)
        if "ROUND_" in code:
            code = _ROUNDING_MODE_RE.sub(lambda m: "@" + str(zlib.crc32(m.group(0).encode())), code)
    # a switch's value is behaviour too (`enabled: true` -> `enabled: false`), though it reads like a name
    code = _SWITCH_VALUE_RE.sub(lambda m: "@1" if m.group(0).lower() in ("true", "yes", "on") else "@0", code)
    flat = "".join(_IDENT_RE.sub("x", code).split())
    return flat.replace(",)", ")").replace(",]", "]").replace(",}", "}")


def _label_free(text: str) -> str:
    """The line with every string literal emptied that is neither a number (with its unit: "0.5 mg/kg/day")
    nor an expression (`"spo2 < 90"` in a rule DSL)."""
    return _STRING_RE.sub(lambda m: m.group(0) if _VALUE_STRING_RE.search(m.group(0)[1:-1]) else '""', text)


def _comment_only(text: str) -> bool:
    """A comment line (C preprocessor directives are code)."""
    return _COMMENT_RE.search(text) is not None and not text.lstrip().startswith(("#define", "#if", "#elif", "#undef"))


def _code_line(text: str) -> bool:
    stripped = text.strip()
    if not stripped or stripped in ("{", "}", "(", ")", "[", "]", "};", ");", "},", "end", "else", "} else {", "pass"):
        return False
    if stripped.startswith(("#define", "#if", "#elif", "#undef")):
        return True  # C preprocessor constants are code, not comments
    return not (_COMMENT_RE.search(text) or _IMPORT_RE.search(text) or _LOG_RE.search(text))


# Words that make `doses` a stock count (`doses_left`, `dosesRemaining`, `doses_in_stock`), not a dose.
_STOCK_WORDS = frozenset({"left", "remaining", "available", "stock", "inventory", "onhand", "hand", "shipped", "received",
                          "wasted", "expired", "lot", "lots", "vial", "vials"})
_DOSE_NOUNS = ("dose", "doses")


def _line_words(text: str) -> set[str]:
    """`_words` of a line, without `dose`/`doses` when every identifier naming them counts stock
    (`SELECT lot_number, doses_left FROM vaccine_lots`): an inventory figure is not dose logic."""
    words = _words(text)
    if "dose" not in words and "doses" not in words:
        return words
    for ident in _IDENT_RE.findall(text):
        parts = split_words(ident)
        if any(p in _DOSE_NOUNS for p in parts) and _STOCK_WORDS.isdisjoint(parts):
            return words  # a dose named as a dose somewhere on the line
    return words - set(_DOSE_NOUNS)


def _switched_off(text: str) -> bool:
    """Whether the line turns something off with a boolean: a switch named for keeping it on (`enabled`, or the
    alarm itself: `apnea: off`) set false, or one named for silencing it (`muted`, `suppress_alarms`) set true."""
    m = _SWITCH_RE.search(text)
    if m is None:
        return False
    name = _words(m.group(1))
    if m.group(2) is not None:  # set true
        return not _SUPPRESS.isdisjoint(name)
    return not _ON_WORDS.isdisjoint(name) or not _ALARM.isdisjoint(name)


def _kind(words: set[str], context: set[str], text: str) -> str | None:
    """The kind of clinical change a line makes, from its own words first, then its context's."""
    low = text.lower()
    every = words | context
    alarm_ctx = not _ALARM.isdisjoint(every) or "spo2" in low
    if alarm_ctx and (not _SUPPRESS.isdisjoint(words) or (_EARLY_EXIT_RE.search(text) and not _ALARM.isdisjoint(context))):
        return "alarm-suppression"
    if not _INFUSION.isdisjoint(words) and ("per" in words or "h" in words or "hr" in words or "hour" in words
                                             or "rate" in words or "min" in words or "infusion" in words):
        return "infusion-rate"
    if "to" in words and len(_UNITS & words) >= 2 or ("convert" in words or "conversion" in words) and _UNITS & words:
        return "unit-conversion"
    if not _DOSE.isdisjoint(words):
        return "dose"
    if not _ALARM.isdisjoint(words) or "spo2" in low:
        return "alarm-threshold"
    if not _DEVICE_STRONG.isdisjoint(words) or not _DEVICE.isdisjoint(words) and (
        "firmware" in every or "loop" in every or "pump" in every or "ventilator" in every or "vent" in every
    ):
        return "device-control"
    if not _DECISION.isdisjoint(words) and _has_context(every | words):
        return "decision-rule"
    # nothing on the line itself: the context decides
    if not _INFUSION.isdisjoint(context) and ("infusion" in context or "pump" in context):
        return "infusion-rate"
    if not _DOSE.isdisjoint(context):
        return "dose"
    if alarm_ctx:
        return "alarm-threshold" if not _VITAL.isdisjoint(every) or "limit" in every or "limits" in every else "alarm-suppression"
    if not _DEVICE.isdisjoint(every) and ("firmware" in every or "loop" in every or "ventilator" in every):
        return "device-control"
    if _has_context(context):
        return "decision-rule"
    return None


_DEVICE_STRONG = frozenset({"peep", "fio2", "tidal", "ventilator", "setpoint"})
_PID_WORDS = frozenset({"kp", "ki", "kd"})


def _strong(words: set[str], text: str) -> bool:
    if not (_DOSE.isdisjoint(words) and _ALARM.isdisjoint(words) and _DEVICE_STRONG.isdisjoint(words)):
        return True
    if "spo2" in text.lower():
        return True
    if not _INFUSION.isdisjoint(words) and ("per" in words or "rate" in words or "infusion" in words):
        return True
    return "to" in words and len(_UNITS & words) >= 2


def _enclosing_names(post: Sequence[DiffLine], index: int, header: str, defs: list[str | None] | None = None) -> list[str]:
    """Function name(s) around post[index]: the nearest definition above it in the hunk, else the header's.

    `defs` (from `_nearest_definitions`) answers the first half in constant time; without it the hunk is walked back.
    """
    names: list[str] = []
    if defs is not None:
        if defs[index] is not None:
            names.append(defs[index])  # type: ignore[arg-type]
    else:
        for j in range(index, -1, -1):
            m = _DEF_RE.search(post[j].text)
            if m:
                names.append(m.group(1))
                break
    names.extend(_header_names(header))
    return names


def _header_names(header: str) -> list[str]:
    """The function git names in a hunk header, if any."""
    if header:
        m = _DEF_RE.search(header) or _HEADER_NAME_RE.search(header)
        if m:
            return [m.group(1)]
    return []


def _nearest_definitions(post: Sequence[DiffLine]) -> list[str | None]:
    """For each post-image line, the name of the nearest definition at or above it: one pass, not one walk per line."""
    out: list[str | None] = []
    current: str | None = None
    for ln in post:
        if "(" in ln.text:  # every definition _DEF_RE knows has its parameter list's parenthesis on the line
            m = _DEF_RE.search(ln.text)
            if m:
                current = m.group(1)
        out.append(current)
    return out


# Words of which a hunk needs at least one (or one of the combinations in `_could_be_clinical`)
# before any of its lines can be a clinical change: every branch of `_kind` asks for one.
_ANY_KIND = _DOSE | _INFUSION | _ALARM | _CONTEXT | frozenset({"peep", "fio2", "tidal", "ventilator", "setpoint", "loop"})
_CONVERSION = frozenset({"to", "convert", "conversion"})


def _could_be_clinical(words: set[str], low: str) -> bool:
    """Whether any line of a hunk whose words (lines, header, path) are `words` could be a clinical change.

    A necessary condition of `_kind`, checked once per hunk, so the per-line
    work is spent only where clinical vocabulary is present.
    """
    if not _ANY_KIND.isdisjoint(words) or "spo2" in low:
        return True
    if not _CONVERSION.isdisjoint(words) and not _UNITS.isdisjoint(words):
        return True
    if not _VITAL_SIGNS.isdisjoint(words) and not _LIMIT_WORDS.isdisjoint(words):
        return True
    return any(a in words and b in words for a, b in _CONTEXT_PAIRS)


# --- the file-level gate: one RE2 pass instead of every hunk's words --------------------------------
#
# `_scan_hunk` starts by splitting the whole hunk into words for `_could_be_clinical`, which costs more than
# the rest of the scan put together on ordinary (non-clinical) code. `_could_be_clinical` and the PID check
# only ask whether certain words are present, so one RE2 Set pass over the file's text that reports which
# of those words occur as words (with `words_of`'s exact boundaries) answers them for every hunk at once: a
# word of any hunk is a word of the file's text, so a file that fails the gate fails it in every hunk and
# has nothing to scan. A file that passes goes through the exact per-hunk path as before.

_GATE_WORDS = (
    _ANY_KIND | _CONVERSION | _UNITS | _VITAL_SIGNS | _LIMIT_WORDS | _PID_WORDS
    | frozenset(w for pair in _CONTEXT_PAIRS for w in pair)
)
# Below this many characters a file's own word split is cheaper than the RE2 Set pass (and a small diff
# never compiles the Set).
_FAST_GATE_MIN_CHARS = 4000


def _glue_parts(words: Iterable[str]) -> dict[str, list[tuple[str, ...]]]:
    """For each gate word ending in digits, the word sequences `_words` glues into it (`spo`+`2`, `sp`+`o`+`2`)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for word in words:
        for i in range(1, len(word)):
            head, digits = word[:i], word[i:]
            if digits.isdigit():
                out.setdefault(word, []).append((head, digits))
                if len(head) >= 2:
                    out[word].append((head[:-1], head[-1], digits))
    return out


_GLUE = _glue_parts(_GATE_WORDS)
_SPO2_ANYWHERE = "<spo2>"


def _token_pattern(word: str) -> str:
    """An RE2 pattern that matches where `word` is one of `words_of`'s words of a text, in any casing
    `words_of` reads as that word: an uppercase run then lowercase letters and digits (`mg`, `Mg`, `MG`),
    starting after a non-alphanumeric (or, for an uppercase start, after a lowercase letter or digit:
    `doseMg`) and ending before a character that cannot continue it."""
    alternatives = []
    for k in range(len(word) + 1):
        head, tail = word[:k], word[k:]
        if any(c.isdigit() for c in head):
            break  # an uppercase run holds letters only
        left = "(?:^|[^A-Z])" if head else "(?:^|[^A-Za-z0-9])"
        right = "(?:$|[^a-z0-9])" if tail else "(?:$|[^A-Za-z0-9])"
        alternatives.append(left + head.upper() + tail + right)
    return "|".join(alternatives)


class _GateSet:
    """The RE2 Set of `_GATE_WORDS` (and the pieces glued into its digit-ending words), built on first use."""

    _built: tuple[Any, list[str]] | None = None

    @classmethod
    def words_in(cls, text: str) -> set[str]:
        """The tracked words that occur as words of `text`, plus `_SPO2_ANYWHERE` when the text holds "spo2"
        in any case (`_could_be_clinical` asks for it as a substring too)."""
        if cls._built is None:
            tracked = sorted(_GATE_WORDS | {p for seqs in _GLUE.values() for seq in seqs for p in seq})
            options = re2.Options()
            options.max_mem = 64 << 20  # a DFA that runs out of memory matches nothing: keep it roomy
            regex_set = re2.Set.SearchSet(options)
            for word in tracked:
                if not (word.isascii() and word.isalnum() and word == word.lower()):
                    raise ValueError(f"clinical gate word {word!r} must be lowercase ASCII letters and digits")
                regex_set.Add(_token_pattern(word))
            regex_set.Add("(?i)spo2")
            regex_set.Compile()
            cls._built = (regex_set, [*tracked, _SPO2_ANYWHERE])
        regex_set, names = cls._built
        hits = regex_set.Match(text)
        return {names[i] for i in hits} if hits else set()


def _surely_not_clinical(file: FileDiff, path_words: set[str]) -> bool:
    """Whether no hunk of `file` can pass `_could_be_clinical` or the PID check of `_scan_hunk` (see above)."""
    parts: list[str] = []
    for hunk in file.hunks:
        parts.append(hunk.header)
        parts.extend([ln.text for ln in hunk.lines])
    text = "\n".join(parts)
    if len(text) < _FAST_GATE_MIN_CHARS:
        return False
    found = _GateSet.words_in(text)
    spo2 = _SPO2_ANYWHERE in found
    found.discard(_SPO2_ANYWHERE)
    for word, sequences in _GLUE.items():
        if any(all(p in found for p in seq) for seq in sequences):
            return False  # `_words` may glue these into a gate word: let the exact path decide
    words = found | path_words
    for hunk in file.hunks:
        for name in _header_names(hunk.header):
            words |= _words(name)
    if len(_PID_WORDS & words) >= 2:
        return False
    return not _could_be_clinical(words, "spo2" if spo2 else "")


_LAST_SCAN: tuple[FileDiff, int, ClinicalFileScan] | None = None


def scan_file(file: FileDiff) -> ClinicalFileScan:
    """Scan one file of a diff for clinically significant changes (and, for a test file, what it tests).

    The last answer is kept for the same file object: the reviewer's clinical rule and the clinical-safety
    agent both scan each file of a review, one right after the other.
    """
    global _LAST_SCAN
    last = _LAST_SCAN
    if last is not None and last[0] is file and last[1] == len(file.hunks):
        return last[2]
    scan = _scan_file(file)
    _LAST_SCAN = (file, len(file.hunks), scan)
    return scan


def _scan_file(file: FileDiff) -> ClinicalFileScan:
    path = file.path
    test = is_test_path(path)
    language = file.language
    if test:
        refs: set[str] = set()
        for word in _words(path):
            refs.add(word)
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
        refs.add(stem)
        for hunk in file.hunks:
            for ln in hunk.lines:
                if ln.kind != " " and len(refs) < 4000:
                    for ident in _IDENT_RE.findall(ln.text):
                        refs.add(ident.lower())
                        refs.update(split_words(ident))
        return ClinicalFileScan(path, True, references=frozenset(refs), clinical_test=_has_context(refs) or not _DOSE.isdisjoint(refs))
    if (
        file.binary or file.status == "deleted" or not file.hunks or language in _NOT_CLINICAL_LANGUAGES
        or is_doc_path(path)
    ):
        return ClinicalFileScan(path, False)
    path_words = _words(path)
    if _surely_not_clinical(file, path_words):
        return ClinicalFileScan(path, False)
    removed_exact = {"".join(ln.text.split()) for h in file.hunks for ln in h.lines if ln.kind == "-"}
    changes: list[ClinicalChange] = []
    units: set[str] = set()
    extraction = _Extraction(file, removed_exact)
    for hunk in file.hunks:
        changes.extend(_scan_hunk(hunk, path_words, removed_exact, language, units, extraction))
    if changes:
        units.add(path.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    return ClinicalFileScan(path, False, tuple(changes), frozenset(units))


# Words that put a threshold or rate outside clinical care, whatever else the line says.
_NOT_CLINICAL = frozenset({
    "cloudwatch", "metric", "metrics", "cpu", "latency", "disk", "memory", "http", "queue", "prometheus", "grafana",
    "pagerduty", "sla", "uptime", "throughput", "learning", "epoch", "epochs", "training", "requests", "retry",
    "retries", "backoff", "timeout", "cache", "ttl", "pool", "batch", "page", "pagination", "upload", "bytes",
    "port", "host", "addr", "url", "version", "workers", "threads", "buffer", "verbosity", "debug", "color", "colour",
    "width", "height", "font", "padding", "margin", "rollout", "canary", "replicas", "replica", "image",
})
_INFRA_ALARM = frozenset({"cloudwatch", "metric", "metrics", "cpu", "prometheus", "grafana", "pagerduty", "latency",
                          "disk", "memory", "uptime", "sla", "alertmanager", "datadog"})
_DISPLAY_PARTS = frozenset({"components", "component", "ui", "views", "pages", "styles", "css",
                            "templates", "i18n", "locales", "widgets", "screens"})
# A front-end app's root folder holds its logic too (`web/src/scores/news2.ts`): display only for component files.
_APP_ROOT_PARTS = frozenset({"web", "frontend"})
_COMPONENT_EXTENSIONS = frozenset({"tsx", "jsx", "vue", "svelte", "html", "htm"})


_CONST_DEF_RE = re2.compile(
    r"^\s*(?:(?:export|const|final|static|public|private|protected|internal|readonly|let|var|val)\s+)*"
    r"(?:[\w<>\[\]]+\s+)?([A-Za-z_]\w*)\s*(?::\s*[\w.\[\]]+\s*)?(?::=|=)\s*"
    # the value: a number, or a number in a decimal type's constructor (`new Decimal(1000)`, `Decimal("15")`)
    r"(-?\d+(?:\.\d+)?|(?:new\s+)?[A-Z][\w.]*\(\s*[\"']?(-?\d+(?:\.\d+)?)[\"']?\s*\))"
    r"\s*;?\s*(?:#.*|//.*)?$"
)


class _Extraction:
    """A literal pulled out into a named constant with the same value (`if g < 70` -> `HYPO = 70` + `if g < HYPO`):
    neither the new constant nor the line now naming it changes behaviour. Worked out on first use only, since
    it is asked only about lines about to be reported."""

    def __init__(self, file: FileDiff, removed_exact: set[str]) -> None:
        self._file = file
        self._removed = removed_exact
        self._consts: dict[str, str] | None = None
        self._numbers: dict[str, str] = {}  # constants whose value wraps a number: the number
        self._extracted: set[str] = set()

    def _load(self) -> dict[str, str]:
        if self._consts is None:
            consts: dict[str, str] = {}
            added = [ln.text for h in self._file.hunks for ln in h.lines if ln.kind == "+"]
            for text in added:
                if "=" in text:
                    m = _CONST_DEF_RE.search(text)
                    if m:
                        consts[m.group(1)] = m.group(2)
                        if m.group(3) is not None:
                            self._numbers[m.group(1)] = m.group(3)
            self._consts = consts
            if consts and self._removed:
                for text in added:
                    if _CONST_DEF_RE.search(text):
                        continue
                    used = [n for n in consts if n in text]
                    if used and self._inlined_in_removed(text, used):
                        self._extracted.update(used)
        return self._consts

    def _inline(self, text: str, names: list[str], values: dict[str, str] | None = None) -> str:
        consts = values if values is not None else self._consts or {}
        out = text
        for n in names:
            out = re2.sub(r"\b" + n + r"\b", consts.get(n) or (self._consts or {})[n], out)
        return "".join(out.split())

    def _inlined_in_removed(self, text: str, names: list[str]) -> bool:
        """Whether `text` with the constants put back is a removed line: as written (`new Decimal(1000)`),
        or as the bare number a constructor wraps (`weightKg.mul(15)` before `MG_PER_KG = new Decimal(15)`)."""
        if self._inline(text, names) in self._removed:
            return True
        return bool(self._numbers) and self._inline(text, names, self._numbers) in self._removed

    def unchanged(self, text: str) -> bool:
        consts = self._load()
        if not self._extracted:
            return False
        m = _CONST_DEF_RE.search(text)
        if m and m.group(1) in self._extracted:
            return True
        used = [n for n in self._extracted if n in text]
        return bool(used) and self._inlined_in_removed(text, used) and bool(consts)


def _scan_hunk(hunk: Hunk, path_words: set[str], removed_exact: set[str], language: str | None, units: set[str],
               extraction: _Extraction | None = None) -> list[ClinicalChange]:
    """Clinically significant added lines of one hunk.

    A line counts when it changes behaviour (not a move, rename, restyle,
    comment, import or log call) and names a clinical quantity itself, or
    sits in clinical context (path, function, enclosing keys); display code
    (components, views, styles) counts only when the line itself is clinical.
    """
    everything = hunk.header + "\n" + "\n".join(ln.text for ln in hunk.lines)
    header_words = [_words(name) for name in _header_names(hunk.header)]
    all_words = path_words.union(_words(everything), *header_words)
    # PID gains (two of kp, ki, kd in view) are a control loop, whatever the file is called
    pid = len(_PID_WORDS & all_words) >= 2
    if not pid and not _could_be_clinical(all_words, everything.lower()):
        return []
    # UI code by its folder -- in front-end languages only: SQL views and Django views.py are logic, not display
    display = (
        (not _DISPLAY_PARTS.isdisjoint(path_words)
         or not _APP_ROOT_PARTS.isdisjoint(path_words) and not _COMPONENT_EXTENSIONS.isdisjoint(path_words))
        and language in (None, "javascript", "typescript")
    ) or language in ("css",)
    post = [ln for ln in hunk.lines if ln.kind != "-"]
    position = {id(ln): i for i, ln in enumerate(post)}
    docs = _docstring_lines(post) if ('"""' in everything or "'''" in everything) else frozenset()
    defs: list[str | None] | None = None
    hunk_words: set[str] | None = None
    infra: bool | None = None
    out: list[ClinicalChange] = []
    added_exact: set[str] | None = None

    def moved_to() -> set[str]:
        nonlocal added_exact
        if added_exact is None:
            added_exact = {"".join(ln.text.split()) for ln in hunk.lines if ln.kind == "+"}
        return added_exact
    for removed, added in hunk.change_blocks():
        if not added:
            continue
        if (removed and not display and any(_comment_only(ln.text) for ln in added)
                and all(_comment_only(ln.text) or not ln.text.strip() for ln in added)):
            # clinical code taken out with only a comment (or blank lines) in its place: reported on the first
            # line that stands there now (`if (mgDl < 70) return Alert.Hypoglycemia;` -> `// the CGM app alarms`)
            if hunk_words is None:
                hunk_words = _hunk_words(hunk, path_words, pid)
            if defs is None:
                defs = _nearest_definitions(post)
            target = next((ln for ln in added if ln.new_no is not None), None)
            if target is None:
                continue
            names = _enclosing_names(post, position[id(target)], hunk.header, defs)
            change = _removed_logic(removed, target, hunk_words | _names_words(names), moved_to(), language)
            if change is not None:
                if not change.symbol and names:
                    change = ClinicalChange(change.line, change.kind, names[0])
                out.append(change)
                units.update(n for n in names if n)
            continue
        removed_canon = {_canonical(ln.text) for ln in removed if _code_line(ln.text)}
        # (comment lines left out: `// note` first would make the joined text one comment, equal to anything)
        if removed and _canonical(" ".join(ln.text.strip() for ln in removed if not _comment_only(ln.text))) == _canonical(
            " ".join(ln.text.strip() for ln in added if not _comment_only(ln.text))
        ):
            continue  # the same code re-wrapped or renamed across lines
        flagged_in_block = 0
        last = -10
        for ln in added:
            text = ln.text
            if ln.new_no is None or not _code_line(text) or (docs and position[id(ln)] in docs):
                continue  # (a docstring's lines are documentation, whatever numbers they quote)
            if "".join(text.split()) in removed_exact:
                continue  # moved, not changed
            if removed and _canonical(text) in removed_canon:
                continue  # renamed or reformatted, same behaviour
            words = _line_words(text)
            if "(" in text and _DEF_RE.search(text):
                # a signature's `*T`, `**kwargs`, `<T>`, `-> T` and `?` are types, not formulas or comparisons;
                # its default values (`mg_per_kg=15`) are values
                has_value = bool(_NUMBER_RE.search(text))
            else:
                has_value = bool(_NUMBER_RE.search(text) or _ARITH_RE.search(text) or _COMPARE_RE.search(text)
                                 # a changed enum member is a value too (`APNEA(Priority.HIGH)` -> `APNEA(Priority.MEDIUM)`)
                                 or removed and "." in text and _ENUM_MEMBER_RE.search(text))
            switched_off = not has_value and _switched_off(text)
            if not has_value and not switched_off:
                continue
            if hunk_words is None:
                hunk_words = _hunk_words(hunk, path_words, pid)
            i = position[id(ln)]
            context = set(hunk_words)
            key_words: set[str] = set()
            if language == "yaml":
                for key in enclosing_keys(post, i):
                    key_words |= _words(key)
                # a YAML line's context is its own keys, not its siblings under other keys (`replicaCount` beside `alarms`)
                context = set(path_words) | _words(hunk.header) | key_words
            if defs is None:
                defs = _nearest_definitions(post)
            names = _enclosing_names(post, i, hunk.header, defs)
            name_words: set[str] = set()
            for name in names:
                name_words |= _words(name)
            context |= name_words
            # inside a unit-conversion function (`LbToKg`, `mgdl_to_mmol`) every value or formula is the conversion
            converter = "to" in name_words and len(_UNITS & name_words) >= 2
            if not _NOT_CLINICAL.isdisjoint(words) and _DOSE.isdisjoint(words):
                continue  # infrastructure alarms, ML learning rates, request rates
            strong = _strong(words, text) or converter
            if not strong and (display or not _has_context(context) and _ALARM.isdisjoint(context) and _DOSE.isdisjoint(context)):
                continue
            if display and not (_NUMBER_RE.search(_STRING_RE.sub('""', text)) or _ARITH_RE.search(text)):
                continue  # labels and markup in UI code are not clinical logic
            if not strong and not (
                _NUMBER_RE.search(text) or _ARITH_RE.search(text)
                or removed and _CALLED_RE.search(text)  # a rounding/min/max call changed: a formula
                or (_EARLY_EXIT_RE.search(text) or text.strip().startswith(("if ", "if(", "unless "))
                    or switched_off) and not _ALARM.isdisjoint(context)
            ):
                continue  # context alone makes a line clinical only when it carries a value, a formula or an alarm exit
            kind = _kind(words, context, text)
            if switched_off:
                # a switch turned off is clinical only as an alarm (or its sound) switched off
                kind = "alarm-suppression" if not _ALARM.isdisjoint(words | context) and kind is not None else None
            if kind is None and converter:
                kind = "unit-conversion"
            if kind is None:
                continue
            if kind in ("alarm-threshold", "alarm-suppression", "decision-rule") and not strong and language == "yaml":
                if not _INFRA_ALARM.isdisjoint(key_words | words):
                    continue  # YAML says which alarm by its keys: `resources.limits.cpu` elsewhere in the hunk does not
            elif kind in ("alarm-threshold", "alarm-suppression", "decision-rule") and not strong:
                if infra is None:
                    infra = not _INFRA_ALARM.isdisjoint(
                        words_of(hunk.header + " " + " ".join(o.text for o in hunk.lines if o.kind != "-"))
                    )
                if infra:
                    continue  # an infrastructure alarm (CloudWatch, Prometheus), not a patient alarm
            if not removed and not strong and flagged_in_block and ln.new_no - last <= 6:
                continue  # one finding for a new block of logic, unless a line names clinical quantities itself
            if ln.new_no - last <= 2 or flagged_in_block >= 3:
                continue
            if ("'" in text or '"' in text) and not switched_off:
                # digits inside a label ('Heparin 5,000 units/mL', an NDC code) are text, not a value; a numeric
                # string ("90", "2.5 mg") or an expression ("egfr < 30") is one (checked last: it is rarely reached)
                valued = _label_free(text)
                if not (_NUMBER_RE.search(valued) or _ARITH_RE.search(valued) or _COMPARE_RE.search(valued)):
                    continue
            if extraction is not None and extraction.unchanged(text):
                continue  # a literal named, same value
            m = _ASSIGN_RE.search(text)
            symbol = m.group(1) if m else (names[0] if names else "")
            out.append(ClinicalChange(ln.new_no, kind, symbol))
            units.update(n for n in names if n)
            flagged_in_block += 1
            last = ln.new_no
    return out


def _hunk_words(hunk: Hunk, path_words: set[str], pid: bool) -> set[str]:
    """A hunk's context words: its path, its header, and the clinical words of its unchanged and removed code."""
    words = set(path_words) | _words(hunk.header) | ({"control", "loop"} if pid else set())
    for other in hunk.lines:
        if other.kind != "+" and _code_line(other.text):
            words |= _strong_words(other.text)
    return words


def _names_words(names: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for name in names:
        out |= _words(name)
    return out


def _removed_logic(removed: Sequence[DiffLine], target: DiffLine, context: set[str], added_exact: set[str],
                   language: str | None) -> ClinicalChange | None:
    """The clinical change of a block whose removed code is replaced by comments only: the first removed line
    that is clinical logic (a value, formula or comparison in clinical words or context, not moved elsewhere
    in the hunk), reported as a change on `target`, the block's first added line."""
    for ln in removed:
        text = ln.text
        if not _code_line(text) or "".join(text.split()) in added_exact:
            continue
        if not (_NUMBER_RE.search(text) or _ARITH_RE.search(text) or _COMPARE_RE.search(text)):
            continue
        words = _line_words(text)
        if not _NOT_CLINICAL.isdisjoint(words) and _DOSE.isdisjoint(words):
            continue
        strong = _strong(words, text)
        if not strong and not _has_context(context | words):
            continue
        if not strong and not _INFRA_ALARM.isdisjoint(words | context):
            continue
        kind = _kind(words, context, text)
        if kind is None:
            continue
        if language == "yaml" and not strong:
            continue  # a YAML line's meaning is in its keys, which a removed line no longer shows in the post-image
        m = _ASSIGN_RE.search(text)
        return ClinicalChange(target.new_no or 0, kind, m.group(1) if m else "")
    return None


_DOCSTRING_OPEN_RE = re2.compile(r"^\s*[rRuU]?(\"\"\"|\'\'\')")


def _docstring_lines(post: Sequence[DiffLine]) -> frozenset[int]:
    """Indices of the post-image lines inside a multi-line docstring (a statement that is only a triple-quoted
    string, opened on a line of its own in this hunk): its text lines and its closing line.

    Only a string that starts its line counts: a triple-quoted value (`sql = \"\"\"...`, a Java text block)
    is data the code uses, and stays code."""
    inside: set[int] = set()
    quote: str | None = None
    for i, ln in enumerate(post):
        text = ln.text
        if quote is not None:
            inside.add(i)
            if quote in text:
                quote = None
            continue
        m = _DOCSTRING_OPEN_RE.search(text)
        if m and text.count(m.group(1)) % 2 == 1:
            quote = m.group(1)
    return frozenset(inside)


def _strong_words(text: str) -> set[str]:
    """The clinical words of a context line (so a hunk that shows `TARGET_MG_DL` counts as dosing context)."""
    words = _line_words(text)
    return words & (_DOSE | _ALARM | _CONTEXT | {"ml", "infusion", "loop", "firmware"})


def combine(scans: Iterable[ClinicalFileScan], findings: Sequence[Finding] = ()) -> ClinicalSafety:
    """The verdict for a whole diff from its per-file scans (and the reviewer's clinical-safety findings)."""
    scans = list(scans)
    changes = [(s.path, c) for s in scans if not s.is_test for c in s.changes]
    notes: list[str] = []
    kinds: set[str] = set()
    seen: set[tuple[str, int]] = set()
    for path, change in changes:
        kinds.add(change.kind)
        seen.add((path, change.line))
        what = f" ({change.symbol})" if change.symbol else ""
        notes.append(f"{path}:{change.line}: {KIND_TEXT[change.kind]} changed{what} -> class {KIND_CLASS[change.kind]}")
    for f in findings:
        if f.category == "clinical-safety" and not any(p == f.file and abs(n - f.line) <= 2 for p, n in seen):
            kinds.add("decision-rule")
            notes.append(f"{f.file}:{f.line}: clinical logic changed (reviewer rule {f.rule}) -> class B")
    units = sorted({u for s in scans if not s.is_test for u in s.units})
    tests = [s for s in scans if s.is_test]
    if units:
        wanted = {u.lower() for u in units} | {"_".join(split_words(u)) for u in units}
        tests_changed = any(not wanted.isdisjoint(t.references) or any(w in r for r in t.references for w in wanted if len(w) > 3)
                            for t in tests)
    else:
        tests_changed = any(t.clinical_test for t in tests)
    if not kinds:
        if tests_changed:
            notes.append("only tests of clinical logic changed; no safety-critical code changed")
        return ClinicalSafety(safety_critical=False, iec62304_class="A", notes=notes, tests_changed=tests_changed, touched_units=units)
    safety_class = "C" if any(KIND_CLASS[k] == "C" for k in kinds) else "B"
    if tests_changed:
        notes.append("tests for the touched units change in the same diff")
    else:
        notes.append("no tests for the touched units change in this diff: clinical review and new tests needed")
    return ClinicalSafety(
        safety_critical=True,
        iec62304_class=safety_class,  # type: ignore[arg-type]
        notes=notes,
        tests_changed=tests_changed,
        touched_units=units,
    )


def assess(files: Sequence[FileDiff], findings: Sequence[Finding] = ()) -> ClinicalSafety:
    """The clinical-safety verdict for a parsed diff."""
    return combine((scan_file(f) for f in files), findings)
