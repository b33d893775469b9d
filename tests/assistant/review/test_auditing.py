"""Missing audit: removed audit steps anchored on their replacement, auditing switched off, mutable audit tables."""

from __future__ import annotations

from assistant.diffs import parse_diff
from assistant.review import auditing
from assistant.review._structure import udiff
from assistant.review.engine import review


def findings(diff: str):
    return [f for f in review(parse_diff(diff), rules=auditing.RULES).findings if f.category == "missing-audit"]


def test_removed_audit_call_is_anchored_on_the_first_added_line_of_its_change_block():
    diff = udiff(
        "ehr/medications/service.py",
        "     def active_orders(self, user, patient_id):",
        "-        orders = self.repo.for_patient(patient_id)",
        '-        self.audit.record(actor=user.id, action="medication.list", patient_id=patient_id)',
        "-        return orders",
        "+        return self.repo.for_patient(patient_id)",
        " ",
        start=12,
    )
    [f] = findings(diff)
    assert (f.line, f.rule) == (13, "AUD-001")
    assert "self.audit.record" in f.message and "21 CFR 11.10(e)" in f.regulations


def test_a_rewritten_or_moved_audit_call_is_not_reported():
    rewritten = udiff(
        "portal/labs.py",
        " def labs(patient_id):",
        '-    audit_event("labs.view", actor=current_user.id)',
        '+    audit_event("labs.view", actor=getattr(current_user, "id", None))',
    )
    moved = (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n"
        "@@ -1,4 +1,3 @@\n def read(user, pid):\n-    audit.record(user, pid)\n-    x = load(pid)\n+    x = load(pid)\n     return x\n"
        "@@ -20,2 +19,3 @@\n def write(user, pid):\n+    audit.record(user, pid)\n     save(pid)\n"
    )
    assert findings(rewritten) == []
    assert findings(moved) == []


def test_a_diff_that_only_deletes_lines_reports_nothing():
    diff = udiff("ehr/notes.py", " def save(note):", "-    audit.record(note)", "     repo.save(note)")
    assert findings(diff) == []


def test_swapping_the_audit_middleware_out_is_reported_on_its_replacement():
    diff = udiff(
        "ehr/settings/base.py",
        " MIDDLEWARE = [",
        '-    "ehr.audit.middleware.AuditTrailMiddleware",',
        '+    "ehr.metrics.middleware.RequestTimingMiddleware",',
        " ]",
    )
    assert [f.line for f in findings(diff)] == [2]


def test_auditing_switched_off_in_yaml_properties_and_env():
    yaml = udiff("src/main/resources/application-prod.yml", " ehr:", "   audit:", "-    enabled: true",
                 "+    enabled: false", "     sink: kafka")
    assert [f.rule for f in findings(yaml)] == ["AUD-003"]
    assert findings(udiff("app.properties", "+ehr.audit.enabled=false"))
    assert findings(udiff("deploy/.env.production", "+AUDIT_LOG_ENABLED=false"))
    assert findings(udiff("app.properties", "+ehr.audit.enabled=true")) == []
    other = udiff("app.yml", " ehr:", "   audit:", "     sink: kafka", "   beta:", "-    enabled: true", "+    enabled: false")
    assert findings(other) == []


def test_sql_that_drops_audit_triggers_or_makes_audit_rows_mutable():
    diff = udiff(
        "db/migrations/V42__cleanup.sql",
        "+BEGIN;",
        "+DROP TRIGGER IF EXISTS patients_audit_trg ON patients;",
        "+CREATE INDEX idx_enc ON encounters (admitted_at);",
        "+",
        "+GRANT SELECT, INSERT, UPDATE, DELETE ON audit_log TO ehr_app;",
        "+COMMIT;",
    )
    assert [f.line for f in findings(diff)] == [2, 5]
    safe = udiff(
        "db/migrations/V43.sql",
        "+GRANT SELECT, INSERT ON audit_log TO ehr_app;",
        "+REVOKE UPDATE, DELETE ON audit_log FROM ehr_app;",
        "+DROP TRIGGER IF EXISTS set_updated_at ON patients;",
    )
    assert findings(safe) == []


def test_cloudtrail_logging_switched_off_is_found_through_the_hunk_header():
    diff = (
        "diff --git a/infra/trail.tf b/infra/trail.tf\n--- a/infra/trail.tf\n+++ b/infra/trail.tf\n"
        '@@ -3,3 +3,3 @@ resource "aws_cloudtrail" "org" {\n'
        "   is_multi_region_trail = true\n-  enable_logging        = true\n+  enable_logging        = false\n"
        "   enable_log_file_validation = true\n"
    )
    assert [(f.line, f.rule) for f in findings(diff)] == [(4, "AUD-003")]


def test_new_handler_without_the_audit_its_siblings_make_is_reported_on_its_data_access():
    sibling = [
        ' @bp.get("/patients/<int:pid>/labs")',
        " @login_required",
        " def labs(pid):",
        '     audit_event("labs.view", actor=current_user.id, patient_id=pid)',
        "     return jsonify(load_labs(pid))",
        " ",
    ]
    new = ['+@bp.get("/patients/<int:pid>/notes")', "+@login_required", "+def notes(pid):",
           "+    notes = Note.query.filter_by(patient_id=pid).all()", "+    return jsonify([n.to_dict() for n in notes])"]
    [f] = findings(udiff("portal/routes.py", *sibling, *new))
    assert (f.line, f.rule) == (10, "AUD-005")
    # a file that shows no auditing anywhere gives nothing to be consistent with
    assert findings(udiff("portal/routes.py", *new)) == []
