"""PHI sent out of the system: to analytics, telemetry and error trackers, chat, e-mail and SMS
(PHI-OUT-001), into URLs and query strings (PHI-OUT-002), in error responses (PHI-OUT-003), in responses
that shared caches may store (PHI-OUT-004), and in responses widened to a whole record (PHI-OUT-005).

These rules are about what leaves through an interface someone else reads (a vendor, a proxy, a browser,
the caller), so they are judged by the minimum-necessary standard rather than by logging hygiene: a
recipient's phone number addressing an SMS is fine, a diagnosis in its body is not; a success response may
carry the chart it was asked for, an error response may not. They are kept apart from phi.py (PHI-LOG-001)
because they are tuned for recall while that one is tuned for speed; they reuse its sink scan
(`sink_hits`) and its bindings window (`flow_at`) rather than copies of them.
"""

from __future__ import annotations

from collections.abc import Iterator

from assistant.review import re2fast as re2

from assistant.diffs import DiffLine
from assistant.review._structure import blocks, is_comment, words_of
from assistant.review.base import Hit, Rule
from assistant.review.context import FileContext
from assistant.review.dataflow import IDENTIFIER_RE, HunkFlow
from assistant.review.lexing import balanced_span, chains, line_at, mask
from assistant.review.phi import CODE, flow_at, sink_hits
from assistant.review.phiexpr import phi_chains
from assistant.review.vocabulary import split_words

_ANALYTICS_SINK_RE = re2.compile(
    r"(?i)(?:\banalytics\s*\.\s*(?:track|identify|page|screen|group|alias)\s*\(|"
    r"\b\w*analytics\w*\s*(?:\(\s*\)\s*)?(?:\.\s*\w+\s*\(\s*\)\s*)?\.\s*(?:logEvent|setUserPropert\w*|setUserId|log_event)\s*\(|"
    r"\b(?:mp|mixpanel\w*|amplitude|posthog|segment|heap|fullstory|(?-i:FS)|intercom|hotjar|clevertap|braze|appboy|"
    r"newrelic|datadog|dd|statsd|appInsights|telemetry|telemetryClient|_telemetry|tracker|gtm|plausible|"
    r"bugsnag|rollbar|honeybadger|raygun|airbrake|logrocket|LogRocket|sentry|Sentry|sentry_sdk|scope)\s*"
    r"(?:\.\s*\w+\s*)*\.\s*\w+\s*\(|"
    r"(?-i:\bIntercom)\s*\(|"
    r"\b(?:gtag|ga|dataLayer\s*\.\s*push|trackEvent|track_event|TrackEvent|captureMessage|capture_message|"
    r"captureException|capture_exception|set_user|setUser|set_context|setContext|setExtra|set_extra|set_tag|setTag|"
    r"addBreadcrumb|add_breadcrumb|setCustomAttribute|addCustomAttribute|set_attribute|setAttribute|SetAttributes|"
    r"AddAttribute|add_custom_attribute|add_custom_parameter|addCustomParameter|AddCustomAttribute|"
    r"SetTag|AddTag|labels)\s*\()"
)
_MESSAGING_SINK_RE = re2.compile(
    r"(?i)(?:\b(?:chat_postMessage|chat\s*\.\s*postMessage|chat_postEphemeral|postMessage|send_message|sendMessage|"
    r"SendMessage|post_message|send_mail|sendMail|send_email|sendEmail|SendEmail|send_mass_mail|mail_admins|"
    r"EmailMessage|EmailMultiAlternatives|MimeMessage|MailMessage|send_sms|sendSms|sendSMS|SendSms|"
    r"send_notification|sendNotification|notify|publish|sendgrid\w*|Mail)\s*\(|"
    r"\b(?:requests|httpx|session|client|http|axios|restTemplate|HttpClient|_http|fetch)\s*(?:\.\s*(?:post|put|postForObject|PostAsync|PostAsJsonAsync)\s*)?\(\s*"
    r"[\w.\[\]\"']*(?:webhook|slack|teams|hook|chat|discord|notify)\w*|"
    r"\b(?:requests|httpx|axios|fetch|http|session|client)\s*(?:\.\s*(?:post|put|Post)\s*)?\(\s*[\"'`]https?://[\w.\-]*"
    r"(?:pagerduty|opsgenie|hooks\.slack|outlook\.office|webhook\.office|discord|victorops|twilio)|"
    r"\b_*(?:webhook|slack|teams|discord|smtp|mailer|ses|sns|pagerduty|opsgenie|twilio|messages|pusher|fcm|apns|"
    r"push|transporter|sms|text_?message|email|mail|notifier|notification|messenger|comms|pager|whatsapp)\w*\s*\.\s*(?:send|post|create|sendmail|send_message|publish|notify|trigger|"
    r"send_email|messages\s*\.\s*create)\w*\s*\(|"
    # a message object being filled: gomail `m.SetBody(`, JavaMail/MimeMessageHelper `setText(`, Python email
    # `msg.set_content(`; a Teams/Slack card's text (pymsteams `card.text(`, `section.activityText(`)
    r"\b(?:msg|message|mail|email|em|m|letter|helper|mime\w*|\w*_?message|\w*_?mail)\s*\.\s*"
    r"(?:SetBody|AddAlternative|setText|setSubject|setContent|set_content|add_alternative)\s*\(|"
    r"\b(?:card|\w+_card|\w+Card|section|\w+_section)\s*\.\s*(?:text|title|summary|activityText|activityTitle|addText|"
    r"addFact|addFacts)\s*\(|"
    # push notifications (shown on the lock screen, relayed by Google/Apple): Firebase Admin, APNs, Expo, OneSignal
    r"\b(?:messaging|getMessaging|FirebaseMessaging\s*\.\s*getInstance|FirebaseMessaging\s*\.\s*DefaultInstance)\s*"
    r"(?:\(\s*\w*\s*\))?\s*\.\s*(?:send\w*|sendToDevice|sendMulticast|sendEach\w*)\s*\(|"
    r"\b(?:expo|onesignal|OneSignal|apnProvider|apn|notificationHubClient|hub)\s*\.\s*(?:send\w*|createNotification|"
    r"push\w*)\s*\()"
)
_OUTPUT_KEYWORDS = ("analytics", "track", "mixpanel", "amplitude", "posthog", "segment", "sentry", "telemetry",
                    "newrelic", "datadog", "statsd", "insights", "gtag", "datalayer", "breadcrumb", "attribute",
                    "capture", "set_user", "setuser", "message", "mail", "sms", "notif", "webhook", "slack",
                    "teams", "publish", "push", "bugsnag", "rollbar", "label", "tag", "context", "extra", "hook",
                    "card", "messaging", "subject", "pagerduty", "opsgenie", "twilio", "routing_key", "event_action", "crm", "intercom",
                    "hubspot", "salesforce", "marketo", "mailchimp", "klaviyo", "braze", "pardot", "facebook",
                    "customerio", "activecampaign", "sendinblue", "brevo", "googleads", "google_ads", "adwords")

# Contact details are how messages are addressed; as a recipient they are not a disclosure.
_RECIPIENT_TERMS = frozenset({"phone", "phone_number", "mobile", "email", "email_address", "telephone", "fax",
                             "contact", "telecom", "cell_phone"})

_URL_CANDIDATE = (
    r"[?&;][a-z_][\w.\-\[\]]*=|params|urlsearchparams|urlencode|queryparam|query_param|searchparams|"
    r"\.(?:set|add|append|put)\s*\(\s*[\"']|addquerystring|url_for\s*\("
)
_QUERY_RE = re2.compile(r"(?i)[?&;]([A-Za-z_][\w.\-\[\]]*)=")
_QUERY_PARAM_CALL_RE = re2.compile(
    r"(?i)\b(?:queryParam|addQueryParameter|add_query_param|query_param|appendQueryParameter|"
    r"searchParams\s*\.\s*(?:append|set)|q\s*\.\s*(?:Set|Add)|values\s*\.\s*(?:Set|Add)|params\s*\.\s*(?:append|set|Add|put))"
    r"\s*\(\s*[\"']([A-Za-z_][\w.\-]*)[\"']"
)
_PARAMS_DICT_RE = re2.compile(
    r"(?:\b(?:params|searchParams|query_params|queryParams|qs)\s*[:=]\s*(?:dict\s*\(|\{)|\bURLSearchParams\s*\(\s*\{|\burlencode\s*\(\s*\{|"
    # ASP.NET Core: `QueryHelpers.AddQueryString(url, new Dictionary<string, string?> { ["dob"] = ... })`
    r"\bAddQueryString\s*\(|"
    # Flask's `url_for("intake.confirm", name=..., dob=...)`: keyword arguments that are not route variables
    # become the query string
    r"\burl_for\s*\()"
)
# a query string that may carry a clinical detail (`?reason=${visit.reason}`) without any PHI vocabulary word
_CLINICAL_URL_HINT_RE = re2.compile(r"(?i)[?&][a-z_]\w*=[^&\n]*(?:result|lab|appt|appointment|visit|encounter|order|rx|referral|observation|test)")
_DICT_KEY_RE = re2.compile(r"(?:[\"']([A-Za-z_][\w.\-]*)[\"']\s*\]?|\b([A-Za-z_]\w*))\s*(?::|=(?:[^=]|$))")

