"""Every code block of README.md and docs/*.md runs as written.

Each page runs top to bottom in its own sandbox, the way a reader follows it from the repository root: a directory
whose entries link to the checkout's (training/, examples/, benchmarks/, ...), with `../shared` beside it and a
`runs/demo` that a short real pretraining run wrote (what `make demo`'s first step leaves, 20 steps instead of
1,200). Blocks of one page share that directory and, for Python, one namespace, so a page may build on its own
earlier blocks. `bash` blocks run with `bash -euo pipefail` and this venv's commands first on PATH; `python` blocks
run in this process; `yaml` and `json` blocks must parse; `text` blocks are output, shown not run.

A block that cannot run here says why on the line before it, `<!-- not run: REASON -->` (an install, a GPU, the
Hub, the 35-minute demo); the reasons are listed by `test_blocks_not_run_say_why`. A fence with any other language,
or none, fails the test: nothing reaches the reader unchecked by accident.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, SHARED_DATA

README_LIMIT = 12_288  # bytes: a README that fits on a few screens (issue 28)
RUN_LANGUAGES = ("bash", "python")
CHECKED_LANGUAGES = ("yaml", "json")
SHOWN_LANGUAGES = ("text",)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(\S*)\s*$")
BLOCK_TIMEOUT_S = 600
# Entries of the checkout a page never needs (and must not write into through a link).
LEFT_OUT = {".git", ".venv", ".venv-compat", ".venv-core", "runs", "site", ".pytest_cache", ".hypothesis", "build",
            "dist", "nucel.egg-info"}
DEMO_FASTA = os.path.join("..", "shared", "data", "genomes", "hg38_chr2_1-2333275.fa.gz")


def pages():
    """README.md and every docs page, as paths relative to the checkout."""
    docs = sorted(os.path.relpath(path, REPO_ROOT) for path in glob.glob(os.path.join(REPO_ROOT, "docs", "*.md")))
    return ["README.md", *docs]


def blocks(page):
    """The fenced blocks of `page`: (line number, language, code, reason it is not run or None)."""
    lines = Path(REPO_ROOT, page).read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        language = opening.group(1)
        previous = lines[index - 1] if index else ""
        reason = NOT_RUN.search(previous)
        end = index + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        assert end < len(lines), f"{page}:{index + 1}: a code fence that never closes"
        found.append((index + 1, language, "\n".join(lines[index + 1:end]) + "\n", reason and reason.group(1)))
        index = end + 1
    return found


def command_environment():
    """This venv's commands first on PATH (as after `source .venv/bin/activate`), offline, as the tests run."""
    environment = dict(os.environ)
    environment["PATH"] = os.path.dirname(sys.executable) + os.pathsep + environment.get("PATH", "")
    environment.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    environment.pop("PYTHONPATH", None)
    return environment


def link_checkout(root):
    """`root/nucel` mirrors the checkout by links (runs/ starts empty) and `root/shared` is the shared data."""
    os.symlink(os.path.dirname(SHARED_DATA), root / "shared")
    checkout = root / "nucel"
    checkout.mkdir()
    for entry in os.listdir(REPO_ROOT):
        if entry not in LEFT_OUT:
            os.symlink(os.path.join(REPO_ROOT, entry), checkout / entry)
    (checkout / "runs").mkdir()
    return checkout


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """runs/demo as `make demo`'s pretraining step leaves it (discriminator/, generator/, the run's records),
    written by the real command in 20 steps."""
    checkout = link_checkout(tmp_path_factory.mktemp("demo-run"))
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "nucel-pretrain"),
                           "--config", "training/configs/tiny.yaml", "--fasta", DEMO_FASTA,
                           "--output-dir", "runs/demo", "--max-steps", "20", "--warmup-steps", "2"],
                          cwd=checkout, env=command_environment(), capture_output=True, text=True,
                          timeout=BLOCK_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]
    return checkout / "runs" / "demo"


def run_bash(page, line, code, cwd):
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=command_environment(),
                          capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
    assert done.returncode == 0, (f"{page}:{line}: the bash block exited {done.returncode}\n{code}\n"
                                  f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-5000:]}")


def run_python(page, line, code, namespace):
    # Line numbers in a traceback point into the page: the block is compiled as if it started at its own line.
    exec(compile("\n" * line + code, os.path.join(REPO_ROOT, page), "exec"), namespace)


