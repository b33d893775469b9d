"""PHI and secret redaction: the one function every outbound path uses.

Logs, chat messages, LLM prompts and the vector store all receive text that
may carry a patient's identifiers or a credential pasted into a diff. They all
call `redact` (or `redact_obj` for JSON-like data) so there is exactly one
definition of "safe to leave the core" to test and to improve.

Design choices:
- Every pattern runs on RE2 (`import re2`): linear time, so a hostile 1 MB
  line cannot stall a log call.
- Typed placeholders (`[REDACTED:SSN]`) keep the text useful to a reader and
  are never matched again, so `redact(redact(x)) == redact(x)`.
- Free-standing patterns are kept to shapes that are nearly always PHI (SSN
  `123-45-6789`, phone numbers, e-mail addresses, street addresses); weaker
  shapes (a 7-digit number, a capitalised word, a date) are redacted only next
  to a label that says what they are (`MRN:`, `DOB=`, `patient:`), so code,
  version numbers, log timestamps and commit hashes survive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import re2

__all__ = ["PLACEHOLDER_PREFIX", "redact", "redact_obj", "is_phi_key"]

PLACEHOLDER_PREFIX = "[REDACTED:"


def _ph(kind: str) -> str:
    return f"{PLACEHOLDER_PREFIX}{kind}]"


@dataclass(frozen=True, slots=True)
class _Pattern:
    kind: str
    regex: Any  # re2._Regexp
    replace: Callable[[Any], str]
    keywords: tuple[str, ...] = ()  # lowercase; the text must contain one for the pattern to run


def _whole(kind: str) -> Callable[[Any], str]:
    placeholder = _ph(kind)
    return lambda m: placeholder


def _keep_groups_then(kind: str, keep: int, check: Callable[[str], bool] | None = None) -> Callable[[Any], str]:
    """Keep groups 1..keep (label, separator), replace the value group that follows."""
    placeholder = _ph(kind)

    def repl(m: Any) -> str:
        value = m.group(keep + 1) or ""
        if check is not None and not check(value):
            return m.group(0)
        head = "".join(m.group(i) or "" for i in range(1, keep + 1))
        tail = m.group(0)[m.end(keep + 1) - m.start(0):] if m.end(keep + 1) >= 0 else ""
        return head + placeholder + tail

    return repl


# Separators between a label and its value: `mrn=123`, `"mrn": "123"`, `MRN: 123`, `mrn 123`.
_SEP = r"""(["']?\s*[:=]\s*["']?|["']?\s*=>\s*["']?|\s+|\s*#\s*)"""
_SEP_STRICT = r"""(["']?\s*(?::|=|=>)\s*["']?)"""  # a real key/value separator, no bare space

_MONTHS = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DATE = (
    r"(\d{4}-\d{1,2}-\d{1,2}|\d{4}/\d{1,2}/\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}|\d{1,2}-\d{1,2}-\d{2,4}"
    r"|\d{1,2}\.\d{1,2}\.\d{4}|\d{8}|" + _MONTHS + r"\s+\d{1,2},?\s+\d{4}|\d{1,2}\s+" + _MONTHS + r"\s+\d{4})"
)

_NAME_WORD = r"[A-Z][A-Za-z'\-]*\.?"
_PERSON = _NAME_WORD + r"(?:[ \t]+" + _NAME_WORD + r"){0,3}"

# Labels whose value is a person's name whatever it looks like.
_STRONG_NAME_LABELS = (
    r"patient[ _\-]?name|patient|patient\.name|first[ _\-]?name|last[ _\-]?name|given[ _\-]?name|family[ _\-]?name"
    r"|full[ _\-]?name|middle[ _\-]?name|maiden[ _\-]?name|surname|forename|guardian(?:[ _\-]?name)?"
    r"|mother'?s?[ _\-]?name|father'?s?[ _\-]?name|next[ _\-]?of[ _\-]?kin|emergency[ _\-]?contact(?:[ _\-]?name)?"
    r"|subscriber[ _\-]?name|insured[ _\-]?name|member[ _\-]?name|resident[ _\-]?name"
)
_INSURANCE_LABELS = (
    r"member[ _\-]?(?:id|number|no|#)|insurance[ _\-]?(?:id|number|no|#)|subscriber[ _\-]?(?:id|number|no)"
    r"|policy[ _\-]?(?:number|no|#)|group[ _\-]?(?:number|no)|medicaid[ _\-]?(?:id|number|no)?"
    r"|medicare[ _\-]?(?:id|number|no)?|health[ _\-]?plan[ _\-]?(?:id|number|no)|payer[ _\-]?member[ _\-]?id|mbi|hicn"
)
_ADDRESS_LABELS = r"(?:home|street|mailing|postal|residential|patient)[ _\-]?address|address(?:[ _\-]?line[ _\-]?\d)?|addr"
_STREET_TYPES = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|Circle|Cir"
    r"|Highway|Hwy|Parkway|Pkwy|Square|Sq|Trail|Trl)"
)
_SECRET_LABELS = (
    r"password|passwd|passphrase|pwd|secret|client[ _\-]?secret|api[ _\-]?key|apikey|access[ _\-]?key|secret[ _\-]?key"
    r"|auth[ _\-]?token|access[ _\-]?token|refresh[ _\-]?token|id[ _\-]?token|token|private[ _\-]?key"
    r"|aws[ _\-]?secret[ _\-]?access[ _\-]?key|signing[ _\-]?secret|webhook[ _\-]?secret|credentials?"
)


def _looks_like_literal_secret(value: str) -> bool:
    """A value worth hiding, not code that computes one (`get_password()`, `settings.token`, `None`)."""
    v = value.strip("\"'")
    if not v or v.startswith(PLACEHOLDER_PREFIX):
        return False
    if v.lower() in {"none", "null", "true", "false", "nil", "undefined", "required", "optional", "str", "string", "bytes"}:
        return False
    if v.startswith(("$", "{", "<", "%", "os.", "env.", "process.", "settings.", "config.", "self.", "request.")):
        return False  # a reference to where the secret lives, not the secret
    if "(" in v or ")" in v:
        return False
    return True


def _quoted_secret(m: Any) -> str:
    return m.group(1) + m.group(2) + m.group(3) + _ph("SECRET") + m.group(3)


def _assigned_secret(m: Any) -> str:
    value = m.group(3)
    if not _looks_like_literal_secret(value) or _is_identifier_path(value):
        return m.group(0)
    return m.group(1) + m.group(2) + _ph("SECRET")


_VARIABLE_WORDS = frozenset(
    "pw pwd passwd password passphrase secret token key value val cred creds credentials apikey api_key "
    "access_token auth_token client_secret new_password old_password".split()
)


def _is_identifier_path(value: str) -> bool:
    """`token = auth.token` or `connect(password=db_password)`: code, not a secret."""
    parts = value.split(".")
    if not all(p and (p[0].isalpha() or p[0] == "_") and p.replace("_", "").isalnum() for p in parts):
        return False
    if len(parts) > 1:
        return True
    if sum(c.isdigit() for c in value) >= 3:
        return False  # `sk_live_4eC39HqLyjW` is a key, not a variable name
    if value.isalpha() and value[:1].isupper() and any(c.islower() for c in value[1:]):
        return True  # `secret: SecretStr`: a type annotation
    # `password=letmein` in a log line is a secret; `password=db_password` is a variable.
    return "_" in value or value.lower() in _VARIABLE_WORDS or (value[:1].islower() and any(c.isupper() for c in value) and not any(c.isdigit() for c in value))


def _is_person(value: str) -> bool:
    words = value.split()
    return 1 <= len(words) <= 4 and all(w[:1].isupper() for w in words)


_TYPE_WORDS = frozenset(
    "Patient Person Practitioner Optional Any None True False List Dict Str String Object Int Integer Model Record "
    "Type Union Sequence Mapping Iterable Field Column Required Schema Resource Encounter Observation".split()
)


def _is_code_not_name(m: Any) -> bool:
    """`patient: Patient`, `patient = Patient(...)`, `name = Foo.bar`: an annotation or expression, not a person."""
    value = m.group(3)
    after = m.string[m.end():m.end() + 1]
    if after in ("(", "[", "|", "_") or after.isalnum():
        return True
    if after == "." and m.string[m.end() + 1:m.end() + 2].isalpha():
        return True
    words = value.split()
    if words and words[0].rstrip(".") in _TYPE_WORDS:
        return True
    if len(words) == 1:
        w = words[0]
        if any(c.isupper() for c in w[1:]) and not w[:2] in ("Mc", "O'") or after in (")", "]", "=", ">"):
            return True
    return False


def _strong_name(m: Any) -> str:
    value = m.group(3)
    if not value or value.startswith(PLACEHOLDER_PREFIX) or _is_code_not_name(m):
        return m.group(0)
    return m.group(1) + m.group(2) + _ph("NAME")


def _generic_name(m: Any) -> str:
    # `name: Jane Doe` is a person; `name: Deploy` or `name: my-service` are not.
    value = m.group(3)
    if len(value.split()) < 2 or not _is_person(value) or _is_code_not_name(m):
        return m.group(0)
    return m.group(1) + m.group(2) + _ph("NAME")


def _quoted_name_generic(m: Any) -> str:
    value = m.group(4)
    if len(value.split()) < 2 or not _is_person(value) or not _not_code(value):
        return m.group(0)
    return m.group(1) + m.group(2) + m.group(3) + _ph("NAME") + m.group(3)


def _not_code(value: str) -> bool:
    """A quoted value that is a value, not string-building code (`" + lastName + "`, `${name}`, `{x}`)."""
    v = value.strip()
    return not (v.startswith(("\\", "+", "{", "$", "%")) or " + " in v or v.endswith(("+", "\\")))


def _quoted_value(kind: str, check: Callable[[str], bool] | None = _not_code) -> Callable[[Any], str]:
    """Groups: 1 prefix, 2 label+separator, 3 quote, 4 value."""
    placeholder = _ph(kind)

    def repl(m: Any) -> str:
        value = m.group(4)
        if not value.strip() or value.startswith(PLACEHOLDER_PREFIX) or (check is not None and not check(value)):
            return m.group(0)
        return m.group(1) + m.group(2) + m.group(3) + placeholder + m.group(3)

    return repl


def _fhir_given(m: Any) -> str:
    items = m.group(2)
    head = items.lstrip(" \t\"'")
    if not head or head.startswith((PLACEHOLDER_PREFIX, PLACEHOLDER_PREFIX[1:])):
        return m.group(0)  # already `["[REDACTED:NAME]"]`, or `given=[REDACTED:...]`
    quote = "'" if items.lstrip().startswith("'") else '"'
    return m.group(1) + "[" + quote + _ph("NAME") + quote + "]"


def _address_value(value: str) -> bool:
    v = value.strip()
    if not v or v.startswith(PLACEHOLDER_PREFIX):
        return False
    has_alpha = any(c.isalpha() for c in v)
    # `bind address 0.0.0.0:8080`, `address = request.remote_addr`: not a home.
    return has_alpha and any(c.isdigit() for c in v) and " " in v


class _Lazy:
    """A pattern compiled on first use: most processes that import this module (a `review` run, say) never redact."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._compiled: Any = None

    def sub(self, repl: Any, text: str) -> str:
        if self._compiled is None:
            self._compiled = re2.compile(self.pattern)
        return self._compiled.sub(repl, text)  # type: ignore[no-any-return]


def _c(pattern: str) -> Any:
    return _Lazy(pattern)


_B = r"(^|[^A-Za-z0-9])"  # start of a label: not glued to a preceding word
_BN = r"(^|[^A-Za-z])"  # the same, but `patient_ssn`/`patientDob`-style prefixes are allowed via the label

_PATTERNS: tuple[_Pattern, ...] = (
    # --- secrets -------------------------------------------------------------
    _Pattern(
        "PRIVATE_KEY",
        _c(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:(?s:.)*?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
            r"|(?:[A-Za-z0-9+/=\s:,\-]|\\n)*)"
        ),
        _whole("PRIVATE_KEY"),
        ("private key",),
    ),
    _Pattern(
        "AWS_KEY",
        _c(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b"),
        _whole("AWS_KEY"),
        ("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa", "abia", "acca"),
    ),
    _Pattern(
        "TOKEN",
        _c(
            r"\b(?:xox[abposr]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,}|gh[pousr]_[A-Za-z0-9]{30,}"
            r"|github_pat_[A-Za-z0-9_]{30,}|sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}|glpat-[A-Za-z0-9_\-]{20,}|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}"
            r"|AIza[0-9A-Za-z_\-]{35}|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})"
        ),
        _whole("TOKEN"),
        ("xox", "xapp-", "gh", "github_pat_", "sk-", "glpat-", "aiza", "eyj", "k_live_", "k_test_"),
    ),
    _Pattern(
        "TOKEN",
        _c(r"(?i)(\b(?:bearer|basic|token)[ \t]+)([A-Za-z0-9._~+/\-]{12,}=*)"),
        _keep_groups_then("TOKEN", 1, lambda v: any(c.isdigit() for c in v) or len(v) >= 24),
        ("bearer", "basic", "token"),
    ),
    _Pattern(
        "SECRET",  # credentials in a URL: scheme://user:password@host
        _c(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[A-Za-z0-9._%+~\-]+)(:)([^\s@/\"'<>\[{$|\\()][^\s@/\"'<>\[|\\()]*)@"),
        lambda m: m.group(1) + ":" + _ph("SECRET") + "@",
        ("://",),
    ),
    _Pattern(
        "SECRET",  # quoted: password = "hunter2", "apiKey": "abc123"
        _c(r"(?i)(" + _B[1:-1] + r"|_)((?:" + _SECRET_LABELS + r")\\?[\"']?\s*(?::=|=>|:|=)\s*)(\\?[\"'])([^\"'\\\n]{1,})\\?[\"']"),
        lambda m: (
            m.group(0)
            if not _looks_like_literal_secret(m.group(4))
            else m.group(1) + m.group(2) + m.group(3) + _ph("SECRET") + m.group(3)
        ),
        ("pass", "pwd", "secret", "key", "token", "credential"),
    ),
    _Pattern(
        "SECRET",  # unquoted: password=hunter2 in a URL query, .env file or log line
        _c(r"(?i)(" + _B[1:-1] + r"|_)((?:" + _SECRET_LABELS + r")\s*(?::=|=|:)\s*)([^\s\"',;&\[\]{}\\=/|][^\s\"',;&\[\]{}\\]*)"),
        _assigned_secret,
        ("pass", "pwd", "secret", "key", "token", "credential"),
    ),
    # --- labelled PHI ------------------------------------------------------------
    _Pattern(
        "SSN",
        _c(
            r"(?i)(" + _BN[1:-1] + r"|[a-z0-9_])((?:ssn|social[ _\-]?security(?:[ _\-]?(?:number|no|num|#))?)" + _SEP + r")"
            r"(\d{3}[ \-]?\d{2}[ \-]?\d{4})\b"
        ),
        lambda m: m.group(1) + m.group(2) + _ph("SSN"),
        ("ssn", "social"),
    ),
    _Pattern(
        "DOB",
        _c(
            r"(?i)(" + _BN[1:-1] + r"|[a-z0-9_])((?:dob|d\.o\.b\.?|date[ _\-]?of[ _\-]?birth|birth[ _\-]?date|birth[ _\-]?day"
            r"|born(?:[ \t]+on)?)" + _SEP + r")" + _DATE
        ),
        lambda m: m.group(1) + m.group(2) + _ph("DOB"),
        ("dob", "d.o.b", "birth", "born"),
    ),
    _Pattern(
        "MRN",
        _c(
            r"(?i)(" + _BN[1:-1] + r"|[a-z0-9_])((?:mrn|medical[ _\-]?record(?:[ _\-]?(?:number|num|no|#|id))?|patient[ _\-]?id"
            r"|chart[ _\-]?(?:number|no))" + r"""(?:["']?\s*[:=#]\s*["']?|["']?\s*=>\s*["']?|\s+|-)"""
            r")([A-Za-z]{0,4}[\-]?\d[A-Za-z0-9\-]{2,})"
        ),
        lambda m: m.group(1) + m.group(2) + _ph("MRN"),
        ("mrn", "medical", "patient", "chart"),
    ),
    _Pattern(
        "INSURANCE_ID",
        _c(
            r"(?i)(" + _B[1:-1] + r"|_)((?:" + _INSURANCE_LABELS + r")" + _SEP + r")"
            r"([A-Za-z]{0,4}[\-]?\d[A-Za-z0-9\-]{3,})"
        ),
        lambda m: m.group(1) + m.group(2) + _ph("INSURANCE_ID"),
        ("member", "insurance", "subscriber", "policy", "group", "medicaid", "medicare", "plan", "mbi", "hicn"),
    ),
    _Pattern(  # FHIR HumanName: "family": "Smith" / family="Smith"
        "NAME",
        _c(r"""()((?:["']family["']\s*:|\bfamily\s*=)\s*)(["'])([^"'\n]*)["']"""),
        _quoted_value("NAME"),
        ("family",),
    ),
    _Pattern(  # FHIR HumanName: "given": ["John", "Q"]
        "NAME",
        _c(r"""((?:["']given["']\s*:|\bgiven\s*=)\s*)\[([^\]\n]*)\]"""),
        _fhir_given,
        ("given",),
    ),
    _Pattern(  # quoted values under a name-only label: patient_name = "jane doe"
        "NAME",
        _c(r"(?i)(" + _B[1:-1] + r"|_)((?:" + _STRONG_NAME_LABELS + r")[\"']?\s*(?::|=|=>)\s*)([\"'])([^\"'\n]+)[\"']"),
        _quoted_value("NAME"),
        ("name", "patient", "surname", "guardian", "kin", "contact", "forename"),
    ),
    _Pattern(  # unquoted capitalised words under a name-only label: Patient: Jane Doe
        "NAME",
        _c(r"(?i)(" + _B[1:-1] + r"|_)((?:" + _STRONG_NAME_LABELS + r")[ \t]*(?::|=)[ \t]*)(?-i:(" + _PERSON + r"))"),
        _strong_name,
        ("name", "patient", "surname", "guardian", "kin", "contact", "forename"),
    ),
    _Pattern(  # quoted "name": "Jane Doe" (two capitalised words)
        "NAME",
        _c(r"(?i)(" + _B[1:-1] + r")((?:name|full_name|display_?name|text)[\"']?\s*(?::|=|=>)\s*)([\"'])([^\"'\n]+)[\"']"),
        _quoted_name_generic,
        ("name", "text"),
    ),
    _Pattern(  # name: Jane Doe
        "NAME",
        _c(r"(?i)(" + _B[1:-1] + r")((?:name)[ \t]*(?::|=)[ \t]*)(?-i:(" + _PERSON + r"))"),
        _generic_name,
        ("name",),
    ),
    _Pattern(
        "ADDRESS",  # labelled, quoted
        _c(r"(?i)(" + _B[1:-1] + r"|_)((?:" + _ADDRESS_LABELS + r")[\"']?\s*(?::|=|=>)\s*)([\"'])([^\"'\n]+)[\"']"),
        _quoted_value("ADDRESS", lambda v: _not_code(v) and _address_value(v)),
        ("addr",),
    ),
    _Pattern(
        "ADDRESS",  # labelled ZIP codes: zip=02139, "postalCode": "02139-4307"
        _c(r"(?i)(" + _B[1:-1] + r"|_)((?:zip|zip[ _\-]?code|postal[ _\-]?code|post[ _\-]?code)[\"']?\s*(?::|=|=>)\s*[\"']?)"
           r"(\d{5}(?:-\d{4})?)\b"),
        lambda m: m.group(1) + m.group(2) + _ph("ADDRESS"),
        ("zip", "postal", "postcode", "post_code", "post-code", "post code"),
    ),
    _Pattern(  # a salutation introduces a name: Mrs. Okafor, Mr John Smith
        "NAME",
        _c(r"\b((?:Mr|Mrs|Ms|Miss|Mx)\.?[ \t]+)(" + _NAME_WORD + r"(?:[ \t]+" + _NAME_WORD + r"){0,2})"),
        lambda m: m.group(0) if m.group(2).startswith(PLACEHOLDER_PREFIX) else m.group(1) + _ph("NAME"),
        ("mr", "ms", "miss", "mx"),
    ),
    # --- free-standing PHI -------------------------------------------------------
    _Pattern(  # Medicare Beneficiary Identifier: 1EG4-TE5-MK73 (a fixed letter/digit layout)
        "INSURANCE_ID",
        _c(r"\b[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y0-9]\d-?[AC-HJKMNP-RT-Y]{2}\d{2}\b"),
        _whole("INSURANCE_ID"),
    ),
    _Pattern(
        "ADDRESS",
        _c(
            r"\b\d{1,6}[ \t]+(?:[NSEW]\.?[ \t]+)?(?:[A-Z][a-z]+[ \t]+|\d{1,3}(?:st|nd|rd|th)[ \t]+){1,4}" + _STREET_TYPES
            + r"\b\.?(?:,?[ \t]+(?:Apt|Apartment|Suite|Ste|Unit|#)\.?[ \t]*#?[A-Za-z0-9\-]+)?"
        ),
        _whole("ADDRESS"),
    ),
    _Pattern("SSN", _c(r"\b\d{3}-\d{2}-\d{4}\b"), _whole("SSN")),
    _Pattern(
        "EMAIL",
        _c(r"\b[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b"),
        _whole("EMAIL"),
        ("@",),
    ),
    _Pattern(
        "PHONE",
        _c(
            r"(?:\+?\b1[ \t.\-]?)?(?:\(\d{3}\)[ \t.\-]?|\b\d{3}[ \t.\-])\d{3}[ \t.\-]\d{4}\b"
            r"|\+\d{1,3}[ \t.\-]\d{1,4}[ \t.\-]\d{3,4}[ \t.\-]\d{3,4}\b"
        ),
        _whole("PHONE"),
    ),
    _Pattern(
        "PHONE",  # labelled bare digits: phone=5551234567
        _c(r"(?i)(" + _B[1:-1] + r"|_)((?:phone|tel|telephone|mobile|cell|fax)(?:[ _\-]?(?:number|no|#))?" + _SEP_STRICT + r")"
           r"(\+?\d[\d \-.]{8,}\d)"),
        lambda m: m.group(1) + m.group(2) + _ph("PHONE"),
        ("phone", "tel", "mobile", "cell", "fax"),
    ),
)


