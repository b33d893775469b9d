"""PHI written to logs, stdout and exception messages (PHI-LOG-001), and the sink/flow machinery it shares.

PHI-LOG-001 is a structural rule: a log call is found by a sink pattern, its
argument list is followed across lines with a bracket-balancing scan, and the
identifier chains inside are judged by the PHI vocabulary
(`patient.date_of_birth`, `p.getSsn()`, `patient.toString()`, a loop variable
over `cohort.patients`). A value that is only counted, hashed, redacted or a
surrogate token is not PHI. Test files are skipped: fixtures log fake people.

The same sink scan (`sink_hits`) and the lazily computed name bindings around
a line (`flow_at`) also judge what the PHI-output rules send to analytics,
chat and HTTP responses; those rules live in phi_output.py so that the log
rule, the hottest one, can be tuned for speed on its own, and the output rules
for recall on theirs, without the two edits meeting in one file.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from assistant.review import re2fast as re2

from assistant.diffs import DiffLine
from assistant.review.base import Hit, Rule
from assistant.review.context import FileContext
from assistant.review.dataflow import (
    IDENTIFIER_RE,
    SERIALIZE_LINE_PATTERN,
    BindIndex,
    Bindings,
    HunkFlow,
    bind_index,
    bindings,
    flow_of,
    may_name_record,
    record_words_pattern,
)
from assistant.review.dataflow import _assignment_head
from assistant.review.lexing import balanced_span, chains, line_at, mask
from assistant.review.phiexpr import _SAFE_CALL_RE, _enclosing_call, may_yield, phi_chains
from assistant.review.vocabulary import split_words

CODE = frozenset({"python", "java", "kotlin", "javascript", "typescript", "go", "csharp", "ruby", "php"})
# Languages whose double-quoted strings interpolate a bare `$name` (`"merged $duplicate"`).
DOLLAR_TEMPLATES = frozenset({"kotlin", "php", "groovy"})

_LOG_SINK_RE = re2.compile(
    r"(?:\bLog\s*\.\s*[dievw]\s*\(|\bTimber\s*\.\s*[dievw]\s*\()|"
    r"(?i:\b[\w.]*log(?:ger)?\w*(?:\(\s*\))?\s*(?:\?\.|\.|->|::)\s*"
    r"(?:info|debug|warn|warning|error|exception|critical|fatal|trace|log|verbose|notice|msg|printf?|println|"
    r"infof|debugf|errorf|warnf|fatalf|tracef|infow|debugw|errorw|warnw|information|log\w+|with\w*|add|child|bind)\s*(?:\(|\{)|"
    r"(?:^|[^\w.])print(?:ln)?\s*\(|\bconsole\s*\.\s*(?:log|info|warn|error|debug|trace|dir)\s*\(|"
    r"\bSystem\s*\.\s*(?:out|err)\s*\.\s*(?:print|println|printf|format)\s*\(|"
    r"\bfmt\s*\.\s*(?:Print|Println|Printf)\s*\(|\bfmt\s*\.\s*Fprint(?:f|ln)?\s*\(\s*os\s*\.\s*Std(?:err|out)|"
    r"\bConsole\s*\.\s*(?:Error\s*\.\s*)?Write(?:Line)?\s*\(|\bDebug\s*\.\s*(?:WriteLine|Print)\s*\(|"
    r"\bTrace\s*\.\s*(?:WriteLine|TraceInformation|TraceError)\s*\(|\bslog\s*\.\s*\w+\s*\(|"
    r"\b(?:sys|self|process)\s*\.\s*(?:stdout|stderr)\s*\.\s*write\s*\(|\bwarnings\s*\.\s*warn\s*\(|\bclick\s*\.\s*echo\s*\(|"
    r"\bputs\s*\(|\berror_log\s*\(|\bprintStackTrace|(?:^|[^\w.])p?pprint\s*\(|\bconsole\s*\.\s*table\s*\(|"
    r"\bvar_dump\s*\(|\bprint_r\s*\(|\bDebug\s*\.\s*Log\w*\s*\(|"
    r"\braise\s+[\w.]*[A-Z]\w*\s*\(|\bthrow\s+new\s+[\w.]*[A-Z]\w*\s*\(|\bthrow\s+[\w.]*[A-Z]\w*(?:Exception|Error)\s*\(|\bnew\s+[\w.]*[A-Z]\w*(?:Exception|Error)\s*\(|"
    r"\bnew\s+Error\s*\(|\berrors\s*\.\s*New\s*\(|\bfmt\s*\.\s*Errorf\s*\(|\bpanic\s*\()"
)
_LOG_KEYWORDS = ("log", "print", "console", "system.", "fmt.", "write", "warn", "echo", "puts", "raise", "throw",
                 "error", "panic", "trace")

_REG_LOG = ("HIPAA 164.312(b)", "HIPAA 164.502(b)")


def sink_hits(
    ctx: FileContext,
    sink: object,
    keywords: tuple[str, ...],
    what: str,
    *,
    exclude_terms: frozenset[str] = frozenset(),
    require: object | None = None,
) -> Iterator[Hit]:
    """Hits for PHI expressions passed (directly or through a PHI-holding name) to calls matching `sink`."""
    hints = ctx.phi_hint_lines
    if not hints:
        return
    dollars = ctx.language in DOLLAR_TEMPLATES
    for ln in ctx.scan(sink.pattern, added_only=False, lower=False):  # type: ignore[attr-defined]
        where = ctx.position(ln.new_no or 0)
        hunk = ctx.hunk_of(ln.new_no or 0)
        if where is None or hunk is None:
            continue
        post, i = where
        flow = flow_at(ctx, hunk, post, i)
        if True:
            for n_sink, m in enumerate(sink.finditer(ln.text)):  # type: ignore[attr-defined]
                if n_sink >= _MAX_SINKS_PER_LINE:
                    break
                open_col = m.end() - 1
                if ln.text[open_col] != "{":  # a Kotlin logger's lambda (`logger.info { "..." }`) opens with `{`
                    open_col = ln.text.find("(", open_col)
                    if open_col < 0:
                        open_col = m.end() - 1
                span, starts = balanced_span(post, i, open_col, max_lines=12)
                if span.replace(" ", "") in ("()", "(") and i < len(post):
                    # a fluent logger (`log.Info().Str("ssn", p.SSN).Msg(...)`): the values follow the call
                    span, starts = _fluent_span(post, i, open_col)
                span_lines = post[i: i + len(starts)]
                masked = mask(span, dollars)
                names = set(IDENTIFIER_RE.findall(masked.masked))
                # Four filters, the costly one (the bindings around the line) last: the span must show a
                # PHI hint or a bound name, an added line or a name bound on one, pass `require`, and
                # hold a PHI expression.
                hint_span = any(s.new_no in hints for s in span_lines)
                added_span = any(s.kind == "+" for s in span_lines)
                if (not hint_span or not added_span) and not flow.may_bind(names):
                    continue
                if not may_yield(masked, ctx.vocabulary, names, flow.may_bind):
                    continue
                if require is not None and not require(ctx, post, i, span):  # type: ignore[operator]
                    continue
                results = list(phi_chains(span, ctx.vocabulary, flow.record_vars, flow.phi_vars, pre=(masked, None)))
                if not results:
                    continue
                if not hint_span and not flow.binds_any(names):
                    continue
                if not added_span and not any(
                    n in flow.phi_vars and any(ctx.new_line(x) and ctx.new_line(x).kind == "+" for x in flow.phi_lines(n))  # type: ignore[union-attr]
                    for n in names
                ):
                    continue
                found = False
                for offset, desc in results:
                    if desc in exclude_terms:
                        continue
                    idx = i + line_at(starts, offset)
                    target = post[min(idx, len(post) - 1)]
                    lines = [target.new_no] if target.kind == "+" else []
                    if not lines and desc.endswith("(holds PHI)"):
                        # The finding sits on the call's PHI argument; only when that line is not part of the
                        # change does it go to the added lines that bound the name.
                        name = desc.split(" ", 1)[0]
                        lines = [n for n in flow.phi_lines(name) if (nl := ctx.new_line(n)) and nl.kind == "+"]
                    if not lines:
                        first_added = next((s for s in span_lines if s.kind == "+"), None)
                        lines = [first_added.new_no] if first_added else []
                    for number in lines:
                        if number is not None:
                            found = True
                            yield Hit(number, f"{what}: `{desc}` reaches it. " + _fix(what))
                if found:
                    break


_FLOW_BLOCK = 40
_MAX_SINKS_PER_LINE = 20  # minified code can hold thousands; the first ones show the pattern


def flow_at(ctx: FileContext, hunk: object, post: list[DiffLine], i: int = 0) -> _Window:
    """Bindings visible at post[i]: computed over the 40-80 lines above it (and a few below), not the
    whole hunk, so a new 5,000-line file costs a window per sink rather than a full pass per file.
    Computed only when a question about a name could be answered yes (see `_Window`); one window per
    block of lines, shared by every sink in it."""
    block = i // _FLOW_BLOCK
    return ctx.memo(("phi-window", id(hunk), block), lambda: _Window(ctx, hunk, post, block))


class _Window:
    """The names bound to records and PHI values around one line, asked about lazily.

    Most sinks never need the bindings: no name in their arguments can be bound on any line of the
    window's blocks. Each block keeps a `BindIndex` (its record names, and for every name the lines
    that could assign it), so "may `x` be bound here?" is a dict lookup and at most an analysis of
    the lines assigning `x`; `record_vars` and `phi_vars` answer `name in ...` that way first and run
    the flow analysis (`bindings`, `flow_of`) only when it says maybe. Every answer is the one the full
    analysis gives.
    """

    __slots__ = ("_ctx", "_hunk", "_post", "_blocks", "_indexes", "_flow", "record_vars", "phi_vars")

    def __init__(self, ctx: FileContext, hunk: object, post: list[DiffLine], block: int) -> None:
        self._ctx = ctx
        self._hunk = hunk
        self._post = post
        self._blocks = [b for b in (block - 1, block, block + 1) if b >= 0 and b * _FLOW_BLOCK < len(post)]
        self._indexes: list[BindIndex] | None = None
        self._flow: HunkFlow | None = None
        self.record_vars = _Names(self, record=True)
        self.phi_vars = _Names(self, record=False)

    def _index(self, b: int) -> BindIndex:
        ctx, hunk, post = self._ctx, self._hunk, self._post
        return ctx.memo(("phi-index", id(hunk), b), lambda: bind_index(  # type: ignore[no-any-return]
            hunk, ctx.vocabulary, post, _flow_hints(ctx), b * _FLOW_BLOCK, (b + 1) * _FLOW_BLOCK,  # type: ignore[arg-type]
            record_lines=ctx.lines_matching(record_words_pattern(ctx.vocabulary))))

    def _bindings(self, b: int) -> Bindings:
        ctx, hunk, post = self._ctx, self._hunk, self._post
        return ctx.memo(("phi-bind", id(hunk), b), lambda: bindings(  # type: ignore[no-any-return]
            hunk, ctx.vocabulary, post, _flow_hints(ctx), b * _FLOW_BLOCK, (b + 1) * _FLOW_BLOCK,  # type: ignore[arg-type]
            record_lines=ctx.lines_matching(record_words_pattern(ctx.vocabulary)),
            record_vars=self._index(b).record_vars))

    @property
    def indexes(self) -> list[BindIndex]:
        if self._indexes is None:
            self._indexes = [self._index(b) for b in self._blocks]
        return self._indexes

    def maybe(self, name: str) -> bool:
        """False when `name` cannot be bound here, from the indexes' name sets alone; True when it might be."""
        return any(name in index.names for index in self.indexes)

    def may_bind_one(self, name: str) -> bool:
        """Whether `name` may be bound to a record or a PHI value here (no: it is not; yes: ask `flow`)."""
        post, vocab = self._post, self._ctx.vocabulary
        return any(name in index.names and index.may_bind(name, post, vocab) for index in self.indexes)

    def may_bind(self, names: set[str]) -> bool:
        """`may_bind_one` of any of `names`."""
        post, vocab = self._post, self._ctx.vocabulary
        for index in self.indexes:
            common = index.names.intersection(names)
            if common and any(index.may_bind(n, post, vocab) for n in common):
                return True
        return False

    def flow(self) -> HunkFlow:
        if self._flow is None:
            ctx, hunk, post = self._ctx, self._hunk, self._post
            parts = [
                ctx.memo(("phi-flow", id(hunk), b), lambda b=b: flow_of(  # type: ignore[misc]
                    self._bindings(b), ctx.vocabulary, post))
                for b in self._blocks
            ]
            if len(parts) == 1:
                self._flow = parts[0]
            else:
                merged = HunkFlow()
                for part in parts:
                    merged.record_vars |= part.record_vars
                    for name, lines in part.phi_vars.items():
                        merged.phi_vars.setdefault(name, []).extend(lines)
                self._flow = merged
        return self._flow

    def binds_any(self, names: set[str]) -> bool:
        """Whether any of `names` holds a record or a PHI value here."""
        if not self.may_bind(names):
            return False
        flow = self.flow()
        return bool((flow.phi_vars or flow.record_vars) and names & (flow.phi_vars.keys() | flow.record_vars))

    def phi_lines(self, name: str) -> list[int]:
        """New-file lines holding the PHI that `name` was bound to (empty when it holds none)."""
        if not self.may_bind_one(name):
            return []
        return self.flow().phi_vars.get(name, [])


