"""``python -m spokehub.cli``."""

from spokehub.cli.app import main

main()
