"""Every reviewer rule, in one place: the families' RULES gathered in a fixed order."""

from __future__ import annotations

from assistant.review import access, at_rest, auditing, crypto, injection, phi, phi_output, safety, secrets, transport
from assistant.review.base import Rule

RULES: tuple[Rule, ...] = (
    *phi.RULES,
    *phi_output.RULES,
    *secrets.RULES,
    *crypto.RULES,
    *injection.RULES,
    *transport.RULES,
    *auditing.RULES,
    *access.RULES,
    *at_rest.RULES,
    *safety.RULES,
)

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}
