"""Imported first by every benchmark script: `benchmarks/tokenize.py` shadows the standard library's `tokenize`
(which inspect, numpy and torch import) while this folder leads sys.path, so move it to the end (its helpers such
as `_harness` stay importable) and put the repository root first."""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE] + [_HERE]
REPO_ROOT = os.path.dirname(_HERE)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
SHARED_GENOMES = os.path.join(REPO_ROOT, "..", "shared", "data", "genomes")