_ERROR_RESPONSE_RE = re2.compile(
    r"(?i)(?:\b(?:res|resp|response|reply|ctx|c|w|h)\s*(?:\.\s*status\s*\(\s*\d+\s*\)\s*)?\.\s*(?:json|send|write|jsonp|end|body|JSON|String|AbortWithStatusJSON)\s*\(|"
    r"\bjsonify\s*\(|\bJSONResponse\s*\(|\bJsonResponse\s*\(|\bHttpResponse\w*\s*\(|\bResponse\s*\(|"
    r"\bResponseEntity\s*(?:\.\s*\w+\s*\(\s*[\w.]*\s*\))?\s*\.\s*body\s*\(|\bnew\s+ResponseEntity\s*<?[^(]*\(|"
    r"\bResponseEntity\s*(?:<[^>(\n]*>)?\s*\(|"  # Kotlin constructs without `new`
    r"\bhttp\s*\.\s*Error\s*\(|\bjson\s*\.\s*NewEncoder\s*\(\s*w\s*\)\s*\.\s*Encode\s*\(|"
    r"\b(?:StatusCode|Problem|ObjectResult|BadRequest|Content|Conflict|UnprocessableEntity|NotFound|ValidationProblem)\s*\(|"
    r"\bHTTPException\s*\(|\babort\s*\(|"
    r"\bcall\s*\.\s*respond\w*\s*\(|"  # Ktor
    # go-chi/render `render.JSON(w, r, v)`; Spring WebFlux `ServerResponse.badRequest().bodyValue(...)`
    r"\brender\s*\.\s*(?:JSON|JSONP|PlainText|Data|XML)\s*\(|"
    r"\bServerResponse\s*\.\s*\w+\s*\([^()]*\)\s*(?:\.\s*\w+\s*\([^()]*\)\s*)*\.\s*(?:bodyValue\w*|body)\s*\(|"
    # Spring's RFC 7807 ProblemDetail: its detail and properties are the error body
    r"\bProblemDetail\s*\.\s*forStatus\w*\s*\(|\b(?:pd|problem|problemDetail|detail)\s*\.\s*(?:setDetail|setProperty|setTitle)\s*\(|"
    # NestJS's HTTP exceptions: the object they carry is the response body
    r"\bthrow\s+new\s+(?:BadRequest|Unauthorized|NotFound|Forbidden|NotAcceptable|Conflict|Gone|PayloadTooLarge|"
    r"UnprocessableEntity|InternalServerError|ServiceUnavailable|Http)Exception\s*\(|\bnew\s+ResponseStatusException\s*\(|"
    r"\breturn\s+(?:\{|\[))"
)
# `ResponseEntity.status(...)` then, on the next line, `.body(...)`
_CONTINUED_BODY_RE = re2.compile(r"(?m:^)\s*\.\s*body\s*\(")
_ERROR_CONTEXT_RE = re2.compile(
    r"(?i)(?:\bexcept\b|\bcatch\b|exception_handler|errorhandler|error_handler|ExceptionHandler|@ControllerAdvice|"
    r"\bif\s+err\s*!=\s*nil|;\s*err\s*!=\s*nil|"
    r"\bHttpStatusCode\s*\.\s*(?:BadRequest|Unauthorized|Forbidden|NotFound|Conflict|UnprocessableEntity|InternalServerError)\b|"
    r"\bhttp\s*\.\s*Status(?:BadRequest|Unauthorized|Forbidden|NotFound|Conflict|Gone|UnprocessableEntity|"
    r"TooManyRequests|InternalServerError|BadGateway|ServiceUnavailable|GatewayTimeout)\b|\bon_?error|\.catch\s*\(|\bstatus(?:_code)?\s*[=:(]\s*[45]\d\d|\bstatus\s*\(\s*[45]\d\d|"
    r"\b[45]\d\d\b\s*\)?\s*$|StatusInternalServerError|StatusBadRequest|INTERNAL_SERVER_ERROR|HTTP_500|HTTP_4\d\d|"
    r"\b(?:err|error|exc|ex|e)\s*(?:,|\)|=>)|"
    # the response helper itself names an error (ASP.NET Core), even when the hunk shows no catch above it
    r"\b(?:BadRequest|NotFound|Conflict|UnprocessableEntity|ValidationProblem|Problem)\s*\(|\bnew\s+(?:Validation)?ProblemDetails\b|"
    # NestJS's HTTP exceptions and Spring's ResponseStatusException: a 4xx/5xx whose message is the response body
    r"\b(?:BadRequest|Unauthorized|NotFound|Forbidden|NotAcceptable|Conflict|Gone|PayloadTooLarge|UnprocessableEntity|"
    r"InternalServerError|ServiceUnavailable|ResponseStatus)Exception\s*\()"
)
_LEAK_RE = re2.compile(
    r"(?i)(?:\.stack\b|\bstack\s*:|stacktrace|stack_trace|StackTrace|traceback|format_exc|print_exc|getStackTrace|"
    r"printStackTrace|\brepr\s*\(\s*(?:e|ex|exc|err|error|exception)\s*\)|\bstr\s*\(\s*(?:e|ex|exc|err|error|exception)\s*\)|"
    r"\b(?:e|ex|exc|err|error|exception)\s*\.\s*(?:ToString|toString|args|__dict__)\b|"
    r"\b(?:req|request)\s*\.\s*(?:body|json|data|form|get_json|POST)\b)"
)


_REG_OUT = ("HIPAA 164.502(b)", "HIPAA 164.514")


# Error trackers' "send default PII" switch: request bodies, cookies, headers, user e-mail and IP of every event
_DEFAULT_PII_RE = re2.compile(
    r"(?i)\bsend_?default_?pii\b[\"']?\s*[=:]\s*(?:True|true|1)\b|setSendDefaultPii\s*\(\s*true|"
    r"\bSendDefaultPii\s*=\s*true"
)


# A message object whose send call may be above or below the hunk: an e-mail (`text:`/`html:` beside `to:` and
# `subject:`/`from:`), a push notification (`body:` beside `token:`/`to: pushToken` and `title:`/`notification:`),
# a paging event (`summary:` beside `routing_key:` and `event_action:`). The addressing key and a second envelope key
# together say the object is a message for someone outside, not any dict with a `text` entry.
_MAIL_BODY_KEY_RE = re2.compile(
    r"(?im)^\s*[\"']?(?:text|html|body|message|summary|description|content|alert|subject|title)[\"']?\s*(?::|=(?:[^=]|$))"
)
_MAIL_ADDR_KEY_RE = re2.compile(
    r"(?i)^\s*[\"']?(?:to|cc|bcc|channel|routing_key|token|tokens|registration_ids|device_token|push_token|chat_id|"
    r"recipients?|phone_number|target_user_ids|include_player_ids|to_emails?|to_addresses|recipient_list|to_number)[\"']?\s*(?::|=(?:[^=]|$))"
)
_MAIL_META_KEY_RE = re2.compile(
    r"(?i)^\s*[\"']?(?:subject|from|from_email|from_address|sender|title|event_action|notification|severity|sound|badge|priority|icon_emoji|apns|"
    r"android|aps|headings|contents)[\"']?\s*(?::|=(?:[^=]|$))"
)
# the object is a push notification or an e-mail/SMS to the patient: a clinical detail in it (a test value, the reason
# for a visit) is shown on a lock screen or kept by the relay even without a name beside it
_PATIENT_FACING_RE = re2.compile(
    r"(?i)push|fcm|apns|expo|notification|device|subject|\bfrom\b|sms|onesignal|\bto\s*[:=]|\bto_emails?\b|\bfrom_email\b|"
    r"\brecipient"
)

# A field of a clinical object that says what the care is about: `result.value`, `result.testName`, `appt.reason`,
# `order.indication`. Such details need no name beside them to be PHI once they reach a patient's lock screen, an
# SMS, a survey vendor's URL.
_CLINICAL_OBJECT_WORDS = frozenset({
    "result", "results", "lab", "labs", "appt", "appointment", "visit", "encounter", "order", "rx", "prescription",
    "referral", "observation", "obs", "report", "study", "imaging", "screening", "vaccine", "immunization", "admission",
    "consult", "procedure", "test",
})
_CLINICAL_DETAIL_WORDS = frozenset({
    "reason", "test", "value", "flag", "interpretation", "abnormal", "diagnosis", "indication", "complaint",
    "finding", "findings", "impression", "drug", "medication", "dose", "dosage", "condition", "outcome",
    "narrative", "conclusion", "icd", "loinc", "analyte", "panel",
})


_DIAGNOSIS_HEADS = frozenset({"diagnosis", "diagnoses", "icd"})


def clinical_detail(text: str, vocab: object) -> tuple[int, str] | None:
    """(offset, chain) of the first chain in `text` (code, interpolations included) that reads a clinical detail
    of a clinical object (`result.value`, `appt.reason`), or None."""
    m = mask(text)
    for ch in chains(m.masked):
        segs = ch.segments
        if len(segs) < 2:
            continue
        heads = {w for s in segs[:-1] for w in split_words(s)}
        words = split_words(segs[-1])
        if words and words[0] in ("get", "is"):
            words = words[1:]
        if not heads.isdisjoint(_DIAGNOSIS_HEADS) and words and not any(w in vocab.neutral for w in words):  # type: ignore[attr-defined]
            return ch.start, ".".join(segs)  # `patient.primary_diagnosis.description`: any field of it is the diagnosis
        if heads.isdisjoint(_CLINICAL_OBJECT_WORDS):
            continue
        hit = next((k for k, w in enumerate(words) if w in _CLINICAL_DETAIL_WORDS), None)
        if hit is None or any(w in vocab.neutral for w in words[hit + 1:]):  # type: ignore[attr-defined]
            continue
        return ch.start, ".".join(segs)
    return None


# Marketing, CRM and advertising platforms: a contact pushed there with a diagnosis or a name tied to a care programme
# is a disclosure for marketing (HIPAA 164.508(a)(3)), whichever HTTP client carries it.
_MARKETING_VENDOR_RE = re2.compile(
    r"(?i)\bcrm\b|\bcrm_|_crm\b|crm\.|hubspot|salesforce|marketo|mailchimp|klaviyo|\bbraze\b|pardot|activecampaign|"
    r"sendinblue|brevo|customer\.io|customerio|facebook\.com/tr|graph\.facebook|conversions_api|meta_pixel|fbq\s*\(|"
    r"googleads|google_ads|adwords|linkedin\.com/li"
)
_ENTRY_RE = re2.compile(r"^\s*[\"']?([A-Za-z_][\w\-]*)[\"']?\s*(?::|=(?:[^=]|$))")
_MARKETING_WINDOW = 10


def _marketing_payloads(ctx: FileContext) -> Iterator[Hit]:
    """An entry of a payload sent to a marketing or CRM platform that carries PHI (a diagnosis, a name)."""
    markers = [x.new_no for x in ctx.scan(_MARKETING_VENDOR_RE.pattern, added_only=False, lower=False)]
    if not markers:
        return
    hints = ctx.phi_hint_lines
    vocab = ctx.vocabulary
    for ln in ctx.added:
        n = ln.new_no
        if n is None or n not in hints or is_comment(ln.text) or not any(abs(n - k) <= _MARKETING_WINDOW for k in markers if k):
            continue
        m = _ENTRY_RE.search(ln.text)
        if m is None:
            continue
        value = ln.text[m.end():]
        found = next((d for _, d in phi_chains(value, vocab, set(), {}) if d not in _RECIPIENT_TERMS), None)
        if found is None:
            detail = clinical_detail(value, vocab)
            found = detail[1] if detail is not None else None
        if found is not None:
            yield Hit(n, f"PHI sent to a marketing or CRM platform: `{found}` is in the payload. Marketing use of PHI "
                         "needs the patient's authorization; send only an opaque id and consented contact fields.")


