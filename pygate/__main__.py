"""`python -m pygate` is the same as the `pygate` command."""

import sys

from pygate.cli.main import main

sys.exit(main())
