"""Sound library management for the command line: ``dubkit library list|add|remove|search|install``.

The library itself (sources, extraction, index, matching) lives in ``audiostory_core.render.foley``; this package
only presents it. ``library_app`` (in :mod:`dubkit.soundlib.cli`) is a typer sub-app the main CLI registers;
importing it loads nothing heavier than typer, so ``dubkit --help`` stays instant.
"""