def _flow_hints(ctx: FileContext) -> frozenset[int]:
    """The lines the bindings read: those that may mention PHI, and those serializing a name whole
    (`body, _ := json.Marshal(msg)` carries what `msg` holds without a PHI word of its own)."""
    return ctx.memo(("phi-flow-hints",), lambda: _with_serializations(ctx))


_SERIALIZE_WORDS = (b"marshal", b"dumps", b"stringify", b"jsonify", b"newreader", b"newbuffer", b"writevalueas",
                    b"serialize")


def _with_serializations(ctx: FileContext) -> frozenset[int]:
    low = ctx.post_bytes_lower
    if low is not None and not any(w in low for w in _SERIALIZE_WORDS):
        return ctx.phi_hint_lines  # no serializer call in the file (a substring test, not a regex pass)
    return ctx.phi_hint_lines | ctx.lines_matching(SERIALIZE_LINE_PATTERN)


class _Names:
    """`name in window.record_vars` / `name in window.phi_vars`, without the analysis when it cannot be."""

    __slots__ = ("_window", "_record")

    def __init__(self, window: _Window, *, record: bool) -> None:
        self._window = window
        self._record = record

    def maybe(self, name: str) -> bool:
        """False when `name` cannot be bound here (no analysis needed); True when it might be."""
        return self._window.maybe(name)

    def __contains__(self, name: object) -> bool:
        window = self._window
        if not isinstance(name, str) or not window.may_bind_one(name):
            return False
        flow = window.flow()
        return name in (flow.record_vars if self._record else flow.phi_vars)


