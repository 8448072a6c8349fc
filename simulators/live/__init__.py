"""Live drills: a scenario played in real time against a running service, through its interfaces.

:func:`run_live` is the field and the joint console of a drill in one asyncio process, talking
to the service only as its real clients do, over REST and ``/ws`` (of the service's code it
imports only the models, the token format and the pure decision core, never an adapter):

* set-up over REST (an admin token minted from the secret): the seeded fleet's units, the
  hospitals, and rotation rules naming the simulated coordinators;
* calls from the scenario, posted (``POST /api/calls``) by each centre at their times
  compressed by ``call_speedup``;
* the console (:mod:`.console`, a dispatcher websocket) assigns the suggested units of each
  recommendation and sounds the whistle in the name of the centre the service's rule names;
* coordinators (:mod:`.coordinators`, one websocket each) ack their summons after a human
  delay, or never (the scenario's silent share, plus any named silent): the service escalates;
* the 122 signal gateway (one websocket, scope ``*``) holds a :class:`SignalController` per
  signal (:mod:`.field`), executes grants and cancels, and reports ``served`` / ``rejected``;
* terminals (:mod:`.units`, one websocket per unit) drive each ``route.planned`` with
  :class:`VehicleSim` in real time against those same controllers, sending a fix a second and
  status changes; whether a crew takes its patient to hospital is the batch drill's patient
  model (:mod:`simulators.patients`).

Two clocks can be bent, and only these: ``call_speedup`` compresses the scenario's call times
(60: an hour of calls a minute), and ``LiveConfig.crew_time_scale`` multiplies the crews'
turnout, time on scene and hand-over. Vehicles, signals and coordinators run in real time, as
they would. Afterwards every drive is repeated offline without priority (same route, same
second, same fixed-time plans) and the report (:mod:`.report`: the batch :class:`DrillReport`
model, ``mode = "live"``) is uploaded to ``PUT /api/reports/{id}``. :mod:`.drill` wires it
together; :mod:`.net` holds the resuming websocket sessions and the tokens.
"""

from __future__ import annotations

from .config import LiveConfig
from .drill import drill_id_for, plan_live, report_url, run_live
from .report import LiveDrillReport

__all__ = ["LiveConfig", "LiveDrillReport", "drill_id_for", "plan_live", "report_url", "run_live"]
