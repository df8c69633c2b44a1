"""`python -m demo` (`make demo`): the whole flow against an embedded AWS emulator; see demo/run.py."""

from demo.run import main

raise SystemExit(main())
