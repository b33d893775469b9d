# The decision. Rule files (rules.rego, and any file a team adds beside it) put
# entries into three partial sets of this package:
#   deny      {"rule", "reason"}  - the change must not ship as it is
#   review    {"rule", "reason"}  - people must look at it before it ships
#   approvals {"role", "count"}   - who must approve; the largest count per role wins
# This file turns them into `result`, the one document the engine reads.
package gitops.review

import rego.v1

default decision := "allow"

decision := "deny" if count(deny) > 0

decision := "review" if {
	count(deny) == 0
	count(review) + count(approvals) > 0
}

approval_roles contains a.role if some a in approvals

required_approvals := [{"role": role, "count": max({a.count | some a in approvals; a.role == role})} |
	some role in sort(approval_roles)
]

violations := sort([v | some v in deny | review])

result := {
	"decision": decision,
	"required_approvals": required_approvals,
	"violations": violations,
}
