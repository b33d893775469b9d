"""gitops-health core: domain, rules and state. Knows nothing of Slack, Teams or HTTP."""

__version__ = "0.1.0"
