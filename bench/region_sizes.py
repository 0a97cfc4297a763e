#!/usr/bin/env python3
"""Region size sweep: `sudo python3 bench/region_sizes.py [--quick] [--no-build] [--build-dir DIR]
[SIZES...]` (see --help and bench/clonefs_bench/region_sizes.py)."""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from clonefs_bench.region_sizes import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