@pytest.mark.slow
@pytest.mark.parametrize("page", pages())
def test_page_runs(page, demo_run, tmp_path, monkeypatch):
    checkout = link_checkout(tmp_path)
    shutil.copytree(demo_run, checkout / "runs" / "demo", ignore=shutil.ignore_patterns("checkpoints"))
    for name, value in command_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(checkout)
    namespace = {"__name__": "__main__"}
    ran = 0
    for line, language, code, reason in blocks(page):
        if reason is not None or language not in RUN_LANGUAGES:
            continue
        if language == "bash":
            run_bash(page, line, code, checkout)
        else:
            run_python(page, line, code, namespace)
        ran += 1
    assert ran or page == "docs/study-tiny.md", f"{page} has no runnable example"


@pytest.mark.parametrize("page", pages())
def test_every_block_is_known(page):
    """Each fence names a language this test runs, parses or shows; YAML and JSON blocks parse."""
    for line, language, code, _ in blocks(page):
        where = f"{page}:{line}"
        assert language in RUN_LANGUAGES + CHECKED_LANGUAGES + SHOWN_LANGUAGES, (
            f"{where}: a ```{language} block: name one of {RUN_LANGUAGES + CHECKED_LANGUAGES + SHOWN_LANGUAGES}")
        if language == "yaml":
            yaml.safe_load(code)
        elif language == "json":
            json.loads(code)


def test_blocks_not_run_say_why():
    """Every block left out of the run gives its reason; the list is printed so a reviewer sees it whole."""
    skipped = [(page, line, reason) for page in pages() for line, language, _, reason in blocks(page)
               if reason is not None]
    for page, line, reason in skipped:
        assert reason.strip(), f"{page}:{line}: `<!-- not run: -->` needs a reason"
        print(f"not run: {page}:{line}: {reason}")


def test_readme_fits_a_few_screens():
    size = os.path.getsize(os.path.join(REPO_ROOT, "README.md"))
    assert size <= README_LIMIT, f"README.md is {size:,} bytes; the limit is {README_LIMIT:,}: move detail to docs/"


def test_readme_links_resolve():
    """The README's relative links (to docs pages and repository files) point at files that exist; mkdocs
    --strict checks the docs pages' own links (make docs)."""
    text = Path(REPO_ROOT, "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://|#|mailto:", target):
            continue
        path = target.split("#", 1)[0]
        assert os.path.exists(os.path.join(REPO_ROOT, path)), f"README.md links to {target}, which does not exist"


def test_every_docs_page_is_in_the_site():
    """mkdocs.yml's nav lists every docs page (mkdocs --strict also refuses one left out: validation.nav)."""
    config = yaml.safe_load(Path(REPO_ROOT, "mkdocs.yml").read_text(encoding="utf-8"))

    def listed(entries):
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            yield from listed(value) if isinstance(value, list) else [value]

    in_nav = set(listed(config["nav"]))
    on_disk = {os.path.relpath(page, "docs") for page in pages() if page.startswith("docs/")}
    assert on_disk == in_nav, f"pages not in the nav: {sorted(on_disk - in_nav)}; nav entries without a page: " \
                              f"{sorted(in_nav - on_disk)}"


@pytest.mark.parametrize("damage", ["a link to a page that is not there", "a page left out of the nav"])
def test_the_strict_site_build_refuses(damage, tmp_path):
    """`make docs` fails on what a reader would hit (the site's own pages checked, not the README): the build
    below is the Makefile's, on a copy of the site with one thing broken."""
    shutil.copytree(os.path.join(REPO_ROOT, "docs"), tmp_path / "docs")
    shutil.copy(os.path.join(REPO_ROOT, "mkdocs.yml"), tmp_path)
    if damage.startswith("a link"):
        with open(tmp_path / "docs" / "index.md", "a", encoding="utf-8") as page:
            page.write("\n[gone](not-a-page.md)\n")
    else:
        (tmp_path / "docs" / "orphan.md").write_text("# Orphan\n")
    build = [os.path.join(os.path.dirname(sys.executable), "mkdocs"), "build", "--strict", "--site-dir",
             str(tmp_path / "site")]
    environment = {**command_environment(), "NO_MKDOCS_2_WARNING": "1"}
    intact = subprocess.run(build, cwd=REPO_ROOT, env=environment, capture_output=True, text=True)
    assert intact.returncode == 0, intact.stderr[-2000:]
    broken = subprocess.run(build, cwd=tmp_path, env=environment, capture_output=True, text=True)
    culprit = "not-a-page.md" if damage.startswith("a link") else "orphan.md"
    assert broken.returncode != 0 and "WARNING" in broken.stderr and culprit in broken.stderr, broken.stderr[-2000:]
