"""``python -m yishao`` runs the ``yishao`` command."""

from yishao.cli import main

main()
