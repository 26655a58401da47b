"""`python -m fastfit` and the `fastfit` console script: see `fastfit.cli`."""
import sys

from fastfit.cli import main

if __name__ == "__main__":
    sys.exit(main())
