"""The README's Python examples run as written."""

import os
import re

from conftest import REPO_ROOT


def python_blocks():
    text = open(os.path.join(REPO_ROOT, "README.md")).read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_readme_python_examples_run(tmp_path, monkeypatch):
    from conftest import write_release_discriminator

    from nucel.hub_cards.convert import convert_release

    blocks = python_blocks()
    assert blocks
    monkeypatch.chdir(tmp_path)
    # "Use the released NucEL weights" reads a converted release: a synthetic one in the release's format.
    source, _ = write_release_discriminator(tmp_path / "release-source")
    convert_release(source, str(tmp_path / "nucel-release"), log=lambda line: None)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "nucel-export" / "discriminator" / "modeling_nucel.py").exists()
