# The default rules: what blocks a change, what needs people, and who.
# Facts come from the reviewer, the clinical-safety validator and the risk
# score (see assistant/policy.py policy_input); nothing here is LLM output.
#
# One violation per rule, not per finding: the findings themselves are in the
# review output, and a diff with a thousand findings must still be decided in
# milliseconds (rego-cpp builds sets of objects in quadratic time).
package gitops.review

import rego.v1

production if lower(input.environment) in {"production", "prod", "prd", "live"}

phi_categories := {"phi-exposure-log", "phi-exposure-output"}

# Exact counts, {category: {severity: n}}: from input.finding_counts, which
# counts every finding even when input.findings lists only the most severe
# (see assistant/policy.py); computed from input.findings when absent, as in tests.
counts := input.finding_counts if {
	input.finding_counts
} else := {category: by_severity |
	some f in input.findings
	category := f.category
	by_severity := {severity: count([g | some g in input.findings; g.category == category; g.severity == severity]) |
		some g in input.findings
		g.category == category
		severity := g.severity
	}
}

secret_count := sum([n | some n in object.get(counts, "hardcoded-secret", {})])

critical_phi_count := sum([n | some category in phi_categories; n := counts[category].critical])

serious_count := sum([n |
	some category in object.keys(counts)
	category != "hardcoded-secret"
	some severity in ["high", "critical"]
	n := counts[category][severity]
])

# "a.py:3, b.py:9, c.py:1 and 4 more": where to look, in a sentence.
# (concat, not sprintf %s: rego-cpp quotes computed strings inside sprintf %s.)
where(fs, total) := concat("", [
	concat(", ", [concat(":", [f.file, format_int(f.line, 10)]) | some f in array.slice(fs, 0, 3)]),
	concat("", [text |
		count(fs) > 0
		total > count(array.slice(fs, 0, 3))
		text := concat("", [" and ", format_int(total - count(array.slice(fs, 0, 3)), 10), " more"])
	]),
	concat("", [text |
		count(fs) == 0
		text := concat("", [format_int(total, 10), " place(s) past the most severe findings listed"])
	]),
])

secrets := [f | some f in input.findings; f.category == "hardcoded-secret"]

critical_phi := [f | some f in input.findings; f.category in phi_categories; f.severity == "critical"]

serious := [f |
	some f in input.findings
	f.severity in {"high", "critical"}
	f.category != "hardcoded-secret"
]

# A credential committed to a repository is compromised wherever the code runs.
deny contains {
	"rule": "no-hardcoded-secrets",
	"reason": concat("", ["hardcoded secret at ", where(secrets, secret_count), "; rotate it and load it from a secret store"]),
} if secret_count > 0

# Critical PHI exposure never goes to production (HIPAA 164.312(b), 164.502).
deny contains {
	"rule": "no-critical-phi-exposure-in-production",
	"reason": concat("", ["critical PHI exposure at ", where(critical_phi, critical_phi_count), " in a production deploy; remove or redact the PHI"]),
} if {
	production
	critical_phi_count > 0
}

# Any serious finding needs a second pair of eyes.
review contains {
	"rule": "serious-finding",
	"reason": concat("", [
		format_int(serious_count, 10), " high or critical finding(s) at ", where(serious, serious_count),
		"; fix them or have an approver accept them",
	]),
} if serious_count > 0

approvals contains {"role": "approver", "count": 1} if serious_count + secret_count > 0

# A change to dosing, alarms or device control is a clinical decision too (IEC 62304 §5, ISO 14971).
review contains {
	"rule": "clinical-safety-review",
	"reason": concat("", [
		"safety-critical change (IEC 62304 class ", input.clinical_safety.iec62304_class,
		"); a clinical safety officer must approve",
	]),
} if input.clinical_safety.safety_critical

approvals contains {"role": "clinical-safety-officer", "count": 1} if input.clinical_safety.safety_critical

approvals contains {"role": "approver", "count": 1} if input.clinical_safety.safety_critical

review contains {
	"rule": "safety-change-without-tests",
	"reason": "safety-critical change without test changes for the touched units; add tests or have two approvers accept the gap",
} if {
	input.clinical_safety.safety_critical
	not input.clinical_safety.tests_changed
}

approvals contains {"role": "approver", "count": 2} if {
	input.clinical_safety.safety_critical
	not input.clinical_safety.tests_changed
}

# A critical risk score needs two approvers whatever produced it.
review contains {
	"rule": "critical-risk",
	"reason": concat("", ["risk score ", format_int(input.risk.score, 10), " is critical; two approvers must accept it"]),
} if input.risk.level == "critical"

approvals contains {"role": "approver", "count": 2} if input.risk.level == "critical"
