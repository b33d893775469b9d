# The default rules: what blocks a change, what needs people, and who.
# Facts come from the reviewer, the clinical-safety validator and the risk
# score (see assistant/policy.py policy_input); nothing here is LLM output.
package gitops.review

import rego.v1

production if lower(input.environment) in {"production", "prod", "prd", "live"}

phi_categories := {"phi-exposure-log", "phi-exposure-output"}

# A credential committed to a repository is compromised wherever the code runs.
deny contains {
	"rule": "no-hardcoded-secrets",
	"reason": sprintf("%s:%d: hardcoded secret (%s); rotate it and load it from a secret store", [f.file, f.line, f.rule]),
} if {
	some f in input.findings
	f.category == "hardcoded-secret"
}

# Critical PHI exposure never goes to production (HIPAA 164.312(b), 164.502).
deny contains {
	"rule": "no-critical-phi-exposure-in-production",
	"reason": sprintf("%s:%d: critical PHI exposure (%s) in a production deploy; remove or redact the PHI", [f.file, f.line, f.rule]),
} if {
	production
	some f in input.findings
	f.category in phi_categories
	f.severity == "critical"
}

# Any serious finding needs a second pair of eyes.
review contains {
	"rule": "serious-finding",
	"reason": sprintf("%s:%d: %s %s finding (%s); fix it or have an approver accept it", [f.file, f.line, f.severity, f.category, f.rule]),
} if {
	some f in input.findings
	f.severity in {"high", "critical"}
	f.category != "hardcoded-secret"
}

approvals contains {"role": "approver", "count": 1} if {
	some f in input.findings
	f.severity in {"high", "critical"}
}

# A change to dosing, alarms or device control is a clinical decision too (IEC 62304 §5, ISO 14971).
review contains {
	"rule": "clinical-safety-review",
	"reason": sprintf("safety-critical change (IEC 62304 class %s); a clinical safety officer must approve", [input.clinical_safety.iec62304_class]),
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
	"reason": sprintf("risk score %d is critical; two approvers must accept it", [input.risk.score]),
} if input.risk.level == "critical"

approvals contains {"role": "approver", "count": 2} if input.risk.level == "critical"