# `var card = new {` / `payload = {` / `const msg: Message = {`: the head of an object literal bound to a name
_OBJECT_HEAD_RE = re2.compile(
    r"^\s*(?:(?:var|let|const|val|final|auto|dynamic|object)\s+)?(?:[\w<>\[\]?.]+\s+)?([A-Za-z_]\w*)\s*"
    r"(?::\s*[\w<>\[\].|]+\s*)?(?::=|=)\s*(?:new\b[\w<>.\s]*|map\[string\]\w+|gin\.H|dict\s*)?[({]?\s*$"
)


def _posted_object(ctx: FileContext, post: list[DiffLine], i: int) -> bool:
    """Whether the object literal around post[i] is bound to a name that a chat, e-mail or webhook call below
    sends (`var card = new { text = ... };` then `await _http.PostAsJsonAsync(_webhook, card)`)."""
    name = None
    for k in range(i - 1, max(-1, i - 8), -1):
        m = _OBJECT_HEAD_RE.search(post[k].text)
        if m is not None:
            name = m.group(1)
            break
    if name is None:
        return False
    word = re2.compile(r"\b" + re2.escape(name) + r"\b")
    sinks = {x.new_no for x in ctx.scan(_MESSAGING_SINK_RE.pattern, added_only=False, lower=False)}
    return any(x.new_no in sinks and word.search(x.text) for x in post[i + 1: i + 14])


# a chain that may read a clinical detail (`result.testName`, `appt.reason`): the free question before `clinical_detail`
_CLINICAL_CHAIN_HINT = (
    r"(?i)(?:result|lab|appt|appointment|visit|encounter|order|rx|prescription|referral|observation|obs|report|study|"
    r"imaging|screening|vaccine|immunization|admission|consult|procedure|test|diagnos[ie]s|icd)\w*\s*(?:\?\s*)?\.\s*\w"
)


def _clinical_details_to_analytics(ctx: FileContext) -> Iterator[Hit]:
    """A clinical detail (a test name and value, the reason for a visit) in an analytics or error-tracking event:
    tied to the user's id, cookie and IP address at the vendor, it is PHI without a name beside it."""
    candidates = {x.new_no for x in ctx.scan(_CLINICAL_CHAIN_HINT, lower=False)}
    if not candidates:
        return
    for ln in ctx.scan(_ANALYTICS_SINK_RE.pattern, added_only=False, lower=False):
        where = ctx.position(ln.new_no or 0)
        m = _ANALYTICS_SINK_RE.search(ln.text)
        if where is None or m is None:
            continue
        post, i = where
        span, starts = balanced_span(post, i, ln.text.find("(", m.end() - 1), max_lines=12)
        for x in post[i: i + len(starts)]:
            if x.kind != "+" or x.new_no not in candidates or is_comment(x.text):
                continue
            found = clinical_detail(x.text if x is not ln else x.text[m.end() - 1:], ctx.vocabulary)
            if found is not None:
                yield Hit(x.new_no or 1, f"PHI sent to an analytics, telemetry or error-tracking service: `{found[1]}` "
                                         "(a clinical detail) is in the event, tied at the vendor to the user's id, "
                                         "cookie and IP address. Send only an opaque id.")
                break


def _mail_object_bodies(ctx: FileContext) -> Iterator[Hit]:
    hints = ctx.phi_hint_lines
    for ln in ctx.scan(_MAIL_BODY_KEY_RE.pattern, lower=False):
        if ln.new_no is None or is_comment(ln.text):
            continue
        where = ctx.position(ln.new_no)
        if where is None:
            continue
        post, i = where
        near = [x for x in post[max(0, i - 6): i + 6] if x is not ln]
        if (not any(_MAIL_ADDR_KEY_RE.search(x.text) for x in near) or not any(
                _MAIL_META_KEY_RE.search(x.text) for x in near)) and not (
                ln.new_no in hints and _posted_object(ctx, post, i)):
            continue
        m = _MAIL_BODY_KEY_RE.search(ln.text)
        value = ln.text[m.end() - (ln.text[m.end() - 1] not in ":="):] if m is not None else ""  # `=` took a character
        found: str | None = None
        if ln.new_no in hints:
            found = next((d for _, d in phi_chains(value, ctx.vocabulary, set(), {}) if d not in _RECIPIENT_TERMS), None)
        if found is None and _PATIENT_FACING_RE.search("\n".join(x.text for x in (*near, ln))) is not None:
            detail = clinical_detail(value, ctx.vocabulary)
            found = detail[1] if detail is not None else None
        if found is not None:
            yield Hit(ln.new_no or 1, f"PHI sent in a chat, e-mail, push or paging message: `{found}` is in the message "
                      "body. Send only the minimum necessary: an opaque id or a link into the EHR.")


# `requests.post(\n    SLACK_WEBHOOK,\n    json={"text": ...})`: the per-line sink scan sees no webhook on the call's line
_WEBHOOK_CALL_NEXT_LINE = (
    r"\b(?:requests|httpx|session|client|http|axios|_http|fetch)\s*(?:\.\s*(?:post|put|postasync|postasjsonasync)\s*)?\(\s*\n"
    r"\s*[\w.\[\]\"']*(?:webhook|slack|teams|discord)"
)


def _multiline_webhook_posts(ctx: FileContext) -> Iterator[Hit]:
    if not any(k in x for x in ctx.added_lower for k in ("webhook", "slack", "teams", "discord", "{")):
        return
    for ln in ctx.scan(_WEBHOOK_CALL_NEXT_LINE, added_only=False):
        where = ctx.position(ln.new_no or 0)
        hunk = ctx.hunk_of(ln.new_no or 0)
        if where is None or hunk is None:
            continue
        post, i = where
        span, starts = balanced_span(post, i, ln.text.rfind("("), max_lines=12)
        flow = flow_at(ctx, hunk, post, i)
        for offset, desc in phi_chains(span, ctx.vocabulary, flow.record_vars, flow.phi_vars):
            target = post[i + line_at(starts, offset)]
            if desc not in _RECIPIENT_TERMS and target.kind == "+" and target.new_no is not None:
                yield Hit(target.new_no, f"PHI sent in a chat message: `{desc}` is in the webhook payload. Send only "
                                         "the minimum necessary: an opaque id or a link into the EHR.")
                break


