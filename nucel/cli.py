"""`nucel <job> ...`: one command for every NucEL job, read from one table.

`JOBS` is the only list of jobs. The grouped `nucel --help`, the dispatcher, the install check and the old
`nucel-<job>` console scripts (`scripts`, named in setup.cfg) are all derived from it, and `EXTRAS` is the only
statement of what each extra installs (tests/nucel/test_cli.py checks setup.cfg against both). Invariants:

- The ground floor never imports a room by an import statement: a job names its function as a string
  ("module:function") that is imported (importlib) only when that job runs, so `nucel --help` loads no room.
- A job runs only where its extra is installed: before its module is imported, the extra's top-level modules are
  looked up (importlib.util.find_spec, nothing is imported); one that is missing ends the command with one line
  naming the extra to install (exit status 1), not an ImportError from deep inside a room.
- `nucel <job> ARGS` and `nucel-<job> ARGS` run the same function on the same ARGS; under `nucel` the job's
  parser calls itself `nucel <job>` in its usage and help.
- Anything `python -m nucel` runs, `accelerate launch -m nucel ...` runs on every process (nucel/__main__.py).
"""

import contextlib
import difflib
import importlib
import importlib.util
import sys
import textwrap
import types
from typing import NamedTuple, Optional

from nucel import __version__
from nucel.commands import fail

# What each extra installs, as {top-level module a room imports: the distribution pip installs it from}. A module
# is listed under every extra whose jobs import it, so an extra alone is enough for its jobs. Everything else a job
# imports is the core install (torch, transformers, tokenizers, safetensors, huggingface_hub, numpy, tqdm).
EXTRAS = {
    # accelerate: the pretraining loop and checkpoints; datasets: fine-tuning's splits; scikit-learn and scipy:
    # metrics; pyyaml: configs; peft: --lora; psutil: the memory check; matplotlib: metrics.png and study plots;
    # tensorboard: --report-to tensorboard.
    "train": {"accelerate": "accelerate", "datasets": "datasets", "sklearn": "scikit-learn", "scipy": "scipy",
              "yaml": "pyyaml", "peft": "peft", "psutil": "psutil", "matplotlib": "matplotlib",
              "tensorboard": "tensorboard"},
    # pysam: FASTA references (--bed) and VCFs; pyarrow: .parquet output; scikit-learn: score-variants --labels.
    "inference": {"pysam": "pysam", "pyarrow": "pyarrow", "sklearn": "scikit-learn"},
    # matplotlib, logomaker and pandas: the plots; pysam: --bed regions of a FASTA reference.
    "interpret": {"matplotlib": "matplotlib", "logomaker": "logomaker", "pandas": "pandas", "pysam": "pysam"},
}


class Job(NamedTuple):
    group: str              # the heading it is listed under in `nucel --help` (a key of GROUPS)
    entry: str              # "module:function": the room's console function, called with the job's arguments
    extra: Optional[str]    # the extra its imports need (a key of EXTRAS); None: the core install is enough
    summary: str            # its line in `nucel --help`


GROUPS = {"train": "train and evaluate", "use": "use a model", "share": "share a model"}
JOBS = {
    "prepare-genome": Job("train", "nucel.tokenization.prepare_genome:main", None,
                          "pack FASTA files into the genome store that pretraining reads"),
    "pretrain": Job("train", "nucel.training.pretraining.run:cli", "train",
                    "pretrain ELECTRA (or the MLM baseline) on FASTA genomes, under accelerate"),
    "finetune": Job("train", "nucel.training.finetuning.run:cli", "train",
                    "fine-tune (or probe) a model on one benchmark task"),
    "benchmark": Job("train", "nucel.training.finetuning.grid:cli", "train",
                     "fine-tune models x tasks alike and print one comparison table"),
    "study": Job("train", "nucel.training.studies.run:cli", "train",
                 "pretrain arms at equal compute and compare them with baselines on tasks"),
    "embed": Job("use", "nucel.inference.embed:cli", "inference",
                 "embeddings of sequences, FASTA records or BED regions (.npy or .parquet)"),
    "score-variants": Job("use", "nucel.inference.variants:cli", "inference",
                          "score the variants of a VCF with the discriminator and generator"),
    "interpret": Job("use", "nucel.inference.interpret:cli", "interpret",
                     "in-silico mutagenesis, attention maps and motif matches, as a report"),
    "convert": Job("share", "nucel.hub_cards.convert:cli", None,
                   "convert the authors' released checkpoint into a NucEL model folder"),
    "publish": Job("share", "nucel.hub_cards.publish:cli", None,
                   "assemble a Hub folder (model card, remote code), and optionally push it"),
}
PROGRAM = "nucel"
USAGE = f"usage: {PROGRAM} <command> [options]    ({PROGRAM} <command> --help: that command's options)"