def _fluent_span(post: list[DiffLine], i: int, col: int) -> tuple[str, list[int]]:
    parts = [post[i].text[col: col + 600]]
    starts = [0]
    pos = len(parts[0]) + 1
    for k in range(i + 1, min(len(post), i + 7)):
        text = post[k].text
        if not text.lstrip().startswith("."):
            break
        starts.append(pos)
        parts.append(text[:600])
        pos += len(parts[-1]) + 1
    return "\n".join(parts), starts


def _fix(what: str) -> str:
    if what.startswith("Log"):
        return ("Log a surrogate (patient id token, encounter ref) instead of PHI, or pass the value through "
                "the PHI redactor; logs are retained and widely readable.")
    return ("Send only the minimum necessary: an opaque id or de-identified value, never names, identifiers, "
            "dates of birth or diagnoses.")


# Exceptions that a web framework turns into the HTTP response (FastAPI/Starlette/Werkzeug/NestJS/Spring):
# their message is an output (PHI-OUT-003), not a log line.
_HTTP_EXCEPTION_RE = re2.compile(
    r"\b(?:raise|new)\s+[\w.]*(?:HTTPException|HttpException|ResponseStatusException|HttpResponseException|"
    r"WebApplicationException|HttpError|"
    # NestJS's built-in HTTP exceptions (and JAX-RS's of the same names): the message is the response body
    r"(?:NotFound|BadRequest|Conflict|Forbidden|Unauthorized|UnprocessableEntity|InternalServerError|Gone|"
    r"NotAcceptable|PayloadTooLarge|ServiceUnavailable|MethodNotAllowed|PreconditionFailed|RequestTimeout|"
    r"UnsupportedMediaType|BadGateway|GatewayTimeout|NotAuthorized)Exception)\s*\("
)


# An audit trail's own API (`auditLogger.log(AuditAction.VIEW_CHART, user.getId(), patient.getMrn())`): an audit
# record must identify the patient; it is not an application log.
_AUDIT_SINK_RE = re2.compile(r"(?i)\baudit\w*\s*(?:\?\.|\.|->|::)\s*\w+\s*\(")


# An error handed to an error tracker (`sentry.CaptureException(fmt.Errorf(...))`): an output (PHI-OUT), not a log.
_ERROR_TRACKER_RE = re2.compile(r"(?i)\bcapture_?exception\s*\(|\bsentry\s*\.|\bbugsnag\s*\.\s*notify|\brollbar\s*\.")


def _not_http_exception(ctx: FileContext, post: list[DiffLine], i: int, span: str) -> bool:
    text = post[i].text
    return (_HTTP_EXCEPTION_RE.search(text) is None and ("udit" not in text or _AUDIT_SINK_RE.search(text) is None)
            and _ERROR_TRACKER_RE.search(text) is None)


# Configuration that makes a framework log the values bound into SQL or the bodies of requests: every
# patient field the application stores or receives goes to the log (Hibernate's binder at TRACE, Spring's
# request details, EF Core's sensitive data logging, Sequelize's query parameters, Postgres log_statement=all).
_CONFIG_LOGGING_PATTERN = (
    r"(?i:org\.hibernate\.(?:type|orm\.jdbc\.bind)[\w.]*[\"']?(?:\s*[:=]|\s+level\s*=)\s*[\"']?trace\b|"
    r"log-request-details[\"']?\s*[:=]\s*[\"']?true|logQueryParameters[\"']?\s*[:=]\s*true|"
    r"\blog_statement[\"']?\s*[:=]\s*[\"']?all\b|"
    r"django\.db\.backends[\"']\s*:\s*\{[^}]*[\"']level[\"']\s*:\s*[\"']debug)|"
    r"\bEnableSensitiveDataLogging\s*\(\s*(?:true)?\s*\)|\bsetIncludePayload\s*\(\s*true\s*\)"
)
_CONFIG_WORDS = (b"hibernate", b"log-request-details", b"logqueryparameters", b"log_statement", b"django.db.backends",
                 b"enablesensitivedatalogging", b"setincludepayload")
_LOCAL_PROFILE_RE = re2.compile(
    r"(?i)(?:^|[/_.-])(?:local|dev|development|test|tests|testing|example|sample|docker-compose)(?:[/_.-]|$)"
)
_DEV_GUARD_RE = re2.compile(r"(?i)IsDevelopment|isDev\b|DEBUG\b|Environments\.Development")


def _config_logging(ctx: FileContext) -> Iterator[Hit]:
    """Framework settings that log every bound SQL value or request body, outside local/dev/test profiles."""
    if _LOCAL_PROFILE_RE.search(ctx.path):
        return
    low = ctx.post_bytes_lower
    if low is not None and not any(w in low for w in _CONFIG_WORDS):
        return  # a substring test per word (C speed) spares the regex pass over most files
    for ln in ctx.scan(_CONFIG_LOGGING_PATTERN, lower=False):
        no = ln.new_no or 0
        if "EnableSensitiveDataLogging" in ln.text and any(
                _DEV_GUARD_RE.search(x.text) for x in ctx.neighbours(no, 3, 0)):
            continue  # `if (env.IsDevelopment()) options.EnableSensitiveDataLogging();`
        yield Hit(no, "This setting logs every value bound into SQL or every request body, i.e. patient data, "
                  "outside a local profile. Keep it to local/dev profiles.")


