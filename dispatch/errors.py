"""Yishao's exceptions. Adapters wrap library errors with ``raise ... from exc``;
only ``dispatch.api`` maps them to HTTP status codes and websocket close codes.

YishaoError
├── ConfigError            settings refused at start-up (default secret outside dev, ...)
│   └── PlanError          a response-plan table that does not load (dispatch.core.plans)
├── AuthError              token missing, malformed, badly signed, expired, revoked (401 / 4401)
│   └── ForbiddenError     token valid but the role or agency may not do this (403 / 4403)
├── RateLimitedError       too many failed sign-ins from one address: locked out for a while (429)
├── InvalidInputError      a request body, file or message that does not validate (422)
│   ├── InvalidCallError   a call event that fails validation (dead-lettered, 422 over REST)
│   └── RosterError        a roster file that does not validate (dispatch.core.rosters)
├── NotFoundError          no such incident, unit, whistle, ... (404)
├── ConflictError          state does not allow it: unit already assigned, not eligible (409)
│   └── VersionConflict    a commit's guard failed: re-read and retry (dispatch.infra.store)
└── UnavailableError       a part the service needs is not there now (503)
    ├── StoreError         Redis unreachable, a commit failed, contention did not clear
    ├── OverloadedError    the intake backlog is past its hard limit: retry after a while
    └── NoGraphError       no road graph is loaded (YISHAO_GRAPH), so nothing can be routed
"""

from __future__ import annotations


class YishaoError(Exception):
    """Root of every error Yishao raises on purpose."""


class ConfigError(YishaoError):
    """Settings that the service refuses to start with."""


class AuthError(YishaoError):
    """The caller could not be authenticated."""


class ForbiddenError(AuthError):
    """The caller is authenticated but not allowed to do this."""


class RateLimitedError(YishaoError):
    """The caller is locked out for ``retry_after_s`` seconds after repeated failures."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InvalidInputError(YishaoError, ValueError):
    """Input that does not validate; the message names the field (never echoes the value)."""


class InvalidCallError(InvalidInputError):
    """A call event that does not validate; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFoundError(YishaoError):
    """The named object does not exist."""


class ConflictError(YishaoError):
    """The request conflicts with the current state."""


class UnavailableError(YishaoError):
    """Something the service depends on is not available right now; retry later."""


class StoreError(UnavailableError):
    """Redis could not be reached or a commit did not go through."""


class OverloadedError(UnavailableError):
    """Too much work is queued to accept more now; retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NoGraphError(UnavailableError):
    """No road graph is loaded, so units cannot be ranked or routed."""
