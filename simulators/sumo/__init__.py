"""SUMO as the proving ground of the green wave: the router's map as a SUMO network, priority at
SUMO's traffic lights, and a signal gateway that serves the service's green-wave requests there.

Module map: ``network`` (netconvert the router's OSM extract; router signals -> SUMO lights and
link indices, router edges -> SUMO edges), ``controller`` (pure priority logic at one light),
``_traci`` (the TraCI adapter: programs, phases, phase durations), ``gateway`` (the ``signal``
websocket client of the service driving the controllers), ``cli`` (``yishao sumo build``).

Needs the ``sumo`` extra (``pip install -e '.[sumo]'``); importing this package does not.
"""

from __future__ import annotations
