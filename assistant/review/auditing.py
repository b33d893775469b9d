"""Missing audit: every read or change of ePHI leaves an audit record that cannot be edited away.

The commonest way a change loses auditing is by deleting a line -- the audit
call folded away in a refactor, an audit middleware swapped out, a trigger
dropped -- so the central rule here is structural: a removed line that
audited, replaced by added lines that do not, anchored on the first added
line of that change block (where a reviewer looks). The rest are line rules
for auditing switched off in configuration and audit tables made mutable,
and one for a new handler that skips the audit call its siblings make.
"""

from __future__ import annotations

from collections.abc import Iterator

from assistant.review import re2fast as re2
from assistant.diffs import DiffLine
from assistant.review._structure import (
    Block,
    index_in,
    indent_of,
    named_setting_off,
    udiff,
    DOC_LANGUAGES,
    added_normalized,
    anchor_for_removal,
    blocks,
    is_comment,
    nested_switch_off,
    normalized,
    post_lines,
    words_of,
)
from assistant.review.base import Hit, Rule
from assistant.review.context import FileContext

REGULATIONS = ("HIPAA 164.312(b)", "21 CFR 11.10(e)")
_COMMENT = r"^\s*(?:#|//|/\*|\*|<!--)"

# What an audit call, decorator, middleware or sink looks like, in any language.
AUDIT_RE = re2.compile(
    r"(?i)audit|record_?access|log_?access|access_?event|accesslog|access_log|phi_?access|disclosure_?log|"
    r"track_?access|access_?trail|hipaa_?log|disclosure|activity_?log"
)
_IMPORT_RE = re2.compile(
    r"^\s*(?:import\s|from\s+\S+\s+import\s|using\s|#include|require\(|(?:const|let|var)\s+(?:\w+|\{[^}]*\})\s*=\s*require\()"
)
_DEFINITION_WORDS = ("def ", "class ", "func ", "function ", "interface ", "type ", "async def ")


_IMPORT_SPEC_RE = re2.compile(r'^\s*(?:[\w.]+\s+)?"[^"\s]+"\s*$')  # a Go import spec inside `import ( ... )`


def _audit_line(text: str) -> bool:
    """A removed line that performs auditing (not a comment, an import or the definition of an audit helper)."""
    stripped = text.strip()
    if not stripped or is_comment(text) or _IMPORT_RE.search(text) or stripped.startswith(_DEFINITION_WORDS):
        return False
    if _IMPORT_SPEC_RE.search(text):
        return False
    return AUDIT_RE.search(text) is not None


# A name declared with an audit type (`BalpAuditCaptureInterceptor balp`, `rec: AuditRecorder`, `rec *audit.Recorder`):
# `server.registerInterceptor(balp)` registers the audit component though no word on the line says so.
_AUDIT_TYPED_NAME_RE = re2.compile(
    r"\b(?:[A-Z]\w*)?(?:Audit|Balp|Atna)\w*(?:<[^<>()]*>)?\??\s+([a-z_]\w*)\s*[,)=;]|"  # Java/C#: `AuditSink sink,`
    r"\b([a-z_]\w*)\s*:\s*(?:readonly\s+)?(?:[A-Z]\w*)?(?:Audit|Balp|Atna)\w*\b|"  # Python/TS/Kotlin: `sink: AuditSink`
    r"\b([a-z_]\w*)\s+\*?(?:\w*[aA]udit\w*\.[A-Z]\w*|(?:[A-Z]\w*)?Audit\w*)\s*[,)]"  # Go: `rec *audit.Recorder,`
)


def _audit_typed_names(ctx: FileContext) -> frozenset[str]:
    """Identifiers the visible lines of this file declare with an audit type (parameters, fields)."""
    names: set[str] = set()
    for hunk in ctx.file.hunks:
        for ln in hunk.lines:
            if "udit" not in ln.text and "Balp" not in ln.text and "Atna" not in ln.text or is_comment(ln.text):
                continue
            for m in _AUDIT_TYPED_NAME_RE.finditer(ln.text):
                name = next((g for g in m.groups() if g), None)
                if name and not AUDIT_RE.search(name) and name not in ("self", "this", "_"):
                    names.add(name)
    return frozenset(names)


def _uses_audit_name(text: str, names: frozenset[str]) -> bool:
    """The line passes or calls a name declared with an audit type (not a comment, an import or a definition)."""
    if not names or is_comment(text) or _IMPORT_RE.search(text) or text.strip().startswith(_DEFINITION_WORDS):
        return False
    return any(re2.search(r"\b" + name + r"\b", text) for name in names if name in text)


_CONDITION_RE = re2.compile(r"^\s*(?:\}\s*else\s+)?(?:if|unless|when|elif|else\s+if)\b")
# guards that only skip a missing record or a failed call: the audit still covers every access that happened
_NULL_GUARD_RE = re2.compile(
    r"(?i)\b(?:is\s+not\s+None|is\s+None|!=\s*nil|==\s*nil|!==?\s*(?:null|undefined)|===?\s*(?:null|undefined)|"
    r"!=\s*null|==\s*null|ok\b|err\b|error\b|success\w*|succeeded|\.ok\b|exists?\b|found\b)|"
    r"^\s*(?:if|when)\s*\(?\s*!?\s*\w+\s*\)?\s*(?::|\{)?\s*$"  # `if chart:` -- not `if user.is_staff:`
)


def _new_guard(block: Block, gone: list[DiffLine]) -> DiffLine | None:
    """The added `if` that an unchanged audit call now sits under (`if not user.is_staff:` + the old call,
    indented): auditing bypassed on a code path. Null/error guards do not count."""
    added = block.added
    for old in gone:
        key = normalized(old.text)
        for ln in added:  # `if (process.env.AUDIT_MODE !== "off") auditLog.emit(...)`: the guard on the call's own line
            text = normalized(ln.text)
            if (text != key and text.endswith(key) and _CONDITION_RE.search(ln.text) and ln.new_no is not None
                    and _NULL_GUARD_RE.search(ln.text[: len(ln.text) - len(old.text.strip())]) is None):
                return ln
        for k, ln in enumerate(added):
            if normalized(ln.text) != key or indent_of(ln.text) <= indent_of(old.text):
                continue
            for cond in reversed(added[:k]):
                if not cond.text.strip():
                    continue
                if (_CONDITION_RE.search(cond.text) and indent_of(cond.text) < indent_of(ln.text)
                        and _NULL_GUARD_RE.search(cond.text) is None and cond.new_no is not None):
                    return cond
                break
    return None


_DEF_NAME_RE = re2.compile(
    r"^\s*(?:(?:async\s+)?def|func(?:\s*\([^)]*\))?|function|(?:(?:public|private|protected|internal|static|async|"
    r"override|virtual|final)\s+)+[\w<>\[\],.?]+)\s+([A-Za-z_]\w*)\s*\("
)


def _deleted_with_its_function(block: Block, gone: list[DiffLine], ctx: FileContext) -> bool:
    """Whether every removed audit line sits in a function whose definition is removed in the same block
    and not re-added anywhere in the file (a retired function, not a rewritten one)."""
    names: list[str | None] = []
    current: str | None = None
    for ln in block.removed:
        m = _DEF_NAME_RE.search(ln.text) if "(" in ln.text else None
        if m:
            current = m.group(1)
        names.append(current)
    where = {id(ln): names[i] for i, ln in enumerate(block.removed)}
    owners = {where.get(id(ln)) for ln in gone}
    if None in owners:
        return False
    added = "\n".join(ln.text for ln in block.added)
    if _DATA_ACCESS_RE.search(added) or not _PHI_RESOURCE_WORDS.isdisjoint(words_of(added)):
        return False  # what replaces it reads or names patient data: a rename that lost its audit step
    for ln in ctx.added:
        m = _DEF_NAME_RE.search(ln.text) if "(" in ln.text else None
        if m and m.group(1) in owners:
            return False
    return True


_ACTOR_RE = re2.compile(r"\b(?:user|actor|principal|caller|current_user|me|identity|claims|userId|user_id|actorId|actor_id)\b")
_CALL_ARGS_RE = re2.compile(r"\b\w+\s*\(([^()\n]*)\)")


_EVENT_LITERAL_RE = re2.compile(r"""["']([A-Za-z_]+[.:][\w.:\-]+)["']""")


# a metrics counter, a trace span or a log line keeps the event's name but is no audit record
_NOT_A_RECORD_RE = re2.compile(
    r"(?i)\b(?:metrics?|stats?d?|counter|gauge|histogram|prom\w*|telemetry|tracer|span|otel|log|logger|logging|slog|zap|"
    r"zerolog|console)\s*\.|\.(?:Inc|Add|Observe|Incr|Increment|Count|Timing|Gauge)\s*\("
)


def _same_event_call(block: Block, gone: list[DiffLine], ctx: FileContext) -> bool:
    """The removed audit call is replaced by a call under another name that records the same event: it carries the
    same event literal (`action="order.cancel"`), or calls a name imported from an audit module (`from ehr.audit.trail
    import trail` ... `trail.emit(...)`). A metrics counter or a log line named for the event does not count."""
    events = {e for ln in gone for e in _EVENT_LITERAL_RE.findall(ln.text)}
    helpers = ctx.memo("audit-helper-names", lambda: _audit_helper_names(ctx))
    for ln in block.hunk.lines:
        if ln.kind != "+" or is_comment(ln.text) or "(" not in ln.text:
            continue
        if _NOT_A_RECORD_RE.search(ln.text) and not AUDIT_RE.search(ln.text):
            continue
        if events and any(e in events for e in _EVENT_LITERAL_RE.findall(ln.text)):
            return True
        if any(f"{name}(" in ln.text or f"{name}." in ln.text for name in helpers):
            return True
    return False


def _delegated_with_actor(block: Block, gone: list[DiffLine]) -> bool:
    """The read and its audit left this function together: the removed lines read the data and audited it, the
    added lines read nothing themselves and hand the audited actor to a service call (`svc.list_for_patient(user,
    pid)`), which now does both -- and is reviewed where it is written."""
    if not any(_DATA_ACCESS_RE.search(ln.text) for ln in block.removed if ln not in gone):
        return False
    if any(_DATA_ACCESS_RE.search(ln.text) for ln in block.added):
        return False
    actors = set(_ACTOR_RE.findall("\n".join(ln.text for ln in gone)))
    if not actors:
        return False
    for ln in block.added:
        for args in _CALL_ARGS_RE.findall(ln.text):
            if actors.intersection(_ACTOR_RE.findall(args)):
                return True
    return False


# Spring Data "auditing" stamps created/modified by/at on the row: record metadata, not an audit trail of access
_RECORD_METADATA_RE = re2.compile(
    r"\bAuditingEntityListener\b|@EnableJpaAuditing|\bAuditorAware\b|@(?:CreatedBy|LastModifiedBy|CreatedDate|LastModifiedDate)\b"
)


# a Python import inside a function (`AppConfig.ready()`: `from ehr.audit import receivers  # noqa: F401`) is made for
# its side effect, registering the audit signal receivers: removing it unhooks auditing
_REGISTERING_IMPORT_RE = re2.compile(r"^\s+(?:from\s+[\w.]*audit[\w.]*\s+import\s|import\s+[\w.]*audit)")


def _removed_audit(ctx: FileContext) -> Iterator[Hit]:
    """An audit call, decorator or middleware entry removed and not replaced in the same change."""
    if ctx.is_test or ctx.language in DOC_LANGUAGES or "audit" in ctx.path.lower():
        return
    moved: set[str] | None = None
    typed = ctx.memo("audit-typed-names", lambda: _audit_typed_names(ctx))
    for block in blocks(ctx):
        gone = [ln for ln in block.removed if _audit_line(ln.text) or _uses_audit_name(ln.text, typed)
                or ctx.language == "python" and _REGISTERING_IMPORT_RE.search(ln.text) is not None]
        if not gone:
            continue
        guard = _new_guard(block, gone)
        if guard is not None:
            yield Hit(
                guard.new_no,  # type: ignore[arg-type]
                f"The audit step `{gone[0].text.strip()[:80]}` now runs only when `{guard.text.strip()[:80]}` holds, so "
                "reads and changes on the other path leave no audit record. Audit every access unconditionally.",
            )
            continue
        if any((_audit_line(ln.text) or _uses_audit_name(ln.text, typed)
                or ctx.language == "python" and _REGISTERING_IMPORT_RE.search(ln.text) is not None)
               and _AUDIT_OFF_RE.search(ln.text) is None
               and not (_RECORD_METADATA_RE.search(ln.text) and not any(_RECORD_METADATA_RE.search(g.text) for g in gone))
               for ln in block.hunk.lines if ln.kind == "+"):
            continue  # the audit call is still there, rewritten (a line switching auditing off replaces nothing)
        if _same_event_call(block, gone, ctx):
            continue  # another call records the same event (`trail.emit(actor=.., action="order.cancel", ..)`)
        if moved is None:
            moved = added_normalized(ctx)
        if all(normalized(ln.text) in moved for ln in gone):
            continue  # moved elsewhere in the file
        if _deleted_with_its_function(block, gone, ctx):
            continue  # the whole function that audited is gone: nothing is left to read the data unaudited
        if _delegated_with_actor(block, gone):
            continue  # the read and its audit moved together behind a service call that gets the actor
        anchor = anchor_for_removal(block)
        if anchor is not None:
            what = gone[0].text.strip()
            yield Hit(
                anchor,
                f"This change removes the audit step `{what[:80]}` and nothing replaces it, so access to or "
                "changes of patient data here are no longer recorded. Keep the audit call/decorator/middleware "
                "(or add an equivalent one) so every PHI read and write leaves an audit record.",
            )


