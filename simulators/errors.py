"""Every error the simulators raise, under one root::

    DrillError                       a drill cannot be set up or run
    ├── ScenarioError (ValueError)   a scenario that cannot be loaded (names the file and
    │                                field), or a place it names not found on the map
    └── LiveError (RuntimeError)     a live drill cannot go on: the service is unreachable,
                                     refused the set-up, or a socket could not (re)connect

``except DrillError`` catches both; the built-in bases keep older ``except ValueError`` /
``except RuntimeError`` callers working. Other failures keep their own types: a missing or
bad road graph is a :class:`routing.RoutingError`, a non-positive call speed-up a plain
``ValueError``.
"""

from __future__ import annotations


class DrillError(Exception):
    """Root of the simulators' errors."""


class ScenarioError(DrillError, ValueError):
    """A scenario that cannot be loaded; the message names the file or scenario and the field."""


class LiveError(DrillError, RuntimeError):
    """The live drill cannot go on: the service is unreachable or refused the drill's set-up."""
