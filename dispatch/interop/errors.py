"""Errors of the standards adapters, under Yishao's own hierarchy (see :mod:`dispatch.errors`).

YishaoError
├── InvalidCallError
│   ├── InvalidEidoError       an EIDO that fails the NENA schema or cannot become a call (422)
│   └── InvalidCapError        a CAP request or alert that CAP 1.2 refuses (422)
├── ConfigError
│   └── StandardsMissingError  the standards folder lacks a schema the service needs
└── J2735Error                 bytes that do not decode, or values outside the ASN.1 constraints
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatch.errors import ConfigError, InvalidCallError, YishaoError


class InvalidEidoError(InvalidCallError):
    """An EIDO that is refused; ``field`` names the first offending field."""

    def __init__(self, reason: str, *, field: str, complaints: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.field = field
        self.complaints = list(complaints) or [reason]


class InvalidCapError(InvalidCallError):
    """A CAP alert that would not be valid CAP 1.2."""


class StandardsMissingError(ConfigError):
    """A standard's schema file is not where the settings say the standards live."""


class J2735Error(YishaoError):
    """A SignalRequestMessage / SignalStatusMessage that cannot be encoded or decoded."""
