"""The shape of the house: one installed namespace, and arrows that only point down.

- From outside the checkout, `import nucel` works and none of the rooms is importable by its bare name.
- The rooms (training, inference, hub_cards) never import each other; everything imports the ground (`nucel`),
  `tokenization` and `modeling_nucel`, and no module imports a room above it.
- No module inserts a path into `sys.path`.
"""

import ast
import os
import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
ROOMS = ("training", "inference", "hub_cards")
FLOOR = ("modeling_nucel", "tokenization", "nucel")  # the ground floor: what every room may use
FOLDERS = (*ROOMS, *FLOOR)


def library_modules():
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            yield folder, path


def imported(path):
    """Every module name `path` imports (absolute `nucel.*` names; relative imports stay in their folder)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            if node.module == "nucel":  # `from nucel import tasks`: the ground's own modules
                yield from (f"nucel.{alias.name}" for alias in node.names)


def folder_of(module):
    """The folder a `nucel.*` module name lives in: a room, tokenization, modeling_nucel, or the ground."""
    parts = module.split(".")
    if parts[0] != "nucel":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in (*ROOMS, "tokenization", "modeling_nucel") else "nucel"


def test_the_rooms_never_import_each_other():
    sideways = [f"{path.relative_to(REPO)} imports {module}" for folder, path in library_modules()
                for module in imported(path) if folder in ROOMS and folder_of(module) in ROOMS
                and folder_of(module) != folder]
    assert sideways == []


def test_the_ground_floor_never_imports_a_room():
    upward = [f"{path.relative_to(REPO)} imports {module}" for folder, path in library_modules()
              for module in imported(path) if folder in FLOOR and folder_of(module) in ROOMS]
    assert upward == []


def test_the_model_files_import_only_torch_transformers_and_each_other():
    """modeling_nucel's files are also the Hub's remote code (flash_attn: optional, imported under try/except)."""
    allowed = {"torch", "transformers", "flash_attn", *sys.stdlib_module_names}
    for path in sorted((REPO / "modeling_nucel").glob("*.py")):
        outside = [module for module in imported(path) if module.split(".")[0] not in allowed
                   and module != "nucel.modeling_nucel"]
        assert outside == [], path


def test_no_module_edits_sys_path():
    edits = [str(path.relative_to(REPO)) for folder in (*FOLDERS, "benchmarks")
             for path in (REPO / folder).rglob("*.py")
             if "sys.path.insert" in path.read_text() or "sys.path.append" in path.read_text()]
    assert edits == []


def test_only_nucel_is_importable_from_outside_the_checkout(tmp_path):
    """Installed, the package is `nucel.*` only: no generic top-level `training`, `inference`, ... in site-packages."""
    probe = ("import importlib, nucel\n"
             "from nucel import NucELModel, __version__\n"
             "import nucel.training.pretraining.run, nucel.inference.embed, nucel.hub_cards.publish\n"
             "found = []\n"
             f"for name in {(*ROOMS, 'tokenization', 'modeling_nucel')!r}:\n"
             "    try:\n"
             "        importlib.import_module(name)\n"
             "        found.append(name)\n"
             "    except ImportError:\n"
             "        pass\n"
             "print(__version__, found)\n")
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=environment, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [__import__("nucel").__version__, "[]"]


def test_the_pretraining_script_runs_from_outside_the_checkout(tmp_path):
    """`python <checkout>/training/pretrain.py` (what `accelerate launch` runs) needs no sys.path edit."""
    result = subprocess.run([sys.executable, str(REPO / "training" / "pretrain.py"), "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300,
                            env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--config" in result.stdout


def test_every_noqa_says_why():
    """A `# noqa: CODE` tag is followed by the reason the rule does not apply there."""
    bare = re.compile(r"#\s*noqa(:\s*[A-Z]+[0-9]+(\s*,\s*[A-Z]+[0-9]+)*)?\s*$")
    unexplained = [f"{path.relative_to(REPO)}:{number}" for folder in (*FOLDERS, "benchmarks", "tests")
                   for path in sorted((REPO / folder).rglob("*.py"))
                   for number, line in enumerate(path.read_text().splitlines(), 1) if bare.search(line)]
    assert unexplained == []
