"""`python -m vitr`: the `vitr` command, for environments where the script is not on PATH."""

import sys

from vitr.cli.main import main

sys.exit(main())
