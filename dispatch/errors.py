"""Yishao's exceptions. Adapters wrap library errors with ``raise ... from exc``;
only ``dispatch.api`` maps them to HTTP status codes and websocket close codes.

YishaoError
├── ConfigError            settings refused at start-up (default secret outside dev, ...)
├── AuthError              token missing, malformed, badly signed or expired (401 / 4401)
│   └── ForbiddenError     token valid but the role or agency may not do this (403 / 4403)
├── InvalidCallError       a call event that fails validation (dead-lettered, 422 over REST)
├── NotFoundError          no such incident, unit, whistle, ... (404)
├── ConflictError          state does not allow it: unit already assigned, not eligible (409)
└── StoreError             Redis unreachable or a commit failed (503)
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


class InvalidCallError(YishaoError):
    """A call event that does not validate; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFoundError(YishaoError):
    """The named object does not exist."""


class ConflictError(YishaoError):
    """The request conflicts with the current state."""


class StoreError(YishaoError):
    """Redis could not be reached or a commit did not go through."""
