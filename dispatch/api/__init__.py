"""The HTTP and websocket edge: the only place that knows status and close codes."""

from dispatch.api.app import create_app

__all__ = ["create_app"]
