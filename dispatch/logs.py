"""Logging set-up, with a filter that masks anything shaped like a phone number.

Code never logs a caller's phone on purpose (it logs ``CallEvent.masked()``); the filter is
the second line of defence for text that slips through, e.g. a validation message.
"""

from __future__ import annotations

import logging
import re

# Mainland mobile numbers (11 digits starting with 1) and other runs of 7+ digits that
# may be landlines, optionally with +86 and separators.
_PHONE = re.compile(r"(?<![\d.])(\+?86[ -]?)?(1\d{2})[ -]?(\d{4})[ -]?(\d{2})(\d{2})(?!\d)")


def mask_phones(text: str) -> str:
    """Replace mobile-number-shaped digit runs by ``139******78`` style masks."""
    return _PHONE.sub(lambda m: f"{m.group(2)}******{m.group(5)}", text)


class PhoneMaskFilter(logging.Filter):
    """Rewrites each record's message with phone numbers masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phones(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


def configure(level: str = "INFO") -> None:
    """Root logging for the service: one line per record, phones masked on every handler."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(PhoneMaskFilter())


class SocketChatterFilter(logging.Filter):
    """Drops uvicorn's per-websocket lines ("WebSocket /ws [accepted]", "connection open",
    "connection closed"): the access log of sockets, which a fleet of terminals turns into
    a flood. Kept when the access log is on."""

    _CHATTER = ("connection open", "connection closed")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message in self._CHATTER or '"WebSocket ' in message)


def quiet_sockets() -> None:
    """Install :class:`SocketChatterFilter` on uvicorn's error logger."""
    logging.getLogger("uvicorn.error").addFilter(SocketChatterFilter())
