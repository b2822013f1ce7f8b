"""``python -m estuary.sim``: the same as ``estuary sim``."""

from estuary.sim.cli import main

raise SystemExit(main())