def _pattern_set() -> Any:
    options = re2.Options()
    options.max_mem = 64 << 20
    patterns = re2.Set.SearchSet(options)
    for pattern in _PATTERNS:
        patterns.Add(pattern.regex.pattern)
    patterns.Compile()
    return patterns


# One pass that says which patterns match at all: a log line without PHI costs one scan instead of
# one per pattern. Used on short texts only, where the DFA cannot run out of its memory budget
# (RE2::Set reports "no match" when it does, which must never mean "nothing to redact").
_SET: list[Any] = []  # built on the first redact()
_SET_MAX_CHARS = 4096


def redact(text: str) -> str:
    """Replace PHI and secrets in `text` with typed placeholders such as `[REDACTED:SSN]`.

    Linear in the length of the text and idempotent. Use it on everything
    that leaves the core: log records, chat messages, LLM prompts, embeddings.
    """
    # A replacement can expose a match that its neighbour hid (`12345AKIA...` loses its digits and the
    # key gains a word boundary), so run to a fixed point; placeholders never match, so it comes fast.
    for _ in range(4):
        new = _redact_once(text)
        if new == text:
            break
        text = new
    return text


def _redact_once(text: str) -> str:
    if not text:
        return text
    if len(text) <= _SET_MAX_CHARS:
        if not _SET:
            _SET.append(_pattern_set())
        hits = _SET[0].Match(text)
        if not hits:
            return text
        for index in sorted(hits):
            text = _PATTERNS[index].regex.sub(_PATTERNS[index].replace, text)
        return text
    lowered = text.lower()
    for pattern in _PATTERNS:
        if pattern.keywords and not any(k in lowered for k in pattern.keywords):
            continue
        new = pattern.regex.sub(pattern.replace, text)
        if new != text:
            text = new
            lowered = text.lower()
    return text


