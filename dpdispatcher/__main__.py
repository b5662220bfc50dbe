"""``python -m dpdispatcher`` runs the ``dpdisp`` command line."""

import sys

from dpdispatcher.dpdisp import main

sys.exit(main())
