# Tests of the bundled policies; run them with `gitops-health policy test` (and under pytest).
#
# Two rego-cpp (regopy 1.5) limitations shape these tests; write yours the same way:
#  - `with input as {...}` fails to compile when the rule under test uses other rules,
#    so replace input key by key: `with input.findings as fs with input.environment as "prod"`;
#  - a `with` value must be a local variable, a literal or a function call, never a rule
#    (`with input.findings as my_rule` silently makes the test undefined).
package gitops.review_test

import rego.v1

finding(category, severity) := {
	"category": category, "severity": severity, "file": "svc/api.py", "line": 42,
	"rule": "TEST-001", "regulations": [],
}

not_safety_critical := {"safety_critical": false, "iec62304_class": "A", "tests_changed": false, "touched_units": []}

safety_critical(tests_changed) := {
	"safety_critical": true, "iec62304_class": "C", "tests_changed": tests_changed,
	"touched_units": ["pump/dose.py"],
}

risk(level, score) := {"score": score, "level": level, "factors": []}

roles(result) := {a.role: a.count | some a in result.required_approvals}

test_clean_change_is_allowed if {
	cs := not_safety_critical
	r := data.gitops.review.result with input.findings as [] with input.clinical_safety as cs
		with input.risk as risk("low", 0)
	r.decision == "allow"
	r.required_approvals == []
	r.violations == []
}

test_hardcoded_secret_is_denied_anywhere if {
	r := data.gitops.review.result with input.findings as [finding("hardcoded-secret", "high")]
	r.decision == "deny"
	some v in r.violations
	v.rule == "no-hardcoded-secrets"
	contains(v.reason, "svc/api.py:42")
}

test_critical_phi_exposure_to_production_is_denied if {
	r := data.gitops.review.result with input.findings as [finding("phi-exposure-log", "critical")]
		with input.environment as "Production"
	r.decision == "deny"
	some v in r.violations
	v.rule == "no-critical-phi-exposure-in-production"
}

test_critical_phi_exposure_to_staging_needs_review_not_deny if {
	r := data.gitops.review.result with input.findings as [finding("phi-exposure-output", "critical")]
		with input.environment as "staging"
	r.decision == "review"
	roles(r) == {"approver": 1}
}

test_high_finding_needs_one_approver if {
	r := data.gitops.review.result with input.findings as [finding("injection", "high")]
	r.decision == "review"
	r.required_approvals == [{"role": "approver", "count": 1}]
	some v in r.violations
	v.rule == "serious-finding"
}

test_medium_finding_alone_is_allowed if {
	r := data.gitops.review.result with input.findings as [finding("weak-crypto", "medium")]
	r.decision == "allow"
}

test_safety_critical_change_with_tests_needs_clinical_safety_officer if {
	r := data.gitops.review.result with input.findings as [] with input.clinical_safety as safety_critical(true)
	r.decision == "review"
	roles(r) == {"approver": 1, "clinical-safety-officer": 1}
}

test_safety_critical_change_without_tests_needs_two_approvers if {
	r := data.gitops.review.result with input.findings as [] with input.clinical_safety as safety_critical(false)
	r.decision == "review"
	roles(r) == {"approver": 2, "clinical-safety-officer": 1}
	some v in r.violations
	v.rule == "safety-change-without-tests"
}

test_critical_risk_needs_two_approvers if {
	r := data.gitops.review.result with input.findings as [] with input.risk as risk("critical", 90)
	r.decision == "review"
	roles(r) == {"approver": 2}
}

test_deny_wins_over_review if {
	r := data.gitops.review.result with input.findings as [finding("hardcoded-secret", "critical")]
		with input.clinical_safety as safety_critical(false)
	r.decision == "deny"
	roles(r) == {"approver": 2, "clinical-safety-officer": 1}
}

test_counts_decide_when_findings_are_not_listed if {
	r := data.gitops.review.result with input.findings as [] with input.finding_counts as {"hardcoded-secret": {"high": 2}}
	r.decision == "deny"
	some v in r.violations
	v.reason == "hardcoded secret at 2 place(s) past the most severe findings listed; rotate it and load it from a secret store"
}

test_where_lists_three_places_and_counts_the_rest if {
	fs := [finding("injection", "high"), finding("injection", "high"), finding("injection", "critical"), finding("injection", "high")]
	r := data.gitops.review.result with input.findings as fs
	some v in r.violations
	startswith(v.reason, "4 high or critical finding(s) at svc/api.py:42, svc/api.py:42, svc/api.py:42 and 1 more;")
}
