"""``python -m dubkit.soundlib install``: what scripts/setup.sh runs (works before the main CLI registers it)."""
import sys

from .cli import main

sys.exit(main())