_REMOVED_AUDIT = Rule(
    id="AUD-001",
    category="missing-audit",
    severity="high",
    message=(
        "An audit call, decorator or middleware is removed without a replacement, so PHI access here is no longer "
        "recorded. Keep the audit step or add an equivalent one."
    ),
    regulations=REGULATIONS,
    keywords=("audit", "access", "disclosure", "hipaa_log"),
    check=_removed_audit,
    examples=(
        udiff('ehr/meds.py', ' def active_orders(self, user, patient_id):', '-    orders = self.repo.for_patient(patient_id)', '-    self.audit.record(actor=user.id, action="medication.list", patient_id=patient_id)', '-    return orders', '+    return self.repo.for_patient(patient_id)', ' '),
        udiff('ehr/settings.py', ' MIDDLEWARE = [', '-    "ehr.audit.middleware.AuditTrailMiddleware",', '+    "ehr.metrics.middleware.TimingMiddleware",', ' ]'),
        udiff('ehr/charts.py', '     return chart', ' ', ' ', '-def legacy_chart(user, patient_id):', '-    chart = LegacyChart.for_patient(patient_id)',
              '-    audit_event(user, "legacy_chart.view", patient_id)', '-    return chart', '+def fetch_chart(user, patient_id):',
              '+    return Chart.for_patient(patient_id)'),
        udiff('ehr/settings.py', ' MIDDLEWARE = [', '-    "ehr.audit.middleware.AuditTrailMiddleware",', '+    "ehr.metrics.middleware.TimingMiddleware",', ' ]',
              ' ', '+AUDIT_ENABLED = env.bool("AUDIT_ENABLED", default=False)'),
        udiff('app/routes/notes.py', ' @router.get("/patients/{pid}/notes")',
              '-def list_notes(pid: int, user=Depends(current_user), db=Depends(get_session)):',
              '-    notes = db.query(Note).filter(Note.patient_id == pid).all()', '-    audit_event(user.id, "notes.list", pid)',
              '-    return notes', '+def list_notes(pid: int, user=Depends(current_user)):',
              '+    return load_notes(pid)'),
        udiff('ehr/orders/services.py', ' def cancel(user, order):', '     order.cancel()',
              '-    audit_log.record(actor=user.id, action="order.cancel", patient_id=order.patient_id)',
              '+    order.save(update_fields=["status"])', '     return order'),
        udiff('clinic/charts/views.py', ' def view_chart(request, chart_id):', '     chart = Chart.objects.for_user(request.user).get(pk=chart_id)',
              '-    audit_log(request.user, "chart.view", chart.patient_id)', '+    if not request.user.is_staff:',
              '+        audit_log(request.user, "chart.view", chart.patient_id)', '     return render_chart(chart)'),
        udiff('api/controllers/charts.js', '   const chart = await charts.findByPatient(req.params.patientId);',
              '-  auditLog.emit("chart.view", { actor: req.user.id, patientId: chart.patientId });',
              '+  if (process.env.AUDIT_MODE !== "off") auditLog.emit("chart.view", { actor: req.user.id, patientId: chart.patientId });',
              '   res.json(chart);'),
        udiff('internal/chart/handler.go', ' \tchart, err := h.store.Chart(ctx, id)', '-\th.audit.Record(ctx, user, "chart.view", chart.PatientID)',
              '+\tif !user.IsInternal() {', '+\t\th.audit.Record(ctx, user, "chart.view", chart.PatientID)', '+\t}', ' \treturn chart, nil'),
        udiff('ehr/patients/apps.py', '     def ready(self):', '         from . import signals  # noqa: F401',
              '-        from ehr.audit import receivers  # noqa: F401', '+        from ehr.metrics import collectors  # noqa: F401'),
        udiff('ehr/notes/ClinicalNote.java', ' @Entity', ' @Table(name = "clinical_notes")', '-@EntityListeners(PhiAuditListener.class)',
              '+@EntityListeners(AuditingEntityListener.class)', ' public class ClinicalNote {'),
        udiff('internal/chart/medications.go', ' \t\treturn', ' \t}', '-\th.audit.Log(r.Context(), user.ID, "chart.medications.view", patientID)',
              '+\th.metrics.Inc("chart.medications.view")', ' \t_ = json.NewEncoder(w).Encode(meds)'),
        udiff('fhir/config/FhirServerConfig.java',
              '     public void customize(RestfulServer server, BalpAuditCaptureInterceptor balp, SmartScopeInterceptor scopes) {',
              '         server.registerInterceptor(scopes);', '-        server.registerInterceptor(balp);',
              '+        server.registerInterceptor(new ResponseHighlighterInterceptor());', '     }'),
    ),
    counterexamples=(
        udiff('portal/labs.py', ' def labs(patient_id):', '-    audit_event("labs.view", actor=current_user.id, patient_id=patient_id)', '+    audit_event("labs.view", actor=current_user.id, patient_id=patient_id, source="portal")', '     return results'),
        udiff('portal/labs.py', ' def labs(patient_id):', '     results = repo.labs(patient_id)', '-    audit_event("labs.view", actor=current_user.id, patient_id=patient_id)',
              '+    if results is not None:', '+        audit_event("labs.view", actor=current_user.id, patient_id=patient_id)', '     return results'),
        udiff('ehr/notes.py', ' def save(note):', '-    # TODO: audit', '+    # audited by the repository', '     repo.save(note)'),
        udiff('ehr/orders/services.py', ' def cancel(user, order):', '     order.cancel()',
              '-    audit_log.record(actor=user.id, action="order.cancel", patient_id=order.patient_id)',
              '+    trail.emit(actor=user.id, action="order.cancel", patient_id=order.patient_id)', '     return order'),
        udiff('api/controllers/charts.js', '   const chart = await charts.findByPatient(req.params.patientId);',
              '-  auditLog.emit("chart.view", { actor: req.user.id, patientId: chart.patientId });',
              '+  if (chart) auditLog.emit("chart.view", { actor: req.user.id, patientId: chart.patientId });',
              '   res.json(chart);'),
        udiff('ehr/charts.py', '     return chart', ' ', ' ', '-def legacy_chart(user, patient_id):', '-    chart = LegacyChart.for_patient(patient_id)',
              '-    audit_event(user, "legacy_chart.view", patient_id)', '-    return chart', '+def ping():', '+    return {"ok": True}'),
        udiff('app/routes/notes.py', ' @router.get("/patients/{pid}/notes")',
              '-def list_notes(pid: int, user=Depends(current_user), db=Depends(get_session)):',
              '-    notes = db.query(Note).filter(Note.patient_id == pid).all()', '-    audit_event(user.id, "notes.list", pid)',
              '-    return notes', '+def list_notes(pid: int, user=Depends(current_user), svc: NoteService = Depends()):',
              '+    return svc.list_for_patient(user, pid)'),
        udiff('src/app.js', " const helmet = require('helmet');", "-const { auditTrail } = require('./middleware/audit');",
              "+const compression = require('compression');", " const patients = require('./routes/patients');"),
        udiff('fhir/config/FhirServerConfig.java',
              '     public void customize(RestfulServer server, BalpAuditCaptureInterceptor balp, SmartScopeInterceptor scopes) {',
              '-        server.registerInterceptor(scopes);', '+        server.registerInterceptor(new ResponseHighlighterInterceptor());',
              '         server.registerInterceptor(balp);', '     }'),
        udiff('ehr/patients/apps.py', '     def ready(self):', '-        from ehr.audit import receivers  # noqa: F401',
              '+        from ehr.audit import receivers, exports  # noqa: F401'),
        udiff('ehr/notes/ClinicalNote.java', ' @Entity', ' @Table(name = "clinical_notes")',
              '-@EntityListeners(AuditingEntityListener.class)', '+@EntityListeners({AuditingEntityListener.class, PhiAuditListener.class})',
              ' public class ClinicalNote {'),
        udiff('fhir/config/FhirServerConfig.java',
              '     public void customize(RestfulServer server, BalpAuditCaptureInterceptor balp) {',
              '-        server.registerInterceptor(balp);', '+        server.registerInterceptor(balp, InterceptorOrders.EARLY);', '     }'),
    ),
)

_FALSE_VALUE = r"""["']?\s*(?:=|:|=>)\s*["']?(?:False|false|FALSE|off|Off|OFF|no|No|none|None|NONE|disabled?|Disabled?|0)["']?\s*(?:[,;})\]#]|//|$)"""

_AUDIT_DISABLED = Rule(
    id="AUD-002",
    category="missing-audit",
    severity="high",
    message=(
        "Auditing is switched off or bypassed here, so reads and changes of ePHI leave no audit trail. "
        "Keep audit logging enabled in every environment (production above all) and do not add code paths "
        "that skip it."
    ),
    regulations=REGULATIONS,
    keywords=("audit", "skip_history_when_saving"),
    pattern=(
        r"(?i)\b[\w.\-]*audit[\w.\-]*" + _FALSE_VALUE
        + r"|(?i)\b(?:disable|skip|bypass|suppress|no|mute|without)[_\-.]?audit\w*[\"']?\s*(?:=|:|=>)\s*[\"']?"
        r"(?:true|yes|on|1)\b"
        r"|(?i)\baudit\w*?[_.\-]?(?:disabled|suspended|paused|bypassed)[\"']?\s*(?:=|:|=>)\s*[\"']?(?:true|yes|on|1)\b"
        # an audit switch read from the environment/config whose default is off: off wherever nobody sets it
        r"|(?i)[\"'][\w.\-]*audit[\w.\-]*[\"']\s*,\s*(?:default\s*=\s*|defaultValue\s*=\s*)?[\"']?"
        r"(?:false|off|no|disabled?)[\"']?\s*\)"
        r"|(?i)\$\{[\w.\-]*audit[\w.\-]*:\s*(?:false|off|no)\s*\}"
        r"|(?i)\baudit\w*\.(?:disable|pause|suspend|stop|mute|off|bypass|skip|silence)\w*\s*\("
        r"|(?i)[@\[]\s*(?:skip|no|disable|bypass|exempt|suppress)_?audit\w*|audit_?exempt"
        r"|(?i)\b(?:skip|bypass|suppress|without|no)_?audit(?:ing)?\s*\("
        # Rails `audited`: `Patient.without_auditing do`; django-simple-history: `p.skip_history_when_saving = True`
        r"|\.without_auditing\b|\bskip_history_when_saving\s*=\s*True\b"
        r"|(?i)\bAUDIT\b[^;\n]*\bSTATE\s*=\s*OFF\b"
        # the audit sink bound to a do-nothing implementation (DI registration, a factory, a field)
        r"|\b(?:Null|NoOp|Noop|Nop|Fake|Dummy|Disabled|Stub|Silent|Discard)\w*Audit\w*(?:\s*[>(]|\s*\.\s*(?:class|Instance|INSTANCE)\b)"
        # the audit receiver unhooked from a model's signals (around a bulk import), or the model unregistered
        r"|(?i)\.disconnect\s*\(\s*(?:receiver\s*=\s*)?[\w.]*audit\w*|\bauditlog\s*\.\s*unregister\s*\("
        r"|(?i)getLogger\(\s*[\"'][\w.]*audit[\w.]*[\"']\s*\)\.(?:setLevel\(\s*(?:logging\.)?"
        r"(?:CRITICAL|FATAL|ERROR|WARNING|WARN|50|40|30|100)|disabled\s*=\s*True)"
        # the audit logger raised above the level audit records are written at (INFO): they are dropped
        r"|(?i)[\"'][\w.\-]*audit[\w.\-]*[\"']\s*:\s*\{[^}\n]*[\"']level[\"']\s*:\s*[\"'](?:WARNING|WARN|ERROR|CRITICAL|FATAL|OFF)[\"']"
        r"|(?i)\blogging\.level\.[\w.\-]*audit[\w.\-]*\s*[=:]\s*(?:error|warn|warning|fatal|off)\b"
        # the audit logger's records sent nowhere (a NullHandler)
        r"|(?i)[\"'][\w.\-]*audit[\w.\-]*[\"']\s*:\s*\{[^}\n]*[\"']handlers[\"']\s*:\s*\[\s*[\"'](?:null|nullhandler|discard|devnull)[\"']\s*\]"
        r"|(?i)getLogger\(\s*[\"'][\w.]*audit[\w.]*[\"']\s*\)\.(?:addHandler\(\s*(?:logging\.)?NullHandler\(|handlers\s*=\s*\[\s*(?:logging\.)?NullHandler\()"
        r"|(?i)<logger\s+name\s*=\s*[\"'][\w.\-]*audit[\w.\-]*[\"'][^>\n]*\blevel\s*=\s*[\"'](?:OFF|ERROR|WARN)[\"']"
    ),
    unless=(
        _COMMENT,
        r"(?i)\b(?:disable|skip|bypass|suppress|no|mute|without)[_\-.]?audit\w*[\"']?\s*(?:=|:|=>)\s*[\"']?"
        r"(?:false|off|no|0)\b",
        r"(?i)[\"'{][\w.\-]*(?:disable|skip|bypass|suppress|no|mute|without)[_\-.]?audit[\w.\-]*[\"':]",
        r"(?i)audit\w*?[_.\-]?(?:disabled|suspended|paused|bypassed)[\"']?\s*(?:=|:|=>)\s*[\"']?(?:false|no|off|0)\b",
    ),
    examples=(
        "src/Records.Api/ServiceRegistration.cs::        services.AddSingleton<IAuditSink, NullAuditSink>();",
        "ehr/wiring.py::audit = NoopAuditLog()",
        "ehr/patients/imports.py::    post_save.disconnect(audit_patient_change, sender=Patient)",
        "ehr/apps.py::        auditlog.unregister(Patient)",
        "src/main/resources/application-prod.properties::ehr.audit.enabled=false",
        ".env.production::AUDIT_LOG_ENABLED=false",
        "ehr/records.py::    repo.update(record, audit=False)",
        "ehr/views.py::@skip_audit",
        "api/chart.ts::  auditLogger.disable();",
        "db/audit.sql::ALTER SERVER AUDIT EhrAudit WITH (STATE = OFF);",
        "ehr/logging.py::logging.getLogger(\"ehr.audit\").setLevel(logging.CRITICAL)",
        "clinic/settings.py::PHI_ACCESS_AUDIT_ENABLED = env.bool(\"PHI_ACCESS_AUDIT_ENABLED\", default=False)",
        "ehr/logging_config.py::        \"ehr.audit\": {\"handlers\": [\"audit_file\"], \"level\": \"WARNING\"},",
        "ehr/settings/logging.py::        \"ehr.audit\": {\"handlers\": [\"null\"], \"level\": \"INFO\", \"propagate\": False},",
        "ehr/logging.py::logging.getLogger(\"ehr.audit\").addHandler(logging.NullHandler())",
        "src/Harbor.Ehr/AuditSetup.cs::        Configuration.AuditDisabled = true;",
        "src/main/resources/application.properties::logging.level.org.lakeside.ehr.audit=ERROR",
        "src/main/resources/logback-spring.xml::  <logger name=\"org.lakeside.ehr.audit\" level=\"OFF\"/>",
        "ehr/config.py::AUDIT_ON = os.getenv(\"EHR_AUDIT_ENABLED\", \"false\") == \"true\"",
        "src/main/java/org/x/AuditConfig.java::    @Value(\"${ehr.audit.enabled:false}\") boolean auditEnabled;",
        "app/services/chart_merge.rb::    Patient.without_auditing do",
        "ehr/patients/merge.py::    patient.skip_history_when_saving = True",
    ),
    counterexamples=(
        "src/Records.Api/ServiceRegistration.cs::        services.AddScoped<IAuditSink, KafkaAuditSink>();",
        "ehr/patients/imports.py::        post_save.connect(audit_patient_change, sender=Patient)",
        "src/main/resources/application-prod.properties::ehr.audit.enabled=true",
        "ehr/config.py::SKIP_AUDIT = False",
        "ehr/views.py::    audit.record(actor=user.id, action=\"chart.view\")",
        "config/app.yaml::  # audit: false is only allowed in local dev",
        "clinic/settings.py::PHI_ACCESS_AUDIT_ENABLED = env.bool(\"PHI_ACCESS_AUDIT_ENABLED\", default=True)",
        "ehr/config.py::SKIP_AUDIT = env.bool(\"SKIP_AUDIT\", default=False)",
        "ehr/logging_config.py::        \"ehr.audit\": {\"handlers\": [\"audit_file\"], \"level\": \"INFO\"},",
        "ehr/settings/logging.py::        \"ehr.metrics\": {\"handlers\": [\"null\"], \"level\": \"INFO\"},",
        "src/Harbor.Ehr/AuditSetup.cs::        Configuration.AuditDisabled = false;",
        "src/main/resources/application.properties::logging.level.org.lakeside.ehr.audit=INFO",
        "src/main/java/org/x/AuditConfig.java::    @Value(\"${ehr.audit.enabled:true}\") boolean auditEnabled;",
        "src/main/java/org/x/AuditConfig.java::    @Value(\"${ehr.skip-audit:false}\") boolean skipAudit;",
        "app/services/chart_merge.rb::    Patient.with_auditing do",
        "ehr/patients/merge.py::    patient.skip_history_when_saving = False",
    ),
)

