"""Reviewer rules: (family being written)."""

from assistant.review.base import Rule

RULES: tuple[Rule, ...] = ()
