"""Deploy requests for tests: the diffs that make the policy ask for known approvals, and a valid request body.

Kept in one place so that every adapter test asks for the same decision the
same way; a test overrides only the fields it is about.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["CLINICAL", "ONE_APPROVER", "ask", "post_deployment", "request_fields"]

# A high PHI-in-logs finding: the policy asks for one approver.
ONE_APPROVER = """diff --git a/svc/api.py b/svc/api.py
--- a/svc/api.py
+++ b/svc/api.py
@@ -1,2 +1,3 @@
 import logging
+logging.info("patient %s", patient.ssn)
 x = 1
"""

# A dosing change without tests: two approvers and a clinical safety officer, by distinct people.
CLINICAL = """diff --git a/pump/dose.py b/pump/dose.py
--- a/pump/dose.py
+++ b/pump/dose.py
@@ -1,2 +1,3 @@
 def dose(rate):
+    rate = rate * 2
     return rate
"""


def request_fields(diff: str = "", **changes: Any) -> dict[str, Any]:
    """A valid POST /api/deployments body for the infusion pump, with ``diff`` and any field changed."""
    body: dict[str, Any] = {
        "service": "infusion-pump-controller", "version": "2.4.1", "environment": "production",
        "repository": "acme/pump", "commit": "9f1c2e7", "requested_by": "dev@example.org",
        "authors": ["dev@example.org"], "diff": diff,
    }
    body.update(changes)
    return body


def ask(service: Any, diff: str = "", **changes: Any) -> Any:
    """A new deploy request through the approval workflow ``service``, as POST /api/deployments makes it; returns the view."""
    from assistant.deployments import DeploymentRequest

    view, created = service.request_deployment(DeploymentRequest.model_validate(request_fields(diff, **changes)))
    assert created, "the request was already there: a test asked twice for the same deploy"
    return view


def post_deployment(http: Any, secret: str, fields: dict[str, Any]) -> Any:
    """POST /api/deployments as CI sends it: JSON, signed with the webhook ``secret``; returns the httpx response."""
    from assistant.signing import sign

    body = json.dumps(fields).encode()
    return http.post("/api/deployments", content=body, headers={"Content-Type": "application/json", **sign(secret, None, body)})
