"""Run Python source in a new, offline interpreter that cannot import this repository's packages: the proof that a
saved folder stands alone (loads through its own remote code). Standard library only, so every test venv can use it.
"""

import os
import subprocess
import sys

REPO_PACKAGES = ("nucel", "modeling_nucel", "tokenization", "training", "inference", "hub_cards")
BLOCK_REPO_IMPORTS = f"""
import sys

class BlockRepoPackages:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {REPO_PACKAGES!r}:
            raise ImportError("blocked import of " + name)

sys.meta_path.insert(0, BlockRepoPackages())
"""


def run_isolated(source, args, cwd, python=sys.executable, env=None, timeout=600):
    """`python -c BLOCK_REPO_IMPORTS + source args...` in `cwd` with HF_HUB_OFFLINE=1 and no PYTHONPATH."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environment.update({"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})})
    return subprocess.run([python, "-c", BLOCK_REPO_IMPORTS + source, *map(str, args)], cwd=cwd,
                          env=environment, capture_output=True, text=True, timeout=timeout)
