"""PHI exposure rules: PHI written to logs and stdout, or sent where it should not go.

These are structural rules: a log or analytics call is found by a sink
pattern, its argument list is followed across lines with a bracket-balancing
scan, and the identifier chains inside are judged by the PHI vocabulary
(`patient.date_of_birth`, `p.getSsn()`, `patient.toString()`, a loop variable
over `cohort.patients`). A value that is only counted, hashed, redacted or a
surrogate token is not PHI. Test files are skipped: fixtures log fake people.
"""

from __future__ import annotations

from collections.abc import Iterator

from assistant.review import re2fast as re2

from assistant.diffs import DiffLine
from assistant.review._structure import blocks, is_comment, words_of
from assistant.review.base import Hit, Rule
from assistant.review.context import FileContext
from assistant.review.dataflow import (
    IDENTIFIER_RE,
    Bindings,
    HunkFlow,
    bindings,
    flow_of,
    hunk_flow,
    record_words_pattern,
)
from assistant.review.lexing import balanced_span, line_at, mask
from assistant.review.phiexpr import phi_chains

CODE = frozenset({"python", "java", "kotlin", "javascript", "typescript", "go", "csharp", "ruby", "php"})

_LOG_SINK_RE = re2.compile(
    r"(?:\bLog\s*\.\s*[dievw]\s*\(|\bTimber\s*\.\s*[dievw]\s*\()|"
    r"(?i:\b[\w.]*log(?:ger)?\w*(?:\(\s*\))?\s*(?:\?\.|\.|->|::)\s*"
    r"(?:info|debug|warn|warning|error|exception|critical|fatal|trace|log|verbose|notice|msg|printf?|println|"
    r"infof|debugf|errorf|warnf|fatalf|tracef|infow|debugw|errorw|warnw|information|log\w+|with\w*|add)\s*\(|"
    r"(?:^|[^\w.])print\s*\(|\bconsole\s*\.\s*(?:log|info|warn|error|debug|trace|dir)\s*\(|"
    r"\bSystem\s*\.\s*(?:out|err)\s*\.\s*(?:print|println|printf|format)\s*\(|"
    r"\bfmt\s*\.\s*(?:Print|Println|Printf)\s*\(|\bfmt\s*\.\s*Fprint(?:f|ln)?\s*\(\s*os\s*\.\s*Std(?:err|out)|"
    r"\bConsole\s*\.\s*(?:Error\s*\.\s*)?Write(?:Line)?\s*\(|\bDebug\s*\.\s*(?:WriteLine|Print)\s*\(|"
    r"\bTrace\s*\.\s*(?:WriteLine|TraceInformation|TraceError)\s*\(|\bslog\s*\.\s*\w+\s*\(|"
    r"\bsys\s*\.\s*(?:stdout|stderr)\s*\.\s*write\s*\(|\bwarnings\s*\.\s*warn\s*\(|\bclick\s*\.\s*echo\s*\(|"
    r"\bputs\s*\(|\berror_log\s*\(|\bprintStackTrace|(?:^|[^\w.])p?pprint\s*\(|\bconsole\s*\.\s*table\s*\(|"
    r"\bvar_dump\s*\(|\bprint_r\s*\(|\bDebug\s*\.\s*Log\w*\s*\(|"
    r"\braise\s+[\w.]*[A-Z]\w*\s*\(|\bthrow\s+new\s+[\w.]*[A-Z]\w*\s*\(|"
    r"\bnew\s+Error\s*\(|\berrors\s*\.\s*New\s*\(|\bfmt\s*\.\s*Errorf\s*\(|\bpanic\s*\()"
)
_LOG_KEYWORDS = ("log", "print", "console", "system.", "fmt.", "write", "warn", "echo", "puts", "raise", "throw",
                 "error", "panic", "trace")

_ANALYTICS_SINK_RE = re2.compile(
    r"(?i)(?:\banalytics\s*\.\s*(?:track|identify|page|screen|group|alias)\s*\(|"
    r"\b\w*analytics\w*\s*(?:\(\s*\)\s*)?(?:\.\s*\w+\s*\(\s*\)\s*)?\.\s*(?:logEvent|setUserPropert\w*|setUserId|log_event)\s*\(|"
    r"\b(?:mp|mixpanel\w*|amplitude|posthog|segment|heap|fullstory|FS|intercom|hotjar|clevertap|braze|appboy|"
    r"newrelic|datadog|dd|statsd|appInsights|telemetry|telemetryClient|_telemetry|tracker|gtm|plausible|"
    r"bugsnag|rollbar|honeybadger|raygun|airbrake|logrocket|LogRocket|sentry|Sentry|sentry_sdk|scope)\s*"
    r"(?:\.\s*\w+\s*)*\.\s*\w+\s*\(|"
    r"\b(?:gtag|ga|dataLayer\s*\.\s*push|trackEvent|track_event|TrackEvent|captureMessage|capture_message|"
    r"captureException|capture_exception|set_user|setUser|set_context|setContext|setExtra|set_extra|set_tag|setTag|"
    r"addBreadcrumb|add_breadcrumb|setCustomAttribute|addCustomAttribute|set_attribute|setAttribute|SetAttributes|"
    r"SetTag|AddTag|labels)\s*\()"
)
_MESSAGING_SINK_RE = re2.compile(
    r"(?i)(?:\b(?:chat_postMessage|chat\s*\.\s*postMessage|chat_postEphemeral|postMessage|send_message|sendMessage|"
    r"SendMessage|post_message|send_mail|sendMail|send_email|sendEmail|SendEmail|send_mass_mail|mail_admins|"
    r"EmailMessage|EmailMultiAlternatives|MimeMessage|MailMessage|send_sms|sendSms|sendSMS|SendSms|"
    r"send_notification|sendNotification|notify|publish|sendgrid\w*|Mail)\s*\(|"
    r"\b(?:requests|httpx|session|client|http|axios|restTemplate|HttpClient|_http|fetch)\s*(?:\.\s*(?:post|put|postForObject|PostAsync|PostAsJsonAsync)\s*)?\(\s*"
    r"[\w.\[\]\"']*(?:webhook|slack|teams|hook|chat|discord|notify)\w*|"
    r"\b_*(?:webhook|slack|teams|discord|smtp|mailer|ses|sns|pagerduty|opsgenie|twilio|messages|pusher|fcm|apns|"
    r"push|transporter|sms|text_?message|email|mail|notifier|notification|messenger|comms|pager|whatsapp)\w*\s*\.\s*(?:send|post|create|sendmail|send_message|publish|notify|trigger|"
    r"send_email|messages\s*\.\s*create)\w*\s*\()"
)
_OUTPUT_KEYWORDS = ("analytics", "track", "mixpanel", "amplitude", "posthog", "segment", "sentry", "telemetry",
                    "newrelic", "datadog", "statsd", "insights", "gtag", "datalayer", "breadcrumb", "attribute",
                    "capture", "set_user", "setuser", "message", "mail", "sms", "notif", "webhook", "slack",
                    "teams", "publish", "push", "bugsnag", "rollbar", "label", "tag", "context", "extra", "hook")

