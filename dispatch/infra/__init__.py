"""Mechanisms written once: the store (keys, guarded commit, retry), the stream consumer, timers.

The only package that talks to Redis directly; everything above it goes through
:class:`~dispatch.infra.store.Store` and sees :class:`~dispatch.errors.StoreError`, never a
Redis exception.
"""