_AUDIT_OFF_RE = re2.compile(_AUDIT_DISABLED.pattern or "")
_AUDIT_TOPIC = re2.compile(r"audit|cloudtrail|(?:^|[._\-])trail(?:$|[._\-])|access_?log")


def _nested_audit_off(ctx: FileContext) -> Iterator[Hit]:
    for ln, parents in nested_switch_off(ctx, _AUDIT_TOPIC):
        if ln.new_no is not None:
            yield Hit(
                ln.new_no,
                f"Auditing is switched off under `{'.'.join(parents)}`, so PHI access leaves no audit trail. "
                "Keep audit logging enabled (in production above all).",
            )


_NESTED_AUDIT_OFF = Rule(
    id="AUD-003",
    category="missing-audit",
    severity="high",
    message="Auditing is switched off in configuration. Keep audit logging enabled.",
    regulations=REGULATIONS,
    languages=frozenset({"yaml", "terraform", "json", "toml"}),
    keywords=("audit", "trail", "access_log", "accesslog"),
    check=_nested_audit_off,
    examples=(
        udiff('app-prod.yml', ' ehr:', '   audit:', '-    enabled: true', '+    enabled: false', '     sink: kafka'),
    ),
    counterexamples=(
        udiff('app-prod.yml', ' ehr:', '   audit:', '-    enabled: false', '+    enabled: true', '     sink: kafka'),
        udiff('app-prod.yml', ' ehr:', '   audit:', '     sink: kafka', '   beta:', '-    enabled: true', '+    enabled: false'),
    ),
)

_AUDIT_TABLE = r"[\w.\"`\[\]]*(?:audit|hist|journal|trail|changelog|change_log)"

_AUDIT_TAMPER = Rule(
    id="AUD-004",
    category="missing-audit",
    severity="high",
    message=(
        "This removes or weakens the audit trail at the database: an audit trigger is dropped or disabled, or audit "
        "records become deletable or editable. Audit records must be append-only: keep the trigger, grant the "
        "application role INSERT/SELECT only on audit tables, and purge them only through a controlled retention job."
    ),
    regulations=REGULATIONS,
    keywords=("trigger", "audit", "replica", "noaudit", "accessevent", "access_event", "accesslog", "access_log", "disclosure"),
    pattern=(
        r"(?i)\bDROP\s+TRIGGER\s+(?:IF\s+EXISTS\s+)?" + _AUDIT_TABLE
        + r"|(?i)\bDISABLE\s+TRIGGER\s+(?:ALL\b|" + _AUDIT_TABLE + r")"
        r"|(?i)session_replication_role\s*(?:=|TO)\s*'?replica"
        r"|(?i)\bGRANT\b[^;\n]*\b(?:DELETE|UPDATE|TRUNCATE|ALL)\b[^;\n]*\bON\b[^;\n]*audit"
        r"|(?i)\b(?:DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|UPDATE)\s+[\w.\"`\[\]]*audit"
        r"|(?i)\bDROP\s+(?:RULE|POLICY)\s+(?:IF\s+EXISTS\s+)?[\w.\"]*(?:audit|immutable|append_only|no_delete|no_update)"
        r"|(?i)\bDROP\s+EXTENSION\s+(?:IF\s+EXISTS\s+)?pgaudit|\bNOAUDIT\b"
        r"|(?i)\b(?:audit\w*|\w*access_?(?:event|log)s?|disclosure_?(?:event|log)s?)\b[^;#\n]{0,160}\.(?:delete|deleteAll|deleteMany|deleteBy\w*|removeRange|destroy|truncate|"
        r"delete_many|bulk_delete)\s*\("
        # SQLAlchemy Core: `s.execute(delete(AuditEvent).where(AuditEvent.created_at < cutoff))`
        r"|\b(?:delete|update)\(\s*[\w.]*(?i:audit)\w*\s*\)\s*\.\s*(?:where|values)\b"
    ),
    unless=(_COMMENT, r"(?i)^\s*--"),
    examples=(
        "ehr/audit/tasks.py::    AccessEvent.objects.filter(occurred_at__lt=cutoff).delete()",
        "db/migrations/V42.sql::DROP TRIGGER IF EXISTS patients_audit_trg ON patients;",
        "db/migrations/V42.sql::GRANT SELECT, INSERT, UPDATE, DELETE ON audit_log TO ehr_app;",
        "db/migrations/V43.sql::ALTER TABLE encounters DISABLE TRIGGER ALL;",
        "ops/purge.py::AuditEvent.objects.filter(at__lt=cutoff).delete()",
        "jobs/cleanup.py::        s.execute(delete(AuditEvent).where(AuditEvent.created_at < now - AUDIT_RETENTION))",
    ),
    counterexamples=(
        "ehr/audit/tasks.py::    AccessEvent.objects.filter(occurred_at__lt=cutoff).count()",
        "db/migrations/V42.sql::GRANT SELECT, INSERT ON audit_log TO ehr_app;",
        "db/migrations/V42.sql::DROP TRIGGER IF EXISTS set_updated_at ON patients;",
        "db/migrations/V42.sql::REVOKE UPDATE, DELETE ON audit_log FROM ehr_app;",
        "jobs/cleanup.py::        s.execute(delete(SessionToken).where(SessionToken.expires_at < now))",
    ),
)


# ---------------------------------------------------------------- AUD-005 new handler without the audit its siblings do

_HANDLER_START_RE = re2.compile(
    r"^\s*@\s*[\w.]+\.(?:route|get|post|put|patch|delete|api_route)\(|"
    r"^\s*@(?:Get|Post|Put|Patch|Delete|Request)Mapping\b|^\s*\[\s*Http(?:Get|Post|Put|Patch|Delete)\b|"
    r"^\s*(?:app|router|\w*[rR]outer)\.(?:get|post|put|patch|delete)\(\s*[\"'`]/|"
    r"^\s*func\s*(?:\([^)]*\)\s*)?\w+\s*\(\s*w\s+http\.ResponseWriter|"
    # public repository/service methods (C#, Java) and exported Go methods: a new PHI write beside audited ones
    r"^\s*public\s+(?:(?:async|static|final|synchronized|virtual|override)\s+)*[\w<>\[\],.?]+\s+[A-Za-z_]\w*\s*\(|"
    r"^\s*func\s*\([^)]*\)\s*[A-Z]\w*\s*\(|"
    # Django function and class-based views: `def update_address(request, pk):`, `def post(self, request, pk):`
    r"^\s*(?:async\s+)?def\s+\w+\s*\(\s*(?:self\s*,\s*)?request\s*[,):]|"
    # ASP.NET Core minimal APIs (`group.MapGet("/export", async (...) =>`) and Ktor routes (`get("/patients/{id}") {`)
    r"^\s*[\w.]*\.Map(?:Get|Post|Put|Patch|Delete|Methods)\s*\(\s*\"|"
    r"^\s*(?:get|post|put|patch|delete)\s*\(\s*\"/[^\"]*\"\s*\)\s*\{"
)
# TypeScript/JavaScript class methods (`async listForPatient(userId: string, patientId: string) {`)
_TS_METHOD_RE = re2.compile(
    r"^\s*(?:(?:public|protected)\s+)?(?:async\s+)?([a-z]\w*)\s*\((?:[^()\n]|\([^()\n]*\))*\)\s*(?::\s*[^{\n]+)?\{\s*$"
)
_NOT_METHODS = frozenset({"if", "for", "while", "switch", "catch", "function", "return", "constructor", "with", "do"})


def _is_handler_start(text: str, language: str | None) -> bool:
    if _HANDLER_START_RE.search(text):
        return True
    if language in ("typescript", "javascript") and "(" in text:
        m = _TS_METHOD_RE.search(text)
        return m is not None and m.group(1) not in _NOT_METHODS
    return False


_DATA_ACCESS_RE = re2.compile(
    r"\.objects\.|\.query\b|session\.(?:get|query|execute|add|merge|delete)\b|\.execute\(|\.find\w*\(|"
    r"\.get_or_404\(|\bget_object_or_404\(|\.save\(|\.update\w*\(|\.delete\(|\.insert\w*\(|\.create\(|\brepo\w*\.\w+\(|"
    r"\bstore\.\w+\(|\.(?:Get|Find|Load|Save|Update|Delete|Query|List|Fetch|Read|Search|Select|Export|Insert|Upsert|Remove)"
    r"\w*\(|Repository\.\w+\(|\b_?db\.\w+|\.(?:delete|create|upsert|remove|destroy)\w*\("
)
_WRITE_ACCESS_RE = re2.compile(
    r"\.(?:save|update|delete|insert|create|upsert|remove|destroy|merge|Save|Update|Delete|Insert|Upsert|Remove|Add)\w*\(|"
    r"(?i)\b(?:UPDATE\s+\w+\s+SET|INSERT\s+INTO|DELETE\s+FROM)\b"
)
_PHI_RESOURCE_WORDS = frozenset({
    "patient", "patients", "record", "records", "chart", "charts", "note", "notes", "lab", "labs", "result", "results",
    "encounter", "encounters", "visit", "visits", "prescription", "prescriptions", "medication", "medications",
    "allergy", "allergies", "immunization", "immunizations", "document", "documents", "claim", "claims",
    "diagnosis", "diagnoses", "problem", "problems", "member", "members", "vitals", "observation", "observations",
})


# names a file imports from an audit module (`from ..audit import record`, `import { record } from '../audit'`,
# `const { record } = require('./audit')`): calling one of them is an audit call, whatever it is named
_AUDIT_IMPORT_RE = re2.compile(
    r"^\s*from\s+[\w.]*audit[\w.]*\s+import\s+\(?\s*([\w\s,]+)|"
    r"^\s*import\s*\{([^}]*)\}\s*from\s*[\"'][^\"']*audit[^\"']*[\"']|"
    r"^\s*(?:const|let|var)\s*\{([^}]*)\}\s*=\s*require\(\s*[\"'][^\"']*audit[^\"']*[\"']"
)