# Contact details are how messages are addressed; as a recipient they are not a disclosure.
_RECIPIENT_TERMS = frozenset({"phone", "phone_number", "mobile", "email", "email_address", "telephone", "fax",
                             "contact", "telecom", "cell_phone"})

_URL_CANDIDATE = (
    r"[?&;][a-z_][\w.\-\[\]]*=|params|urlsearchparams|urlencode|queryparam|query_param|searchparams|"
    r"\.(?:set|add|append|put)\s*\(\s*[\"']"
)
_QUERY_RE = re2.compile(r"(?i)[?&;]([A-Za-z_][\w.\-\[\]]*)=")
_QUERY_PARAM_CALL_RE = re2.compile(
    r"(?i)\b(?:queryParam|addQueryParameter|add_query_param|query_param|appendQueryParameter|"
    r"searchParams\s*\.\s*(?:append|set)|q\s*\.\s*(?:Set|Add)|values\s*\.\s*(?:Set|Add)|params\s*\.\s*(?:append|set|Add|put))"
    r"\s*\(\s*[\"']([A-Za-z_][\w.\-]*)[\"']"
)
_PARAMS_DICT_RE = re2.compile(
    r"(?:\b(?:params|searchParams|query_params|queryParams|qs)\s*[:=]\s*(?:dict\s*\(|\{)|\bURLSearchParams\s*\(\s*\{|\burlencode\s*\(\s*\{)"
)
_DICT_KEY_RE = re2.compile(r"(?:[\"']([A-Za-z_][\w.\-]*)[\"']|\b([A-Za-z_]\w*))\s*(?::|=(?:[^=]|$))")
_URL_HINT_RE = re2.compile(r"(?i)(https?://|\burl\b|\buri\b|endpoint|\bpath\b|[?&][\w]+=|/v\d+/|Url|Uri|\.get\(|\.post\(|fetch\(|axios|requests\.|http\.|href|redirect|location)")

_ERROR_RESPONSE_RE = re2.compile(
    r"(?i)(?:\b(?:res|resp|response|reply|ctx|c|w|h)\s*(?:\.\s*status\s*\(\s*\d+\s*\)\s*)?\.\s*(?:json|send|write|jsonp|end|body|JSON|String|AbortWithStatusJSON)\s*\(|"
    r"\bjsonify\s*\(|\bJSONResponse\s*\(|\bJsonResponse\s*\(|\bHttpResponse\w*\s*\(|\bResponse\s*\(|"
    r"\bResponseEntity\s*(?:\.\s*\w+\s*\(\s*[\w.]*\s*\))?\s*\.\s*body\s*\(|\bnew\s+ResponseEntity\s*<?[^(]*\(|"
    r"\bhttp\s*\.\s*Error\s*\(|\bjson\s*\.\s*NewEncoder\s*\(\s*w\s*\)\s*\.\s*Encode\s*\(|"
    r"\b(?:StatusCode|Problem|ObjectResult|BadRequest|Content)\s*\(|\bHTTPException\s*\(|\babort\s*\(|"
    r"\breturn\s+(?:\{|\[))"
)
_ERROR_CONTEXT_RE = re2.compile(
    r"(?i)(?:\bexcept\b|\bcatch\b|exception_handler|errorhandler|error_handler|ExceptionHandler|@ControllerAdvice|"
    r"\bif\s+err\s*!=\s*nil|;\s*err\s*!=\s*nil|"
    r"\bhttp\s*\.\s*Status(?:BadRequest|Unauthorized|Forbidden|NotFound|Conflict|Gone|UnprocessableEntity|"
    r"TooManyRequests|InternalServerError|BadGateway|ServiceUnavailable|GatewayTimeout)\b|\bon_?error|\.catch\s*\(|\bstatus(?:_code)?\s*[=:(]\s*[45]\d\d|\bstatus\s*\(\s*[45]\d\d|"
    r"\b[45]\d\d\b\s*\)?\s*$|StatusInternalServerError|StatusBadRequest|INTERNAL_SERVER_ERROR|HTTP_500|HTTP_4\d\d|"
    r"\b(?:err|error|exc|ex|e)\s*(?:,|\)|=>)|"
    # the response helper itself names an error (ASP.NET Core), even when the hunk shows no catch above it
    r"\b(?:BadRequest|NotFound|Conflict|UnprocessableEntity|ValidationProblem|Problem)\s*\(|\bnew\s+(?:Validation)?ProblemDetails\b)"
)
_LEAK_RE = re2.compile(
    r"(?i)(?:\.stack\b|\bstack\s*:|stacktrace|stack_trace|StackTrace|traceback|format_exc|print_exc|getStackTrace|"
    r"printStackTrace|\brepr\s*\(\s*(?:e|ex|exc|err|error|exception)\s*\)|\bstr\s*\(\s*(?:e|ex|exc|err|error|exception)\s*\)|"
    r"\b(?:e|ex|exc|err|error|exception)\s*\.\s*(?:ToString|toString|args|__dict__)\b|"
    r"\b(?:req|request)\s*\.\s*(?:body|json|data|form|get_json|POST)\b)"
)

