"""Traces, metrics and structured logs for runs and steps."""