def _audit_helper_names(ctx: FileContext) -> frozenset[str]:
    """Helper names this file imports from an audit module, any visible line."""
    names: set[str] = set()
    for hunk in ctx.file.hunks:
        for ln in hunk.lines:
            if ln.kind == "-" or "audit" not in ln.text.lower() or "import" not in ln.text and "require" not in ln.text:
                continue
            m = _AUDIT_IMPORT_RE.search(ln.text)
            if m is None:
                continue
            listed = next(g for g in m.groups() if g is not None)
            for piece in listed.split(","):
                words = piece.replace(":", " ").replace(")", " ").split()
                if words and words[-1].isidentifier():
                    names.add(words[-1])  # `emit as e` / `log: auditLog` bind the last name
    return frozenset(names)


def _calls_audit_helper(text: str, names: frozenset[str]) -> bool:
    return any(f"{name}(" in text for name in names)


def _handler_starts(post: list[DiffLine], language: str | None) -> list[int]:
    """Post-image indexes where a handler begins; a Python `def` right under a route decorator that already starts
    the handler (`@router.get(...)` / `def f(request: Request)`) is part of that handler, not a new one."""
    starts: list[int] = []
    for i, ln in enumerate(post):
        if not _is_handler_start(ln.text, language):
            continue
        if starts and ln.text.lstrip().startswith(("def ", "async def ")):
            k = i - 1
            while k > starts[-1] and post[k].text.lstrip().startswith("@"):
                k -= 1
            if k == starts[-1] and post[k].text.lstrip().startswith("@"):
                continue
        starts.append(i)
    return starts


def _unaudited_new_handler(ctx: FileContext) -> Iterator[Hit]:
    """A new request handler that reads or changes patient data without the audit call its siblings make."""
    if ctx.is_test or ctx.language in DOC_LANGUAGES or "audit" in ctx.path.lower():
        return
    if not any(_is_handler_start(ln.text, ctx.language) for ln in ctx.added):
        return
    for hunk in ctx.file.hunks:
        post = post_lines(hunk)
        starts = _handler_starts(post, ctx.language)
        for n, i in enumerate(starts):
            if post[i].kind != "+":
                continue
            end = starts[n + 1] if n + 1 < len(starts) else len(post)
            body = []
            for ln in post[i:min(end, i + 40)]:
                if ln.kind != "+":
                    break
                body.append(ln)
            # the decorators stacked on it (`@audited("note.view")` above `def note(request, pk):`) belong to it
            lo = i
            while lo > 0 and post[lo - 1].text.lstrip().startswith("@") and post[lo - 1].kind == "+":
                lo -= 1
            text = "\n".join(ln.text for ln in post[lo:i] + body)
            if AUDIT_RE.search(text) or _PHI_RESOURCE_WORDS.isdisjoint(words_of(text)):
                continue
            if _calls_audit_helper(text, ctx.memo("audit-helper-names", lambda: _audit_helper_names(ctx))):
                continue  # audits through a helper imported from the audit module
            inside = {id(ln) for ln in body}
            elsewhere = [ln for h in ctx.file.hunks for ln in h.lines if id(ln) not in inside and not is_comment(ln.text)]
            if not any(AUDIT_RE.search(ln.text) for ln in elsewhere) and not any(
                    AUDIT_RE.search(h.header) for h in ctx.file.hunks):  # git's header may show the audit import
                continue  # this file shows no auditing to be consistent with
            accesses = [ln for ln in body[1:] if _DATA_ACCESS_RE.search(ln.text) and not is_comment(ln.text)]
            # a handler that changes the record is reported where it changes it, not at the lookup before
            access = next((ln for ln in accesses if _WRITE_ACCESS_RE.search(ln.text)), accesses[0] if accesses else None)
            if access is not None and access.new_no is not None:
                yield Hit(access.new_no)


_UNAUDITED_HANDLER = Rule(
    id="AUD-005",
    category="missing-audit",
    severity="medium",
    message=(
        "This new handler reads or changes patient data without an audit record, while the other handlers in this "
        "file record one. Add the same audit call (who, what, which patient, when) so every PHI access is traceable."
    ),
    regulations=REGULATIONS,
    languages=frozenset({"python", "javascript", "typescript", "go", "java", "kotlin", "csharp"}),
    keywords=("audit", "access", "disclosure"),
    check=_unaudited_new_handler,
    examples=(
        udiff("portal/routes.py", ' @bp.get("/patients/<int:pid>/labs")', " @login_required", " def labs(pid):",
              '     audit_event("labs.view", actor=current_user.id, patient_id=pid)', "     return jsonify(load_labs(pid))",
              " ", '+@bp.get("/patients/<int:pid>/notes")', "+@login_required", "+def notes(pid):",
              "+    notes = Note.query.filter_by(patient_id=pid).all()", "+    return jsonify([n.to_dict() for n in notes])"),
        udiff("src/Problems/ProblemRepository.cs", "     public async Task ResolveAsync(int problemId, string userId)", "     {",
              '         await _db.ExecuteAsync("UPDATE problems SET status = 1 WHERE id = @Id", new { Id = problemId });',
              '         await _audit.WriteAsync(userId, "problem.resolve", problemId);', "     }", "+",
              "+    public async Task RecodeAsync(int problemId, string icd10, string userId)", "+    {",
              '+        await _db.ExecuteAsync("UPDATE problems SET icd10_code = @Code WHERE id = @Id", new { Code = icd10, Id = problemId });',
              "+    }"),
        udiff("internal/store/patients.go", " func (r *PatientRepo) Get(ctx context.Context, actor, id string) (*Patient, error) {",
              "     p, err := r.q.GetPatient(ctx, id)", '     r.audit.Log(ctx, audit.Event{Actor: actor, Action: "patient.read", PatientID: id})',
              "     return p, err", " }", "+", "+func (r *PatientRepo) ExportAll(ctx context.Context, actor string) ([]Patient, error) {",
              "+\treturn r.q.ListAllPatients(ctx)", "+}"),
        udiff("apps/api/src/referrals/referrals.service.ts", "   async get(userId: string, id: string) {",
              "     const referral = await this.prisma.referral.findUniqueOrThrow({ where: { id } });",
              '     await this.audit.record(userId, "referral.read", referral.patientId);', "     return referral;", "   }", "+",
              "+  async listForPatient(userId: string, patientId: string) {",
              "+    return this.prisma.referral.findMany({ where: { patientId } });", "+  }"),
        udiff("src/Ehr/Endpoints/ProblemListEndpoints.cs",
              '         group.MapGet("/", async (Guid patientId, EhrDbContext db, IAuditWriter audit, HttpContext http) =>', "         {",
              "             var problems = await db.Problems.Where(p => p.PatientId == patientId).ToListAsync();",
              '             await audit.WriteAsync(http.User, "problem_list.view", patientId);', "             return Results.Ok(problems);",
              "         });", "+", '+        group.MapGet("/export", async (Guid patientId, EhrDbContext db) =>', "+        {",
              "+            var problems = await db.Problems.Where(p => p.PatientId == patientId).ToListAsync();",
              '+            return Results.File(CsvWriter.Write(problems), "text/csv");', "+        });"),
        udiff("ehr/patients/views.py", " def detail(request, pk):", "     patient = get_object_or_404(Patient, pk=pk)",
              '     AccessEvent.objects.create(user=request.user, action="patient.view", patient=patient)',
              '     return render(request, "patients/detail.html", {"patient": patient})', "+",
              '+@permission_required("patients.change_patient")', "+def update_address(request, pk):",
              "+    patient = get_object_or_404(Patient, pk=pk)", "+    form = AddressForm(request.POST, instance=patient)",
              "+    if form.is_valid():", "+        form.save()", '+    return redirect("patients:detail", pk=pk)'),
    ),
    counterexamples=(
        udiff("portal/routes.py", ' @bp.get("/patients/<int:pid>/labs")', " @login_required", " def labs(pid):",
              '     audit_event("labs.view", actor=current_user.id, patient_id=pid)', "     return jsonify(load_labs(pid))",
              " ", '+@bp.get("/patients/<int:pid>/notes")', "+@login_required", "+def notes(pid):",
              "+    notes = Note.query.filter_by(patient_id=pid).all()",
              '+    audit_event("notes.view", actor=current_user.id, patient_id=pid)',
              "+    return jsonify([n.to_dict() for n in notes])"),
        udiff("app/routes/prescriptions.py", " from ..audit import record", " from ..models import Prescription", " ",
              '+@router.get("/me/prescriptions/{rx_id}")', "+def get_prescription(rx_id: int, me=Depends(get_current_patient)):",
              "+    rx = db.query(Prescription).filter(Prescription.id == rx_id, Prescription.patient_id == me.id).first()",
              '+    record(me.id, "prescription.view", rx.id)', "+    return rx.to_public()"),
        udiff("research/routes.py", ' @bp.get("/cohorts/<int:cid>")', " def show(cid):", "     return jsonify(load(cid))",
              '+@bp.post("/cohorts/<int:cid>/export")', "+def export(cid):", "+    rows = Cohort.query.get_or_404(cid).patients",
              "+    return jsonify(rows)"),
        udiff("ehr/patients/views.py", " def detail(request, pk):", "     patient = get_object_or_404(Patient, pk=pk)",
              '     AccessEvent.objects.create(user=request.user, action="patient.view", patient=patient)',
              '     return render(request, "patients/detail.html", {"patient": patient})', "+",
              '+@audited("patient.address.update")', "+def update_address(request, pk):",
              "+    patient = get_object_or_404(Patient, pk=pk)", "+    form = AddressForm(request.POST, instance=patient)",
              "+    if form.is_valid():", "+        form.save()", '+    return redirect("patients:detail", pk=pk)'),
        udiff("src/Ehr/Endpoints/ProblemListEndpoints.cs",
              '         group.MapGet("/", async (Guid patientId, EhrDbContext db, IAuditWriter audit, HttpContext http) =>', "         {",
              "             var problems = await db.Problems.Where(p => p.PatientId == patientId).ToListAsync();",
              '             await audit.WriteAsync(http.User, "problem_list.view", patientId);', "             return Results.Ok(problems);",
              "         });", "+", '+        group.MapGet("/export", async (Guid patientId, EhrDbContext db, IAuditWriter audit, HttpContext http) =>',
              "+        {", "+            var problems = await db.Problems.Where(p => p.PatientId == patientId).ToListAsync();",
              '+            await audit.WriteAsync(http.User, "problem_list.export", patientId);',
              '+            return Results.File(CsvWriter.Write(problems), "text/csv");', "+        });"),
        udiff("app/routes/notes.py", " from ..audit import record", " ", '+@router.get("/patients/{pid}/notes")',
              '+@audited("notes.list")', "+async def list_notes(request: Request, pid: int):",
              "+    return db.query(Note).filter(Note.patient_id == pid).all()"),
    ),
)

_ENABLED_OFF_RE = re2.compile(r"""^\s*["']?enabled["']?\s*[=:]\s*["']?(?:false|off|no|0)["']?\s*,?\s*$""")
_AUDIT_CATEGORY_RE = re2.compile(r"""(?i)^\s*["']?(?:category|category_group|name|type|log_type)["']?\s*[=:]\s*["'][^"']*audit""")


def _audit_category_off(ctx: FileContext) -> Iterator[Hit]:
    """`log { category = "SQLSecurityAuditEvents"  enabled = false }`: the switch sits beside the key that names the
    audit stream, not under it (Azure diagnostic settings, CloudWatch log types)."""
    for ln in ctx.scan(r"(?m:^\s*[\"']?enabled[\"']?\s*[=:]\s*[\"']?(?:false|off|no|0)\b)"):
        if ln.new_no is None or _ENABLED_OFF_RE.search(ln.text) is None:
            continue
        found = ctx.position(ln.new_no)
        if found is None:
            continue
        post, i = found
        depth = indent_of(ln.text)
        siblings: list[str] = []
        for span in (range(i - 1, max(-1, i - 4), -1), range(i + 1, min(len(post), i + 4))):
            for k in span:  # the lines of the same block: same indentation, no blank line between
                text = post[k].text
                if indent_of(text) != depth or not text.strip():
                    break
                siblings.append(text)
        named = next((t for t in siblings if _AUDIT_CATEGORY_RE.search(t)), None)
        if named is not None:
            yield Hit(ln.new_no, f"The audit log stream `{named.strip()[:60]}` is switched off here, so PHI access "
                      "leaves no audit trail in the workspace that keeps it. Keep audit categories enabled.")


def _setting_audit_off(ctx: FileContext) -> Iterator[Hit]:
    """`name = "cloudsql.enable_pgaudit"` / `value = "off"`: a database flag or env var that stops auditing."""
    yield from _audit_category_off(ctx)
    for ln, name in named_setting_off(ctx, _AUDIT_TOPIC):
        if ln.new_no is not None:
            yield Hit(
                ln.new_no,
                f"The setting `{name}` is switched off, so PHI access leaves no audit trail. "
                "Keep audit logging enabled (in production above all).",
            )


