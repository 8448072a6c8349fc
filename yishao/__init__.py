"""The ``yishao`` command: the service's, routing's and the drills' commands in one place.

The one module that imports all three packages (the composition root of the command line):
``dispatch`` never imports ``simulators``, and ``routing`` imports neither.
"""
