"""The system of record in PostgreSQL: the archive of the event log, final incident records,
the audit chain's checks and the figures a command centre reports.

Layering: beside :mod:`dispatch.flow` (above the store and the consumer loop, below the
wiring and the edge); the store stays the only owner of Redis, this package the only owner
of PostgreSQL.
"""
