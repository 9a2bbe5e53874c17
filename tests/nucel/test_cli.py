"""`nucel <job>`: one command for every job (nucel/cli.py), the old `nucel-<job>` names and script paths, the
extras each job needs, and one spelling of the options every job shares.

- `nucel --help` lists every job; `nucel <job> --help` is the job's own parser, called `nucel <job>`;
- an unknown job is one error line naming the jobs (exit status 2); a missing extra is one line naming it (1);
- setup.cfg says what nucel/cli.py says: its console scripts are the table's jobs, its extras the table's
  extras, and each job's module (with everything it imports from this package) imports nothing beyond the core
  install and its extra, except under `try: ... except ImportError`;
- `accelerate launch -m nucel pretrain` trains;
- --output-dir, --model, --batch-size and --dtype mean the same thing everywhere; old spellings still work.
"""

import ast
import configparser
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, write_config

from nucel import cli

BIN = os.path.dirname(sys.executable)
OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
# What `pip install nucel` installs (setup.cfg install_requires), as the modules code imports, and what may be
# imported without being installed because every import of it is guarded (try/except ImportError)
CORE_MODULES = {"torch", "transformers", "tokenizers", "safetensors", "huggingface_hub", "numpy", "tqdm"}
# setup.cfg's package_dir: nucel.<room> lives in <room>/
FOLDERS = {"modeling_nucel", "tokenization", "training", "inference", "hub_cards"}


def setup_cfg():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO_ROOT, "setup.cfg"))
    return parser


def requirement_names(text):
    """The distribution names (or `nucel[...]` self-references) of a setup.cfg requirement list."""
    return [re.split(r"[<>=!~;\s]", line.strip(), maxsplit=1)[0].lower() for line in text.strip().splitlines()
            if line.strip() and not line.strip().startswith("#")]


def run_main(argv, capsys):
    """cli.main(argv) in this process: (exit status, stdout, stderr)."""
    try:
        cli.main(argv)
        code = 0
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else 1
        if isinstance(exited.code, str):
            print(exited.code, file=sys.stderr)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -------------------------------------------------------------------------------------------------- the command
def test_help_lists_every_job_under_its_group(capsys):
    code, out, _ = run_main(["--help"], capsys)
    assert code == 0
    for group, heading in cli.GROUPS.items():
        assert f"\n{heading}:\n" in out
    listed = re.findall(r"^  ([a-z-]+) {2,}(.+)$", out, re.MULTILINE)
    assert [name for name, _ in listed if name in cli.JOBS] == [
        name for group in cli.GROUPS for name, job in cli.JOBS.items() if job.group == group]
    assert {name: summary for name, summary in listed if name in cli.JOBS} == {
        name: job.summary for name, job in cli.JOBS.items()}
    for extra in cli.EXTRAS:
        assert f"pip install 'nucel[{extra}]'" in out


def test_every_job_has_its_own_help(capsys):
    for name in cli.JOBS:
        code, out, err = run_main([name, "--help"], capsys)
        assert code == 0, (name, err)
        assert out.startswith(f"usage: nucel {name} "), (name, out[:200])


def test_version(capsys):
    assert run_main(["--version"], capsys)[:2] == (0, f"nucel {cli.__version__}\n")


@pytest.mark.parametrize("argv, problem", [(["embd", "--model", "x"], "unknown command 'embd' (did you mean 'embed'?)"),
                                           (["fly"], "unknown command 'fly'"), ([], "no command given")])
def test_an_unknown_job_is_one_line_naming_the_jobs(argv, problem, capsys):
    code, out, err = run_main(argv, capsys)
    assert code == 2 and out == ""
    assert err.splitlines()[-1] == f"nucel: error: {problem}; choose one of: {', '.join(cli.JOBS)}"


