"""``python -m ctsnn``: the command line (see ``ctsnn.cli``)."""
import sys

from .cli import main

sys.exit(main())
