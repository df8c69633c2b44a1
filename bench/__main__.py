"""`python -m bench` (`make bench`): the sweep benchmark; `python -m bench.handler` is the handler's."""

import sys

from bench.sweep import main

sys.exit(main())