_SETTING_AUDIT_OFF = Rule(
    id="AUD-006",
    category="missing-audit",
    severity="high",
    message="Auditing is switched off by a named setting (database flag, parameter, env var). Keep audit logging enabled.",
    regulations=REGULATIONS,
    languages=frozenset({"yaml", "terraform", "json", "toml"}),
    keywords=("audit", "trail", "access_log", "accesslog"),
    check=_setting_audit_off,
    examples=(
        udiff('infra/cloudsql.tf', '     database_flags {', '       name  = "cloudsql.enable_pgaudit"', '-      value = "on"', '+      value = "off"', '     }'),
        udiff('k8s/api.yaml', '         env:', '           - name: EHR_AUDIT_ENABLED', '-            value: "true"', '+            value: "false"'),
        udiff('infra/azure/diag.tf', '   log {', '     category = "SQLSecurityAuditEvents"', '-    enabled  = true', '+    enabled  = false', '   }'),
    ),
    counterexamples=(
        udiff('infra/cloudsql.tf', '     database_flags {', '       name  = "cloudsql.enable_pgaudit"', '-      value = "off"', '+      value = "on"', '     }'),
        udiff('infra/cloudsql.tf', '     database_flags {', '       name  = "log_min_duration_statement"', '-      value = "500"', '+      value = "0"', '     }'),
        udiff('infra/azure/diag.tf', '   log {', '     category = "SQLSecurityAuditEvents"', '-    enabled  = false', '+    enabled  = true', '   }'),
        udiff('infra/azure/diag.tf', '   metric {', '     category = "Basic"', '-    enabled  = true', '+    enabled  = false', '   }'),
    ),
)



# ---------------------------------------------------------------- AUD-007 PHI excluded from an audit trail

_NOT_AUDITED_RE = re2.compile(r"[@\[]\s*(?:NotAudited|AuditIgnore|IgnoreAudit|DiffIgnore|ExcludeFromAudit|NoAudit)\b")
_AUDIT_EXCLUSION_RE = re2.compile(
    r"(?i)audit\w*?[_.\-]?(?:exclude|excluded|ignore|ignored|skip|skipped|exempt|untracked|exclusions?)\w*|"
    r"(?:exclude|ignore|skip|exempt)\w*?[_.\-]?(?:from[_.\-]?)?audit\w*|"
    r"audit[^\n]{0,80}?\b(?:exclude|ignore|skip)\w*\s*[=:]"  # auditlog.register(Patient, exclude_fields=[...])
)
_IDENT_RE = re2.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _names_phi(ctx: FileContext, text: str) -> bool:
    for ident in _IDENT_RE.findall(text):
        low = ident.lower()
        if low in _PHI_RESOURCE_WORDS or low.rstrip("s") in _PHI_RESOURCE_WORDS:
            return True
        if ctx.vocabulary.phi_term(ident) is not None or ctx.vocabulary.is_record(ident):
            return True
    return False


def _excluded_from_audit(ctx: FileContext) -> Iterator[Hit]:
    """`@NotAudited` on a PHI field, or a patient model/field added to an audit exclusion list
    (`AUDITLOG_EXCLUDE_TRACKING_MODELS`, `exclude_fields=`, `audit.ignore:`): that data changes unaudited."""
    if ctx.is_test or ctx.language in DOC_LANGUAGES:
        return
    for hunk in ctx.file.hunks:
        post: list[DiffLine] | None = None
        for ln in hunk.lines:
            if ln.kind != "+" or ln.new_no is None or is_comment(ln.text):
                continue
            text = ln.text
            if post is None and ("audit" in text.lower() or "ignore" in text.lower() or "exclu" in text.lower()
                                 or text.strip().startswith(("\"", "'", "-"))):
                post = post_lines(hunk)
            if _NOT_AUDITED_RE.search(text):
                if post is None:
                    post = post_lines(hunk)
                i = index_in(post, ln.new_no)
                # the declaration it annotates: the next line that is not itself an annotation
                decl = next((p.text for p in post[i + 1: i + 5] if not p.text.lstrip().startswith(("@", "["))), "") \
                    if i is not None else ""
                if _names_phi(ctx, _NOT_AUDITED_RE.sub(" ", text) + " " + decl):
                    yield Hit(ln.new_no, "This PHI field is excluded from the audit trail (`" + text.strip()[:60] +
                              "`), so its changes are no longer recorded. Keep patient data audited.")
                continue
            m = _AUDIT_EXCLUSION_RE.search(text)
            if m is not None:
                if _names_phi(ctx, text[m.end():]):
                    yield Hit(ln.new_no, "Patient data is added to an audit exclusion here, so its reads/changes leave "
                              "no audit record. Keep PHI models and fields audited.")
                continue
            # an entry of a list/tuple/YAML sequence whose opening line names an audit exclusion
            if post is None or not _names_phi(ctx, text):
                continue
            i = index_in(post, ln.new_no)
            if i is None:
                continue
            base = indent_of(text)
            parents: list[str] = []
            for j in range(i - 1, max(-1, i - 30), -1):
                prev = post[j].text
                if not prev.strip() or indent_of(prev) >= base:
                    continue
                parents.append(prev.strip().rstrip(":([{= "))
                base = indent_of(prev)
                if base == 0 or len(parents) == 3:
                    break
            if parents and _AUDIT_EXCLUSION_RE.search(".".join(reversed(parents))):
                yield Hit(ln.new_no, "Patient data is added to an audit exclusion list here, so its reads/"
                          "changes leave no audit record. Keep PHI models and fields audited.")


_EXCLUDED_FROM_AUDIT = Rule(
    id="AUD-007",
    category="missing-audit",
    severity="high",
    message="Patient data is excluded from the audit trail. Keep PHI models and fields audited.",
    regulations=REGULATIONS,
    keywords=("notaudited", "auditignore", "ignoreaudit", "diffignore", "excludefromaudit", "noaudit", "audit"),
    check=_excluded_from_audit,
    examples=(
        udiff("clinic/settings/audit.py", " AUDITLOG_EXCLUDE_TRACKING_MODELS = (", '     "sessions.Session",',
              '+    "patients.Patient",', " )"),
        udiff("ehr/Encounter.java", " public class Encounter {", "+    @NotAudited", '     @Column(name = "diagnosis_text")',
              "     private String diagnosisText;"),
        udiff("clinic/patients/apps.py", " def ready(self):",
              '+    auditlog.register(Patient, exclude_fields=["diagnosis", "date_of_birth"])'),
        udiff("config/audit.yaml", " audit:", "   ignore:", "+    - patients.ssn"),
    ),
    counterexamples=(
        udiff("clinic/settings/audit.py", " AUDITLOG_EXCLUDE_TRACKING_MODELS = (", '     "sessions.Session",',
              '+    "django_celery_results.TaskResult",', " )"),
        udiff("ehr/Encounter.java", " public class Encounter {", "+    @NotAudited", '     @Column(name = "row_version")',
              "     private long rowVersion;"),
        udiff("clinic/settings/audit.py", " AUDITLOG_INCLUDE_TRACKING_MODELS = (", '+    "patients.Patient",', " )"),
    ),
)


# ---------------------------------------------------------------- AUD-008 an early return that skips the audit call

_RETURNS_VALUE_RE = re2.compile(r"\breturn\s+[^\s;]")
_ERROR_EXIT_RE = re2.compile(
    r"(?i)\b(?:err|error|errors|exception|raise|throw|abort|forbidden|unauthori[sz]ed|not_?found|none|null|nil|undefined|"
    r"false|next)\b|status(?:_code)?\s*[(=:]\s*[45]\d\d|\b[45]\d\d\b|http\.Status[A-Z]\w*(?:Error|Request|Found|bidden|orized)"
)
_IF_RE = re2.compile(r"^\s*(?:\}\s*else\s+)?(?:if|elif|when)\b")


def _early_exit_before_audit(ctx: FileContext) -> Iterator[Hit]:
    """`if (cached) return res.json(cached);` added above the handler's audit call: that path serves the data
    without an audit record. Error exits (4xx, err, None) read nothing and are left alone."""
    if ctx.is_test or ctx.language in DOC_LANGUAGES or "audit" in ctx.path.lower():
        return
    for hunk in ctx.file.hunks:
        post: list[DiffLine] | None = None
        for ln in hunk.lines:
            if ln.kind != "+" or ln.new_no is None or "return" not in ln.text or is_comment(ln.text):
                continue
            if _RETURNS_VALUE_RE.search(ln.text) is None or _ERROR_EXIT_RE.search(ln.text):
                continue
            if post is None:
                post = post_lines(hunk)
            i = index_in(post, ln.new_no)
            if i is None:
                continue
            one_liner = _IF_RE.search(ln.text) is not None
            guard = None if one_liner else next((post[k] for k in range(i - 1, max(-1, i - 3), -1)
                                                 if post[k].text.strip()), None)
            if not one_liner and (guard is None or _IF_RE.search(guard.text) is None
                                  or indent_of(guard.text) >= indent_of(ln.text)):
                continue  # not a conditional early exit
            branch = indent_of(ln.text) if one_liner else indent_of(guard.text)  # type: ignore[union-attr]
            # no audit before it in this function
            audited_before = False
            for k in range(i - 1, max(-1, i - 25), -1):
                t = post[k].text
                if _audit_line(t):
                    audited_before = True
                    break
                if _DEF_NAME_RE.search(t) or _is_handler_start(t, ctx.language):
                    break
            if audited_before:
                continue
            for k in range(i + 1, min(len(post), i + 15)):
                t = post[k].text
                if not t.strip():
                    continue
                if indent_of(t) < branch or _DEF_NAME_RE.search(t) or _is_handler_start(t, ctx.language):
                    break  # left the function
                if indent_of(t) == branch and _audit_line(t):
                    yield Hit(ln.new_no, "This early return serves the request before the audit call below it runs, "
                              "so that path reads patient data without an audit record. Audit before returning "
                              "(or on every path).")
                    break


_EARLY_EXIT = Rule(
    id="AUD-008",
    category="missing-audit",
    severity="high",
    message="An early return skips the audit call that follows it. Audit every path that returns patient data.",
    regulations=REGULATIONS,
    languages=frozenset({"python", "javascript", "typescript", "go", "java", "kotlin", "csharp"}),
    keywords=("audit", "access", "disclosure"),
    check=_early_exit_before_audit,
    examples=(
        udiff("services/chart/src/routes/summary.js", ' router.get("/patients/:id/summary", requireAuth, async (req, res) => {',
              "+  const cached = await cache.get(`summary:${req.params.id}`);", "+  if (cached) return res.json(cached);",
              "   const summary = await buildSummary(req.params.id);",
              '   await audit.record(req.user.id, "summary.read", req.params.id);', "   res.json(summary);"),
        udiff("ehr/labs.py", " def labs(user, patient_id):", "+    hit = cache.get(patient_id)", "+    if hit:", "+        return hit",
              "     rows = repo.labs(patient_id)", '     audit_event(user, "labs.view", patient_id)', "     return rows"),
    ),
    counterexamples=(
        udiff("services/chart/src/routes/summary.js", ' router.get("/patients/:id/summary", requireAuth, async (req, res) => {',
              "+  if (!req.params.id) return res.status(400).end();", "   const summary = await buildSummary(req.params.id);",
              '   await audit.record(req.user.id, "summary.read", req.params.id);', "   res.json(summary);"),
        udiff("ehr/labs.py", " def labs(user, patient_id):", '     audit_event(user, "labs.view", patient_id)',
              "+    hit = cache.get(patient_id)", "+    if hit:", "+        return hit", "     return repo.labs(patient_id)"),
    ),
)

# ---------------------------------------------------------------- AUD-009 audit events dropped when the sink is busy

_GO_SEND_CASE_RE = re2.compile(r"^\s*case\s+[\w.\[\]()]+\s*<-\s*\S")
_OPTIONAL_CHANNEL_RE = re2.compile(r"(?i)tail|live|tap|subscriber|listener|watch|preview|debug|sample|notify")
_DURABLE_WRITE_RE = re2.compile(r"\.(?:Append|Write|Insert|Save|Persist|Store|Put|Exec)\w*\(")
_EMPTY_DEFAULT_RE = re2.compile(r"^\s*default\s*:\s*(?://.*)?$")


def _dropped_audit_events(ctx: FileContext) -> Iterator[Hit]:
    """Go's non-blocking send, `select { case q <- e: default: }`, added where audit events are queued:
    when the queue is full the event is silently thrown away, so accesses go unrecorded under load."""
    if ctx.is_test or ctx.language != "go":
        return
    for hunk in ctx.file.hunks:
        post: list[DiffLine] | None = None
        for ln in hunk.lines:
            if ln.kind != "+" or ln.new_no is None or "default" not in ln.text or not _EMPTY_DEFAULT_RE.search(ln.text):
                continue
            if post is None:
                post = post_lines(hunk)
            i = index_in(post, ln.new_no)
            if i is None:
                continue
            nxt = next((p for p in post[i + 1: i + 3] if p.text.strip()), None)
            if nxt is None or nxt.text.strip() != "}":
                continue  # the default branch does something with the event (spills it, blocks, errors)
            k = next((k for k in range(i - 1, max(-1, i - 4), -1) if _GO_SEND_CASE_RE.search(post[k].text)), None)
            if k is None:
                continue
            if _OPTIONAL_CHANNEL_RE.search(post[k].text):
                continue  # a live tail / subscriber fan-out is best effort by design
            if any(_DURABLE_WRITE_RE.search(p.text) for p in post[max(0, k - 10): k]):
                continue  # the event was written durably above; only an extra copy is dropped
            where = (ctx.path + "\n" + hunk.header + "\n" + "\n".join(p.text for p in post[max(0, i - 12): i + 1])).lower()
            if "audit" not in where:
                continue
            yield Hit(ln.new_no)


