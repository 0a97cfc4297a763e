#!/usr/bin/env python3
"""clonefs side-by-side benchmark: `sudo python3 bench/run.py [--quick] [--no-build] [--keep]
[--out FILE] [--only WORD] [--build-dir DIR]` (see --help and bench/clonefs_bench/)."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from clonefs_bench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
