"""`python -m estuary.agent`: the same as `estuary agent`."""

from estuary.agent.cli import main

raise SystemExit(main())
