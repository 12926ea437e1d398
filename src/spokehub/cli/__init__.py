"""The ``spokehub`` command line (Typer + Rich); its entry point is ``spokehub.cli.app:main``.

Commands stay thin: each one parses its options, calls a use case of ``spokehub.ops`` and
renders the result. Nothing is imported here so that ``python -m spokehub.cli`` stays quiet.
"""