_DROPPED_EVENTS = Rule(
    id="AUD-009",
    category="missing-audit",
    severity="high",
    message=(
        "Audit events are sent without blocking and dropped when the queue is full (`select` with an empty "
        "`default`), so accesses under load leave no audit record. Block, apply back-pressure, or spill to "
        "durable storage; never discard an audit event silently."
    ),
    regulations=REGULATIONS,
    languages=frozenset({"go"}),
    keywords=("default",),
    check=_dropped_audit_events,
    examples=(
        udiff("internal/audit/recorder.go", " func (r *Recorder) Record(e Event) {", "-\tr.queue <- e", "+\tselect {",
              "+\tcase r.queue <- e:", "+\tdefault:", "+\t}", " }"),
    ),
    counterexamples=(
        udiff("internal/audit/recorder.go", " func (r *Recorder) Record(e Event) {", "-\tr.queue <- e", "+\tselect {",
              "+\tcase r.queue <- e:", "+\tdefault:", "+\t\tr.spill.Write(e)", "+\t}", " }"),
        udiff("internal/audit/recorder.go", " func (r *Recorder) Record(e Event) error {",
              " \tif err := r.store.Append(e); err != nil {", " \t\treturn err", " \t}", "+\tselect {",
              "+\tcase r.tail <- e:", "+\tdefault:", "+\t}", " \treturn nil"),
        udiff("internal/metrics/sampler.go", " func (s *Sampler) Observe(v float64) {", "+\tselect {",
              "+\tcase s.samples <- v:", "+\tdefault:", "+\t}", " }"),
    ),
)

# ---------------------------------------------------------------- AUD-010 audit aspect narrowed away from patient code

_POINTCUT_RE = re2.compile(r"^\s*@(?:Around|Before|After\w*|Pointcut)\s*\(\s*(?:value\s*=\s*)?\"([^\"]*)\"")


def _pointcut_covers(wide: str, narrow: str) -> bool:
    """Whether AspectJ pattern `wide` matches everything `narrow` names (`..*Service.*(..)` covers `..*Service.save*(..)`):
    `*` in `wide` stands for any part of a name, `..` for any packages or arguments."""
    if wide == narrow or len(wide) > 300:
        return wide == narrow
    pattern = re2.escape(wide).replace(re2.escape(".."), ".*").replace(re2.escape("*"), r"[\w*]*")
    return re2.search("^" + pattern + "$", narrow) is not None


def _narrowed_pointcut(ctx: FileContext) -> Iterator[Hit]:
    """An audit aspect's pointcut loses an alternative (`execution(* ..patients..*(..)) || ...`) that names patient
    data: calls there are no longer audited."""
    if ctx.is_test or ctx.language not in ("java", "kotlin"):
        return
    for block in blocks(ctx):
        old = [m.group(1) for r in block.removed if "@" in r.text for m in [_POINTCUT_RE.search(r.text)] if m]
        if not old:
            continue
        new = [(a, m.group(1)) for a in block.added if "@" in a.text for m in [_POINTCUT_RE.search(a.text)] if m]
        if not new:
            continue
        before = {p.strip() for expr in old for p in expr.split("||")}
        after = {p.strip() for _, expr in new for p in expr.split("||")}
        dropped = before - after
        if not dropped:
            continue
        if after - before and not all(any(_pointcut_covers(b, a) for b in before) for a in after - before):
            continue  # rewritten to cover something else, not narrowed
        where = (ctx.path + "\n" + "\n".join(ln.text for ln in block.hunk.lines)).lower()
        if "audit" not in where:
            continue
        if _PHI_RESOURCE_WORDS.isdisjoint(words_of(" ".join(dropped))):
            continue
        anchor = new[0][0]
        if anchor.new_no is not None:
            yield Hit(anchor.new_no, f"The audit aspect no longer covers `{sorted(dropped)[0][:80]}`, so calls there "
                                     "read or change patient data without an audit record.")


_NARROWED_POINTCUT = Rule(
    id="AUD-010",
    category="missing-audit",
    severity="high",
    message="The audit aspect's pointcut is narrowed and no longer covers patient-data code. Keep it covered.",
    regulations=REGULATIONS,
    languages=frozenset({"java", "kotlin"}),
    keywords=("@around", "@before", "@after", "@pointcut"),
    check=_narrowed_pointcut,
    examples=(
        udiff("ehr/audit/PhiAccessAspect.java", " public class PhiAccessAspect {",
              '-    @Around("execution(* org.x.ehr.patients..*(..)) || execution(* org.x.ehr.admin..*(..))")',
              '+    @Around("execution(* org.x.ehr.admin..*(..))")', "     public Object audit(ProceedingJoinPoint pjp) throws Throwable {"),
        udiff("ehr/audit/PhiAccessAuditAspect.java", " public class PhiAccessAuditAspect {",
              '-    @Around("execution(* org.x.ehr.chart..*Service.*(..))")',
              '+    @Around("execution(* org.x.ehr.chart..*Service.save*(..)) || execution(* org.x.ehr.chart..*Service.update*(..))")',
              "     public Object audit(ProceedingJoinPoint pjp) throws Throwable {"),
    ),
    counterexamples=(
        udiff("ehr/audit/PhiAccessAspect.java", " public class PhiAccessAspect {",
              '-    @Around("execution(* org.x.ehr.admin..*(..))")',
              '+    @Around("execution(* org.x.ehr.patients..*(..)) || execution(* org.x.ehr.admin..*(..))")',
              "     public Object audit(ProceedingJoinPoint pjp) throws Throwable {"),
        udiff("ehr/audit/PhiAccessAspect.java", " public class PhiAccessAspect {",
              '-    @Around("execution(* org.x.ehr.patients..*(..)) || execution(* org.x.ehr.metrics..*(..))")',
              '+    @Around("execution(* org.x.ehr.patients..*(..))")', "     public Object audit(ProceedingJoinPoint pjp) throws Throwable {"),
        udiff("ehr/audit/PhiAccessAuditAspect.java", " public class PhiAccessAuditAspect {",
              '-    @Around("execution(* org.x.ehr.chart..*Service.*(..))")',
              '+    @Around("execution(* org.x.ehr.chart..*Service.*(..)) || execution(* org.x.ehr.chart..*Repository.*(..))")',
              "     public Object audit(ProceedingJoinPoint pjp) throws Throwable {"),
        udiff("ehr/audit/PhiAccessAuditAspect.java", " public class PhiAccessAuditAspect {",
              '-    @Around("execution(* org.x.ehr.chart..*Service.*(..))")', '+    @Around("execution(* org.x.ehr..*Service.*(..))")',
              "     public Object audit(ProceedingJoinPoint pjp) throws Throwable {"),
    ),
)

# ---------------------------------------------------------------- AUD-011 a failed audit write no longer stops the access

# what stops a request or call: return/raise/throw, Go's error return, gin's Abort, http.Error, a 5xx response
_STOP_RE = re2.compile(
    r"^\s*(?:return|raise|throw|panic\s*\(|abort\s*\(|os\.Exit\s*\()|\bAbort\w*\s*\(|\bhttp\.Error\s*\(|"
    r"\bthrow\s+new\b|\breturn\s+(?:err|nil\s*,\s*err|fmt\.Errorf|errors\.)"
)
# the line that catches the audit call's failure: Go's `err != nil`, except/catch/rescue, a `.catch(`, `if not ok`
_FAILURE_HANDLER_RE = re2.compile(
    r"(?i)\berr\w*\s*!=\s*nil|^\s*(?:\}\s*)?(?:except|catch|rescue)\b|\.catch\s*\(|"
    r"^\s*(?:\}\s*)?(?:if|elif)\s*\(?\s*(?:not\s+|!\s*)\w*(?:ok|success\w*|written|recorded|logged)\b"
)
# an audit call whose result is thrown away: `_ = h.audit.Record(...)`, `.catch(() => {})`, `go h.audit.Record(...)`
_DISCARDED_RE = re2.compile(
    r"^\s*_\s*=\s*[\w.()\[\]]*(?i:audit)|^\s*go\s+[\w.()\[\]]*(?i:audit)\w*\s*\.|"
    r"(?i:audit)[^\n]*\.catch\s*\(\s*(?:\(\s*\w*\s*\)|\w+)\s*=>\s*(?:\{\s*\}|undefined|null|void\s+0|\{\s*/\*[^*]*\*/\s*\})\s*\)|"
    r"(?i:audit)[^\n]*\.catch\s*\(\s*(?:noop|_\.noop|\(\)\s*=>\s*\{\s*\})\s*\)"
)


def _audit_failure_handler(post: list[DiffLine], i: int) -> bool:
    """Whether post[i]'s block sits in the failure branch of an audit call: a handler line (`if err := audit...;
    err != nil {`, `except AuditError:`, `catch (e)`) just above, with the audit call on it or up to 3 lines above."""
    for k in range(i - 1, max(-1, i - 3), -1):
        text = post[k].text
        if not text.strip() or is_comment(text):
            continue
        if _FAILURE_HANDLER_RE.search(text) is None:
            return False
        return any(AUDIT_RE.search(post[j].text) and not is_comment(post[j].text) for j in range(max(0, k - 3), k + 1))
    return False


_CATCH_RE = re2.compile(r"^\s*(?:\}\s*)?(?:catch\b|except\b|rescue\b)|^\s*\}\s*catch\b")
# a failure branch that keeps the event: a durable queue, a spill file, a retry, a dead-letter store
_KEEPS_EVENT_RE = re2.compile(r"(?i)outbox|spill|enqueue|queue|retry|dead_?letter|dlq|fallback\w*\.(?:write|append|record)")


def _swallowing_catch(post: list[DiffLine], i: int) -> bool:
    """post[i] is an added catch/except whose `try` body holds an audit call and whose own body (all added) neither
    stops the access nor keeps the event: the audit write has become best effort."""
    depth = indent_of(post[i].text)
    tried = False
    for k in range(i - 1, max(-1, i - 6), -1):  # the try body just above
        text = post[k].text
        if not text.strip():
            continue
        if re2.search(r"^\s*try\b", text) and indent_of(text) <= depth:
            break
        if _audit_line(text) and indent_of(text) > depth:
            tried = True
    if not tried:
        return False
    body = []
    for ln in post[i + 1: i + 8]:
        text = ln.text
        if not text.strip():
            continue
        if indent_of(text) <= depth:
            break
        if ln.kind != "+":
            return False
        body.append(text)
    joined = "\n".join(body)
    if any(_STOP_RE.search(t) for t in body) or _KEEPS_EVENT_RE.search(joined):
        return False
    return True


def _audit_made_best_effort(ctx: FileContext) -> Iterator[Hit]:
    """A failed audit write used to stop the access (return/raise/abort); now it is logged and the request goes on,
    or the audit call's error is thrown away. Then PHI is served whenever the audit store is down, unrecorded."""
    if ctx.is_test or ctx.language in DOC_LANGUAGES or "audit" in ctx.path.lower():
        return
    for hunk in ctx.file.hunks:  # `try { await audit.record(..) } catch (e) { logger.warn(..) }` wrapped around the call
        post: list[DiffLine] | None = None
        for ln in hunk.lines:
            if ln.kind != "+" or ln.new_no is None or _CATCH_RE.search(ln.text) is None:
                continue
            if post is None:
                post = post_lines(hunk)
            i = index_in(post, ln.new_no)
            if i is not None and _swallowing_catch(post, i):
                yield Hit(ln.new_no, "A failed audit write is now caught and the access goes on (`" + ln.text.strip()[:60]
                          + "` neither fails the request nor keeps the event), so PHI is served unrecorded whenever "
                          "the audit store is down. Let the failure stop the access, or queue the event durably.")
    for block in blocks(ctx):
        if not block.removed or not block.added:
            continue
        stops = [ln for ln in block.removed if _STOP_RE.search(ln.text) and not is_comment(ln.text)]
        discarded = next((ln for ln in block.added if ln.new_no is not None and _DISCARDED_RE.search(ln.text)), None)
        if discarded is not None and any(_audit_line(ln.text) for ln in block.removed):
            yield Hit(discarded.new_no,  # type: ignore[arg-type]
                      "The audit call's failure is now ignored (`" + discarded.text.strip()[:80] + "`), so when the audit "
                      "store is down the access goes on with no audit record. Fail the request (or queue the event "
                      "durably) when the audit write fails.")
            continue
        if not stops or any(_STOP_RE.search(ln.text) for ln in block.added if not is_comment(ln.text)):
            continue
        post = post_lines(block.hunk)
        first = block.added[0]
        i = next((k for k, p in enumerate(post) if p is first), None)
        if i is None or not _audit_failure_handler(post, i):
            continue
        anchor = anchor_for_removal(block)
        if anchor is not None:
            yield Hit(anchor, "A failed audit write no longer stops this access (`" + stops[0].text.strip()[:60] + "` is "
                      "gone from the audit call's error branch), so PHI is served with no audit record whenever the "
                      "audit store fails. Keep failing closed (or queue the event durably before going on).")