def _check_outputs(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language not in CODE:
        return
    seen: set[int] = set()
    for ln in ctx.scan(_DEFAULT_PII_RE.pattern, lower=False) if any("pii" in x for x in ctx.added_lower) else ():
        if ln.new_no is not None and not is_comment(ln.text):
            seen.add(ln.new_no)
            yield Hit(ln.new_no, "The error tracker is told to send default PII: request bodies, cookies, headers, "
                                 "user e-mails and IP addresses of every event leave for the vendor. Keep it off and "
                                 "scrub events (`before_send`).")
    for hit in sink_hits(ctx, _ANALYTICS_SINK_RE, _OUTPUT_KEYWORDS,
                          "PHI sent to an analytics, telemetry or error-tracking service"):
        seen.add(hit.line)
        yield hit
    for hit in _clinical_details_to_analytics(ctx):
        if hit.line not in seen:
            seen.add(hit.line)
            yield hit
    for hit in (*_mail_object_bodies(ctx), *_marketing_payloads(ctx), *_multiline_webhook_posts(ctx)):
        if hit.line not in seen:
            seen.add(hit.line)
            yield hit
    # Contact details addressed *to* (phone, e-mail) are how a message is sent, not what it leaks.
    for hit in sink_hits(ctx, _MESSAGING_SINK_RE, _OUTPUT_KEYWORDS, "PHI sent in a chat, e-mail or SMS message",
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
    r"NewDecoder\(\s*(?:r|req)\.Body\s*\)\s*\.\s*Decode\(\s*&([A-Za-z_]\w*)\s*\)|"
    # a handler parameter bound to the body: NestJS `@Body() dto`, Spring `@RequestBody IntakeForm form`, ASP.NET `[FromBody]`
    r"@Body\(\s*\)\s*([A-Za-z_]\w*)|@RequestBody\s+(?:final\s+)?(?:@\w+\s+)*[\w.<>]+\s+([A-Za-z_]\w*)|"
    r"\[FromBody\]\s*[\w.<>?]+\s+([A-Za-z_]\w*)|"
    # Ktor: `val body = call.receive<IntakeForm>()`
    r"\b([A-Za-z_]\w*)\s*=\s*call\s*\.\s*receive\w*\s*<"
)
# a name that says it holds the submitted request (a DTO), when its binding is outside the hunk
_DTO_NAME_RE = re2.compile(r"^(?:\w*Dto|\w*DTO|dto|payload|submission|submitted_form)$")
_BODY_LOOKBACK = 15


_OPEN_BINDING_LOOKBACK = 4


def _open_binding_phi(
    ctx: FileContext, post: list[DiffLine], i: int, span: str, flow: object
) -> tuple[int, str] | None:
    """A name in the response span bound just above by a call or literal that runs over several lines
    (`msg := fmt.Sprintf("...",` then the arguments on the next line): the bindings window reads one-line
    values only, so the value is read here, from the opening bracket to its close. Returns the added line
    holding the PHI and what it is."""
    names = set(IDENTIFIER_RE.findall(mask(span).masked))
    for k in range(i - 1, max(-1, i - 1 - _OPEN_BINDING_LOOKBACK), -1):
        text = post[k].text
        if "=" not in text or text.count("(") + text.count("{") + text.count("[") <= (
                text.count(")") + text.count("}") + text.count("]")):
            continue
        m = _ASSIGN_HEAD_RE.search(text)
        if m is None or m.group(1) not in names:
            continue
        col = min((c for c in (text.find(b, m.end()) for b in "([{") if c >= 0), default=-1)
        if col < 0:
            continue
        value, starts = balanced_span(post, k, col, max_lines=6)
        for offset, desc in phi_chains(value, ctx.vocabulary, flow.record_vars, flow.phi_vars):  # type: ignore[attr-defined]
            target = post[k + line_at(starts, offset)]
            if target.kind == "+" and target.new_no is not None:
                return target.new_no, f"it returns `{desc}` (through `{m.group(1)}`)"
    return None


_ASSIGN_HEAD_RE = re2.compile(r"^\s*(?:(?:var|let|const|val|final|string|String|auto)\s+)?([A-Za-z_]\w*)\s*(?::=|=)(?:[^=]|$)")


# An error body entry whose key says it holds what the caller sent: `"received" to body` (Kotlin), `submitted: form`,
# `"input": data`; group 2 is the value, a bare name.
_ECHO_ENTRY_RE = re2.compile(
    r"[\"']?\b(received|submitted|submission|request_body|requestBody)[\"']?\s*(?::|\bto\b|=>|=(?:[^=>]|$))"
    r"\s*&?([A-Za-z_]\w*)\s*(?:[,})\]]|$)"
)
_NOT_INPUT_NAMES = frozenset({"null", "None", "nil", "undefined", "true", "false", "True", "False", "err", "error",
                              "errors", "e", "ex", "exc", "message", "msg", "details", "reason"})


def _echoed_input(span: str) -> str | None:
    for m in _ECHO_ENTRY_RE.finditer(span):
        name = m.group(2)
        words = split_words(name)
        if name in _NOT_INPUT_NAMES or not words or words[-1] in ("id", "ids", "count", "at", "time"):
            continue
        return name
    return None


# Go's `%+v` / `%#v`: every field of a struct with its name
_GO_DUMP_VERB = r"%[+#]v"
_GO_FMT_CALL_RE = re2.compile(r"\b(?:Sprintf|Errorf|Fprintf)\s*\(")
_GO_VERB_RE = re2.compile(r"%[-+# 0-9.*]*[a-zA-Z%]")


def _go_struct_dump(span: str) -> str | None:
    """The argument a Go format call in `span` prints with `%+v`/`%#v`, when it is a value rather than an error."""
    if "%+v" not in span and "%#v" not in span:
        return None
    m = mask(span)
    for call in _GO_FMT_CALL_RE.finditer(m.masked):
        fmt = next((s for s in m.strings if s.start >= call.end()), None)
        if fmt is None or m.masked[call.end(): fmt.start].strip(" \t\n(") not in ("", "w,", "w ,"):
            continue
        verbs = [v.group(0) for v in _GO_VERB_RE.finditer(fmt.content) if v.group(0) != "%%"]
        args = _top_level_args(m.masked[fmt.end:])
        for verb, arg in zip(verbs, args):
            arg = arg.strip()
            if verb[-1] != "v" or ("+" not in verb and "#" not in verb):
                continue
            tail = arg.rsplit(".", 1)[-1]
            if not tail.isidentifier() or tail.lower() in ("err", "error", "e", "ex", "cause") or tail.endswith("Err"):
                continue
            return arg
    return None


def _top_level_args(code: str) -> list[str]:
    """`, a, b.c, f(x))...` -> ['a', 'b.c', 'f(x)']: the arguments after a call's first one, to its closing bracket."""
    args: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in code:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                break
            depth -= 1
        if ch == "," and depth == 0:
            args.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    args.append("".join(cur))
    return [a for a in args[1:]] if args and not args[0].strip() else args


def _check_error_responses(ctx: FileContext) -> Iterator[Hit]:
    """Error bodies that echo stack traces, exception internals, request bodies or patient records."""
    if ctx.is_test or ctx.language not in CODE:
        return
    hints = ctx.phi_hint_lines
    leaks = {x.new_no for x in ctx.scan(_LEAK_RE.pattern, added_only=False, lower=False)}
    bodies = ctx.lines_matching(_BODY_BINDING_RE.pattern)
    dtos = ctx.lines_matching(r"(?i)dto\b|\bpayload\b|\bsubmission\b|" + _ECHO_ENTRY_RE.pattern + "|" + _GO_DUMP_VERB)
    if not hints and not leaks and not bodies and not dtos:
        return
    sinks = ctx.scan(_ERROR_RESPONSE_RE.pattern, added_only=False, lower=False)
    # a builder whose `.body(` continues on its own line: the scan's match starts on the line above
    continued = ctx.scan(_CONTINUED_BODY_RE.pattern, added_only=False, lower=False) if any(".body" in x for x in ctx.added_lower) else []
    if continued:
        sinks = sorted(set(sinks) | set(continued), key=lambda x: x.new_no or 0)
    for ln in sinks:
        where = ctx.position(ln.new_no or 0)
        hunk = ctx.hunk_of(ln.new_no or 0)
        if where is None or hunk is None:
            continue
        post, i = where
        if not any(x.new_no in hints or x.new_no in leaks or x.new_no in dtos
                   for x in post[max(0, i - _OPEN_BINDING_LOOKBACK): i + 10]) and not (
            bodies and any(x.new_no in bodies for x in post[max(0, i - _BODY_LOOKBACK): i])
        ):
            continue
        flow = flow_at(ctx, hunk, post, i)
        if True:
            m = _ERROR_RESPONSE_RE.search(ln.text) or _CONTINUED_BODY_RE.search(ln.text)
            if m is None:
                continue
            if _local_writer(post, i, ln.text[m.start():]):
                continue  # `w := csv.NewWriter(f)`: a file or buffer writer, not the HTTP response
            if m.group(0).lstrip().startswith(".") and not any(
                    "ResponseEntity" in x.text or "ServerResponse" in x.text for x in post[max(0, i - 3): i]):
                continue  # `.body(` continuing a request builder (WebClient, RestClient), not a response
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
            if not detail and dtos:
                # `{ message: e.message, submitted: dto }`: the submitted DTO echoed back, its binding above the hunk
                for name in IDENTIFIER_RE.findall(mask(span).masked):
                    if _DTO_NAME_RE.search(name):
                        hit_line, detail = None, f"it returns the submitted request (`{name}`)"
                        break
            if not detail:
                # `"received" to body` / `{"submitted": form}`: the key says the value is what the caller sent
                echo = _echoed_input(span)
                if echo is not None:
                    hit_line, detail = None, f"it echoes the submitted input (`{echo}`)"
            if not detail:
                # `fmt.Sprintf("invalid intake record %+v: %v", rec, err)`: every field of the struct, by name
                dumped = _go_struct_dump(span)
                if dumped is not None:
                    hit_line, detail = None, f"it prints the whole `{dumped}` value with `%+v`"
            if not detail:
                # `msg := fmt.Sprintf("... %s %s",\n\tsub.FirstName, sub.BirthDate)` just above, then `http.Error(w, msg, ...)`
                found = _open_binding_phi(ctx, post, i, span, flow)
                if found is not None:
                    hit_line, detail = found
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
    for ln in ctx.scan(_URL_CANDIDATE):
        where = ctx.position(ln.new_no or 0)
        hunk = ctx.hunk_of(ln.new_no or 0)
        if where is None or hunk is None:
            continue
        post, i = where
        if ln.new_no not in hints and _PARAMS_DICT_RE.search(ln.text) is None and not (
                _CLINICAL_URL_HINT_RE.search(ln.text) and clinical_detail(ln.text, vocab)):
            continue
        flow = flow_at(ctx, hunk, post, i)
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
                        # `?q={address}`: the key says nothing, the value is a name bound to PHI above
                        hole = _HOLE_RE.match(s.content[q.end():]) if s.formatted else None
                        if hole is not None and _holds_phi(hole.group(1), vocab, flow):
                            hit = True
                            yield Hit(ln.new_no or 1, f"PHI (`{hole.group(1)}`) is put in a URL query string, which "
                                      "proxies, browsers and access logs record. Send it in a POST body over TLS, or "
                                      "look the patient up by an opaque id.")
                            break
                        # `?reason=${encodeURIComponent(visit.reason)}`: what the visit was for, whatever the key says
                        value = s.content[q.end():].split("&", 1)[0] if s.formatted else ""
                        detail = clinical_detail(value, vocab) if "{" in value else None
                        if detail is not None:
                            hit = True
                            yield Hit(ln.new_no or 1, f"PHI (`{detail[1]}`) is put in a URL query string, which "
                                      "proxies, browsers, access logs and the receiving site record. Send it in a POST "
                                      "body over TLS, or refer to the visit by an opaque id.")
                            break
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
            for found in _params_dict_hits(ctx, post, i, text, flow):
                hit = True
                yield found
                break
            if hit:
                continue
            for q in _QUERY_PARAM_CALL_RE.finditer(text):
                term = vocab.phi_term(q.group(1))
                if term and not vocab.is_weak(term):
                    yield Hit(ln.new_no or 1, f"PHI (`{term}`) is added as a URL query parameter; send it in a "
                              "POST body over TLS or use an opaque id.")
                    break
    yield from _identifiers_in_url_paths(ctx)
    yield from _phi_route_params(ctx)
    yield from _params_dicts_opened_above(ctx)


# A path segment filled from a value: `/members/${m.ssn}`, f"/members/{ssn}", "/members/" + ssn, "/members/%s"
_PATH_SEGMENT_CANDIDATE = r"/(?:\$\{|\{|%[sv]|[\"'`]\s*\+)"
_URL_CONTEXT_RE = re2.compile(
    r"(?i)https?://|\burl|\buri\b|endpoint|fetch\s*\(|axios|\bhttp|request|\.(?:get|post|put|delete|patch)\w*\s*[<(]|"
    r"href|redirect|\bapi\b|route|base_?url|baseurl"
)
_PATH_INTERP_RE = re2.compile(r"/(?:\$\{|\{)([^}]+)\}")
_CHAIN_TAIL_RE = re2.compile(r"([A-Za-z_]\w*)\s*(?:\(\s*\))?\s*$")


# A route declaration's path: Express/Koa `router.get("/p/:ssn"`, Flask/FastAPI `@app.get("/p/<ssn>")`, Spring
# `@GetMapping("/p/{ssn}")`, ASP.NET `[HttpGet("p/{ssn}")]`, gin `r.GET("/p/:ssn"`, net/http `HandleFunc("GET /p/{ssn}"`
_ROUTE_DECL_RE = re2.compile(
    r"(?:\b(?:router|app|api|bp|blueprint|r|g|e|mux|group|v\d|\w+Router|\w+_router|\w+_bp|\w+)\s*\.\s*"
    r"(?:get|post|put|patch|delete|all|route|api_route|GET|POST|PUT|PATCH|DELETE|Get|Post|Put|Patch|Delete|HandleFunc|Handle|"
    r"MapGet|MapPost|MapPut|MapDelete)|@(?:Get|Post|Put|Patch|Delete|Request)Mapping|\[\s*Http(?:Get|Post|Put|Patch|Delete)|"
    r"\[\s*Route)\s*\(\s*(?:value\s*=\s*|path\s*=\s*)?[\"'`]([^\"'`\n]*)[\"'`]"
)
_PATH_PARAM_RE = re2.compile(r"(?::([A-Za-z_]\w*)|\{([A-Za-z_]\w*)(?::[^}]*)?\}|<(?:\w+:)?([A-Za-z_]\w*)>)")
_ROUTE_PHI_TERMS = frozenset({
    "dob", "date_of_birth", "birth_date", "birthdate", "birthday", "dateofbirth", "full_name", "first_name",
    "last_name", "given_name", "family_name", "fullname", "firstname", "lastname", "patient_name", "patientname",
}) | _FULL_IDENTIFIERS


def _phi_route_params(ctx: FileContext) -> Iterator[Hit]:
    """A route whose path carries an SSN, a date of birth or a name: every request for it writes that value to
    proxy, load-balancer and server access logs and to browser history."""
    for ln in ctx.scan(_ROUTE_DECL_RE.pattern, lower=False):
        if ln.new_no is None or is_comment(ln.text) or not any(c in ln.text for c in ":{<"):
            continue
        m = _ROUTE_DECL_RE.search(ln.text)
        if m is None:
            continue
        for pm in _PATH_PARAM_RE.finditer(m.group(1)):
            name = pm.group(1) or pm.group(2) or pm.group(3)
            term = ctx.vocabulary.phi_term(name)
            if term in _ROUTE_PHI_TERMS:
                yield Hit(ln.new_no, f"The route puts PHI (`{term}`) in the URL path, which proxies, load balancers, "
                                     "access logs and browser history record. Take it in a POST body over TLS, or look "
                                     "the patient up by an opaque id.")
                break


def _params_dict_hits(ctx: FileContext, post: list[DiffLine], i: int, text: str, flow: object) -> Iterator[Hit]:
    """A query-parameter dictionary opening on post[i] (`params: {`, `urlencode({`) whose entries carry PHI, by key
    (`dob: ...`) or by value (`q: \`${visit.patient.addressLine1}\``)."""
    vocab = ctx.vocabulary
    pm = _PARAMS_DICT_RE.search(text)
    if pm is None:
        return
    span, starts = balanced_span(post, i, pm.end() - 1, max_lines=10)
    for km in _DICT_KEY_RE.finditer(span):
        key = km.group(1) or km.group(2)
        term = vocab.phi_term(key)
        value = span[km.end(): km.end() + 120].split(",")[0]
        if value.lstrip()[:1] in ("`", "'", '"', "f") and "\n" in span[km.end(): km.end() + 200]:
            value = span[km.end(): km.end() + 200].split("\n")[0]  # a literal may hold commas
        if term is None and "." in value:
            # `q: \`${visit.patient.addressLine1}, ...\``: the key says nothing, the value is PHI
            term = next((d for _, d in phi_chains(value, vocab, flow.record_vars, flow.phi_vars)  # type: ignore[attr-defined]
                         if d not in _RECIPIENT_TERMS and d != "patient record"), None)
            if term is not None and vocab.is_weak(term):
                term = term if _has_phi_arg(value, ctx, flow) else None  # type: ignore[arg-type]
        if term is None or term in _RECIPIENT_TERMS:
            continue
        if vocab.is_weak(term) and not _has_phi_arg(value, ctx, flow):  # type: ignore[arg-type]
            continue
        target = post[i + line_at(starts, km.start())]
        if target.kind == "+":
            yield Hit(target.new_no or 1, f"PHI (`{term}`) is sent as a URL query parameter, which "
                      "proxies and access logs record. Send it in a POST body over TLS or use an opaque id.")
            return


def _params_dicts_opened_above(ctx: FileContext) -> Iterator[Hit]:
    """`params: {` on an unchanged line with a PHI entry added inside it."""
    hints = ctx.phi_hint_lines
    for ln in ctx.scan(_PARAMS_DICT_RE.pattern, added_only=False, lower=False):
        if ln.kind == "+" or ln.new_no is None:
            continue
        where = ctx.position(ln.new_no)
        hunk = ctx.hunk_of(ln.new_no)
        if where is None or hunk is None:
            continue
        post, i = where
        if not any(x.kind == "+" and x.new_no in hints for x in post[i + 1: i + 10]):
            continue
        yield from _params_dict_hits(ctx, post, i, ln.text, flow_at(ctx, hunk, post, i))


def _identifiers_in_url_paths(ctx: FileContext) -> Iterator[Hit]:
    """A full government identifier (SSN, national id, passport number) as a URL path segment: like a query
    string, the path is written to proxy, load-balancer and server access logs and to browser history."""
    hints = ctx.phi_hint_lines
    vocab = ctx.vocabulary
    for ln in ctx.scan(_PATH_SEGMENT_CANDIDATE, lower=False):
        if ln.new_no not in hints or not _may_name_full_identifier(ln.text) or _URL_CONTEXT_RE.search(ln.text) is None:
            continue
        m = mask(ln.text)
        term: str | None = None
        for s in m.strings:
            if "/" not in s.content:
                continue
            exprs = [x.group(1) for x in _PATH_INTERP_RE.finditer(s.content)] if s.formatted else []
            after = m.masked[s.end: s.end + 120].lstrip()
            if s.content.endswith("/") and after.startswith("+"):
                exprs.append(re2.split(r"[\s+)\];,]", after[1:].lstrip())[0])  # "/members/" + member.ssn
            if "/%s" in s.content or "/%v" in s.content:
                exprs.extend(IDENTIFIER_RE.findall(after.split(")")[0]))  # fmt.Sprintf("%s/members/%s", base, m.SSN)
            for expr in exprs:
                tail = _CHAIN_TAIL_RE.search(expr.split("|")[0].split(":")[0])
                found = vocab.phi_term(tail.group(1)) if tail is not None else None
                if found in _FULL_IDENTIFIERS:
                    term = found
                    break
            if term is not None:
                break
        if term is not None:
            yield Hit(ln.new_no or 1, f"PHI (`{term}`) is put in a URL path, which proxies, browsers and access logs "
                                      "record like a query string. Send it in a POST body over TLS, or look the person "
                                      "up by an opaque id.")


_HOLE_RE = re2.compile(r"\$?\{\s*([A-Za-z_][\w.]*)\s*(?:[!:][^}]*)?\}")


def _holds_phi(expr: str, vocab: object, flow: HunkFlow) -> bool:
    """A bare name the window binds to a PHI value, or a chain that names a PHI term outright."""
    if "." not in expr:
        return expr in flow.phi_vars
    term = vocab.phi_in_chain(expr.split("."), flow.record_vars)  # type: ignore[attr-defined]
    return term is not None and term != "patient record"


def _has_phi_arg(rest: str, ctx: FileContext, flow: HunkFlow) -> bool:
    return any(True for _ in phi_chains(rest, ctx.vocabulary, flow.record_vars, flow.phi_vars))


# A response marked storable by shared caches (CDNs, proxies): `Cache-Control: public` (as a header call, a
# header-dict assignment `headers["Cache-Control"] = "public, ..."` or ASP.NET's `Headers.CacheControl = ...`),
# Django's `cache_control(public=True)`, Flask's `cache_control.public = True`, Rails' `expires_in ..., public: true`,
# Spring's `.cachePublic()`, ASP.NET's `ResponseCacheLocation.Any`.
_PUBLIC_CACHE_RE = re2.compile(
    r"(?i)cache-?control[\"'`]?\s*\]?\s*[,:=]\s*[\"'`]?[^\"'`\n]*\bpublic\b|\bcache_control\s*\([^)\n]*\bpublic\s*=\s*True|"
    r"\bcache_control\s*\.\s*public\s*=\s*True|\bexpires_in\b[^\n]*\bpublic:\s*true|"
    r"\.cachePublic\s*\(|ResponseCacheLocation\s*\.\s*Any\b|CacheControlHeaderValue\s*\{[^}\n]*\bPublic\s*=\s*true"
    # (not Django's @cache_page: a view that touches the session gets `Vary: Cookie`, so its cache is per user)
)
# ASP.NET Core's `[ResponseCache(Duration = N)]` with no Location is `Location = Any`: public. It is private
# only with `Location = Client`/`None` or `NoStore = true`; a named profile is judged where it is defined.
_RESPONSE_CACHE_DEFAULT_RE = re2.compile(r"\[\s*ResponseCache\s*\(\s*Duration\s*=")
_RESPONSE_CACHE_SCOPED = ("Location", "NoStore", "CacheProfileName")
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
# reference data served to everyone (a drug formulary, a provider directory) names medications or clinics but no
# one's record; it is cacheable unless the response is also tied to a patient or member
_CATALOGUE_WORDS = frozenset({"formulary", "catalog", "catalogue", "directory", "glossary", "reference", "codes",
                              "codeset", "valueset", "terminology", "faq", "locations", "providers"})
_PERSONAL_WORDS = frozenset({"patient", "patients", "mrn", "chart", "charts", "encounter", "encounters", "member",
                             "members", "claim", "claims", "visit", "visits", "me", "my", "user", "record", "records"})


def _check_public_cache(ctx: FileContext) -> Iterator[Hit]:
    """A response that carries patient data marked cacheable by shared caches (CDN, proxy): anyone behind the
    same cache may be served it, and it outlives the session."""
    if ctx.is_test or ctx.language not in CODE:
        return
    for ln in ctx.lines_with("public", "location.any", "location = responsecachelocation", "responsecache("):
        if ln.new_no is None or is_comment(ln.text):
            continue
        if _PUBLIC_CACHE_RE.search(ln.text) is None and (
            _RESPONSE_CACHE_DEFAULT_RE.search(ln.text) is None or any(k in ln.text for k in _RESPONSE_CACHE_SCOPED)
        ):
            continue
        where = ctx.position(ln.new_no)
        if where is None:
            continue
        post, i = where
        if _STATIC_CACHE_RE.search("\n".join(x.text for x in post[max(0, i - 3): i + 3])):
            continue
        window = "\n".join(x.text for x in post[max(0, i - _CACHE_WINDOW): i + _CACHE_WINDOW])
        words = set(words_of(window))
        if _CACHED_PHI_WORDS.isdisjoint(words):
            continue
        if not _CATALOGUE_WORDS.isdisjoint(words) and _PERSONAL_WORDS.isdisjoint(words):
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
    yield from _all_fields_serializers(ctx)
    if ctx.file.status == "added":
        return  # the other shapes compare with removed lines; a new file has none
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
    yield from _unhidden_fields(ctx)
    yield from _unmapped_responses(ctx)
    yield from _unprojected_returns(ctx)


# A success response whose value is one bare name: `res.json(patient)`, `return Ok(patient)`,
# `ResponseEntity.ok(patient)`, `c.JSON(http.StatusOK, patient)`, `json.NewEncoder(w).Encode(patient)`; group 1 is
# everything before the value (the call), group 2 the name.
_BARE_RESPONSE_RE = re2.compile(
    r"((?:\b(?:res|resp|response|reply|ctx|c)\s*(?:\.\s*status\s*\(\s*\d+\s*\)\s*)?\.\s*(?:json|send|JSON|IndentedJSON|"
    r"PureJSON)\s*\(\s*(?:[\w.]+\s*,\s*)?|\bOk\s*\(\s*|\bResponseEntity\s*\.\s*ok\s*\(\s*|\.\s*Encode\s*\(\s*|"
    r"\bResults\s*\.\s*(?:Ok|Json)\s*\(\s*|\bTypedResults\s*\.\s*Ok\s*\(\s*|\bjsonify\s*\(\s*))([A-Za-z_]\w*)\s*\)"
)


# `return jsonable_encoder(patient)` / `return patient` in a route handler; group 1 the name
_RETURN_RECORD_RE = re2.compile(
    r"^\s*return\s+((?:(?:JsonResponse|JSONResponse|jsonify|Response)\s*\(\s*(?:content\s*=\s*)?)?"
    r"(?:(?:jsonable_encoder|model_to_dict|asdict|vars)\s*\(\s*)?)([A-Za-z_]\w*)\s*\)*\s*;?\s*$"
)
_ROUTE_DECORATOR_RE = re2.compile(r"^\s*@(?:\w+\.)?(?:get|post|put|patch|delete|route|api_route|api_view|action)\b")


def _unprojected_returns(ctx: FileContext) -> Iterator[Hit]:
    """A route handler that returned a schema or serializer of a record (`PatientSummary.model_validate(patient)`,
    `PatientOut.from_orm(patient)`) now returns the record itself (`jsonable_encoder(patient)`, `patient`)."""
    vocab = ctx.vocabulary
    for block in blocks(ctx):
        if not block.removed or not block.added:
            continue
        for ln in block.added:
            m = _RETURN_RECORD_RE.search(ln.text) if "return" in ln.text else None
            if m is None or ln.new_no is None or not vocab.is_record(m.group(2)):
                continue
            name = m.group(2)
            projected = re2.compile(r"^\s*return\s+[\w.]+\s*\((?:[^()]*\()?[^()]*\b" + re2.escape(name) + r"\b")
            if not any(projected.search(r.text) and _RETURN_RECORD_RE.search(r.text) is None for r in block.removed):
                continue
            where = ctx.position(ln.new_no)
            if where is None:
                continue
            post, i = where
            if not m.group(1) and not any(_ROUTE_DECORATOR_RE.search(x.text) for x in post[max(0, i - 15): i]):
                continue
            yield Hit(ln.new_no, f"The handler now returns the `{name}` record itself where it returned a schema of it, "
                                 "so every column goes to the caller. Return the response model with only the fields "
                                 "the caller needs.")


def _unmapped_responses(ctx: FileContext) -> Iterator[Hit]:
    """A response that returned a record through a mapper or DTO (`toPatientSummary(patient)`,
    `_mapper.Map<CheckInDto>(patient)`, `PatientView.from(patient)`) now returns the entity itself: every
    column of it, identifiers, insurance and address included, goes to the caller."""
    vocab = ctx.vocabulary
    candidates = {x.new_no for x in ctx.scan(_BARE_RESPONSE_RE.pattern, lower=False)}
    if not candidates:
        return
    for block in blocks(ctx):
        if not block.removed or not block.added:
            continue
        for ln in block.added:
            if ln.new_no not in candidates:
                continue
            m = _BARE_RESPONSE_RE.search(ln.text)
            if m is None or not vocab.is_record(m.group(2)):
                continue
            name = m.group(2)
            call = re2.escape(m.group(1).strip().split("(", 1)[0].strip())
            mapped = re2.compile(call + r"\s*\(.*\b" + re2.escape(name) + r"\b")
            if not any(mapped.search(r.text) and not re2.search(r"\(\s*(?:[\w.]+\s*,\s*)?" + re2.escape(name) + r"\s*\)\s*;?\s*$", r.text)
                       for r in block.removed):
                continue
            yield Hit(ln.new_no, f"The response now returns the `{name}` entity itself where it returned a mapped "
                                 "view of it, so every field of the record goes to the caller. Return the DTO with only "
                                 "the fields the caller needs.")


# DRF `class Meta: model = Patient; fields = "__all__"`: every column of the model, present and future, goes out.
_ALL_FIELDS_RE = re2.compile(r"""^\s*fields\s*=\s*["']__all__["']""")
_META_MODEL_RE = re2.compile(r"^\s*model\s*=\s*(?:[\w.]+\.)?([A-Z]\w*)\s*$")
_SERIALIZER_CLASS_RE = re2.compile(r"^\s*class\s+\w+\s*\([^)]*(?:Serializer|Schema)\b")
# A field kept out of the serialized response: Jackson/System.Text.Json/Newtonsoft `JsonIgnore`, class-transformer
# `@Exclude()`, Gson `@Expose(serialize = false)`, Go's `json:"-"` tag, DRF/pydantic write-only, NestJS `select: false`.
_HIDDEN_FIELD_RE = re2.compile(
    r"@JsonIgnore\b|\[JsonIgnore\b|@Exclude\s*\(|@Expose\s*\(\s*serialize\s*=\s*false|json:\"-\"|"
    r"(?i:write_?only\s*[=:]\s*true)|WRITE_ONLY|\bexclude\s*=\s*True|select:\s*false"
)


def _all_fields_serializers(ctx: FileContext) -> Iterator[Hit]:
    """A serializer of a patient model that now lists `fields = "__all__"`: the response carries every column,
    identifiers and dates included, and any column added later."""
    vocab = ctx.vocabulary
    for ln in ctx.scan("__all__", lower=False):
        if ln.new_no is None or _ALL_FIELDS_RE.search(ln.text) is None:
            continue
        where = ctx.position(ln.new_no)
        if where is None:
            continue
        post, i = where
        around = post[max(0, i - 8): i + 4]
        model = next((m.group(1) for x in around if (m := _META_MODEL_RE.search(x.text))), None)
        if model is None or not vocab.is_record(model):
            continue
        header = ctx.enclosing_header(ln.new_no)
        if not any(_SERIALIZER_CLASS_RE.search(x.text) for x in post[max(0, i - 8): i]) and "Serializer" not in header:
            continue  # a ModelForm's fields are what the user may edit, not what a response returns
        yield Hit(ln.new_no, f"The `{model}` serializer now returns every field of the record (`fields = \"__all__\"`), "
                             "identifiers and dates included. List only the fields the caller needs.")


def _unhidden_fields(ctx: FileContext) -> Iterator[Hit]:
    """A PHI field that was kept out of serialized responses (`@JsonIgnore`, `json:"-"`, write-only) no longer is."""
    vocab = ctx.vocabulary
    if _HIDDEN_FIELD_RE.search(ctx.removed_text()) is None:
        return  # one pass over the removed text: most diffs unhide nothing
    for block in blocks(ctx):
        if not block.removed or not block.added:
            continue
        if not any(_HIDDEN_FIELD_RE.search(x.text) for x in block.removed):
            continue
        if any(_HIDDEN_FIELD_RE.search(x.text) for x in block.added):
            continue
        first = block.added[0]
        where = ctx.position(first.new_no or 0)
        if where is None:
            continue
        post, i = where
        # the field the marker annotated: the first declaration from the block on, past its annotations
        term = None
        for x in post[i: i + len(block.added) + 2]:
            text = x.text.strip()
            if not text or is_comment(x.text) or (text.startswith(("@", "[")) and "json:" not in text):
                continue
            head = text.split("`", 1)[0].split("=", 1)[0]
            for name in IDENTIFIER_RE.findall(head):
                found = vocab.phi_term(name)
                if found is not None and not vocab.is_weak(found):
                    term = found
                    break
            break
        if term is None:
            continue
        yield Hit(first.new_no or 1, f"`{term}` was kept out of serialized responses and now is not, so every "
                                     "response that returns this object carries it. Keep it hidden, or return a DTO "
                                     "with only the fields the caller needs.")


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
            "internal/alerts/mailer.go::func (m *Mailer) Missed(p Patient) error {\n\tmsg := gomail.NewMessage()\n"
            "\tmsg.SetBody(\"text/plain\", fmt.Sprintf(\"%s (MRN %s) missed dialysis\", p.FullName, p.MRN))",
            "alerts/teams.py::card = pymsteams.connectorcard(settings.TEAMS_WEBHOOK)\n"
            "card.text(f\"{patient.full_name}: {encounter.working_diagnosis}\")",
            "portal/settings/sentry.py::sentry_sdk.init(\n    dsn=os.environ[\"SENTRY_DSN\"],\n    send_default_pii=True,\n)",
            "server/billing/denials.js::    from: \"billing@riverside.org\",\n    to: VENDOR_ADDRESS,\n    subject: `Denied claim ${claim.number}`,\n"
            "    text: `Patient ${claim.patient.fullName}, SSN ${claim.patient.ssn}`,",
            "functions/src/push.ts::await admin.messaging().send({\n  token,\n  notification: {\n"
            "    body: `${patient.firstName}, your ${result.testName} is ${result.interpretation}`,\n  },\n});",
            "server/src/push/reminders.ts::const message: ExpoPushMessage = {\n  to: pushToken,\n  title: 'Appointment tomorrow',\n"
            "  body: `${appt.startsAt.toLocaleTimeString()} about ${appt.reason}`,\n};",
            "ews/paging.py::    \"routing_key\": routing_key,\n    \"event_action\": \"trigger\",\n    \"payload\": {\n"
            "        \"summary\": f\"Rapid response: {patient.full_name} in bed {bed}\",",
            "outreach/crm.py::resp = await client.post(CRM_URL, json={\n    \"segment\": program.code,\n"
            "    \"condition\": patient.primary_diagnosis.description,\n})",
            "Alerts/CriticalResultNotifier.cs::var card = new\n{\n    text = $\"Critical {result.TestCode} for {patient.FullName}\",\n};\n"
            "await _http.PostAsJsonAsync(_webhook, card, ct);",
            "portal/src/analytics/labs.ts::gtag(\"event\", \"lab_result_viewed\", {\n  result_id: result.id,\n"
            "  test_name: result.testName,\n});",
            "portal/notifications/summary_mail.py::    message = Mail(\n        from_email=\"no-reply@harbor.org\",\n"
            "        to_emails=patient.email,\n        subject=f\"Your visit summary: {appointment.reason}\",\n    )",
            "portal/src/support/intercom.ts::Intercom(\"update\", { email: patient.email, name: patient.name });",
            "alerts/sepsis.py::    p = encounter.patient\n    requests.post(\n        SLACK_WEBHOOK,\n"
            "        json={\"text\": f\"Sepsis score {score} for {p.full_name}, MRN {p.mrn}\"},\n    )",
        ),
        counterexamples=(
            "internal/alerts/mailer.go::func (m *Mailer) Missed(p Patient, day string) error {\n\tmsg := gomail.NewMessage()\n"
            "\tmsg.SetBody(\"text/plain\", fmt.Sprintf(\"A patient missed the %s session\", day))",
            "alerts/teams.py::card = pymsteams.connectorcard(settings.TEAMS_WEBHOOK)\ncard.text(f\"Bed {encounter.bed}: open the chart\")",
            "portal/settings/sentry.py::sentry_sdk.init(\n    dsn=os.environ[\"SENTRY_DSN\"],\n    send_default_pii=False,\n)",
            "server/billing/denials.js::    from: \"billing@riverside.org\",\n    to: claim.patient.email,\n    subject: `Denied claim ${claim.number}`,\n"
            "    text: `Claim ${claim.number} was denied; details are in the portal.`,",
            "functions/src/push.ts::await admin.messaging().send({\n  token,\n  notification: { title: 'New result', body: 'Open the app to view it.' },\n"
            "  data: { resultId: result.id },\n});",
            "server/src/push/reminders.ts::const message: ExpoPushMessage = {\n  to: pushToken,\n  title: 'Appointment tomorrow',\n"
            "  body: `You have an appointment at ${appt.startsAt.toLocaleTimeString()}`,\n};",
            "ews/paging.py::    \"routing_key\": routing_key,\n    \"event_action\": \"trigger\",\n    \"payload\": {\n"
            "        \"summary\": f\"Rapid response needed in bed {bed}\",",
            "outreach/crm.py::resp = await client.post(CRM_URL, json={\n    \"segment\": program.code,\n"
            "    \"external_id\": patient.id,\n})",
            "cms/articles.ts::const article = {\n  title: draft.title,\n  body: `${result.summary}`,\n  slug: draft.slug,\n};",
            "Alerts/CriticalResultNotifier.cs::var card = new\n{\n    text = $\"Critical {result.TestCode} on unit {result.UnitCode}\",\n};\n"
            "await _http.PostAsJsonAsync(_webhook, card, ct);",
            "Intake/Store.cs::var row = new\n{\n    text = $\"{patient.FullName}\",\n};\nawait _db.InsertAsync(row, ct);",
            "web/confirm.ts::analytics.track(\"booked\", { clinic: appt.clinicId });",
            "portal/src/analytics/labs.ts::gtag(\"event\", \"lab_result_viewed\", {\n  result_id: result.id,\n"
            "  status: result.status,\n});",
            "portal/notifications/summary_mail.py::    message = Mail(\n        from_email=\"no-reply@harbor.org\",\n"
            "        to_emails=patient.email,\n        subject=f\"Your visit on {appointment.starts_at:%b %d}\",\n    )",
            "portal/src/support/intercom.ts::Intercom(\"update\", { user_id: patient.id });",
            "fax/staging.js::const file = path.join(dir, `${record.id}.json`);\nfs.writeFileSync(file, JSON.stringify(record));",
            "alerts/sepsis.py::    requests.post(\n        SLACK_WEBHOOK,\n"
            "        json={\"text\": f\"Sepsis score {score} in room {encounter.room}\"},\n    )",
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
        keywords=("=", "param", "query", "/"),
        check=_check_urls,
        examples=(
            "id/verify.go::endpoint := fmt.Sprintf(\"%s/v2/match?ssn=%s&dob=%s\", c.BaseURL, ssn, dob)",
            "web/api.ts::const url = `${base}/lookup?mrn=${patient.mrn}`;",
            "src/Client.java::builder.queryParam(\"birthDate\", patient.getBirthDate());",
            "web/api.ts::const res = await http.get(`/eligibility/members/${member.ssn}`);",
            "client/verify.py::resp = requests.get(BASE_URL + \"/identity/\" + applicant.ssn, timeout=10)",
            "homecare/geocode.py::def locate(patient):\n    address = f\"{patient.address_line1}, {patient.city} {patient.postal_code}\"\n"
            "    return requests.get(f\"{GEOCODER_URL}?q={address}&key={KEY}\", timeout=5)",
            "server/routes/feedback.js::res.redirect(`${SURVEY_URL}?ref=${visit.id}&reason=${encodeURIComponent(visit.reason)}`);",
            "portal/intake/routes.py::return redirect(url_for(\"intake.confirm\", name=patient.full_name, dob=patient.dob.isoformat()))",
            "web/src/homecare/route.ts::const { data } = await axios.get(GEOCODER_URL, {\n  params: {\n"
            "    q: `${visit.patient.addressLine1}, ${visit.patient.city}`,\n  },\n});",
            "server/src/routes/lookup.ts::lookup.get(\"/patients/by-ssn/:ssn\", requireStaff, async (req, res) => {",
            "api/Members.java::@GetMapping(\"/members/by-dob/{dateOfBirth}\")",
        ),
        counterexamples=(
            "web/api.ts::const res = await http.get(`/eligibility/members/${member.id}`);",
            "jobs/export.py::with open(f\"/exports/{patient.ssn_hash}.csv\", \"w\") as fh:",
            "homecare/geocode.py::def locate(clinic):\n    address = f\"{clinic.street}, {clinic.city}\"\n"
            "    return requests.get(f\"{GEOCODER_URL}?q={address}&key={KEY}\", timeout=5)",
            "web/api.ts::const url = `${base}/slots?clinic=${clinicId}&page=${page}`;",
            "web/api.ts::const url = \"/search?ssn=\";",
            "web/api.ts::const url = `${base}/notify?email=${patient.email}`;",
            "server/routes/feedback.js::res.redirect(`${SURVEY_URL}?ref=${visit.surveyToken}`);",
            "portal/intake/routes.py::return redirect(url_for(\"intake.confirm\", intake_id=patient.id))",
            "web/src/homecare/route.ts::const { data } = await axios.get(GEOCODER_URL, {\n  params: {\n"
            "    q: `${visit.clinic.addressLine1}, ${visit.clinic.city}`,\n  },\n});",
            "server/src/routes/lookup.ts::lookup.get(\"/patients/:patientId\", requireStaff, async (req, res) => {",
            "api/Members.java::@GetMapping(\"/members/{memberId}/coverage\")",
        ),
    ),
    Rule(
        id="PHI-OUT-003",
        category="phi-exposure-output",
        severity="high",
        message="An error response returns a stack trace, exception internals, the request body or a patient "
        "record to the caller. Return a generic error with a correlation id; log details server-side, redacted.",
        regulations=_REG_OUT,
        keywords=("json", "send", "response", "error", "status", "encode", "body", "abort", "problem", "content",
                  "exception"),
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
            "web/ApiErrors.kt::@ExceptionHandler(Exception::class)\nfun unhandled(ex: Exception): ResponseEntity<ErrorBody> =\n"
            "    ResponseEntity(ErrorBody(\"internal_error\", ex.stackTraceToString()), HttpStatus.INTERNAL_SERVER_ERROR)",
            "src/intake/intake.controller.ts::    } catch (e) {\n      if (e instanceof IntakeValidationError) {\n"
            "        throw new BadRequestException({ message: e.message, field: e.field, submitted: dto });",
            "api/routes/referrals.py::    except referrals.DuplicateReferral:\n"
            "        raise HTTPException(status_code=409, detail={\"msg\": \"duplicate\", \"input\": payload.dict()})",
            "internal/intake/handler.go::\tif err := h.svc.Validate(sub); err != nil {\n"
            "\t\tmsg := fmt.Sprintf(\"intake rejected for %s (born %s): %v\",\n\t\t\tsub.LastName, sub.BirthDate, err)\n"
            "\t\thttp.Error(w, msg, http.StatusUnprocessableEntity)",
            "internal/intake/handler.go::if err := rec.Validate(); err != nil {\n"
            "\thttp.Error(w, fmt.Sprintf(\"invalid intake record %+v: %v\", rec, err), http.StatusUnprocessableEntity)",
            "intake/Routes.kt::} catch (e: IllegalArgumentException) {\n"
            "    call.respond(HttpStatusCode.BadRequest, mapOf(\"error\" to e.message, \"received\" to body))",
            "web/RegistrationErrors.java::@ExceptionHandler(DuplicatePatientException.class)\npublic ProblemDetail duplicate(DuplicatePatientException ex) {\n"
            "    return ProblemDetail.forStatusAndDetail(HttpStatus.CONFLICT, \"Registered: \" + ex.getExisting().getFullName());",
            "api/src/charts/charts.service.ts::if (!chart) {\n"
            "  throw new NotFoundException(`No active chart for ${patient.firstName} ${patient.lastName}, DOB ${patient.birthDate}`);",
            "internal/charts/summary.go::if err != nil {\n\trender.Status(r, http.StatusInternalServerError)\n"
            "\trender.JSON(w, r, ErrResponse{Err: err.Error(), Patient: p})",
            "intake/IntakeHandler.kt::if (problems.isNotEmpty()) {\n"
            "    return ServerResponse.badRequest().bodyValueAndAwait(mapOf(\"problems\" to problems, \"submitted\" to form))",
            "Controllers/RegistrationsController.cs::catch (DuplicatePatientException ex)\n{\n"
            "    return Conflict(new { error = ex.Message, submitted = request });",
        ),
        counterexamples=(
            "internal/intake/handler.go::if err := rec.Validate(); err != nil {\n"
            "\thttp.Error(w, fmt.Sprintf(\"invalid intake: %+v\", err), http.StatusUnprocessableEntity)",
            "intake/Routes.kt::} catch (e: IllegalArgumentException) {\n"
            "    call.respond(HttpStatusCode.BadRequest, mapOf(\"error\" to e.message, \"received\" to receivedAt))",
            "web/RegistrationErrors.java::@ExceptionHandler(DuplicatePatientException.class)\npublic ProblemDetail duplicate(DuplicatePatientException ex) {\n"
            "    return ProblemDetail.forStatusAndDetail(HttpStatus.CONFLICT, \"Patient already registered: \" + ex.getExistingId());",
            "routes/r.js::} catch (err) {\n  res.status(500).json({ error: \"internal_error\", id: req.id });",
            "Api/ReferralsController.cs::return BadRequest(new ProblemDetails { Title = \"Referral rejected\", Detail = ex.Message });",
            "routes/p.py::return jsonify([p.to_dict() for p in problems])",
            "routes/p.py::return jsonify({\"name\": patient.full_name, \"ssn_last4\": patient.ssn_last4})",
            "export/roster.go::func WriteRoster(rows []Patient) error {\n\tf, err := os.Create(path)\n\tif err != nil {\n"
            "\t\treturn err\n\t}\n\tw := csv.NewWriter(f)\n\tfor _, p := range rows {\n"
            "\t\t_ = w.Write([]string{p.MRN, p.FamilyName, p.BirthDate.Format(\"2006-01-02\")})",
            "src/intake/intake.controller.ts::    } catch (e) {\n      if (e instanceof IntakeValidationError) {\n"
            "        throw new BadRequestException({ message: e.message, field: e.field });",
            "api/src/charts/charts.service.ts::if (!chart) {\n  throw new NotFoundException(`No active chart for patient ${patient.id}`);",
            "internal/charts/summary.go::if err != nil {\n\trender.Status(r, http.StatusInternalServerError)\n"
            "\trender.JSON(w, r, ErrResponse{Err: \"summary unavailable\"})",
            "intake/IntakeHandler.kt::if (problems.isNotEmpty()) {\n"
            "    return ServerResponse.badRequest().bodyValueAndAwait(mapOf(\"problems\" to problems))",
            "Controllers/RegistrationsController.cs::catch (DuplicatePatientException ex)\n{\n"
            "    return Conflict(new { error = \"duplicate_patient\", existingId = ex.ExistingId });",
            "internal/intake/handler.go::\tif err := h.svc.Validate(sub); err != nil {\n"
            "\t\tmsg := fmt.Sprintf(\"intake rejected (%d fields): %v\",\n\t\t\tlen(sub.Fields), err)\n"
            "\t\thttp.Error(w, msg, http.StatusUnprocessableEntity)",
        ),
    ),
    Rule(
        id="PHI-OUT-004",
        category="phi-exposure-output",
        severity="high",
        message="A response with patient data is marked cacheable by shared caches. Send `Cache-Control: no-store` "
        "for PHI responses.",
        regulations=_REG_OUT,
        keywords=("cache", "expires_in"),
        check=_check_public_cache,
        examples=(
            "src/routes/documents.ts::router.get('/documents/:id/download', requireUser, async (req, res) => {\n"
            "  const doc = await documents.getForUser(req.params.id, req.user.id);\n"
            "  res.set('Cache-Control', 'public, max-age=86400');",
            "labs/views.py::@cache_control(public=True, max_age=3600)\ndef lab_result_pdf(request, result_id):",
            "Api/ChartsController.cs::[ResponseCache(Duration = 600, Location = ResponseCacheLocation.Any)]\n"
            "public async Task<IActionResult> GetChart(string patientId)",
            "Api/SummaryController.cs::[Route(\"api/patients/{patientId:guid}/summary\")]\npublic class SummaryController\n{\n"
            "    [HttpGet]\n    [ResponseCache(Duration = 300)]\n    public async Task<IActionResult> Get(Guid patientId)",
            "api/visits.py::@router.get(\"/visits/{visit_id}\")\nasync def get_visit(visit_id: str, response: Response):\n"
            "    response.headers[\"Cache-Control\"] = \"public, max-age=600\"",
            "app/controllers/results_controller.rb::def show\n  @result = current_patient.lab_results.find(params[:id])\n"
            "  expires_in 1.hour, public: true",
        ),
        counterexamples=(
            "web/static.ts::app.use('/assets', express.static(dir, { setHeaders: (res) => res.set('Cache-Control', 'public, max-age=31536000') }));",
            "src/app.js::app.use('/static', express.static(dir, {\n  setHeaders: (res) => res.set('Cache-Control', 'public, max-age=31536000, immutable'),\n}));\n"
            "app.use('/api/patients', patients);",
            "labs/views.py::@login_required\n@cache_page(60 * 15)\ndef lab_results(request, patient_id):",
            "src/routes/documents.ts::router.get('/documents/:id/download', requireUser, async (req, res) => {\n"
            "  res.set('Cache-Control', 'private, no-store');",
            "Api/FormularyController.cs::[AllowAnonymous]\n[Route(\"api/formulary/medications\")]\npublic class FormularyController\n{\n"
            "    [HttpGet]\n    [ResponseCache(Duration = 3600)]\n    public async Task<IActionResult> Search(string q) => Ok(await _f.SearchAsync(q));",
            "Api/SummaryController.cs::[Route(\"api/patients/{patientId:guid}/summary\")]\npublic class SummaryController\n{\n"
            "    [HttpGet]\n    [ResponseCache(Duration = 60, Location = ResponseCacheLocation.Client)]\n"
            "    public async Task<IActionResult> Get(Guid patientId)",
            "api/visits.py::@router.get(\"/visits/{visit_id}\")\nasync def get_visit(visit_id: str, response: Response):\n"
            "    response.headers[\"Cache-Control\"] = \"private, no-store\"",
        ),
    ),
    Rule(
        id="PHI-OUT-005",
        category="phi-exposure-output",
        severity="medium",
        message="A response that returned one field of a patient record now returns the whole record. Return only "
        "the fields the caller needs.",
        regulations=_REG_OUT,
        keywords=("json", "send", "response", "return", "jsonify", "ok(", "__all__", "exclude", "write_only",
                  "writeonly", "select: false"),
        check=_check_widened_responses,
        examples=(
            "diff --git a/routes/kiosk.js b/routes/kiosk.js\n--- a/routes/kiosk.js\n+++ b/routes/kiosk.js\n"
            "@@ -13,4 +13,4 @@\n   res.json({\n     time: appt.startsAt,\n-    patientInitials: appt.patient.initials,\n"
            "+    patient: appt.patient,\n   });\n",
            "census/api/serializers.py::class PatientListSerializer(serializers.ModelSerializer):\n    class Meta:\n"
            "        model = Patient\n        fields = \"__all__\"",
            "diff --git a/src/main/java/org/h/Member.java b/src/main/java/org/h/Member.java\n--- a/src/main/java/org/h/Member.java\n"
            "+++ b/src/main/java/org/h/Member.java\n@@ -8,3 +8,3 @@ public class Member {\n     private String planCode;\n"
            "-    @JsonIgnore\n+    @JsonProperty(\"ssn\")\n     private String ssn;\n",
            "diff --git a/internal/members/model.go b/internal/members/model.go\n--- a/internal/members/model.go\n"
            "+++ b/internal/members/model.go\n@@ -4,3 +4,3 @@ type Member struct {\n \tPlan string `json:\"plan\"`\n"
            "-\tSSN  string `json:\"-\"`\n+\tSSN  string `json:\"ssn\"`\n \tName string `json:\"name\"`\n",
            "diff --git a/server/routes/patients.js b/server/routes/patients.js\n--- a/server/routes/patients.js\n"
            "+++ b/server/routes/patients.js\n@@ -9,3 +9,3 @@ router.get('/patients/:id', requireAuth, async (req, res) => {\n"
            "   if (!patient) return res.sendStatus(404);\n-  res.json(toPatientSummary(patient));\n+  res.json(patient);\n });\n",
            "diff --git a/Api/CheckInController.cs b/Api/CheckInController.cs\n--- a/Api/CheckInController.cs\n"
            "+++ b/Api/CheckInController.cs\n@@ -20,3 +20,3 @@ public class CheckInController : ControllerBase\n"
            "         if (patient is null) return NotFound();\n-        return Ok(_mapper.Map<CheckInDto>(patient));\n"
            "+        return Ok(patient);\n     }\n",
            "diff --git a/frontdesk/routes.py b/frontdesk/routes.py\n--- a/frontdesk/routes.py\n+++ b/frontdesk/routes.py\n"
            "@@ -10,4 +10,4 @@\n @router.get(\"/front-desk/patients/{patient_id}\")\n def lookup(patient_id: int, db=Depends(get_session)):\n"
            "     patient = db.get(Patient, patient_id)\n-    return PatientSummary.model_validate(patient)\n+    return jsonable_encoder(patient)\n",
            "diff --git a/kiosk/views.py b/kiosk/views.py\n--- a/kiosk/views.py\n+++ b/kiosk/views.py\n"
            "@@ -10,3 +10,3 @@\n def checkin_lookup(request):\n     patient = Patient.objects.get(mrn=request.GET[\"mrn\"])\n"
            "-    return JsonResponse({\"first_name\": patient.first_name})\n+    return JsonResponse(model_to_dict(patient))\n",
        ),
        counterexamples=(
            "intake/forms.py::class PatientForm(forms.ModelForm):\n    class Meta:\n        model = Patient\n        fields = \"__all__\"",
            "scheduling/serializers.py::class ClinicSerializer(serializers.ModelSerializer):\n    class Meta:\n"
            "        model = Clinic\n        fields = \"__all__\"",
            "diff --git a/src/main/java/org/h/Member.java b/src/main/java/org/h/Member.java\n--- a/src/main/java/org/h/Member.java\n"
            "+++ b/src/main/java/org/h/Member.java\n@@ -8,3 +8,3 @@ public class Member {\n     private String planCode;\n"
            "-    @JsonIgnore\n+    @JsonProperty(\"synced_at\")\n     private Instant lastSyncedAt;\n",
            "diff --git a/server/routes/patients.js b/server/routes/patients.js\n--- a/server/routes/patients.js\n"
            "+++ b/server/routes/patients.js\n@@ -9,3 +9,3 @@ router.get('/patients/:id', requireAuth, async (req, res) => {\n"
            "   if (!patient) return res.sendStatus(404);\n-  res.json(patient);\n+  res.json(toPatientSummary(patient));\n });\n",
            "diff --git a/server/routes/patients.js b/server/routes/patients.js\n--- a/server/routes/patients.js\n"
            "+++ b/server/routes/patients.js\n@@ -9,3 +9,3 @@ router.get('/patients/:id', requireAuth, async (req, res) => {\n"
            "   if (!patient) return res.sendStatus(404);\n-  res.status(200).json(patient);\n+  res.json(patient);\n });\n",
            "diff --git a/routes/kiosk.js b/routes/kiosk.js\n--- a/routes/kiosk.js\n+++ b/routes/kiosk.js\n"
            "@@ -13,4 +13,4 @@\n   res.json({\n     time: appt.startsAt,\n-    patient: appt.patient,\n"
            "+    patientInitials: appt.patient.initials,\n   });\n",
            "diff --git a/frontdesk/repo.py b/frontdesk/repo.py\n--- a/frontdesk/repo.py\n+++ b/frontdesk/repo.py\n"
            "@@ -10,3 +10,3 @@\n def load(patient_id: int, db):\n"
            "     patient = db.get(Patient, patient_id)\n-    return PatientRow.from_orm(patient)\n+    return patient\n",
        ),
    ),
)
