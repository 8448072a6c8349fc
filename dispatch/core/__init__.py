"""The decisions of a call's way, as pure functions: no ``await``, no Redis, the clock passed in.

Each module decides one step; its adapter in :mod:`dispatch.flow` reads the state, asks it,
commits the answer and sends what it says. The batch drill calls the same functions.

====================  =========================================================================
``merge``             joint intake: which open incident a call joins; split a wrong merge
``plans``             response plan: which agencies and unit types, whistle or not, priority
``recommend``         rank each needed agency's units by road time; where a unit starts from
``whistle``           the whistle state machine: summon, ack, escalate, close; who sounds it
``rosters``           who is on duty today (primary and backup coordinators)
``assign``            assignment, hospital, the crew's status -> leg -> incident, close/release
``audience``          who sees which pushed event (role rules and subscription filters)
``geo``               distances and the grid cells that guard merge decisions
====================  =========================================================================

Routes and green-wave plans are :mod:`routing`'s (pure too): :mod:`routing.router`,
:mod:`routing.greenwave` (plan, re-plan, cancel, what is worth sending), :mod:`routing.arbiter`.
"""