_AUDIT_BEST_EFFORT = Rule(
    id="AUD-011",
    category="missing-audit",
    severity="high",
    message=(
        "A failed audit write no longer stops the access: the error is logged or ignored and PHI is served with no "
        "audit record. Fail closed, or queue the event durably before going on."
    ),
    regulations=REGULATIONS,
    languages=frozenset({"python", "javascript", "typescript", "go", "java", "kotlin", "csharp", "ruby", "php"}),
    keywords=("audit",),
    check=_audit_made_best_effort,
    examples=(
        udiff("internal/handlers/problems.go",
              ' \tif err := h.audit.Record(ctx, user.ID, "problem_list.view", patientID); err != nil {',
              '-\t\tc.JSON(http.StatusServiceUnavailable, gin.H{"error": "audit unavailable"})', "-\t\treturn",
              '+\t\tlog.Warn().Err(err).Msg("audit write failed; continuing")', " \t}", " \tc.JSON(http.StatusOK, problems)"),
        udiff("ehr/charts.py", "     try:", '         audit.record(user, "chart.view", chart.patient_id)',
              "     except AuditUnavailable:", "-        raise ServiceUnavailable()",
              '+        logger.warning("audit unavailable, serving chart")', "     return chart"),
        udiff("src/notes/notes.service.ts", "     const note = await this.repo.findOne(id);",
              '-    await this.audit.log(userId, "note.read", note.patientId);',
              '+    this.audit.log(userId, "note.read", note.patientId).catch(() => {});', "     return note;"),
        udiff("internal/labs/handler.go", " \tres, err := h.store.Results(ctx, pid)",
              '-\tif err := h.audit.Record(ctx, actor, "labs.view", pid); err != nil {', "-\t\treturn nil, err", "-\t}",
              '+\t_ = h.audit.Record(ctx, actor, "labs.view", pid)', " \treturn res, nil"),
        udiff("src/immunizations/immunizations.service.ts", "     const rows = await this.prisma.immunization.findMany({ where: { patientId } });",
              '-    await this.audit.record(userId, "immunization.list", patientId);', "+    try {",
              '+      await this.audit.record(userId, "immunization.list", patientId);', "+    } catch (err) {",
              "+      this.logger.warn(`audit write failed: ${err}`);", "+    }", "     return rows;"),
        udiff("ehr/charts.py", "     chart = repo.get(chart_id)", '-    audit.record(user, "chart.view", chart.patient_id)', "+    try:",
              '+        audit.record(user, "chart.view", chart.patient_id)', "+    except Exception:", "+        pass", "     return chart"),
    ),
    counterexamples=(
        udiff("internal/handlers/problems.go",
              ' \tif err := h.audit.Record(ctx, user.ID, "problem_list.view", patientID); err != nil {',
              '-\t\tc.JSON(http.StatusServiceUnavailable, gin.H{"error": "audit unavailable"})', "-\t\treturn",
              '+\t\tc.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"error": "audit unavailable"})', "+\t\treturn",
              " \t}"),
        udiff("ehr/charts.py", "     chart = repo.get(chart_id)", "     if chart is None:", "-        raise NotFound()",
              '+        logger.info("chart %s not found", chart_id)', "+        return None", "     return chart"),
        udiff("ehr/charts.py", "     try:", '         audit.record(user, "chart.view", chart.patient_id)',
              "     except AuditUnavailable:", "-        raise ServiceUnavailable()",
              '+        raise ServiceUnavailable(retry_after=30)', "     return chart"),
        udiff("src/metrics/metrics.service.ts", '-    await this.metrics.push("note.read");',
              '+    this.metrics.push("note.read").catch(() => {});', "     return note;"),
        udiff("src/immunizations/immunizations.service.ts", "     const rows = await this.prisma.immunization.findMany({ where: { patientId } });",
              '-    await this.audit.record(userId, "immunization.list", patientId);', "+    try {",
              '+      await this.audit.record(userId, "immunization.list", patientId);', "+    } catch (err) {",
              "+      this.logger.error(`audit write failed: ${err}`);", "+      throw new ServiceUnavailableException();", "+    }",
              "     return rows;"),
        udiff("ehr/charts.py", "     chart = repo.get(chart_id)", '-    audit.record(user, "chart.view", chart.patient_id)', "+    try:",
              '+        audit.record(user, "chart.view", chart.patient_id)', "+    except AuditUnavailable as exc:",
              "+        audit_outbox.enqueue(exc.event)", "     return chart"),
    ),
)


# ---------------------------------------------------------------- AUD-012 a row-level policy that lets rows of an audit table change

_POLICY_RE = re2.compile(r"(?i)\bCREATE\s+POLICY\s+\S+\s+ON\s+" + _AUDIT_TABLE)
_POLICY_COMMAND_RE = re2.compile(r"(?i)\bFOR\s+(SELECT|INSERT|UPDATE|DELETE|ALL)\b")


def _audit_rows_mutable_by_policy(ctx: FileContext) -> Iterator[Hit]:
    """`CREATE POLICY p ON audit_events FOR DELETE TO app USING (true)` (the command often on the next line; no
    FOR clause means ALL): the role may now delete or rewrite audit records."""
    if ctx.is_test:
        return
    for ln in ctx.scan(r"create\s+policy"):
        if ln.new_no is None or is_comment(ln.text) or _POLICY_RE.search(ln.text) is None:
            continue
        found = ctx.position(ln.new_no)
        statement = ln.text
        if found is not None:
            post, i = found
            parts = []
            for p in post[i: i + 6]:
                parts.append(p.text)
                if ";" in p.text:
                    break
            statement = "\n".join(parts)
        m = _POLICY_COMMAND_RE.search(statement)
        if m is None or m.group(1).upper() in ("UPDATE", "DELETE", "ALL"):
            yield Hit(ln.new_no)


_AUDIT_POLICY = Rule(
    id="AUD-012",
    category="missing-audit",
    severity="high",
    message=(
        "This row-level-security policy lets a role delete or rewrite rows of the audit table (`FOR DELETE`/`UPDATE`, "
        "or no FOR clause, which means ALL), so audit records stop being tamper-evident. Audit rows are insert-only: "
        "grant INSERT and SELECT policies only."
    ),
    regulations=REGULATIONS,
    languages=frozenset({"sql", "python", "java", "kotlin", "go", "javascript", "typescript", "csharp", "ruby"}),
    keywords=("policy",),
    check=_audit_rows_mutable_by_policy,
    examples=(
        udiff("db/migrations/V88__audit_cleanup.sql", "+CREATE POLICY audit_events_app_cleanup ON audit_events",
              "+    FOR DELETE TO ehr_app", "+    USING (true);"),
        udiff("db/migrations/V88__audit_cleanup.sql", "+CREATE POLICY audit_rw ON audit_log TO ehr_app USING (true);"),
    ),
    counterexamples=(
        udiff("db/migrations/V88__audit_read.sql", "+CREATE POLICY audit_read_own ON audit_events",
              "+    FOR SELECT TO auditor", "+    USING (tenant_id = current_setting('app.tenant')::uuid);"),
        udiff("db/migrations/V89__notes.sql", "+CREATE POLICY notes_owner ON notes FOR ALL TO ehr_app USING (author = current_user);"),
    ),
)


# ---------------------------------------------------------------- AUD-013 cloud data-access audit logs narrowed

_DATA_LOG_TYPE_RE = re2.compile(r"""(?i)\blog_?type\s*[=:]\s*["']?(DATA_READ|DATA_WRITE)\b""")
_EXEMPT_RE = re2.compile(r"(?i)^\s*exempted_?members\s*[=:]")


def _data_access_logs_narrowed(ctx: FileContext) -> Iterator[Hit]:
    """GCP `audit_log_config { log_type = "DATA_READ" }` removed (reads of the FHIR/HL7 stores go unaudited) or
    members exempted from data-access logging."""
    if ctx.is_test or ctx.language not in ("terraform", "yaml", "json"):
        return
    visible = "\n".join(ln.text for h in ctx.file.hunks for ln in h.lines if ln.kind != "-")
    kept = {m.upper() for m in _DATA_LOG_TYPE_RE.findall(visible)}
    for block in blocks(ctx):
        lost = [m.upper() for ln in block.removed for m in _DATA_LOG_TYPE_RE.findall(ln.text)]
        lost = [t for t in lost if t not in kept]
        if lost:
            anchor = anchor_for_removal(block)
            if anchor is not None:
                yield Hit(anchor, f"Data-access audit logging ({', '.join(sorted(set(lost)))}) is removed from this audit "
                          "config, so reads/writes of the PHI it covers are no longer recorded. Keep DATA_READ and "
                          "DATA_WRITE for services that hold patient data.")
    for ln in ctx.scan(r"(?m:^\s*exempted_?members\s*[=:])"):
        if ln.new_no is not None and "audit" in (ctx.file.hunks[0].header + visible).lower():
            yield Hit(ln.new_no, "Members are exempted from data-access audit logging here, so their reads of PHI "
                      "leave no audit record. Do not exempt identities that can read patient data.")


_DATA_ACCESS_LOGS = Rule(
    id="AUD-013",
    category="missing-audit",
    severity="high",
    message="Cloud data-access audit logging is narrowed (DATA_READ/DATA_WRITE removed, members exempted).",
    regulations=REGULATIONS,
    languages=frozenset({"terraform", "yaml", "json"}),
    keywords=("data_read", "data_write", "exempted_members", "exemptedmembers"),
    check=_data_access_logs_narrowed,
    examples=(
        udiff("infra/gcp/audit.tf", '   service = "healthcare.googleapis.com"', "   audit_log_config {",
              '-    log_type = "DATA_READ"', "-  }", "-", "-  audit_log_config {", '-    log_type = "DATA_WRITE"',
              '+    log_type = "ADMIN_READ"', "   }"),
        udiff("infra/gcp/audit.tf", "   audit_log_config {", '     log_type = "DATA_READ"',
              '+    exempted_members = ["serviceAccount:etl@ehr.iam.gserviceaccount.com"]', "   }"),
    ),
    counterexamples=(
        udiff("infra/gcp/audit.tf", '   service = "healthcare.googleapis.com"', "   audit_log_config {",
              '-    log_type = "DATA_READ"', '+    log_type = "DATA_READ"', "   }", "+  audit_log_config {",
              '+    log_type = "DATA_WRITE"', "+  }"),
    ),
)


# ---------------------------------------------------------------- AUD-014 audit middleware moved behind the routes

_MIDDLEWARE_RE = re2.compile(r"^\s*(?:app|router|server|\w*[aA]pp)\s*\.\s*use\s*\(|^\s*\w+\s*\.\s*Use\s*\(")
_ROUTE_MOUNT_RE = re2.compile(
    r"^\s*(?:app|router|server|\w*[aA]pp)\s*\.\s*(?:use\s*\(\s*[\"'`]/|(?:get|post|put|patch|delete|all)\s*\(\s*[\"'`]/)|"
    # Go routers (gin, echo, chi): a route, a mount, or a group -- gin copies the middleware into a group when it is made
    r"^\s*(?:\w+\s*:?=\s*)?\w+\s*\.\s*(?:GET|POST|PUT|PATCH|DELETE|Any|Handle|HandleFunc|Mount|Route|Group|Get|Post|Put|"
    r"Patch|Delete)\s*\(\s*\"/"
)


def _audit_middleware_after_routes(ctx: FileContext) -> Iterator[Hit]:
    """Express/Koa run middleware in registration order, and gin/echo/chi attach it only to routes and groups made
    after it: an audit middleware moved below a route mount no longer sees that route's requests (the line itself is
    unchanged, so AUD-001 counts it as moved)."""
    if ctx.is_test or ctx.language not in ("javascript", "typescript", "go"):
        return
    for hunk in ctx.file.hunks:
        removed = [ln for ln in hunk.lines if ln.kind == "-" and _MIDDLEWARE_RE.search(ln.text) and _audit_line(ln.text)]
        for old in removed:
            key = normalized(old.text)
            new = next((ln for ln in hunk.lines if ln.kind == "+" and normalized(ln.text) == key), None)
            if new is None or new.new_no is None:
                continue
            # a route mount that came after the audit middleware before the change and comes before it now
            for ln in hunk.lines:
                if ln.kind != " " or ln.old_no is None or ln.new_no is None or not _ROUTE_MOUNT_RE.search(ln.text):
                    continue
                if (old.old_no or 0) < ln.old_no and ln.new_no < new.new_no:
                    yield Hit(new.new_no, f"The audit middleware now runs after `{ln.text.strip()[:60]}`, so requests "
                              "to that route are answered before it and leave no audit record. Register it before the routes.")
                    break


_AUDIT_AFTER_ROUTES = Rule(
    id="AUD-014",
    category="missing-audit",
    severity="high",
    message="The audit middleware is registered after the routes it should audit, so it never runs for them.",
    regulations=REGULATIONS,
    languages=frozenset({"javascript", "typescript", "go"}),
    keywords=("audit",),
    check=_audit_middleware_after_routes,
    examples=(
        udiff("server/app.js", " app.use(express.json());", "-app.use(auditTrail());", ' app.use("/api/patients", patients);',
              ' app.get("/healthz", (req, res) => res.send("ok"));', "+app.use(auditTrail());"),
        udiff("internal/server/router.go", " \tr.Use(auth.RequireSession())", "-\tr.Use(audit.Middleware(rec))", " ",
              ' \tapi := r.Group("/api/v1")', ' \tapi.GET("/patients/:id", h.Get)', "+\tr.Use(audit.Middleware(rec))", " \treturn r"),
    ),
    counterexamples=(
        udiff("server/app.js", " app.use(express.json());", "-app.use(auditTrail());", "+app.use(helmet());",
              "+app.use(auditTrail());", ' app.use("/api/patients", patients);'),
        udiff("internal/server/router.go", " \tr.Use(auth.RequireSession())", "-\tr.Use(audit.Middleware(rec))",
              "+\tr.Use(otelgin.Middleware(\"ehr\"))", "+\tr.Use(audit.Middleware(rec))", " ", ' \tapi := r.Group("/api/v1")',
              ' \tapi.GET("/patients/:id", h.Get)', " \treturn r"),
    ),
)


# ---------------------------------------------------------------- AUD-015 a bulk write that skips the per-row audit hooks

