"""Pure logic over a run's history: no database, no clock reads, no sleeps.

Everything here is a function of (definitions, history, now) so it is tested without fixtures.
"""
