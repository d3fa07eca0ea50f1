"""``python -m waza`` runs the command line."""

from waza.cli import main

main()