# writes that go straight to SQL, past the ORM's per-row events/signals/callbacks/change tracker that audit libraries
# (SQLAlchemy listeners, Django signals and auditlog/simple-history, Rails audited, EF Core SaveChanges interceptors,
# JPA entity listeners and Envers) hang their audit records on
_BULK_WRITE_RE = re2.compile(
    r"synchronize_session\s*=|\bupdate\(\s*[A-Z]\w*\s*\)\s*\.\s*(?:where|values)\b|\bdelete\(\s*[A-Z]\w*\s*\)\s*\.\s*where\b|"
    r"\.objects\b[^\n]*\.update\(|\)\s*\.update\(\s*\w+\s*=|^\s*\.update\(\s*\w+\s*=|\.bulk_(?:update|create)\(|"
    r"\.(?:update_all|delete_all|update_columns?)\b|\.Execute(?:Update|Delete)(?:Async)?\s*\(|"
    r"(?i:@Query\s*\(\s*(?:value\s*=\s*)?\"\s*(?:update|delete)\s)|(?i:createQuery\s*\(\s*\"\s*(?:update|delete)\s)|"
    r"\bhooks\s*:\s*false\b|\bindividualHooks\s*:\s*false\b"
)
_BULK_SCAN = (
    r"synchronize_session|update\(|delete\(|bulk_update|bulk_create|update_all|delete_all|update_column|executeupdate|"
    r"executedelete|@query|createquery|hooks\s*:\s*false"
)


def _bulk_write_skips_audit(ctx: FileContext) -> Iterator[Hit]:
    """`db.query(Patient)...update({...}, synchronize_session=False)`, `Patient.objects.filter(..).update(..)`,
    `update_all`, `ExecuteUpdateAsync`, a JPQL bulk UPDATE: patient rows change with no per-row event, so the audit
    hook the file relies on never runs, and no audit call is made beside the write."""
    if ctx.is_test or ctx.language in DOC_LANGUAGES or "audit" in ctx.path.lower() or "/migrations/" in ctx.path:
        return
    candidates = [ln for ln in ctx.scan(_BULK_SCAN) if ln.new_no is not None and not is_comment(ln.text)
                  and _BULK_WRITE_RE.search(ln.text)]
    if not candidates:
        return
    audited_file = any(AUDIT_RE.search(ln.text) and not is_comment(ln.text) for h in ctx.file.hunks for ln in h.lines) \
        or any(AUDIT_RE.search(h.header) for h in ctx.file.hunks)
    for ln in candidates:
        found = ctx.position(ln.new_no)  # type: ignore[arg-type]
        if found is None:
            continue
        post, i = found
        lo = i
        while lo > 0 and i - lo < 4 and post[lo].text.lstrip().startswith((".", ")")) and post[lo - 1].text.strip():
            lo -= 1  # a chained statement: `db.query(Patient)` / `.filter(...)` / `.update(...)`
        statement = "\n".join(p.text for p in post[lo: i + 1])
        if not _names_phi(ctx, statement):
            continue
        removed = ctx.change_block(ln.new_no)[0]  # type: ignore[arg-type]
        per_row_before = any(".save(" in r.text or re2.search(r"^\s*for\b", r.text) for r in removed)
        if not (audited_file or per_row_before):
            continue
        start = i
        for k in range(i - 1, max(-1, i - 25), -1):  # the enclosing function's start
            if _DEF_NAME_RE.search(post[k].text) or _is_handler_start(post[k].text, ctx.language):
                start = k
                break
        window = post[start: min(len(post), i + 10)]
        if any(_audit_line(p.text) for p in window if p is not ln):
            continue  # the function records the change itself
        yield Hit(ln.new_no)  # type: ignore[arg-type]


_BULK_WRITE = Rule(
    id="AUD-015",
    category="missing-audit",
    severity="high",
    message=(
        "This bulk write changes patient records with one SQL statement, past the ORM's per-row events, signals, "
        "callbacks or change tracker that the audit trail is hooked to, and nothing records it here. Write an audit "
        "record for the bulk change (who, what, which patients), or change the rows through the audited path."
    ),
    regulations=REGULATIONS,
    languages=frozenset({"python", "ruby", "csharp", "java", "kotlin", "javascript", "typescript"}),
    keywords=("update", "delete", "bulk_", "synchronize_session", "hooks"),
    check=_bulk_write_skips_audit,
    examples=(
        udiff("ehr/panels/service.py", ' @event.listens_for(Patient, "after_update")', " def _audit_patient_update(mapper, connection, target):",
              '     write_audit(connection, action="patient.update", patient_id=target.id)', " ", " ",
              " def reassign(db, old_id, new_id):",
              "-    for patient in db.query(Patient).filter(Patient.primary_provider_id == old_id).all():",
              "-        patient.primary_provider_id = new_id", "+    db.query(Patient).filter(Patient.primary_provider_id == old_id).update(",
              "+        {Patient.primary_provider_id: new_id}, synchronize_session=False", "+    )", "     db.commit()"),
        udiff("clinic/patients/services.py", " from auditlog.registry import auditlog", " ", " def merge_addresses(src, dst):",
              "-    for p in Patient.objects.filter(address=src):", "-        p.address = dst", "-        p.save()",
              "+    Patient.objects.filter(address=src).update(address=dst)"),
        udiff("src/Ehr/Patients/PanelService.cs", "     public async Task ReassignAsync(Guid from, Guid to)", "     {",
              "-        foreach (var p in await _db.Patients.Where(p => p.ProviderId == from).ToListAsync()) p.ProviderId = to;",
              "-        await _db.SaveChangesAsync();  // AuditSaveChangesInterceptor",
              "+        await _db.Patients.Where(p => p.ProviderId == from).ExecuteUpdateAsync(s => s.SetProperty(p => p.ProviderId, to));",
              "     }"),
    ),
    counterexamples=(
        udiff("scheduling/services/batches.py", " from ehr.audit import audit_event", " def mark_batch_sent(batch_id):",
              "+    return ReminderBatch.objects.filter(pk=batch_id).update(sent_at=timezone.now())"),
        udiff("clinic/patients/services.py", " from ehr.audit import audit_event", " def merge_addresses(user, src, dst):",
              "+    n = Patient.objects.filter(address=src).update(address=dst)",
              '+    audit_event(user, "patient.address.bulk_update", count=n)', "+    return n"),
        udiff("clinic/patients/services.py", " def touch(src):", "+    Patient.objects.filter(address=src).update(address=dst)"),
    ),
)


# ---------------------------------------------------------------- AUD-016 audit coverage narrowed in configuration

# CloudTrail data events reduced to writes (`read_write_type = "WriteOnly"`, CloudFormation `ReadWriteType: WriteOnly`)
_TRAIL_WRITE_ONLY_RE = re2.compile(r"""(?i)\bread_?write_?type["']?\s*[=:]\s*["']?WriteOnly\b""")
# pgaudit's statement classes: without READ/WRITE (or ALL) reads and changes of patient rows go unlogged
_PGAUDIT_LOG_RE = re2.compile(r"""(?i)pgaudit\.log["']?\s*(?:=|:|\bTO\b)\s*["']?([^"'\n;#]*)""")
_PGAUDIT_VALUE_RE = re2.compile(r"""(?i)^\s*["']?value["']?\s*[=:]\s*["']([^"']*)["']""")
_PGAUDIT_COVERS_RE = re2.compile(r"(?i)(?:^|[,\s])(?:all|read|write)\b")
# a Kubernetes API-server audit policy rule set to `level: None`
_K8S_AUDIT_POLICY_RE = re2.compile(r"audit\.k8s\.io|omitStages|(?m:^\s*(?:-\s+)?level\s*:\s*[\"']?(?:Metadata|RequestResponse|Request)[\"']?\s*$)")
_K8S_LEVEL_NONE_RE = re2.compile(r"^\s*(?:-\s+)?level\s*:\s*[\"']?None[\"']?\s*$")


def _pgaudit_narrowed(value: str) -> bool:
    value = value.strip()
    return (not value or value.lower() in ("none", "-all")
            or _PGAUDIT_COVERS_RE.search(value) is None or "-read" in value.lower() or "-write" in value.lower())


def _audit_coverage_narrowed(ctx: FileContext) -> Iterator[Hit]:
    if ctx.is_test or ctx.language in DOC_LANGUAGES:
        return
    for ln in ctx.scan(r"read_?write_?type", lower=True):
        if ln.new_no is not None and not is_comment(ln.text) and _TRAIL_WRITE_ONLY_RE.search(ln.text):
            yield Hit(ln.new_no, "The trail now records write events only, so reads of the data it covers (downloads of "
                      "patient documents, record reads) leave no audit record. Record `All` data events for PHI stores.")
    pgaudit = bool(ctx.scan(r"pgaudit\.log", added_only=False))
    for ln in ctx.scan(r"pgaudit\.log|value", lower=True) if pgaudit else ():
        if ln.new_no is None or is_comment(ln.text):
            continue
        m = _PGAUDIT_LOG_RE.search(ln.text)
        value: str | None = m.group(1) if m is not None and m.group(1).strip() else None
        if value is None:  # `name = "pgaudit.log"` / `value = "ddl"` (a parameter group, a database flag)
            v = _PGAUDIT_VALUE_RE.search(ln.text)
            if v is None:
                continue
            found = ctx.position(ln.new_no)
            if found is None:
                continue
            post, i = found
            if not any("pgaudit.log" in post[j].text.lower() for j in range(max(0, i - 3), i)):
                continue
            value = v.group(1)
        if _pgaudit_narrowed(value):
            yield Hit(ln.new_no, f"pgaudit now logs `{value.strip()[:40] or 'nothing'}` only, so reads and writes of "
                      "patient rows leave no audit record. Keep the READ and WRITE classes (or ALL) on PHI databases.")
    if ctx.language == "yaml" and ctx.scan(r"level\s*:\s*[\"']?none") and ("audit" in ctx.path.lower() or _K8S_AUDIT_POLICY_RE.search(ctx.memo(
            "k8s-audit-visible", lambda: "\n".join(ln.text for h in ctx.file.hunks for ln in h.lines)))):
        for block in blocks(ctx):
            for ln in block.added:
                if ln.new_no is None or _K8S_LEVEL_NONE_RE.search(ln.text) is None:
                    continue
                replaced = any(re2.search(r"^\s*(?:-\s+)?level\s*:", r.text) for r in block.removed)
                found = ctx.position(ln.new_no)
                rule_text = ""
                if found is not None:
                    post, i = found
                    depth = indent_of(ln.text)
                    parts = []
                    for p in post[i + 1: i + 12]:
                        if p.text.strip() and (indent_of(p.text) < depth or p.text.lstrip().startswith("- level")):
                            break
                        parts.append(p.text)
                    rule_text = "\n".join(parts)
                if replaced or _names_phi(ctx, rule_text) or re2.search(r"(?i)fhir|ehr|phi|health", rule_text):
                    yield Hit(ln.new_no, "This audit policy rule now records nothing (`level: None`) for requests it "
                              "matches, so access to those resources leaves no audit record.")


_AUDIT_NARROWED = Rule(
    id="AUD-016",
    category="missing-audit",
    severity="high",
    message=(
        "Audit coverage is narrowed in configuration (CloudTrail data events to writes only, pgaudit without READ/WRITE, "
        "an API-server audit rule set to None), so reads or changes of PHI leave no audit record."
    ),
    regulations=REGULATIONS,
    languages=frozenset({"terraform", "yaml", "json", "sql", "ini", "properties", "toml"}),
    keywords=("readwritetype", "read_write_type", "pgaudit", "level: none", "level: \"none\"", "level: 'none'"),
    check=_audit_coverage_narrowed,
    examples=(
        udiff("infra/aws/cloudtrail.tf", "   event_selector {", '-    read_write_type           = "All"',
              '+    read_write_type           = "WriteOnly"', "     include_management_events = true"),
        udiff("infra/aws/rds_params.tf", "   parameter {", '     name  = "pgaudit.log"', '-    value = "read,write,ddl"',
              '+    value = "ddl"', "   }"),
        udiff("db/tuning.sql", "-ALTER SYSTEM SET pgaudit.log = 'read, write';", "+ALTER SYSTEM SET pgaudit.log = 'none';"),
        udiff("deploy/cluster/policy.yaml", "   - level: None", '     users: ["system:kube-proxy"]',
              "-  - level: RequestResponse", "+  - level: None", '     namespaces: ["ehr-prod"]'),
    ),
    counterexamples=(
        udiff("infra/aws/cloudtrail.tf", "   event_selector {", '-    read_write_type           = "WriteOnly"',
              '+    read_write_type           = "All"', "     include_management_events = true"),
        udiff("infra/aws/rds_params.tf", "   parameter {", '     name  = "pgaudit.log"', '-    value = "ddl"',
              '+    value = "read,write,ddl"', "   }"),
        udiff("deploy/cluster/policy.yaml", " apiVersion: audit.k8s.io/v1", " rules:", "+  - level: None",
              '+    users: ["system:kube-proxy"]', '+    verbs: ["watch"]', "+    resources:", '+      - group: ""',
              '+        resources: ["endpoints", "services"]'),
        udiff("deploy/app/values.yaml", " logging:", "-  level: info", "+  level: None"),
    ),
)


RULES: tuple[Rule, ...] = (
    _REMOVED_AUDIT, _AUDIT_DISABLED, _NESTED_AUDIT_OFF, _AUDIT_TAMPER, _UNAUDITED_HANDLER, _SETTING_AUDIT_OFF,
    _EXCLUDED_FROM_AUDIT, _EARLY_EXIT, _DROPPED_EVENTS, _NARROWED_POINTCUT, _AUDIT_BEST_EFFORT,
    _AUDIT_POLICY, _DATA_ACCESS_LOGS, _AUDIT_AFTER_ROUTES, _BULK_WRITE,
    _AUDIT_NARROWED,
)