_REG_LOG = ("HIPAA 164.312(b)", "HIPAA 164.502(b)")
_REG_OUT = ("HIPAA 164.502(b)", "HIPAA 164.514")


def _hunks(ctx: FileContext) -> Iterator[tuple[object, list[DiffLine], HunkFlow]]:
    hints = ctx.phi_hint_lines
    if not hints:
        return
    for hunk in ctx.file.hunks:
        post = ctx.post_lines(hunk)
        if not any(ln.kind == "+" for ln in post) or not any(ln.new_no in hints for ln in post):
            continue
        flow = ctx.memo(("phi-flow", id(hunk)), lambda h=hunk, p=post: hunk_flow(h, ctx.vocabulary, p, hints))
        yield hunk, post, flow


def _sink_hits(
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
    for ln in ctx.scan(sink.pattern, added_only=False, lower=False):  # type: ignore[attr-defined]
        where = ctx.position(ln.new_no or 0)
        hunk = ctx.hunk_of(ln.new_no or 0)
        if where is None or hunk is None:
            continue
        post, i = where
        flow = _flow(ctx, hunk, post, i)
        if True:
            for n_sink, m in enumerate(sink.finditer(ln.text)):  # type: ignore[attr-defined]
                if n_sink >= _MAX_SINKS_PER_LINE:
                    break
                open_col = ln.text.find("(", m.end() - 1)
                if open_col < 0:
                    open_col = m.end() - 1
                span, starts = balanced_span(post, i, open_col, max_lines=12)
                if span.replace(" ", "") in ("()", "(") and i < len(post):
                    # a fluent logger (`log.Info().Str("ssn", p.SSN).Msg(...)`): the values follow the call
                    span, starts = _fluent_span(post, i, open_col)
                span_lines = post[i: i + len(starts)]
                masked = mask(span)
                names = set(IDENTIFIER_RE.findall(masked.masked))
                # Four filters, the costly one (the bindings around the line) last: the span must show a
                # PHI hint or a bound name, an added line or a name bound on one, pass `require`, and
                # hold a PHI expression.
                hint_span = any(s.new_no in hints for s in span_lines)
                added_span = any(s.kind == "+" for s in span_lines)
                if (not hint_span or not added_span) and flow.possible.isdisjoint(names):
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
                    if desc.endswith("(holds PHI)"):
                        name = desc.split(" ", 1)[0]
                        lines = [n for n in flow.phi_lines(name) if (nl := ctx.new_line(n)) and nl.kind == "+"]
                        if not lines and target.kind == "+":
                            lines = [target.new_no]
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


def _flow(ctx: FileContext, hunk: object, post: list[DiffLine], i: int = 0) -> _Window:
    """Bindings visible at post[i]: computed over the 40-80 lines above it (and a few below), not the
    whole hunk, so a new 5,000-line file costs a window per sink rather than a full pass per file.
    Computed only when a question about a name could be answered yes (see `_Window`)."""
    return _Window(ctx, hunk, post, i)


class _Window:
    """The names bound to records and PHI values around one line, asked about lazily.

    Most sinks never need the bindings: no name in their arguments appears on any line that could
    bind one (`Bindings.names`, a superset of what `hunk_flow` binds). `record_vars` and `phi_vars`
    answer `name in ...` from that superset first and run the flow analysis only when it says maybe;
    every answer is the one the full analysis gives.
    """

    __slots__ = ("_ctx", "_hunk", "_post", "_blocks", "_possible", "_flow", "record_vars", "phi_vars")

    def __init__(self, ctx: FileContext, hunk: object, post: list[DiffLine], i: int) -> None:
        self._ctx = ctx
        self._hunk = hunk
        self._post = post
        block = i // _FLOW_BLOCK
        self._blocks = [b for b in (block - 1, block, block + 1) if b >= 0 and b * _FLOW_BLOCK < len(post)]
        self._possible: frozenset[str] | None = None
        self._flow: HunkFlow | None = None
        self.record_vars = _Names(self, record=True)
        self.phi_vars = _Names(self, record=False)

    def _bindings(self, b: int) -> Bindings:
        ctx, hunk, post = self._ctx, self._hunk, self._post
        return ctx.memo(("phi-bind", id(hunk), b), lambda: bindings(  # type: ignore[no-any-return]
            hunk, ctx.vocabulary, post, ctx.phi_hint_lines, b * _FLOW_BLOCK, (b + 1) * _FLOW_BLOCK,  # type: ignore[arg-type]
            record_lines=ctx.lines_matching(record_words_pattern(ctx.vocabulary))))

    @property
    def possible(self) -> frozenset[str]:
        if self._possible is None:
            parts = [self._bindings(b).names for b in self._blocks]
            self._possible = parts[0] if len(parts) == 1 else frozenset().union(*parts)
        return self._possible

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
        if self.possible.isdisjoint(names):
            return False
        flow = self.flow()
        return bool((flow.phi_vars or flow.record_vars) and names & (flow.phi_vars.keys() | flow.record_vars))

    def phi_lines(self, name: str) -> list[int]:
        """New-file lines holding the PHI that `name` was bound to (empty when it holds none)."""
        if name not in self.possible:
            return []
        return self.flow().phi_vars.get(name, [])


class _Names:
    """`name in window.record_vars` / `name in window.phi_vars`, without the analysis when it cannot be."""

    __slots__ = ("_window", "_record")

    def __init__(self, window: _Window, *, record: bool) -> None:
        self._window = window
        self._record = record

    def maybe(self, name: str) -> bool:
        """False when `name` cannot be bound here (no analysis needed); True when it might be."""
        return name in self._window.possible

    def __contains__(self, name: object) -> bool:
        window = self._window
        if name not in window.possible:
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


def _names(span: str) -> set[str]:
    return set(IDENTIFIER_RE.findall(mask(span).masked))


def _fix(what: str) -> str:
    if what.startswith("Log"):
        return ("Log a surrogate (patient id token, encounter ref) instead of PHI, or pass the value through "
                "the PHI redactor; logs are retained and widely readable.")
    return ("Send only the minimum necessary: an opaque id or de-identified value, never names, identifiers, "
            "dates of birth or diagnoses.")


# Exceptions that a web framework turns into the HTTP response (FastAPI/Starlette/Werkzeug/NestJS/Spring):
# their message is an output (PHI-OUT-003), not a log line.
_HTTP_EXCEPTION_RE = re2.compile(
    r"\b(?:raise|throw\s+new)\s+[\w.]*(?:HTTPException|HttpException|ResponseStatusException|HttpResponseException|"
    r"WebApplicationException|HttpError)\s*\("
)


def _not_http_exception(ctx: FileContext, post: list[DiffLine], i: int, span: str) -> bool:
    return _HTTP_EXCEPTION_RE.search(post[i].text) is None


def _check_logs(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language not in CODE:
        return
    seen: set[int] = set()
    for hit in _sink_hits(ctx, _LOG_SINK_RE, _LOG_KEYWORDS, "Log/print/exception message carries PHI",
                          require=_not_http_exception):
        seen.add(hit.line)
        yield hit
    for h in _request_body_logs(ctx):
        if h.line not in seen:
            seen.add(h.line)
            yield h
    yield from (h for h in _record_dumps(ctx) if h.line not in seen)


# `%+v`/`%#v`/`JSON.stringify(x)`/`repr(x)`: every field of `x` is written out.
_DUMP_RE = re2.compile(
    r"%[+#]v[^\"]*\"\s*,\s*([^)]*)|\bJSON\s*\.\s*stringify\s*\(\s*([A-Za-z_]\w*)\s*[,)]|"
    r"\b(?:repr|vars)\s*\(\s*([A-Za-z_]\w*)\s*\)|\b([A-Za-z_]\w*)\s*\.\s*__dict__\b|"
    r"\b(?:JsonSerializer\s*\.\s*Serialize|JsonConvert\s*\.\s*SerializeObject|json\s*\.\s*dumps|json\s*\.\s*Marshal|"
    r"writeValueAsString|toJson)\s*\(\s*([A-Za-z_]\w*)\s*[,)]"
)
# Names code gives to "the record at hand" without saying what it is.
_GENERIC_RECORD_NAMES = frozenset({
    "rec", "record", "row", "entity", "obj", "item", "doc", "in", "input", "payload", "dto", "model", "p", "r",
    "result", "res", "body", "data", "entry", "m", "v", "x", "e", "u", "form", "submission", "message", "msg",
})


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
        names = [n for n in names if n in _GENERIC_RECORD_NAMES]
        if not names:
            continue
        above = ctx.neighbours(ln.new_no or 0, 10, 0)[:-1]
        header = ctx.enclosing_header(ln.new_no or 0)
        typed = any(vocab.is_record(t) for t in re2.findall(r"\b[A-Z][A-Za-z0-9]*", header))
        if not typed:
            # the value's declared type, where the diff shows it: `HandleAsync(IntakeForm form)`
            decl = re2.compile(r"\b([A-Z]\w*)\s*[?*]?\s+\*?" + re2.escape(names[0]) + r"\b")
            for x in above + [ln]:
                t = decl.search(x.text) or decl.search(header)
                if t is not None and (vocab.is_record(t.group(1)) or _PATIENT_CONTEXT_RE.search(t.group(1))):
                    typed = True
                    break
        filled = sum(1 for x in above if x.new_no in hints and re2.search(r"^\s*\w+\s*:", x.text)) >= 2
        if typed or filled:
            yield Hit(ln.new_no or 1, f"Log/print dumps the whole record `{names[0]}` (every PHI field in it). "
                      "Log its id and the fields you need, redacted.")


_REQUEST_BODY_RE = re2.compile(
    r"\b(?:req|request|ctx\.request|event)\s*\.\s*(?:body|json|data|form|POST|get_json\s*\(\s*\)|payload)\b(?:\s*\))?\s*[,)]"
)
_PATIENT_CONTEXT_RE = re2.compile(r"(?i)patient|member|fhir|ehr|chart|intake|admission|encounter|enrollee|claim")


def _request_body_logs(ctx: FileContext) -> Iterator[Hit]:
    """A whole request body logged by a handler of patient data: every field of the submitted record."""
    for ln in ctx.scan(_LOG_SINK_RE.pattern, lower=False):
        if _REQUEST_BODY_RE.search(ln.text) is None:
            continue
        context = ctx.path + " " + ctx.enclosing_header(ln.new_no or 0) + " " + " ".join(
            x.text for x in ctx.neighbours(ln.new_no or 0, 8, 0))
        if _PATIENT_CONTEXT_RE.search(context):
            yield Hit(ln.new_no or 1, "The whole request body of a patient-data endpoint is logged, with every PHI "
                      "field in it. Log the request id and the fields you need, redacted.")


def _check_outputs(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language not in CODE:
        return
    seen: set[int] = set()
    for hit in _sink_hits(ctx, _ANALYTICS_SINK_RE, _OUTPUT_KEYWORDS,
                          "PHI sent to an analytics, telemetry or error-tracking service"):
        seen.add(hit.line)
        yield hit
    # Contact details addressed *to* (phone, e-mail) are how a message is sent, not what it leaks.
    for hit in _sink_hits(ctx, _MESSAGING_SINK_RE, _OUTPUT_KEYWORDS, "PHI sent in a chat, e-mail or SMS message",
                          exclude_terms=_RECIPIENT_TERMS):
        if hit.line not in seen:
            yield hit


def _error_context(ctx: FileContext, post: list[DiffLine], i: int, span: str) -> bool:
    if _ERROR_CONTEXT_RE.search(span):
        return True
    window = "\n".join(ln.text for ln in post[max(0, i - 6): i + 1]) + "\n" + (ctx.enclosing_header(post[i].new_no or 0))
    return _ERROR_CONTEXT_RE.search(window) is not None


_FULL_IDENTIFIERS = frozenset({
    "ssn", "social_security", "social_security_number", "national_id", "passport_number", "sin", "nhs_number",
    "drivers_license",
})


_FULL_IDENTIFIER_WORDS = tuple(tuple(t.split("_")) for t in sorted(_FULL_IDENTIFIERS))


def _may_name_full_identifier(span: str) -> bool:
    """A necessary condition for a `_FULL_IDENTIFIERS` term in `span`: a term's words are pieces of the
    identifier (or string key) that holds it, so the lowercased span holds every one of them."""
    low = span.lower()
    return any(all(w in low for w in words) for words in _FULL_IDENTIFIER_WORDS)


_RECORD_ENTRY_RE = re2.compile(r"[\"']?([A-Za-z_]\w*)[\"']?\s*:\s*&?[A-Za-z_]\w*\s*[,}]")


_WRITER_BINDING = r"\s*:?=\s*(?:(?:csv|bufio|gzip|zlib|zip|tar|tabwriter)\s*\.\s*New\w*|os\s*\.\s*(?:Create|OpenFile)|new\s+(?:StreamWriter|FileWriter|BufferedWriter|PrintWriter|StringWriter|CsvWriter))\b"


def _local_writer(post: list[DiffLine], i: int, call: str) -> bool:
    """Whether the response-looking call's receiver (`w.Write(`) is bound above, in the visible hunk, to a
    file, CSV, buffer or archive writer: then it writes there, not to the caller."""
    receiver = call.split(".", 1)[0].strip()
    if not receiver.isidentifier() or receiver not in ("w", "h", "c", "res", "resp", "response", "reply", "ctx"):
        return False
    binding = re2.compile(r"\b" + re2.escape(receiver) + _WRITER_BINDING)
    return any(binding.search(ln.text) for ln in post[max(0, i - 40): i])


# A name bound to the request body (`body = await request.json()`, `data = req.body`); group 1 is the name.
_BODY_BINDING_RE = re2.compile(
    r"\b([A-Za-z_]\w*)\s*=\s*(?:await\s+)?(?:req|request)\s*\.\s*(?:json|body|get_json|data|form|POST)\b|"
    # Go: gin/echo/fiber bind into a variable (`c.ShouldBindJSON(&form)`), net/http decodes the body into one
    r"\.(?:ShouldBind\w*|Bind\w*|BodyParser)\(\s*&([A-Za-z_]\w*)\s*\)|"
    r"NewDecoder\(\s*(?:r|req)\.Body\s*\)\s*\.\s*Decode\(\s*&([A-Za-z_]\w*)\s*\)"
)
_BODY_LOOKBACK = 15


def _check_error_responses(ctx: FileContext) -> Iterator[Hit]:
    """Error bodies that echo stack traces, exception internals, request bodies or patient records."""
    if ctx.is_test or ctx.language not in CODE:
        return
    hints = ctx.phi_hint_lines
    leaks = {x.new_no for x in ctx.scan(_LEAK_RE.pattern, added_only=False, lower=False)}
    bodies = ctx.lines_matching(_BODY_BINDING_RE.pattern)
    if not hints and not leaks and not bodies:
        return
    for ln in ctx.scan(_ERROR_RESPONSE_RE.pattern, added_only=False, lower=False):
        where = ctx.position(ln.new_no or 0)
        hunk = ctx.hunk_of(ln.new_no or 0)
        if where is None or hunk is None:
            continue
        post, i = where
        if not any(x.new_no in hints or x.new_no in leaks for x in post[i: i + 10]) and not (
            bodies and any(x.new_no in bodies for x in post[max(0, i - _BODY_LOOKBACK): i])
        ):
            continue
        flow = _flow(ctx, hunk, post, i)
        if True:
            m = _ERROR_RESPONSE_RE.search(ln.text)
            if m is None:
                continue
            if _local_writer(post, i, ln.text[m.start():]):
                continue  # `w := csv.NewWriter(f)`: a file or buffer writer, not the HTTP response
            open_col = m.end() - 1
            span, starts = balanced_span(post, i, open_col, max_lines=10)
            span_lines = post[i: i + len(starts)]
            if not any(s.kind == "+" for s in span_lines):
                continue
            if not _error_context(ctx, post, i, span):
                # A success response is the product working; only a full government identifier in it is
                # beyond the minimum necessary (mask it: last four digits).
                if not _may_name_full_identifier(span):
                    continue
                for offset, desc in phi_chains(span, ctx.vocabulary, flow.record_vars, flow.phi_vars):
                    idx = i + line_at(starts, offset)
                    if desc in _FULL_IDENTIFIERS and post[idx].kind == "+":
                        yield Hit(post[idx].new_no or 1, f"The response returns the full `{desc}`. Return only what "
                                  "the caller needs (e.g. the last four digits), never the full identifier.")
                        break
                continue
            hit_line: int | None = None
            detail = ""
            leak = _LEAK_RE.search(mask(span).masked) or _LEAK_RE.search(span)
            if leak is not None:
                idx = i + line_at(starts, leak.start())
                hit_line = post[idx].new_no if post[idx].kind == "+" else None
                detail = "it returns a stack trace, exception internals or the request body"
            elif bodies:
                # `body = await request.json()` above, then `{"received": body}`: the request body, by name
                names = set(IDENTIFIER_RE.findall(mask(span).masked))
                for x in post[max(0, i - _BODY_LOOKBACK): i]:
                    b = _BODY_BINDING_RE.search(x.text) if x.new_no in bodies else None
                    bound = next((g for g in b.groups() if g), "") if b is not None else ""
                    if bound and bound in names:
                        hit_line = post[i].new_no if post[i].kind == "+" else None
                        detail = f"it returns the request body (`{bound}`)"
                        break
            for offset, desc in phi_chains(span, ctx.vocabulary, flow.record_vars, flow.phi_vars):
                idx = i + line_at(starts, offset)
                if post[idx].kind == "+":
                    hit_line = hit_line or post[idx].new_no
                    detail = f"it returns `{desc}`"
                    break
            if not detail:
                # `{"error": ..., "patient": p}`: the key names the record the value holds
                for km in _RECORD_ENTRY_RE.finditer(span):
                    if ctx.vocabulary.is_record(km.group(1)):
                        idx = i + line_at(starts, km.start())
                        if post[idx].kind == "+":
                            hit_line, detail = post[idx].new_no, f"it returns the `{km.group(1)}` record"
                            break
            if detail and hit_line is None:
                first_added = next(s for s in span_lines if s.kind == "+")
                hit_line = first_added.new_no
            if hit_line is not None and detail:
                yield Hit(hit_line, f"Error response leaks data: {detail}. Return a generic error with a correlation "
                                    "id and log the details server-side (redacted).")


def _check_urls(ctx: FileContext) -> Iterator[Hit]:
    """PHI in URLs and query strings, where proxies, browsers and access logs keep it."""
    if ctx.is_test or ctx.language not in CODE:
        return
    vocab = ctx.vocabulary
    hints = ctx.phi_hint_lines
    if not hints:
        return
    for ln in ctx.scan(_URL_CANDIDATE):
        where = ctx.position(ln.new_no or 0)
        hunk = ctx.hunk_of(ln.new_no or 0)
        if where is None or hunk is None:
            continue
        post, i = where
        if ln.new_no not in hints and _PARAMS_DICT_RE.search(ln.text) is None:
            continue
        flow = _flow(ctx, hunk, post, i)
        if True:
            text = ln.text
            m = mask(text)
            hit = False
            for s in m.strings:
                if "=" not in s.content:
                    continue
                for q in _QUERY_RE.finditer(s.content):
                    term = vocab.phi_term(q.group(1))
                    if term is None:
                        continue
                    rest = s.content[q.end():]
                    after = text[s.end: s.end + 40].lstrip()
                    dynamic = (
                        rest[:1] in ("%", "{", "$")
                        or s.formatted
                        or (rest == "" and after.startswith(("+", "%", ".format", "..")))
                    )
                    if not dynamic:
                        continue
                    if vocab.is_weak(term) and term in _RECIPIENT_TERMS:
                        continue
                    if vocab.is_weak(term) and not any(
                        vocab.phi_in_chain(c.split("."), flow.record_vars) for c in s.interpolations
                    ) and not _has_phi_arg(text[s.end: s.end + 300], ctx, flow):
                        continue
                    hit = True
                    yield Hit(ln.new_no or 1, f"PHI (`{term}`) is put in a URL query string, which proxies, "
                              "browsers and access logs record. Send it in a POST body over TLS, or look the "
                              "patient up by an opaque id.")
                    break
                if hit:
                    break
            if hit:
                continue
            pm = _PARAMS_DICT_RE.search(text)
            if pm is not None:
                span, starts = balanced_span(post, i, pm.end() - 1, max_lines=10)
                for km in _DICT_KEY_RE.finditer(span):
                    key = km.group(1) or km.group(2)
                    term = vocab.phi_term(key)
                    if term is None or term in _RECIPIENT_TERMS:
                        continue
                    value = span[km.end(): km.end() + 120].split(",")[0]
                    if vocab.is_weak(term) and not _has_phi_arg(value, ctx, flow):
                        continue
                    target = post[i + line_at(starts, km.start())]
                    if target.kind == "+":
                        hit = True
                        yield Hit(target.new_no or 1, f"PHI (`{term}`) is sent as a URL query parameter, which "
                                  "proxies and access logs record. Send it in a POST body over TLS or use an opaque id.")
                        break
            if hit:
                continue
            for q in _QUERY_PARAM_CALL_RE.finditer(text):
                term = vocab.phi_term(q.group(1))
                if term and not vocab.is_weak(term):
                    yield Hit(ln.new_no or 1, f"PHI (`{term}`) is added as a URL query parameter; send it in a "
                              "POST body over TLS or use an opaque id.")
                    break


def _has_phi_arg(rest: str, ctx: FileContext, flow: HunkFlow) -> bool:
    return any(True for _ in phi_chains(rest, ctx.vocabulary, flow.record_vars, flow.phi_vars))


# A response marked storable by shared caches (CDNs, proxies): `Cache-Control: public`, Django's
# `cache_control(public=True)`, Spring's `.cachePublic()`, ASP.NET's `ResponseCacheLocation.Any`.
_PUBLIC_CACHE_RE = re2.compile(
    r"(?i)cache-control[\"'`]?\s*[,:=]\s*[\"'`]?[^\"'`\n]*\bpublic\b|\bcache_control\s*\([^)\n]*\bpublic\s*=\s*True|"
    r"\.cachePublic\s*\(|ResponseCacheLocation\s*\.\s*Any\b|CacheControlHeaderValue\s*\{[^}\n]*\bPublic\s*=\s*true"
    # (not Django's @cache_page: a view that touches the session gets `Vary: Cookie`, so its cache is per user)
)
# static files (fingerprinted bundles, images, fonts) are meant to be cached publicly; a page cache that varies on
# the session cookie is per user
_STATIC_CACHE_RE = re2.compile(
    r"(?i)static|assets|immutable|favicon|fonts?\b|\.(?:css|js|png|svg|woff2?)\b|vary_on_cookie"
)
# what a response holds when it is patient data; a static asset or a public catalogue names none of these
_CACHED_PHI_WORDS = frozenset({
    "patient", "patients", "document", "documents", "chart", "charts", "lab", "labs", "result", "results",
    "record", "records", "note", "notes", "encounter", "encounters", "visit", "visits", "prescription",
    "prescriptions", "medication", "medications", "allergy", "allergies", "immunization", "immunizations",
    "claim", "claims", "diagnosis", "diagnoses", "member", "members", "referral", "referrals", "imaging", "dicom",
    "statement", "statements", "vitals", "problems", "mrn",
})
_CACHE_WINDOW = 12


def _check_public_cache(ctx: FileContext) -> Iterator[Hit]:
    """A response that carries patient data marked cacheable by shared caches (CDN, proxy): anyone behind the
    same cache may be served it, and it outlives the session."""
    if ctx.is_test or ctx.language not in CODE:
        return
    for ln in ctx.lines_with("public", "location.any", "location = responsecachelocation"):
        if ln.new_no is None or is_comment(ln.text) or _PUBLIC_CACHE_RE.search(ln.text) is None:
            continue
        where = ctx.position(ln.new_no)
        if where is None:
            continue
        post, i = where
        if _STATIC_CACHE_RE.search("\n".join(x.text for x in post[max(0, i - 3): i + 3])):
            continue
        window = "\n".join(x.text for x in post[max(0, i - _CACHE_WINDOW): i + _CACHE_WINDOW])
        if _CACHED_PHI_WORDS.isdisjoint(words_of(window)):
            continue
        yield Hit(ln.new_no, "This response carries patient data and is marked cacheable by shared caches "
                             "(CDNs, proxies), so it can be served to other users and outlives the session. Use "
                             "`Cache-Control: no-store` (or `private, no-store`) for responses with PHI.")


# `patient: appt.patient,` / `"patient": visit.patient` / `Patient: appt.Patient,`: an entry whose value is a bare chain
_ENTRY_CHAIN_RE = re2.compile(r"""^\s*["']?[A-Za-z_]\w*["']?\s*[:=]\s*([A-Za-z_][\w.]*)\s*,?\s*$""")


def _check_widened_responses(ctx: FileContext) -> Iterator[Hit]:
    """A response entry that returned one field of a record (`appt.patient.initials`) now returns the whole
    record (`appt.patient`): every field of it, identifiers and dates included, goes to the caller."""
    if ctx.is_test or ctx.language not in CODE:
        return
    for block in blocks(ctx):
        if not block.removed or not block.added:
            continue
        removed = "\n".join(x.text for x in block.removed)
        for ln in block.added:
            if ln.new_no is None or "." not in ln.text or (":" not in ln.text and "=" not in ln.text):
                continue
            m = _ENTRY_CHAIN_RE.search(ln.text)
            if m is None:
                continue
            chain = m.group(1)
            if "." not in chain or not ctx.vocabulary.is_record(chain.rsplit(".", 1)[1]) or chain + "." not in removed:
                continue
            where = ctx.position(ln.new_no)
            if where is None:
                continue
            post, i = where
            if not any(_ERROR_RESPONSE_RE.search(x.text) for x in post[max(0, i - 10): i + 1]):
                continue
            yield Hit(ln.new_no, f"The response now returns the whole `{chain}` record where it returned one of its "
                                 "fields. Return only the fields the caller needs (minimum necessary).")


def _diff(path: str, *lines: str, context: tuple[str, ...] = ()) -> str:
    body = [f" {c}" for c in context] + [f"+{ln}" for ln in lines]
    n_old = len(context)
    n_new = len(context) + len(lines)
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
        f"@@ -1,{n_old} +1,{n_new} @@\n" + "\n".join(body) + "\n"
    )


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
            "diff --git a/jobs/sync.go b/jobs/sync.go\n--- a/jobs/sync.go\n+++ b/jobs/sync.go\n@@ -10,2 +10,2 @@ func (s *Syncer) Run(ctx context.Context, batch *Batch) error {\n \tfor _, rec := range batch.Items {\n-\t\tlog.Printf(\"x\")\n+\t\tlog.Printf(\"synced %+v\", rec)\n",
        ),
    ),
    Rule(
        id="PHI-OUT-001",
        category="phi-exposure-output",
        severity="high",
        message="PHI is sent to an analytics, telemetry, error-tracking, chat, e-mail or SMS service. Send only "
        "the minimum necessary: an opaque id, never names, identifiers, dates of birth or diagnoses.",
        regulations=_REG_OUT,
        keywords=_OUTPUT_KEYWORDS,
        check=_check_outputs,
        examples=(
            "web/confirm.ts::analytics.track(\"booked\", {\n  patientName: appt.patient.displayName,\n});",
            "notify/d.py::client.chat_postMessage(channel=C, text=f\"{p.full_name} (MRN {p.mrn}) discharged\")",
            "notify/d.py::p = encounter.patient\ntext = f\"{p.full_name} discharged\"\nclient.chat_postMessage(channel=C, text=text)",
            "app/err.js::Sentry.setUser({ email: patient.email, username: patient.fullName });",
            "rx/events.py::mp.track(user.id, \"Prescription Filled\", {\"drug\": rx.drug_name, \"diagnosis\": rx.diagnosis})",
            "Lab/Notifier.cs::var body = $\"{patient.LastName} (MRN {patient.Mrn}) has a critical result\";\nawait _email.SendAsync(_options.OnCallList, \"Critical result\", body);",
        ),
        counterexamples=(
            "web/confirm.ts::analytics.track(\"booked\", { clinic: appt.clinicId });",
            "notify/d.py::client.chat_postMessage(channel=C, text=f\"Bed {encounter.bed_code} free\")",
            "rem/sms.py::sms.send(to=patient.phone, body=f\"Reminder: {clinic} at {when}\")",
        ),
    ),
    Rule(
        id="PHI-OUT-002",
        category="phi-exposure-output",
        severity="high",
        message="PHI is placed in a URL or query string, where proxies, browsers and access logs record it. Send it "
        "in a POST body over TLS, or refer to the patient by an opaque id.",
        regulations=_REG_OUT,
        keywords=("=", "param", "query"),
        check=_check_urls,
        examples=(
            "id/verify.go::endpoint := fmt.Sprintf(\"%s/v2/match?ssn=%s&dob=%s\", c.BaseURL, ssn, dob)",
            "web/api.ts::const url = `${base}/lookup?mrn=${patient.mrn}`;",
            "src/Client.java::builder.queryParam(\"birthDate\", patient.getBirthDate());",
        ),
        counterexamples=(
            "web/api.ts::const url = `${base}/slots?clinic=${clinicId}&page=${page}`;",
            "web/api.ts::const url = \"/search?ssn=\";",
            "web/api.ts::const url = `${base}/notify?email=${patient.email}`;",
        ),
    ),
    Rule(
        id="PHI-OUT-003",
        category="phi-exposure-output",
        severity="high",
        message="An error response returns a stack trace, exception internals, the request body or a patient "
        "record to the caller. Return a generic error with a correlation id; log details server-side, redacted.",
        regulations=_REG_OUT,
        keywords=("json", "send", "response", "error", "status", "encode", "body", "abort", "problem", "content"),
        check=_check_error_responses,
        examples=(
            "routes/r.js::} catch (err) {\n  res.status(500).json({ error: err.message, stack: err.stack, patient });",
            "routes/p.py::return jsonify({\"name\": patient.full_name, \"ssn\": patient.ssn})",
            "api/patients.go::if err != nil {\n\tc.JSON(http.StatusInternalServerError, gin.H{\"error\": err.Error(), \"patient\": p})",
            "Api/ReferralsController.cs::return BadRequest(new ProblemDetails\n{\n    Title = \"Referral rejected\",\n"
            "    Detail = $\"Referral for {request.PatientName} (DOB {request.DateOfBirth:d}) rejected\",\n});",
            _diff("api/errors.py",
                  "    @app.exception_handler(Exception)",
                  "    async def unhandled(request, exc):",
                  "        return JSONResponse(status_code=500, content={\"error\": repr(exc), \"patient\": patient.dict()})"),
            "internal/intake/handler.go::var form IntakeForm\nif err := c.ShouldBindJSON(&form); err != nil {\n\treturn\n}\n"
            "if err := h.svc.Submit(ctx, form); err != nil {\n"
            "\tc.JSON(http.StatusUnprocessableEntity, gin.H{\"error\": err.Error(), \"submitted\": form})",
            _diff("intake/api/errors.py",
                  "@app.exception_handler(ValidationError)",
                  "async def validation_failed(request: Request, exc: ValidationError):",
                  "    body = await request.json()",
                  "    return JSONResponse(status_code=422, content={\"errors\": exc.errors(), \"received\": body})"),
        ),
        counterexamples=(
            "routes/r.js::} catch (err) {\n  res.status(500).json({ error: \"internal_error\", id: req.id });",
            "Api/ReferralsController.cs::return BadRequest(new ProblemDetails { Title = \"Referral rejected\", Detail = ex.Message });",
            "routes/p.py::return jsonify([p.to_dict() for p in problems])",
            "routes/p.py::return jsonify({\"name\": patient.full_name, \"ssn_last4\": patient.ssn_last4})",
            "export/roster.go::func WriteRoster(rows []Patient) error {\n\tf, err := os.Create(path)\n\tif err != nil {\n"
            "\t\treturn err\n\t}\n\tw := csv.NewWriter(f)\n\tfor _, p := range rows {\n"
            "\t\t_ = w.Write([]string{p.MRN, p.FamilyName, p.BirthDate.Format(\"2006-01-02\")})",
        ),
    ),
    Rule(
        id="PHI-OUT-004",
        category="phi-exposure-output",
        severity="high",
        message="A response with patient data is marked cacheable by shared caches. Send `Cache-Control: no-store` "
        "for PHI responses.",
        regulations=_REG_OUT,
        keywords=("cache",),
        check=_check_public_cache,
        examples=(
            "src/routes/documents.ts::router.get('/documents/:id/download', requireUser, async (req, res) => {\n"
            "  const doc = await documents.getForUser(req.params.id, req.user.id);\n"
            "  res.set('Cache-Control', 'public, max-age=86400');",
            "labs/views.py::@cache_control(public=True, max_age=3600)\ndef lab_result_pdf(request, result_id):",
            "Api/ChartsController.cs::[ResponseCache(Duration = 600, Location = ResponseCacheLocation.Any)]\n"
            "public async Task<IActionResult> GetChart(string patientId)",
        ),
        counterexamples=(
            "web/static.ts::app.use('/assets', express.static(dir, { setHeaders: (res) => res.set('Cache-Control', 'public, max-age=31536000') }));",
            "src/app.js::app.use('/static', express.static(dir, {\n  setHeaders: (res) => res.set('Cache-Control', 'public, max-age=31536000, immutable'),\n}));\n"
            "app.use('/api/patients', patients);",
            "labs/views.py::@login_required\n@cache_page(60 * 15)\ndef lab_results(request, patient_id):",
            "src/routes/documents.ts::router.get('/documents/:id/download', requireUser, async (req, res) => {\n"
            "  res.set('Cache-Control', 'private, no-store');",
        ),
    ),
    Rule(
        id="PHI-OUT-005",
        category="phi-exposure-output",
        severity="medium",
        message="A response that returned one field of a patient record now returns the whole record. Return only "
        "the fields the caller needs.",
        regulations=_REG_OUT,
        keywords=("json", "send", "response", "return", "jsonify", "ok("),
        check=_check_widened_responses,
        examples=(
            "diff --git a/routes/kiosk.js b/routes/kiosk.js\n--- a/routes/kiosk.js\n+++ b/routes/kiosk.js\n"
            "@@ -13,4 +13,4 @@\n   res.json({\n     time: appt.startsAt,\n-    patientInitials: appt.patient.initials,\n"
            "+    patient: appt.patient,\n   });\n",
        ),
        counterexamples=(
            "diff --git a/routes/kiosk.js b/routes/kiosk.js\n--- a/routes/kiosk.js\n+++ b/routes/kiosk.js\n"
            "@@ -13,4 +13,4 @@\n   res.json({\n     time: appt.startsAt,\n-    patient: appt.patient,\n"
            "+    patientInitials: appt.patient.initials,\n   });\n",
        ),
    ),
)