# ---------------------------------------------------------------------------
# Structured data
# ---------------------------------------------------------------------------

_PHI_KEYS: dict[str, str] = {}
for _kind, _keys in {
    "NAME": (
        "name", "fullname", "firstname", "lastname", "middlename", "givenname", "familyname", "given", "family",
        "surname", "forename", "maidenname", "patientname", "displayname", "guardian", "guardianname", "nextofkin",
        "emergencycontact", "emergencycontactname", "mothersname", "fathersname", "subscribername", "insuredname",
    ),
    "SSN": ("ssn", "socialsecurity", "socialsecuritynumber", "sin", "nationalid", "taxid"),
    "DOB": ("dob", "dateofbirth", "birthdate", "birthday", "born"),
    "MRN": ("mrn", "medicalrecordnumber", "medicalrecord", "medicalrecordno", "patientid", "chartnumber", "identifier"),
    "ADDRESS": (
        "address", "streetaddress", "homeaddress", "mailingaddress", "postaladdress", "addressline1", "addressline2",
        "street", "city", "zip", "zipcode", "postalcode", "postcode",
    ),
    "PHONE": ("phone", "phonenumber", "telephone", "tel", "mobile", "cell", "cellphone", "fax", "homephone", "workphone"),
    "EMAIL": ("email", "emailaddress", "mail", "contactemail"),
    "INSURANCE_ID": (
        "memberid", "insuranceid", "insurancenumber", "subscriberid", "policynumber", "groupnumber", "medicaidid",
        "medicareid", "healthplanid", "mbi", "hicn",
    ),
    "SECRET": (
        "password", "passwd", "passphrase", "pwd", "secret", "clientsecret", "apikey", "accesskey", "secretkey",
        "token", "accesstoken", "refreshtoken", "idtoken", "authtoken", "authorization", "privatekey", "cookie",
        "setcookie", "signingsecret", "webhooksecret", "credentials", "awssecretaccesskey",
    ),
}.items():
    for _k in _keys:
        _PHI_KEYS[_k] = _kind


def _normalise_key(key: str) -> str:
    return "".join(c for c in key.lower() if c.isalnum())


def is_phi_key(key: str) -> str | None:
    """The placeholder kind for a key that names PHI or a secret (`birthDate` -> "DOB"), else None."""
    norm = _normalise_key(key)
    kind = _PHI_KEYS.get(norm)
    if kind is None and norm.startswith("patient") and norm != "patient":
        kind = _PHI_KEYS.get(norm[len("patient"):])
    return kind


def redact_obj(obj: Any) -> Any:
    """A copy of a JSON-like structure with values under PHI-looking keys replaced and every string redacted.

    A value under a key such as `ssn`, `birthDate` or `name` is replaced whole
    (even a nested FHIR `name: [{family, given}]`), because the key, not the
    value's shape, says it is PHI. Every other string goes through `redact`.
    """
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            kind = is_phi_key(key) if isinstance(key, str) else None
            if kind is not None and value is not None and not isinstance(value, bool) and value != "" and value != []:
                out[key] = _ph(kind)
            else:
                out[key] = redact_obj(value)
        return out
    if isinstance(obj, list):
        return [redact_obj(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact_obj(v) for v in obj)
    return obj