def _check_logs(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test:
        return
    configured = list(_config_logging(ctx))
    yield from configured
    if ctx.language not in CODE:
        return
    seen: set[int] = {h.line for h in configured}
    for hit in sink_hits(ctx, _LOG_SINK_RE, _LOG_KEYWORDS, "Log/print/exception message carries PHI",
                          require=_not_http_exception):
        seen.add(hit.line)
        yield hit
    for h in _request_body_logs(ctx):
        if h.line not in seen:
            seen.add(h.line)
            yield h
    for h in _record_dumps(ctx):
        if h.line not in seen:
            seen.add(h.line)
            yield h
    for h in _frame_dumps(ctx):
        if h.line not in seen:
            seen.add(h.line)
            yield h
    yield from (h for h in _whole_values(ctx) if h.line not in seen)


# Rows of a data frame or result set written out: `df.head(20).to_string()`, `df.sample(5)`, `print(df)`.
_FRAME_DUMP_RE = re2.compile(
    r"\b([A-Za-z_]\w*)\s*\.\s*(?:head|tail|sample)\s*\([^)]*\)|\b([A-Za-z_]\w*)\s*\.\s*to_(?:string|markdown)\s*\("
)
_FRAME_WORDS = (".head(", ".tail(", ".sample(", ".to_string(", ".to_markdown(")


def _frame_dumps(ctx: FileContext) -> Iterator[Hit]:
    """A data frame's rows logged where the frame holds patients (the code around says cohort, patients...)."""
    if ctx.language != "python":
        return
    for ln in ctx.scan(_LOG_SINK_RE.pattern, lower=False):
        if not any(w in ln.text for w in _FRAME_WORDS):
            continue
        m = _FRAME_DUMP_RE.search(ln.text)
        if m is None:
            continue
        around = " ".join(x.text for x in ctx.neighbours(ln.new_no or 0, 10, 3))
        if _PATIENT_CONTEXT_RE.search(ctx.path + " " + ctx.enclosing_header(ln.new_no or 0) + " " + around):
            yield Hit(ln.new_no or 1, f"Log/print writes rows of `{m.group(1) or m.group(2)}` (patient data) whole. "
                      "Log counts or ids, not the rows.")


# `%+v`/`%#v`/`JSON.stringify(x)`/`repr(x)`: every field of `x` is written out.
_DUMP_RE = re2.compile(
    r"%(?:[+#]?v|r)[^\"]*\"\s*,\s*([^)]*)|\bJSON\s*\.\s*stringify\s*\(\s*([A-Za-z_]\w*)\s*[,)]|"
    r"\b(?:repr|vars)\s*\(\s*([A-Za-z_]\w*)\s*\)|\b([A-Za-z_]\w*)\s*\.\s*__dict__\b|"
    r"\b(?:JsonSerializer\s*\.\s*Serialize|JsonConvert\s*\.\s*SerializeObject|json\s*\.\s*dumps|json\s*\.\s*Marshal|"
    r"writeValueAsString|toJson)\s*\(\s*([A-Za-z_]\w*)\s*[,)]"
)
# Names code gives to "the record at hand" without saying what it is.
_GENERIC_RECORD_NAMES = frozenset({
    "rec", "record", "row", "entity", "obj", "item", "doc", "in", "input", "payload", "dto", "model", "p", "r",
    "result", "res", "body", "data", "entry", "m", "v", "x", "e", "u", "form", "submission", "message", "msg",
    "bundle", "resource",
})
# A name that says it is a clinical record (`claim`, `encounter`, `referral`), dumped whole by `%r`/`%+v`/
# `JSON.stringify(...)`: not `claim_id`, `claims_count`, `encounterType`.
_CLINICAL_NAME_RE = re2.compile(
    r"^(?:[a-z]+_)?(?:patient|claim|encounter|referral|prescription|admission|intake|enrollee|member|chart)$|"
    r"^[a-z]+(?:Patient|Claim|Encounter|Referral|Prescription|Admission|Intake|Enrollee|Member|Chart)$"
)
# FHIR resource types that hold a patient's data (a `Bundle` of them too).
_FHIR_TYPE_RE = re2.compile(
    r"^(?:fhir\w*\.)?(?:Bundle|Patient|Observation|Condition|Encounter|MedicationRequest|MedicationStatement|"
    r"AllergyIntolerance|DiagnosticReport|Procedure|Immunization|Coverage|Claim|ExplanationOfBenefit|"
    r"DocumentReference|CarePlan|RelatedPerson|QuestionnaireResponse|ServiceRequest)$"
)


def _record_dumps(ctx: FileContext) -> Iterator[Hit]:
    """A generic-named value (`rec`, `row`, `dto`) dumped whole by a log call where the code around it is
    building or handling a patient record: the hunk's function takes a patient type, or the lines just above
    fill PHI fields. The binding itself may lie outside the hunk."""
    hints = ctx.phi_hint_lines
    vocab = ctx.vocabulary
    for ln in ctx.scan(_LOG_SINK_RE.pattern, lower=False):
        m = _DUMP_RE.search(ln.text)
        if m is None:
            continue
        args = m.group(1)
        names = [a.strip().lstrip("&*") for a in args.split(",")] if args is not None else [
            next(g for g in m.groups()[1:] if g)]
        clinical = [n for n in names if _CLINICAL_NAME_RE.search(n)]
        if clinical:
            # `log.exception("rejected claim %r", claim)`: the name says what it holds
            yield Hit(ln.new_no or 1, f"Log/print dumps the whole record `{clinical[0]}` (every PHI field in it). "
                      "Log its id and the fields you need, redacted.")
            continue
        above = ctx.neighbours(ln.new_no or 0, 10, 0)[:-1]
        header = ctx.enclosing_header(ln.new_no or 0)
        # Go's %v prints any value: with no %+v/%#v/%r beside it, only a name declared with a record type counts
        plain_v = m.group(1) is not None and not any(v in m.group(0) for v in ("%+v", "%#v", "%r"))
        typed_names = [n for n in names if n.isidentifier() and _typed_as_record(n, above + [ln], header, vocab)]
        if typed_names:
            yield Hit(ln.new_no or 1, f"Log/print dumps the whole record `{typed_names[0]}` (every PHI field in it). "
                      "Log its id and the fields you need, redacted.")
            continue
        if plain_v:
            continue
        names = [n for n in names if n in _GENERIC_RECORD_NAMES or (
            not plain_v and n.isidentifier() and split_words(n)[-1:] in (["payload"], ["body"]))]
        if not names:
            continue
        typed = any(vocab.is_record(t) for t in re2.findall(r"\b[A-Z][A-Za-z0-9]*", header)) or (
            # `def build_newrx(patient, med, prescriber)`: the function is handed the patient itself
            "(" in header and any(vocab.is_record(t) for t in IDENTIFIER_RE.findall(header.split("(", 1)[1])))
        if not typed:
            # the value's declared type, where the diff shows it: `HandleAsync(IntakeForm form)`
            decl = re2.compile(r"\b([A-Z]\w*)\s*[?*]?\s+\*?" + re2.escape(names[0]) + r"\b")
            # ... or annotated after it: `create(dto: CreateReferralDto)`, `form: IntakeForm`
            annot = re2.compile(r"\b" + re2.escape(names[0]) + r"\s*[?!]?\s*:\s*\*?([A-Z]\w*)")
            # ... or Go's name-then-type parameter: `Upsert(ctx context.Context, p Patient)`
            go_param = re2.compile(r"[(,]\s*" + re2.escape(names[0]) + r"\s+\*?(?:\w+\.)?([A-Z]\w*)\s*[,)]")
            for x in above + [ln]:
                t = (decl.search(x.text) or decl.search(header) or annot.search(x.text) or annot.search(header)
                     or go_param.search(x.text) or go_param.search(header))
                if t is not None and (vocab.is_record(t.group(1)) or _PATIENT_CONTEXT_RE.search(t.group(1))
                                      or _FHIR_TYPE_RE.search(t.group(1))):
                    typed = True
                    break
        filled = sum(1 for x in above if x.new_no in hints and re2.search(r"^\s*\w+\s*:", x.text)) >= 2
        if typed or filled:
            yield Hit(ln.new_no or 1, f"Log/print dumps the whole record `{names[0]}` (every PHI field in it). "
                      "Log its id and the fields you need, redacted.")


def _typed_as_record(name: str, lines: list[DiffLine], header: str, vocab: object) -> bool:
    """Whether the diff declares `name` with a patient/clinical/FHIR type (`c Claim`, `dto: CreateReferralDto`)."""
    decl = re2.compile(r"\b([A-Z]\w*)\s*[?*]?\s+\*?" + re2.escape(name) + r"\b")
    annot = re2.compile(r"\b" + re2.escape(name) + r"\s*[?!]?\s*:\s*\*?([A-Z]\w*)")
    go_param = re2.compile(r"[(,]\s*" + re2.escape(name) + r"\s+\*?(?:\w+\.)?([A-Z]\w*)\s*[,)]")
    for text in [header] + [x.text for x in lines]:
        if name not in text:
            continue
        for regex in (decl, annot, go_param):
            t = regex.search(text)
            if t is not None and (vocab.is_record(t.group(1)) or _PATIENT_CONTEXT_RE.search(t.group(1))  # type: ignore[attr-defined]
                                  or _FHIR_TYPE_RE.search(t.group(1))):
                return True
    return False


_REQUEST_BODY_RE = re2.compile(
    r"\b(?:(?:req|request|ctx\.request|event)\s*\.\s*(?:body|json|data|form|POST|get_json\s*\(\s*\)|payload)|"
    r"\w*form\s*\.\s*cleaned_data|\w*serializer\s*\.\s*validated_data)\b(?:\s*\))?\s*[,)]"
)
_PATIENT_CONTEXT_RE = re2.compile(
    r"(?i)patient|member|fhir|ehr|chart|intake|admission|encounter|enrollee|claim|referral|prescription|discharge|"
    r"registration|cohort|readmission"
)


def _request_body_logs(ctx: FileContext) -> Iterator[Hit]:
    """A whole request body logged by a handler of patient data: every field of the submitted record."""
    for ln in ctx.scan(_LOG_SINK_RE.pattern, lower=False):
        if _REQUEST_BODY_RE.search(ln.text) is None:
            continue
        context = ctx.path + " " + ctx.enclosing_header(ln.new_no or 0) + " " + " ".join(
            x.text for x in ctx.neighbours(ln.new_no or 0, 8, 3))
        if _PATIENT_CONTEXT_RE.search(context):
            yield Hit(ln.new_no or 1, "The whole request body of a patient-data endpoint is logged, with every PHI "
                      "field in it. Log the request id and the fields you need, redacted.")


# Where a name gets a whole record or a whole payload rather than one field: the body of a response or request,
# a parsed JSON document, a `SELECT *` row, a fetched row.
_PAYLOAD_SOURCE_RE = re2.compile(
    r"\.\s*json\s*\(\s*\)|\bjson\s*\.\s*loads\s*\(|\bJSON\s*\.\s*parse\s*\(|\bReadToEnd(?:Async)?\s*\(|"
    r"\b(?:io|ioutil)\s*\.\s*ReadAll\s*\(|\.\s*get_data\s*\(|\bGetRawData\s*\(|\brawBody\b|"
    r"\b(?:request|req)\s*\.\s*body\s*\(\s*\)|\.\s*text\s*\(\s*\)|"
    r"\brequest\s*\.\s*(?:get_json\s*\(|json\b|data\b|form\b|POST\b|values\b)|\breq\s*\.\s*body\b|"
    r"\.\s*(?:fetchone|fetchall|fetchrow|fetchmany|fetch_one|fetch_all|one_or_none|first_or_404)\s*\(|"
    r"(?i:\bselect\s+\*\s+from\b)"
)
# A call that loads records through a repository-like receiver: `repo.get(id)`, `s.patients.Get(ctx, id)`.
_REPO_CALL_RE = re2.compile(
    r"^\s*(?:await\s+)?(?:[A-Za-z_]\w*\s*(?:\.|->)\s*){0,3}?([A-Za-z_]\w*)\s*(?:\.|->)\s*"
    r"((?:get|find|load|fetch|read|lookup|first|single|Get|Find|Load|Fetch|Read|Lookup|First|Single)\w*)\s*\("
)
# The lines that may bind such a value (one pass per file finds them).
_SOURCE_LINE_PATTERN = (
    r"=\s*(?:await\s+)?(?:[\w$]+\s*(?:\.|->)\s*){0,2}"
    r"(?:get|find|load|fetch|read|lookup|first|single|Get|Find|Load|Fetch|Read|Lookup|First|Single)\w*\s*\(|"
    + _PAYLOAD_SOURCE_RE.pattern
)
# Structured-logging fields that serialize a whole value (zerolog/zap/slog/logrus), Serilog's `{@X}`
# destructuring, and keyword fields named for a record (`patient=p`).
_WHOLE_FIELD_PATTERN = (
    r"(?:Interface|Any|Reflect|Object|WithField|Dict|Inline)\s*\(\s*\"|\{@|"
    r"(?i:patient|member|subscriber|enrollee|beneficiary|resident|claimant|record)\w*\s*=\s*[A-Za-z_]\w*\s*[,)]"
)
_WHOLE_FIELD_RE = re2.compile(_WHOLE_FIELD_PATTERN)
_WHOLE_ANY_PATTERN = _SOURCE_LINE_PATTERN + "|" + _WHOLE_FIELD_PATTERN  # type: ignore[assignment]
_WHOLE_FIELD_CALL_RE = re2.compile(r"(?:Interface|Any|Reflect|Object|WithField|Dict|Inline)\s*\(\s*$")
_FIELD_VALUE_RE = re2.compile(r"^\s*,\s*&?([A-Za-z_]\w*)\s*\)")
_KWARG_RE = re2.compile(r"\b([A-Za-z_]\w*)\s*=\s*([A-Za-z_]\w*)\s*[,)]")
# HL7 v2 files: a raw message holds the PID segment (name, DOB, address, SSN).
_HL7_PATTERN = r"(?i:\bhl7|\bMSH\b|\bPID\b|\bADT\b|segment\s*\(|\ber7\b)"
_HL7_PATH_RE = re2.compile(r"(?i)hl7|(?:^|/)adt|mllp")
_MESSAGE_WORDS = frozenset({"msg", "message", "hl7", "hl7msg", "hl7message", "rawmessage", "raw", "er7", "adt",
                            "adtmessage", "inbound", "rawhl7"})
_SERIALIZE_METHODS = frozenset({"log", "tostring", "to_string", "encode", "to_er7", "toer7", "serialize", "raw",
                                "dump", "dumps", "str"})
_ERROR_HEADS = frozenset({"err", "e", "error", "ex", "exc", "exception", "ctx", "context"})
_MIDDLEWARE_RE = re2.compile(
    r"(?i)middleware|\bInvokeAsync\s*\(\s*HttpContext|\bapp\s*\.\s*use\s*\(|http\s*\.\s*Handler\b|"
    r"OncePerRequestFilter|\bdoFilter\s*\(|HandlerInterceptor|before_request|after_request|@app\s*\.\s*middleware"
)
_NOT_A_RECORD_LOAD = frozenset({"count", "ids", "exists", "total", "size", "status", "version", "config", "setting",
                                "settings", "token", "flag", "enabled"})


def _whole_values(ctx: FileContext) -> Iterator[Hit]:
    """A log call that writes a whole record or payload held by a name whose binding shows what it is.

    The name tells nothing (`duplicate`, `resource`, `rows[0]`, `body`); the line that binds it does: a
    record loaded through a patient repository (`repo: PatientRepository`, `s.patients.Get(...)`), the JSON
    of a patient API response, a request body read in a patient handler or a middleware (every request),
    a `SELECT *` row of a patient query. Also the fields that serialize their value whole (zerolog
    `.Interface("patient", p)`, `zap.Any`, Serilog `{@Patient}`, `patient=p`) and a raw HL7 message.

    Cheap gates first: a sink is read only when a line just above assigns one of the names on it, when
    its text has such a field, or when it names a message in an HL7 file."""
    sinks = ctx.scan(_LOG_SINK_RE.pattern, lower=False)
    if not sinks:
        return
    hl7: bool | None = None
    dollars = ctx.language in DOLLAR_TEMPLATES
    memo: dict[int, frozenset[str]] = {}
    kwargs = ctx.language in ("python", "ruby", "kotlin")  # `patient=p` is a keyword field there
    # One pass finds the lines that may bind a whole value or hold a whole-value field; which of the two
    # a line is gets asked only of the few near a sink.
    candidates = ctx.lines_matching(_WHOLE_ANY_PATTERN)
    cand_nos = sorted(candidates)
    for ln in sinks:
        no = ln.new_no or 0
        k = bisect.bisect_left(cand_nos, no - 15)
        if k >= len(cand_nos) or cand_nos[k] > no + 3:
            near = fields = False
        else:
            near = cand_nos[k] < no
            fields = any(n in candidates for n in range(no, no + 4))
        if not near and not fields:
            low = ln.text.lower()
            if not any(w in low for w in ("msg", "message", "hl7", "raw", "er7", "adt")):
                continue
            if hl7 is None:
                hl7 = bool(_HL7_PATH_RE.search(ctx.path)) or bool(ctx.lines_matching(_HL7_PATTERN))
            if not hl7:
                continue
        where = ctx.position(no)
        if where is None:
            continue
        post, i = where
        text = "\n".join(x.text for x in post[i: i + 4])
        if near:
            near = _assigned_above(post, i, text, candidates, memo)
        if fields:
            fields = _may_have_whole_field(text, ctx.vocabulary, kwargs)
        if not near and not fields:
            if hl7 is None:
                hl7 = bool(_HL7_PATH_RE.search(ctx.path)) or bool(ctx.lines_matching(_HL7_PATTERN))
            if not hl7:
                continue
        elif hl7 is None and ("msg" in text.lower() or "message" in text.lower()):
            hl7 = bool(_HL7_PATH_RE.search(ctx.path)) or bool(ctx.lines_matching(_HL7_PATTERN))
        m = _LOG_SINK_RE.search(ln.text)
        if m is None or not _not_http_exception(ctx, post, i, ""):
            continue
        col = m.end() - 1
        if ln.text[col] not in "({":
            col = ln.text.find("(", col)
            if col < 0:
                continue
        span, starts = balanced_span(post, i, col, max_lines=8)
        if span.replace(" ", "") in ("()", "(") and i < len(post):
            span, starts = _fluent_span(post, i, col)
        masked = mask(span, dollars)
        found = _whole_in_span(ctx, post, i, masked, near, fields, bool(hl7))
        if found is None:
            continue
        offset, what = found
        target = post[min(i + line_at(starts, offset), len(post) - 1)]
        if target.kind != "+":
            target = next((x for x in post[i: i + len(starts)] if x.kind == "+"), target)
        if target.kind == "+" and target.new_no is not None:
            yield Hit(target.new_no, f"Log/print writes {what} whole (every PHI field in it). "
                      "Log its id and the fields you need, redacted.")


def _assigned_above(post: list[DiffLine], i: int, text: str, sources: frozenset[int],
                    memo: dict[int, frozenset[str]]) -> bool:
    """Whether one of the 15 lines above post[i] assigns a name that `text` (the sink's lines) holds from a
    call or query that may load a whole record or payload (`_whole_binding` decides). `sources`: the lines
    of the file that may (`_SOURCE_LINE_PATTERN`); `memo`: per line, the names it assigns."""
    tokens: set[str] | None = None
    for k in range(max(0, i - 15), i):
        line = post[k]
        if line.new_no not in sources:
            continue
        names = memo.get(id(line))
        if names is None:
            names = _source_names(line.text)
            memo[id(line)] = names
        if not names:
            continue
        if tokens is None:
            tokens = set(IDENTIFIER_RE.findall(text))
        if not tokens.isdisjoint(names):
            return True
    return False


def _source_names(line: str) -> frozenset[str]:
    eq = line.find("=")
    if eq <= 0 or line[eq + 1: eq + 2] == "=":
        return frozenset()
    rhs = line[eq + 1:]
    if _REPO_CALL_RE.search(rhs) or _PAYLOAD_SOURCE_RE.search(rhs):
        return frozenset(IDENTIFIER_RE.findall(line, 0, eq))
    return frozenset()


_FIELD_WORDS = ("{@", "Interface(", "Any(", "Reflect(", "Object(", "WithField(", "Dict(", "Inline(")


def _may_have_whole_field(text: str, vocab: object, kwargs: bool) -> bool:
    if any(w in text for w in _FIELD_WORDS):
        return True
    return kwargs and "=" in text and may_name_record(text, vocab) and _WHOLE_FIELD_RE.search(text) is not None  # type: ignore[arg-type]


def _whole_in_span(
    ctx: FileContext, post: list[DiffLine], i: int, m: object, near: bool, fields: bool, hl7: bool,
) -> tuple[int, str] | None:
    """(offset, description) of the first whole record/payload in a log call's masked arguments."""
    masked = m.masked  # type: ignore[attr-defined]
    vocab = ctx.vocabulary
    if fields:
        for s in m.strings:  # type: ignore[attr-defined]
            if "{@" in s.content:
                holes = [h.split("}", 1)[0] for h in s.content.split("{@")[1:]]
                if any(vocab.is_record(h) for h in holes) and _bare_names_after(masked, s.end, vocab):
                    return s.start, "a record destructured by `{@...}`"
            elif s.content and vocab.is_record(s.content) and not s.formatted:
                before = masked[max(0, s.start - 30): s.start]
                if _WHOLE_FIELD_CALL_RE.search(before):
                    v = _FIELD_VALUE_RE.search(masked[s.end: s.end + 80])
                    if v is not None and _opaque_value(v.group(1), vocab):
                        return s.start, f"the `{s.content}` value `{v.group(1)}`"
        for k in _KWARG_RE.finditer(masked):
            if vocab.is_record(k.group(1)) and _opaque_value(k.group(2), vocab):
                return k.start(), f"the record `{k.group(2)}`"
    for ch in chains(masked):
        segs = ch.segments
        while segs and segs[0] in ("this", "self", "$"):
            segs = segs[1:]
        if not segs or segs[0] in _ERROR_HEADS:
            continue
        end = ch.start + len(ch.text)
        after = masked[end: end + 3].lstrip()
        if after.startswith("(") and not ch.called or (after.startswith(("=", ":")) and not after.startswith(("==", "::"))):
            continue
        call = _enclosing_call(masked, ch.start)
        if call and _SAFE_CALL_RE.search(call.rsplit(".", 1)[-1]):
            continue
        if hl7:
            body = segs[:-1] if len(segs) > 1 and segs[-1].lower() in _SERIALIZE_METHODS else segs
            if body and body[-1].lower().replace("_", "") in _MESSAGE_WORDS and not any(
                    b.lower() in _ERROR_HEADS for b in body[:-1]):
                return ch.start, f"the raw HL7 message `{'.'.join(segs)}`"
        if not near:
            continue
        if len(segs) == 2 and segs[1].lower() in _SERIALIZE_METHODS | {"dict", "to_dict", "model_dump", "__dict__"}:
            segs = segs[:1]
        if len(segs) != 1 or (after.startswith("[") and not _plain_index(masked, end)):
            continue
        what = _whole_binding(ctx, post, i, segs[0])
        if what is not None:
            return ch.start, what
    return None


def _plain_index(masked: str, end: int) -> bool:
    """`rows[0]`, `rows[i]`: one element of the rows, whole (not `rows[0].id`)."""
    close = masked.find("]", end, end + 12)
    if close < 0:
        return False
    inner = masked[masked.find("[", end) + 1: close].strip()
    return (inner.isdigit() or inner.isidentifier()) and not masked[close + 1: close + 2] in (".", "[")


def _opaque_value(name: str, vocab: object) -> bool:
    """A value named without saying it is an id, count or flag (`p`, `patient`, `rec`)."""
    words = split_words(name)
    return bool(words) and words[-1] not in vocab.neutral and words[-1] not in {"ids", "id", "count"}  # type: ignore[attr-defined]


def _bare_names_after(masked: str, start: int, vocab: object) -> bool:
    rest = masked[start: start + 200]
    return any(len(c.segments) == 1 and _opaque_value(c.segments[0], vocab) for c in chains(rest))


def _whole_binding(ctx: FileContext, post: list[DiffLine], i: int, name: str) -> str | None:
    """What `name` holds when the nearest line above binding it loads a whole record or payload, else None."""
    for k in range(i, max(-1, i - 16), -1):
        text = post[k].text
        if name not in text:
            continue
        rhs = _bound_rhs(text, name) if k < i else None
        if rhs is None:
            continue
        for extra in post[k + 1: k + 4]:  # a call or query continued on the next lines
            if rhs.count("(") <= rhs.count(")") and rhs.count("`") % 2 == 0:
                break
            rhs += "\n" + extra.text
        repo = _REPO_CALL_RE.search(rhs)
        if repo is not None and _record_receiver(ctx, post, k, repo.group(1), repo.group(2)):
            return f"the record `{name}` (loaded through `{repo.group(1)}`)"
        if _PAYLOAD_SOURCE_RE.search(rhs) is None:
            return None
        header = ctx.enclosing_header(post[k].new_no or 0)
        around = " ".join(x.text for x in post[max(0, k - 10): i + 1])
        if _PATIENT_CONTEXT_RE.search(ctx.path + " " + header + " " + around) or _MIDDLEWARE_RE.search(
                ctx.path + " " + header + " " + around):
            return f"the payload `{name}`"
        return None
    return None


def _bound_rhs(text: str, name: str) -> str | None:
    """The right-hand side of an assignment on `text` that binds `name` (also `const { rows } = ...`)."""
    parsed = _assignment_head(text)
    if parsed is not None and parsed[0] == name:
        return parsed[2]
    eq = text.find("=")
    if eq < 0 or text[eq + 1: eq + 2] in ("=", ">"):
        return None
    lhs = text[:eq]
    if "{" in lhs or "[" in lhs:  # destructuring: `const { rows } = await db.query(...)`, `const [rows] = ...`
        inner = lhs.replace("{", " ").replace("}", " ").replace("[", " ").replace("]", " ").replace(",", " ").split()
        if name in inner or any(x.endswith(":") and False for x in inner):
            return text[eq + 1:].strip()
    return None


def _record_receiver(ctx: FileContext, post: list[DiffLine], k: int, receiver: str, method: str) -> bool:
    """Whether `receiver` (of a get/find/load call) holds patient records: its name or declared type says so."""
    vocab = ctx.vocabulary
    if set(split_words(method)[-1:]) & _NOT_A_RECORD_LOAD:
        return False
    words = split_words(receiver)
    if "audit" in words:
        return False
    if any(w in vocab.record_words for w in split_words(method)[1:]):
        return True  # `store.GetPatient(ctx, id)`, `repo.findMemberByMrn(mrn)`
    if any(w in vocab.record_words for w in words) or _PATIENT_CONTEXT_RE.search(receiver):
        return True
    header = ctx.enclosing_header(post[k].new_no or 0)
    decl = re2.compile(r"\b" + re2.escape(receiver) + r"\s*:\s*([A-Z]\w*)|\b([A-Z]\w*)(?:<[^>]*>)?\s+" + re2.escape(receiver) + r"\b")
    for text in [header] + [x.text for x in post[max(0, k - 40): k]]:
        if receiver not in text:
            continue
        t = decl.search(text)
        if t is not None:
            type_name = t.group(1) or t.group(2)
            type_words = split_words(type_name)
            return "audit" not in type_words and (
                any(w in vocab.record_words for w in type_words) or _PATIENT_CONTEXT_RE.search(type_name) is not None)
    return False


RULES: tuple[Rule, ...] = (
    Rule(
        id="PHI-LOG-001",
        category="phi-exposure-log",
        severity="high",
        message="PHI is written to a log, stdout/stderr or an exception message. Log a surrogate id instead, or "
        "pass the value through the PHI redactor.",
        regulations=_REG_LOG,
        keywords=_LOG_KEYWORDS,
        check=_check_logs,
        examples=(
            "svc/views.py::log.info(\"Viewing chart for %s, DOB %s\", patient.full_name, patient.date_of_birth)",
            "src/Admit.java::LOGGER.debug(\"Admitting patient: \" + patient.toString());",
            "jobs/backfill.py::for patient in session.query(Patient):\n    print(f\"processing {patient.ssn}\")",
            "api/x.ts::console.log(`member ${member.memberId} dob ${member.birthDate}`);",
            "cmd/main.go::log.Printf(\"patient: %+v\", patient)",
            "Svc.cs::_logger.LogInformation(\"Patient {Name}\", patient.FullName);",
            "cmd/main.go::log.Info().Str(\"ssn\", p.SSN).Msg(\"lookup\")",
            "app/src/Chart.kt::Log.d(TAG, \"loaded ${patient.lastName}\")",
            "svc/a.py::structlog.get_logger().info(\"admit\", mrn=patient.mrn)",
            "svc/m.py::raise ValueError(f\"no coverage for SSN {ssn}\")",
            "Intake/Handler.cs::public async Task HandleAsync(IntakeForm form)\n{\n    _log.LogInformation(\"Intake: {Form}\", JsonSerializer.Serialize(form));",
            "diff --git a/mpi/upsert.go b/mpi/upsert.go\n--- a/mpi/upsert.go\n+++ b/mpi/upsert.go\n@@ -10,4 +10,4 @@ func (s *Service) Upsert(ctx context.Context, in *PatientInput) error {\n \t\tGivenName:  in.GivenName,\n \t\tBirthDate:  in.BirthDate,\n \t}\n-\treturn s.repo.Save(ctx, rec)\n+\tlog.Printf(\"upsert failed for %+v\", rec)\n",
            "svc/reg.py::logger.info(\"registered\", extra={\"ssn\": form.cleaned_data[\"ssn\"]})",
            "src/Dao.java::log.debug(\"row {}\", rs.getString(\"last_name\"));",
            "server/routes/patients.js::router.post(\"/\", async (req, res) => {\n  console.log(\"create\", req.body);",
            "mpi/Merge.kt::class MergeService(private val repo: PatientRepository) {\n    fun merge(id: String) {\n"
            "        val duplicate = repo.get(id)\n        logger.info { \"Merged $duplicate\" }",
            "server/routes/coverage.js::const { rows } = await db.query(`SELECT * FROM coverage WHERE patient_id = $1`, [id]);\n"
            "console.log(\"coverage\", rows[0]);",
            "integrations/fhir/patients.py::resource = resp.json()\nlog.debug(\"read %s\", resource)",
            "cmd/admit.go::log.Error().Err(err).Interface(\"patient\", p).Msg(\"no bed\")",
            "interfaces/adt/server.js::logger.error(`failed: ${err.message}\\n${req.msg.log()}`);",
            "Diagnostics/BodyLoggingMiddleware.cs::var body = await reader.ReadToEndAsync();\n"
            "_logger.LogInformation(\"body: {Body}\", body);",
            "Svc.cs::_logger.LogInformation(\"Admitted {@Patient}\", admission);",
            "svc/merge.py::log.info(\"merged\", patient=p)",
            "internal/admit.go::p, err := s.patients.Get(ctx, id)\nlog.Printf(\"admit %v\", p)",
            "internal/intake.go::msg := fmt.Sprintf(\"rejected %s (born %s): %v\",\n\tsub.FirstName, sub.BirthDate, err)\n"
            "log.Printf(\"%s\", msg)",
            "jobs/reminders.js::const log = logger.child({ patientName: patient.displayName, mrn: patient.mrn });",
            "claims/Review.java::Claim claim = claimRepository.findById(claimId).orElseThrow();\n"
            "System.out.println(\"DEBUG claim: \" + claim);",
            "billing/tasks.py::log.exception(\"clearinghouse rejected claim %r\", claim)",
            "coverage/Svc.java::return coverages.findPrimary(patient.getId())\n    .orElseThrow(() -> new CoverageMissingException(\n"
            "        \"No coverage for \" + patient.getFullName()));",
            "src/push.ts::export async function push(client: FhirClient, bundle: Bundle) {\n"
            "  console.error(\"failed\", JSON.stringify(bundle));",
            "intake/routes.py::payload = request.get_json()\nlogger.debug(\"intake payload=%s\", payload)",
            "ehr/src/main/resources/application-prod.yml::logging:\n  level:\n    org.hibernate.orm.jdbc.bind: TRACE",
            "Data/Db.cs::options.UseNpgsql(cs).EnableSensitiveDataLogging();",
            "internal/alert.go::msg := map[string]string{\"text\": fmt.Sprintf(\"%s (MRN %s)\", p.Name, p.MRN)}\n"
            "body, _ := json.Marshal(msg)\nlog.Printf(\"alert %s\", body)",
            "cmd/cancel.py::self.stdout.write(f\"cancelled {appt.patient.last_name}\")",
            "labs/Router.kt::val p = patients.byMrn(result.mrn)\n    ?: throw IllegalArgumentException(\"Unknown MRN ${result.mrn}\")",
            "quality/Cohort.java::for (Patient p : cohort) {\n    logger.debug(\"cohort member: \" + p);",
            "internal/export.go::rec, err := e.store.GetPatient(ctx, id)\nlog.Printf(\"exporting %v\", rec)",
            "internal/scrub.go::func (s *Scrubber) Scrub(c Claim) []Edit {\n\tfmt.Printf(\"claim needs edits: %v\\n%v\\n\", edits, c)",
            "dags/readmissions.py::df = readmission_cohort(ds)\nlog.info(\"preview:\\n%s\", df.head(20).to_string())",
            "registration/views.py::logger.warning(\"Duplicate registration attempt: %s\", form.cleaned_data)",
            "diff --git a/erx/newrx.py b/erx/newrx.py\n--- a/erx/newrx.py\n+++ b/erx/newrx.py\n"
            "@@ -10,2 +10,3 @@ def build_newrx(patient, med, prescriber) -> dict:\n     }\n"
            "+    log.debug(\"NewRx payload: %s\", json.dumps(rx_payload))\n     return rx_payload\n",
        ),
        counterexamples=(
            "sync/chart.py::log.info(\"chart synced\", extra={\"subject_token\": subject, \"documents\": len(documents)})",
            "svc/views.py::log.info(\"patient %s viewed\", patient.id)",
            "svc/views.py::log.debug(\"query took %.1f ms\", elapsed)",
            "svc/users.py::log.info(\"login for %s\", user.name)",
            "tests/test_views.py::print(patient.full_name)",
            "svc/views.py::log.info(\"count=%d\", len(patients))",
            "svc/views.py::log.info(\"mrn %s\", redact(patient.mrn))",
            "svc/reg.py::logger.info(\"rows %d of %s\", data[\"count\"], row[\"name\"])",
            "svc/views.py::log.info(\"masked ssn %s\", mask_ssn(patient.ssn))",
            "Jobs/Sync.cs::public async Task RunAsync(SyncOptions form)\n{\n    _log.LogInformation(\"Options: {Form}\", JsonSerializer.Serialize(form));",
            "api/routes.py::raise HTTPException(status_code=404, detail=f\"No patient with SSN {ssn}\")",
            "server/routes/themes.js::router.post(\"/\", async (req, res) => {\n  console.log(\"create\", req.body);",
            "mpi/Merge.kt::class MergeService(private val repo: PatientRepository) {\n    fun merge(id: String) {\n"
            "        val duplicate = repo.get(id)\n        logger.info { \"Merged ${duplicate.id}\" }",
            "server/routes/coverage.js::const { rows } = await db.query(`SELECT count(*) FROM coverage WHERE patient_id = $1`, [id]);\n"
            "console.log(\"coverage\", rows[0], rows.length);",
            "cmd/admit.go::log.Error().Err(err).Str(\"patient\", patientID).Msg(\"no bed\")",
            "interfaces/adt/server.js::logger.error(`failed: ${err.message} (control id ${req.msg.header.getField(10)})`);",
            "webhooks/themes.py::body = await request.body()\nlog.debug(\"webhook %s\", body)",
            "svc/sync.py::config = settings_client.get(\"sync\")\nlog.info(\"config %s\", config)",
            "svc/merge.py::log.info(\"merged\", patient=patient_id)",
            "internal/admit.go::p, err := s.audits.Get(ctx, id)\nlog.Printf(\"admit %v\", p)",
            "chart/View.java::auditLogger.log(AuditAction.VIEW_CHART, user.getId(), patient.getMrn());",
            "mpi/dedupe.py::mrn_hash = hashlib.sha256(patient.mrn.encode()).hexdigest()[:12]\n"
            "log.info(\"dedupe\", extra={\"mrn_hash\": mrn_hash})",
            "jobs/reminders.js::const log = logger.child({ appointmentId: appointment.id });",
            "api/src/charts/charts.service.ts::throw new NotFoundException(`No chart for ${patient.firstName}`);",
            "billing/tasks.py::log.exception(\"clearinghouse rejected claim %r\", claim_id)",
            "ehr/src/main/resources/application-local.yml::logging:\n  level:\n    org.hibernate.orm.jdbc.bind: TRACE",
            "ehr/src/main/resources/application-prod.yml::logging:\n  level:\n    org.hibernate.orm.jdbc.bind: INFO",
            "Data/Db.cs::if (env.IsDevelopment())\n    options.EnableSensitiveDataLogging();",
            "themes/routes.py::payload = request.get_json()\nlogger.debug(\"theme payload=%s\", payload)",
            "adt/census.py::log.info(\"%d awaiting discharge\", sum(1 for p in patients if p.discharge_pending))",
            "internal/merge.go::sentry.CaptureException(fmt.Errorf(\"merge %s (MRN %s)\", dup.Name, dup.MRN))",
            "internal/alert.go::msg := map[string]string{\"text\": fmt.Sprintf(\"ward %s full\", ward)}\n"
            "body, _ := json.Marshal(msg)\nlog.Printf(\"alert %s\", body)",
            "cmd/cancel.py::self.stdout.write(f\"{count} appointments cancelled\")",
            "labs/Router.kt::val p = patients.byMrn(result.mrn)\n    ?: throw IllegalArgumentException(\"Unknown patient for result ${result.id}\")",
            "quality/Cohort.java::for (Patient p : cohort) {\n    logger.debug(\"cohort member: \" + p.getId());",
            "internal/export.go::ids, err := e.store.ListPatientIDs(ctx)\nlog.Printf(\"exporting %v\", ids)",
            "internal/scrub.go::func (s *Scrubber) Scrub(c Claim) []Edit {\n\tfmt.Printf(\"claim needs edits: %v\\n\", edits)",
            "dags/sales.py::df = weekly_sales(ds)\nlog.info(\"preview:\\n%s\", df.head(20).to_string())",
            "settings/views.py::logger.warning(\"Theme form invalid: %s\", form.errors)",
            "diff --git a/ops/hook.py b/ops/hook.py\n--- a/ops/hook.py\n+++ b/ops/hook.py\n"
            "@@ -10,2 +10,3 @@ def build_alert(service, severity) -> dict:\n     }\n"
            "+    log.debug(\"alert payload: %s\", json.dumps(alert_payload))\n     return alert_payload\n",
            "internal/intake.go::msg := fmt.Sprintf(\"rejected %s (%d fields): %v\",\n\tsub.ID, len(sub.Fields), err)\n"
            "log.Printf(\"%s\", msg)",
            "diff --git a/jobs/sync.go b/jobs/sync.go\n--- a/jobs/sync.go\n+++ b/jobs/sync.go\n@@ -10,2 +10,2 @@ func (s *Syncer) Run(ctx context.Context, batch *Batch) error {\n \tfor _, rec := range batch.Items {\n-\t\tlog.Printf(\"x\")\n+\t\tlog.Printf(\"synced %+v\", rec)\n",
        ),
    ),
)
