"""``python -m rdv_tui`` is the ``rdv`` command."""

import sys

from rdv_tui.cli import main

sys.exit(main())
