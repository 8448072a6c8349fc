"""The steps of a call's way through the service: read state, ask the core, commit, send.

=====================  =========================================================================
``intake``             1. the calls stream -> validated calls, or the dead letters
``merge``              2-3. joint intake and plan: a call becomes committed incident state
``recommend``          4. rank units for an incident (router + core ranking)
``reactor``            4. reacts to new incidents: recommendations, the automatic whistle
``whistle``            5. sound, ack, escalate (rosters, timers, the state machine)
``assign``             6-7. assign units with routes, hospital and green-wave plans; close
``greenwave``          8. protected units' signal requests, arbitrated per intersection
``track``              terminals' fixes and status: re-time, re-route, the leg followed
``fleet``              units, hospitals and rosters: what every step reads
=====================  =========================================================================

Step 9, push, is :mod:`dispatch.push`. Every step commits through
:class:`dispatch.infra.store.Store` (one guarded Lua commit: state and its events together).
"""