def missing_modules(extra):
    """The distributions of `extra` whose top-level module this Python cannot find (looked up, not imported)."""
    modules = EXTRAS.get(extra, {}) if extra else {}
    return sorted({distribution for module, distribution in modules.items()
                   if importlib.util.find_spec(module) is None})


def run_job(name, argv, command):
    """Run job `name` on `argv` (None: sys.argv[1:]) once its extra is known to be installed; `command`: how the
    user called it, for the one line that names a missing extra. Returns None (the process's exit status 0)."""
    job = JOBS[name]
    missing = missing_modules(job.extra)
    if missing:
        fail(f"error: {command} needs the [{job.extra}] extra: pip install 'nucel[{job.extra}]' "
             f"(missing: {', '.join(missing)})")
    module, _, function = job.entry.partition(":")
    getattr(importlib.import_module(module), function)(argv)


@contextlib.contextmanager
def program_name(name):
    """argparse names the program after sys.argv[0]: the job's parser then says `nucel <job>`, not `__main__.py`."""
    saved = sys.argv[0] if sys.argv else None
    if sys.argv:
        sys.argv[0] = name
    try:
        yield
    finally:
        if saved is not None:
            sys.argv[0] = saved


def script_attribute(name):
    """The attribute of `scripts` that console script nucel-<name> calls (an entry point cannot name a dash)."""
    return name.replace("-", "_")


def old_script(name):
    def run():
        run_job(name, None, f"{PROGRAM}-{name}")
    run.__name__ = script_attribute(name)
    run.__doc__ = f"The console script {PROGRAM}-{name}: `{PROGRAM} {name}` under its old name."
    return run


# setup.cfg points nucel-<job> at scripts.<job with underscores>, so the old names pass the same extras check.
scripts = types.SimpleNamespace(**{script_attribute(name): old_script(name) for name in JOBS})


def installs():
    """Which install runs which jobs: the core install, then each extra."""
    core = [name for name, job in JOBS.items() if job.extra is None]
    lines = [f"pip install {PROGRAM}: {', '.join(core)}"]
    lines += [f"pip install '{PROGRAM}[{extra}]': {', '.join(n for n, job in JOBS.items() if job.extra == extra)}"
              for extra in EXTRAS]
    lines.append(f"pip install '{PROGRAM}[all]': every job")
    return lines


def overview():
    """`nucel --help`: the jobs under their group headings, one line each, then the options and the installs."""
    width = max(map(len, JOBS)) + 4
    lines = [USAGE, "", "NucEL: ELECTRA-style single-nucleotide DNA language models on a ModernBERT backbone."]
    for group, heading in GROUPS.items():
        lines += ["", f"{heading}:"]
        lines += [f"  {name:<{width}}{job.summary}" for name, job in JOBS.items() if job.group == group]
    lines += ["", "options:", f"  {'-h, --help':<{width}}show this overview and exit",
              f"  {'--version':<{width}}show the version and exit", "", "installs:"]
    lines += [textwrap.fill(line, 116, initial_indent="  ", subsequent_indent="    ") for line in installs()]
    lines += ["", f"Several processes or GPUs: accelerate launch [accelerate options] -m {PROGRAM} pretrain ..."]
    return "\n".join(lines)


def main(argv=None):
    """`nucel [--help | --version | <job> ARGS...]`. No job, or one not in JOBS, is one `nucel: error:` line
    naming the jobs, on stderr with exit status 2, as argparse ends a call it cannot parse."""
    argv = sys.argv[1:] if argv is None else list(argv)
    first = argv[0] if argv else None
    if first in ("-h", "--help"):
        print(overview())
        return
    if first == "--version":
        print(f"{PROGRAM} {__version__}")
        return
    if first not in JOBS:
        close = difflib.get_close_matches(first or "", JOBS, n=1)
        problem = (f"unknown command {first!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                   if first is not None else "no command given")
        # no command: the whole overview; a mistyped one: the usage line, as argparse does (the error lists them)
        print(overview() if first is None else USAGE, file=sys.stderr)
        print(f"{PROGRAM}: error: {problem}; choose one of: {', '.join(JOBS)}", file=sys.stderr)
        sys.exit(2)
    with program_name(f"{PROGRAM} {first}"):
        run_job(first, argv[1:], f"{PROGRAM} {first}")