# Each in a fresh interpreter: the console scripts, `python -m nucel`, and the old names and paths. The slow ones
# are also run elsewhere (training/pretrain.py: test_layout; -m prepare_genome: test_genome_store).
FRESH_COMMANDS = [
    pytest.param(["{bin}/nucel", "--help"], "usage: nucel <command>", id="nucel"),
    pytest.param(["{bin}/nucel-embed", "--help"], "usage: nucel-embed ", id="nucel-embed"),
    pytest.param(["{python}", "-m", "nucel", "convert", "--help"], "usage: nucel convert ", id="python-m-nucel",
                 marks=pytest.mark.slow),
    pytest.param(["{python}", "{repo}/training/pretrain.py", "--help"], "usage: pretrain.py ", id="pretrain.py",
                 marks=pytest.mark.slow),
    pytest.param(["{python}", "-m", "nucel.tokenization.prepare_genome", "--help"], "usage: prepare_genome.py ",
                 id="prepare_genome", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("command, usage", FRESH_COMMANDS)
def test_the_commands_run_in_fresh_processes(command, usage, tmp_path):
    command = [part.format(bin=BIN, python=sys.executable, repo=REPO_ROOT) for part in command]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=OFFLINE)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(usage), done.stdout[:300]


# ------------------------------------------------------------------------------------------------------ extras
@pytest.fixture
def without_pyarrow(monkeypatch):
    """This Python as if the [inference] extra were half installed: pyarrow cannot be found."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "pyarrow"
                        else find_spec(name, *args))


def test_a_missing_extra_is_one_line(without_pyarrow, capsys, tmp_path):
    code, _, err = run_main(["embed", "--model", str(tmp_path), "--sequence", "ACGT", "--output",
                             str(tmp_path / "out.npy")], capsys)
    assert (code, err) == (1, "error: nucel embed needs the [inference] extra: pip install 'nucel[inference]' "
                              "(missing: pyarrow)\n")
    assert not (tmp_path / "out.npy").exists()
    assert run_main(["publish", "--help"], capsys)[0] == 0  # a job of the core install runs regardless


def test_the_old_script_names_say_the_same(without_pyarrow, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["nucel-embed", "--help"])
    with pytest.raises(SystemExit) as exited:
        cli.scripts.embed()
    assert exited.value.code == ("error: nucel-embed needs the [inference] extra: pip install 'nucel[inference]' "
                                 "(missing: pyarrow)")


def test_setup_cfg_installs_what_the_table_says():
    config = setup_cfg()
    scripts = dict(line.split(" = ") for line in config["options.entry_points"]["console_scripts"].strip().splitlines())
    assert scripts == {"nucel": "nucel.cli:main", **{
        f"nucel-{name}": f"nucel.cli:scripts.{cli.script_attribute(name)}" for name in cli.JOBS}}
    extras = {name: requirement_names(text) for name, text in config["options.extras_require"].items()}
    for extra, modules in cli.EXTRAS.items():
        assert sorted(extras[extra]) == sorted(set(modules.values())), extra
    assert extras["all"] == [f"nucel[{','.join(cli.EXTRAS)}]"]
    assert "nucel[all]" in extras["dev"] and "flash-attn" in extras["gpu"]
    core = requirement_names(config["options"]["install_requires"])
    assert set(core) == {"torch", "transformers", "tokenizers", "safetensors", "huggingface_hub", "numpy", "tqdm"}
    assert {job.extra for job in cli.JOBS.values()} - {None} == set(cli.EXTRAS)


def module_path(module):
    """The file of a `nucel.*` module in this checkout (package_dir: nucel.<room> is <room>/), or None."""
    package, *parts = module.split(".")
    if package != "nucel":
        return None
    base = os.path.join(REPO_ROOT, *([] if parts and parts[0] in FOLDERS else ["nucel"]), *parts)
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def imports_of(module):
    """(module name, guarded) of every import in `module`'s file, relative ones resolved; guarded: inside the body
    of a `try:` with an `except ImportError` (or ModuleNotFoundError), so the code runs without that module."""
    path = module_path(module)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]

    def names(node):
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:
            base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], *filter(None, [base])])
        if not base.startswith("nucel"):
            return [base]
        return [base, *(f"{base}.{alias.name}" for alias in node.names if module_path(f"{base}.{alias.name}"))]

    def visit(node, guarded):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield from ((name, guarded) for name in names(node))
        elif isinstance(node, ast.Try):
            catches = any(handler.type is not None and re.search(r"\b(ImportError|ModuleNotFoundError)\b",
                                                                 ast.unparse(handler.type))
                          for handler in node.handlers)
            for child in node.body:
                yield from visit(child, guarded or catches)
            for child in (*node.handlers, *node.orelse, *node.finalbody):
                yield from visit(child, guarded)
        else:
            for child in ast.iter_child_nodes(node):
                yield from visit(child, guarded)

    with open(path, encoding="utf-8") as handle:
        yield from visit(ast.parse(handle.read(), path), False)


def third_party_imports(module):
    """Top-level modules outside this package and the standard library that importing `module` can reach, each
    with whether every path to it is guarded by `except ImportError`."""
    found, seen, todo = {}, set(), [(module, False)]
    while todo:
        name, under_guard = todo.pop()
        parts = name.split(".")
        chain = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]  # importing a.b.c runs a, a.b, a.b.c
        for link in chain:
            if (link, under_guard) in seen or not module_path(link):
                continue
            seen.add((link, under_guard))
            for imported, is_guarded in imports_of(link):
                top = imported.split(".")[0]
                if top == "nucel":
                    todo.append((imported, under_guard or is_guarded))
                elif top not in sys.stdlib_module_names:
                    found[top] = found.get(top, True) and (under_guard or is_guarded)
    return found


@pytest.mark.parametrize("name", list(cli.JOBS))
def test_each_job_imports_only_the_core_and_its_extra(name):
    """The extras table is right: what a job's code imports (statically, everything it can reach in this package)
    is the core install or its extra; anything else is imported under `except ImportError`."""
    job = cli.JOBS[name]
    allowed = CORE_MODULES | set(cli.EXTRAS.get(job.extra, {}))
    reached = third_party_imports(job.entry.partition(":")[0])
    unguarded = sorted(top for top, is_guarded in reached.items() if top not in allowed and not is_guarded)
    assert unguarded == [], f"nucel {name} imports {unguarded} outside its [{job.extra}] extra"
    assert job.extra is None or set(cli.EXTRAS[job.extra]) & set(reached), "an extra the job does not use"


# ----------------------------------------------------------------------------------------- one argument style
def parsed(module, argv):
    return importlib.import_module(module).parse_args(argv)


def test_prepare_genome_writes_to_output_dir_or_output(tmp_path):
    from nucel.tokenization import prepare_genome

    fasta = tmp_path / "g.fa"
    fasta.write_text(">chr1\nACGTACGTNNACGT\n")
    for option in ("--output-dir", "--output"):
        prepare_genome.main([str(fasta), option, str(tmp_path / option.strip("-"))])
        assert (tmp_path / option.strip("-") / "index.json").is_file()


@pytest.mark.parametrize("argv", [["--model", "S", "--output-dir", "O"], ["S", "O"], ["--model", "S", "O"],
                                  ["S", "--output-dir", "O"]])
def test_convert_takes_model_and_output_dir_or_the_positionals(argv):
    args = parsed("nucel.hub_cards.convert", argv)
    assert (args.source, args.output) == ("S", "O")


@pytest.mark.parametrize("argv", [["S"], ["--model", "S"], ["S", "O", "X"], ["--model", "S", "A", "O"]])
def test_convert_needs_one_source_and_one_output(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        parsed("nucel.hub_cards.convert", argv)
    assert exited.value.code == 2


def test_benchmark_takes_model_as_models():
    from nucel.training.finetuning import grid

    args, rest = grid.parse_args(["--tasks", "t", "--model", "a", "b", "--batch-size", "8"])
    assert args.models == ["a", "b"] and rest == ["--batch-size", "8"]


@pytest.mark.parametrize("dtype, flags", [("float32", (None, False, True)), ("bfloat16", (True, False, False)),
                                          ("float16", (None, True, False)), ("auto", (None, False, False))])
def test_finetune_dtype_is_a_precision_flag(dtype, flags):
    args = parsed("nucel.training.finetuning.run", ["--model", "m", "--task-dir", "t", "--output-dir", "o",
                                                    "--dtype", dtype, "--device", "cpu"])
    assert (args.bf16, args.fp16, args.fp32) == flags and not hasattr(args, "dtype") and args.device == "cpu"


@pytest.mark.parametrize("argv", [["--dtype", "float32", "--fp32"], ["--dtype", "bfloat16", "--fp16"]])
def test_finetune_dtype_and_a_precision_flag_exclude_each_other(argv):
    with pytest.raises(SystemExit):
        parsed("nucel.training.finetuning.run", ["--model", "m", "--task-dir", "t", "--output-dir", "o", *argv])


def test_pretrain_batch_size_and_dtype_set_their_config_keys():
    from nucel.training.pretraining.run import parse_config

    base = ["--config", os.path.join(REPO_ROOT, "training", "configs", "tiny.yaml"), "--fasta", "g.fa"]
    default = parse_config(base)
    for dtype, precision in (("float32", "no"), ("bfloat16", "bf16"), ("float16", "fp16"), ("auto", "auto")):
        config = parse_config([*base, "--batch-size", "4", "--dtype", dtype])
        assert (config.per_device_batch_size, config.mixed_precision) == (4, precision)
        assert config.global_batch_size == default.global_batch_size
    assert parse_config([*base, "--per-device-batch-size", "4"]).per_device_batch_size == 4


def test_inference_jobs_share_the_runtime_options(capsys):
    for name in ("embed", "score-variants", "interpret"):
        out = run_main([name, "--help"], capsys)[1]
        for option in ("--model", "--batch-size", "--device", "--dtype"):
            assert option in out, (name, option)


# ------------------------------------------------------------------------------------------------- accelerate
@pytest.mark.slow
def test_accelerate_launches_nucel_pretrain_as_a_module(tmp_path, fasta):
    """`accelerate launch -m nucel pretrain`: a 2-step run that exports its models; --batch-size 4 under a global
    batch of 8 is two accumulation steps."""
    config = write_config(tmp_path, max_steps=2, save_steps=2, eval_steps=2)
    launcher = os.path.join(BIN, "accelerate")
    done = subprocess.run([launcher, "launch", "--quiet", "--num_processes", "1", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "nucel", "pretrain",
                           "--config", config, "--fasta", fasta, "--output-dir", str(tmp_path / "run"),
                           "--batch-size", "4"], capture_output=True, text=True, timeout=600,
                          env={**OFFLINE, "ACCELERATE_USE_CPU": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "global batch 8 = 4 x 1 process(es) x 2" in done.stdout + done.stderr
    assert (tmp_path / "run" / "discriminator" / "config.json").is_file()
    steps = [json.loads(line).get("step") for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(filter(None, steps)) == 2


def test_the_readme_shows_what_nucel_help_prints(capsys):
    """The README's copy of `nucel --help` (the block after the command) is lines of the real output, every job in
    it: it cannot drift from the table."""
    readme = open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8").read()
    shown = re.search(r"```bash\nnucel --help\n```\s*```text\n(.*?)```", readme, flags=re.DOTALL)
    assert shown, "README.md: no `nucel --help` block followed by its output"
    printed = run_main(["--help"], capsys)[1].splitlines()
    lines = shown.group(1).rstrip("\n").splitlines()
    assert [line for line in lines if line not in printed] == []
    assert {name for name in cli.JOBS if any(line.split()[:1] == [name] for line in lines)} == set(cli.JOBS)
