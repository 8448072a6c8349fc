"""Step 9, push: every committed event to the websocket clients that may see it.

``hub`` (one event-log reader per instance, bounded per-client queues, resume without gap),
``frames`` (the wire form, serialised once), ``feed`` (one positions frame per interval to the
screens). Who sees what is :mod:`dispatch.core.audience`; close codes are :mod:`dispatch.api.ws`.
"""
