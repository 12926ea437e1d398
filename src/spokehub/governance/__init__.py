"""Governance: who may do what to runs, and proof of it.

This package owns policies, the approvals lifecycle's signed links, audit, secrets and
encryption at rest. The rules of approvals themselves are pure and live in
``spokehub.engine.approvals`` (the store applies them atomically); what needs a secret or a
key lives here.
"""
