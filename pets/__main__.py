"""``python -m pets`` is the ``pets`` command."""

import sys

from pets.cli import main

sys.exit(main())
