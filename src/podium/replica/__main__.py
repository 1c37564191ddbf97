"""`python -m podium.replica`: see `podium.replica.main`."""

import sys

from podium.replica.main import main

if __name__ == "__main__":
    sys.exit(main())
