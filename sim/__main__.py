"""``python -m sim``: the fragsim command line."""

from sim.cli import main

raise SystemExit(main())
