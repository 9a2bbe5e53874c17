"""Issue 10's classes of failure, each pinned: no data loss or mixing between runs, no code run from model or
checkpoint folders, no silent wrong result, and one clear line (never a traceback) for bad input."""

import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import REPO_ROOT, dna_batch, motif_task, tiny_config, write_fasta
from test_pretrain import planted_motif_genome, read_metrics, run, write_config
from nucel.training.finetuning import grid as benchmark
from nucel.training.finetuning import run as finetune
from nucel.training.pretraining import run as pretrain
from nucel.hub_cards import publish
from nucel.training.pretraining.config import load_config
from nucel.run_directory import LOCK, RunLock

CONFIGS = os.path.join(REPO_ROOT, "training", "configs")


@pytest.fixture(scope="module")
def fasta(tmp_path_factory):
    folder = tmp_path_factory.mktemp("safety-genome")
    return write_fasta(folder / "g.fa.gz", [("chrA", planted_motif_genome(30_000, seed=3))])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, fasta):
    """A 2-step pretraining run with one checkpoint (copied by tests that change it)."""
    return run(tmp_path_factory.mktemp("finished"), fasta, max_steps=2, save_steps=2, eval_steps=2)


def copy_run(finished_run, tmp_path):
    shutil.copytree(finished_run.parent, tmp_path, dirs_exist_ok=True)
    return tmp_path / "run"


def resume(tmp_path, fasta, *args, **overrides):
    return run(tmp_path, fasta, "--resume", *args, **{"max_steps": 4, "save_steps": 2, "eval_steps": 2, **overrides})


def cli(script, *argv, cwd=None):
    """A script run as users run it: (exit status, stderr lines)."""
    done = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "training", script), *map(str, argv)],
                          capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    return done.returncode, [line for line in done.stderr.splitlines() if line.strip()]


# ----------------------------------------------------------------------------------- data loss and mixing
HOLD_LOCK = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from nucel.run_directory import claim_output_directory
    lock = claim_output_directory(sys.argv[2], "pretrain")
    print("held", flush=True)
    time.sleep(120)
""")


def test_a_second_run_on_a_locked_directory_is_refused(tmp_path, fasta):
    """Two real processes: while one holds the run directory, a pretraining run there is refused, writes nothing."""
    output_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, REPO_ROOT, str(output_dir)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=rf"in use by another NucEL run \(pid {holder.pid} on "):
            run(tmp_path, fasta)
        assert sorted(os.listdir(output_dir)) == [".nucel-run.json", LOCK]  # no store, no metrics, no checkpoint
    finally:
        holder.kill()
        holder.wait()
    run(tmp_path, fasta)  # the kernel dropped the dead holder's lock: the run proceeds
    assert (output_dir / "discriminator" / "model.safetensors").exists()


def test_a_lock_file_left_by_a_dead_process_is_taken_over(tmp_path):
    (tmp_path / LOCK).write_text(json.dumps({"pid": 2 ** 22 + 7, "host": "elsewhere", "started": "then"}))
    with RunLock(str(tmp_path)).acquire() as lock:
        assert lock.holder()["pid"] == os.getpid()
    assert RunLock._stale_or_free({"pid": 2 ** 22 + 7, "host": os.uname().nodename})  # no flock: pid decides
    assert not RunLock._stale_or_free({"pid": os.getppid(), "host": os.uname().nodename})


def test_finetune_refuses_a_pretraining_run_and_deletes_nothing_it_did_not_create(tmp_path, finished_run):
    pretraining = copy_run(finished_run, tmp_path / "p")
    checkpoints = sorted(os.listdir(pretraining / "checkpoints"))
    task = motif_task(tmp_path / "task")
    with pytest.raises(ValueError, match="holds a pretraining run .* not a fine-tuning run"):
        finetune.main(["--model", "onehot-cnn", "--task-dir", task, "--output-dir", str(pretraining),
                       "--max-steps", "2", "--quiet"])
    assert sorted(os.listdir(pretraining / "checkpoints")) == checkpoints
    # A fine-tuning folder keeps what others put there: only its own scratch checkpoints are removed.
    output = tmp_path / "ft"
    (output / "checkpoints").mkdir(parents=True)
    (output / "checkpoints" / "notes.txt").write_text("mine")
    finetune.main(["--model", "onehot-cnn", "--task-dir", task, "--output-dir", str(output), "--max-steps", "2",
                   "--quiet"])
    assert (output / "checkpoints" / "notes.txt").read_text() == "mine"
    assert not [name for name in os.listdir(output) if name.startswith(".checkpoints-")]
    with pytest.raises(ValueError, match="holds a saved model"):
        finetune.main(["--model", "onehot-cnn", "--task-dir", task, "--output-dir", str(pretraining / "generator"),
                       "--max-steps", "2", "--quiet"])


def test_a_refused_run_rebuilds_nothing(tmp_path, finished_run):
    output_dir = copy_run(finished_run, tmp_path)
    index = (output_dir / "genome-store" / "index.json").read_text()
    other = write_fasta(tmp_path / "other.fa.gz", [("chrZ", planted_motif_genome(20_000, seed=9))])
    with pytest.raises(ValueError, match="already holds checkpoints"):
        run(tmp_path, other, max_steps=4)
    with pytest.raises(ValueError, match="trained on a different genome"):
        resume(tmp_path, other)
    assert (output_dir / "genome-store" / "index.json").read_text() == index


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_save_total_limit_must_keep_a_checkpoint(limit):
    with pytest.raises(ValueError, match=f"save_total_limit={limit}: expected a positive integer"):
        load_config(os.path.join(CONFIGS, "tiny.yaml"), [("fasta", "g.fa"), ("save_total_limit", limit)])


def test_benchmark_cells_are_unique_and_reuse_checks_the_data(tmp_path, tiny_export, capsys):
    first, second = tmp_path / "a" / "b_c", tmp_path / "a_b" / "c"  # one spelling as a file name: a_b_c
    for folder in (first, second):
        shutil.copytree(tiny_export / "discriminator", folder)
    task = motif_task(tmp_path / "task")
    cells = {benchmark.cell_directory("g", task, str(folder)) for folder in (first, second)}
    assert len(cells) == 2
    assert benchmark.cell_directory("g", task, str(first)) == benchmark.cell_directory("g", task, f"{first}/")
    with pytest.raises(ValueError, match="the same model twice"):
        benchmark.main(["--tasks", task, "--models", str(first), f"{first}/", "--output-dir", str(tmp_path / "g")])
    argv = ["--tasks", task, "--models", "onehot-cnn", "--output-dir", str(tmp_path / "g"), "--max-steps", "2",
            "--quiet"]
    benchmark.main(argv)
    motif_task(tmp_path / "task", sizes=(100, 64, 64))  # the training split changes, the command does not
    capsys.readouterr()
    benchmark.main(argv)
    out = capsys.readouterr().out
    assert "not reusing" in out and "the train split changed" in out
    results = json.loads(open(os.path.join(benchmark.cell_directory(str(tmp_path / "g"), task, "onehot-cnn"),
                                           "results.json")).read())
    assert results["data"]["train"]["rows"] == 100


# -------------------------------------------------------------------------------------- no code from folders
class Payload:
    """Unpickling this runs a shell command (creates `marker`): what a crafted checkpoint file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("name", ["random_states_0.pkl", "optimizer.bin", "custom_checkpoint_0.pkl"])
def test_a_crafted_pickle_in_a_checkpoint_is_refused_and_never_runs(tmp_path, fasta, finished_run, name):
    output_dir = copy_run(finished_run, tmp_path)
    checkpoint = output_dir / "checkpoints" / "step-00000002"
    marker = tmp_path / "pwned"
    if name == "custom_checkpoint_0.pkl":  # the legacy scheduler file is read only where scheduler.json is absent
        (checkpoint / "scheduler.json").unlink()
    torch.save({"state": Payload(marker)}, checkpoint / name)
    with pytest.raises(ValueError, match=f"{name}: refused: it holds Python objects other than tensors"):
        resume(tmp_path, fasta)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["custom_checkpoint_0.pkl", "custom_checkpoint_1.pkl", "pytorch_model.bin",
                                  "scaler.pt", "random_states_1.pkl"])
def test_a_file_the_package_does_not_write_is_refused_by_name_in_todays_layout(tmp_path, fasta, finished_run, name):
    """Planted beside a valid scheduler.json (today's layout): accelerate's load_state would unpickle these with
    weights_only=False (custom objects, RNG states) or look for them by name; the listing refuses them first."""
    output_dir = copy_run(finished_run, tmp_path)
    checkpoint = output_dir / "checkpoints" / "step-00000002"
    assert (checkpoint / "scheduler.json").is_file()
    marker = tmp_path / "pwned"
    torch.save({"state": Payload(marker)}, checkpoint / name)
    why = "the legacy schedule pickle beside scheduler.json" if name == "custom_checkpoint_0.pkl" else \
        "not a file training/pretrain.py writes there"
    with pytest.raises(ValueError, match=f"{name}: refused: {why}"):
        resume(tmp_path, fasta)
    assert not marker.exists()


def test_checkpoints_hold_the_schedule_as_json_and_a_legacy_pickle_still_resumes(tmp_path, fasta, finished_run):
    output_dir = copy_run(finished_run, tmp_path)
    checkpoint = output_dir / "checkpoints" / "step-00000002"
    assert not list(checkpoint.glob("custom_checkpoint_*")) and "last_epoch" in (checkpoint / "scheduler.json").read_text()
    # A checkpoint written before scheduler.json: the schedule in accelerate's pickle, read with weights_only=True.
    torch.save(json.loads((checkpoint / "scheduler.json").read_text()), checkpoint / "custom_checkpoint_0.pkl")
    (checkpoint / "scheduler.json").unlink()
    resume(tmp_path, fasta)
    assert [r["step"] for r in read_metrics(output_dir) if "loss" in r] == [1, 2, 3, 4]


def evil_tokenizer_folder(source, folder, marker):
    """A model folder whose tokenizer_config.json points at a .py file of the folder (which would run)."""
    shutil.copytree(source, folder)
    (folder / "evil_tokenizer.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                              "from transformers import PreTrainedTokenizerFast as EvilTokenizer\n")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["auto_map"] = {"AutoTokenizer": [None, "evil_tokenizer.EvilTokenizer"]}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def test_tokenizer_code_in_a_model_folder_never_runs(tmp_path, tiny_export):
    marker = tmp_path / "pwned"
    folder = evil_tokenizer_folder(tiny_export / "discriminator", tmp_path / "evil", marker)
    task = motif_task(tmp_path / "task")
    with pytest.raises(ValueError, match="its tokenizer needs custom code .*evil_tokenizer.EvilTokenizer"):
        finetune.main(["--model", str(folder), "--task-dir", task, "--output-dir", str(tmp_path / "ft"),
                       "--max-steps", "2", "--quiet"])
    with pytest.raises(ValueError, match="its tokenizer needs custom code"):
        publish.main(["--model", str(folder), "--output-dir", str(tmp_path / "hub")])
    assert not marker.exists() and not (tmp_path / "hub").exists() and not (tmp_path / "ft").exists()


def test_publish_refuses_unknown_code_files(tmp_path, tiny_export):
    hub = tmp_path / "hub"
    publish.main(["--model", str(tiny_export / "discriminator"), "--output-dir", str(hub)])
    (hub / "helper.py").write_text("print('hello')\n")
    with pytest.raises(ValueError, match="helper.py: a code file that is not this package's own"):
        publish.main(["--model", str(tiny_export / "discriminator"), "--output-dir", str(hub)])


def test_a_folder_whose_config_does_not_describe_its_weights_is_refused(tmp_path, tiny_export):
    folder = tmp_path / "bert"
    shutil.copytree(tiny_export / "discriminator", folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="bert", architectures=["BertModel"])
    config.pop("auto_map")
    (folder / "config.json").write_text(json.dumps(config))
    task = motif_task(tmp_path / "task")
    for extra in ([], ["--probe", "linear"]):
        with pytest.raises(ValueError, match="weights of the bert backbone are not in its checkpoint"):
            finetune.main(["--model", str(folder), "--task-dir", task, "--output-dir", str(tmp_path / "ft"),
                           "--max-steps", "2", "--quiet", *extra])
    assert not (tmp_path / "ft" / "results.json").exists()


def test_finetuned_results_record_what_was_loaded(tmp_path, tiny_export):
    task = motif_task(tmp_path / "task")
    results = finetune.main(["--model", str(tiny_export / "discriminator"), "--task-dir", task,
                             "--output-dir", str(tmp_path / "ft"), "--max-steps", "2", "--quiet"])
    assert results["model_info"]["model_type"] == "nucel" and len(results["model_info"]["weights_sha256"]) == 64
    control = finetune.main(["--model", f"random-init:{tiny_export / 'discriminator'}", "--task-dir", task,
                             "--output-dir", str(tmp_path / "ri"), "--max-steps", "2", "--quiet"])
    assert "weights_sha256" not in control["model_info"]  # fresh weights: no checksum of weights never loaded


# ----------------------------------------------------------------------------------------- silent wrong results
@pytest.mark.parametrize("label", ["nan", "inf", "-Infinity"])
def test_non_finite_labels_are_refused_with_file_and_line(tmp_path, label):
    from nucel.tasks import load_task

    rows = [("ACGTACGT", "0"), ("ACGTTTGT", "1"), ("ACGGACGT", label)]
    task = motif_task(tmp_path / "t")
    with gzip.open(os.path.join(task, "train.csv.gz"), "wt") as handle:
        handle.write("sequence,label\n" + "".join(f"{s},{y}\n" for s, y in rows))
    with pytest.raises(ValueError, match=rf"train.csv.gz, line 4: label '{label}' is not a finite number"):
        load_task(task)


def test_numbers_in_scientific_notation_are_numbers():
    config = pretrain.parse_config(["--config", os.path.join(CONFIGS, "tiny.yaml"), "--fasta", "g.fa",
                                    "--learning-rate", "1e-3", "--mask-rate", "1e-1", "--initializer-range", "2e-2",
                                    "--max-steps", "1e3"])
    assert (config.learning_rate, config.mask_rate, config.max_steps) == (1e-3, 0.1, 1000)
    assert config.model_config().initializer_range == 0.02
    for key, value, expected in [("learning-rate", "fast", "a number"), ("max-steps", "2.5", "an integer"),
                                 ("hidden-size", "1e-3", "an integer"), ("bert-80-10-10", "maybe", "true or false")]:
        with pytest.raises(ValueError, match=rf"config (model\.)?{key.replace('-', '_')}=.*: expected {expected}"):
            pretrain.parse_config(["--config", os.path.join(CONFIGS, "tiny.yaml"), "--fasta", "g.fa",
                                   f"--{key}", value])


@pytest.mark.parametrize("overrides, message", [
    ([("vocab_size", "8")], "vocab_size=8"),
    ([("reverse_complement_prob", "5")], r"reverse_complement_prob=5.0: expected a probability in \[0, 1\]"),
    ([("mask_rate", "1.5")], r"mask_rate=1.5: expected a fraction in \(0, 1\)"),
    ([("masking", "randommask"), ("crop_length", "40"), ("randommask_min_span", "24")],
     r"spans up to \d+ tokens in 40-token crops mask \d+\.\d% of tokens"),
    ([("lr_scheduler", "linearr")], "lr_scheduler='linearr'"),
    ([("attn_implementation", "flash")], "attn_implementation='flash'"),
])
def test_values_that_would_train_another_recipe_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(os.path.join(CONFIGS, "tiny.yaml"), [("fasta", "g.fa"), *overrides])


def test_resume_without_a_checkpoint_warns_and_a_missing_rng_state_is_refused(tmp_path, fasta, finished_run,
                                                                               capsys):
    run(tmp_path / "fresh", fasta, "--resume", max_steps=2, save_steps=2, eval_steps=2)
    assert "warning: --resume: " in capsys.readouterr().err
    output_dir = copy_run(finished_run, tmp_path / "copy")
    (output_dir / "checkpoints" / "step-00000002" / "random_states_0.pkl").unlink()
    with pytest.raises(ValueError, match="random_states_0.pkl: missing"):
        resume(tmp_path / "copy", fasta)


def test_empty_rows_and_ids_outside_the_vocabulary_are_clear_errors():
    from nucel.modeling_nucel import NucELForPreTraining, NucELForSequenceClassification

    ids, mask = dna_batch(lengths=[20, 12], length=20)
    mask[1] = 0
    with pytest.raises(ValueError, match=r"attention_mask row\(s\) \[1\] are all zeros"):
        NucELForSequenceClassification(tiny_config(classifier_pooling="mean"))(ids, attention_mask=mask)
    with pytest.raises(ValueError, match=r"attention_mask row\(s\) \[1\] are all zeros"):
        NucELForPreTraining(tiny_config())(ids, attention_mask=mask, labels=torch.full_like(ids, -100))
    ids[0, 3] = 42
    with pytest.raises(ValueError, match=r"token id 42, outside the vocabulary of 16 \(ids 0..15\)"):
        NucELForSequenceClassification(tiny_config())(ids)


@pytest.mark.parametrize("text", ["AC[MASK]GT", "[CLS]ACGT[SEP]", "A[PAD]C", "a[pad]c", "AC[MA SK]G", "[RESERVED_0]A",
                                  "[[MASK]]", "ACGT[UNK]N[SEP"])
def test_special_tokens_in_text_agree_between_the_two_encoders(text):
    from nucel.tokenization import encode_sequence, load_tokenizer

    assert encode_sequence(text).tolist() == load_tokenizer("nucleotide")(text, add_special_tokens=False)["input_ids"]


def test_the_same_genome_twice_is_refused(tmp_path, fasta):
    copy = tmp_path / "copy.fa.gz"
    shutil.copyfile(fasta, copy)
    with pytest.raises(ValueError, match="is given twice"):
        run(tmp_path, [fasta, fasta])
    with pytest.raises(ValueError, match=f"has the same content as {fasta}"):
        run(tmp_path, [fasta, str(copy)])


def test_an_empty_config_and_a_run_that_cannot_fit_are_refused_before_anything_is_written(tmp_path, fasta,
                                                                                         monkeypatch):
    empty = tmp_path / "empty.yaml"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty.yaml: the config file is empty"):
        pretrain.main(["--config", str(empty), "--fasta", fasta, "--output-dir", str(tmp_path / "out")])
    with pytest.raises(ValueError, match="--config: required"):
        pretrain.main(["--fasta", fasta, "--output-dir", str(tmp_path / "out")])
    from nucel.training.pretraining import compute

    monkeypatch.setattr(compute, "available_memory", lambda device: 8 * compute.GIB)
    with pytest.raises(ValueError, match=r"needs at least \d+\.\d GiB .* but cpu has 8.0 GiB available"):
        pretrain.main(["--config", os.path.join(CONFIGS, "nucel-93m.yaml"), "--fasta", fasta,
                       "--output-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_memory_estimate_is_below_what_a_training_step_measured():
    """The refusal uses a lower bound: measured on 2 CPU cores, the published 512 x 22 ELECTRA at 1,026 tokens
    peaked at 4.1 GB (batch 1) and 9.7 GB (batch 4) of resident memory."""
    from nucel.training.pretraining.compute import memory_estimate

    for batch, measured in ((1, 4.1e9), (4, 9.7e9)):
        config = load_config(os.path.join(CONFIGS, "nucel-93m.yaml"), [
            ("fasta", "g.fa"), ("per_device_batch_size", str(batch)), ("global_batch_size", str(batch))])
        assert 0.6 * measured < sum(memory_estimate(config, "cpu", "no")) < measured


# ----------------------------------------------------------------------------------------- one line, no traceback
def test_output_paths_in_the_way_are_one_line(tmp_path, fasta, tiny_export):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    task = motif_task(tmp_path / "task")
    config = write_config(tmp_path)
    for script, argv in [
        ("pretrain.py", ["--config", config, "--fasta", fasta, "--output-dir", blocker]),
        ("pretrain.py", ["--config", config, "--fasta", fasta, "--output-dir", blocker / "sub"]),
        ("finetune.py", ["--model", "onehot-cnn", "--task-dir", task, "--output-dir", blocker]),
        ("publish.py", ["--model", tiny_export / "discriminator", "--output-dir", blocker]),
    ]:
        code, lines = cli(script, *argv)
        assert code == 1 and len(lines) == 1 and lines[0].startswith("error: --output-dir "), (script, lines)
        assert "not a directory" in lines[0] or "cannot be created" in lines[0]


def test_corrupt_inputs_are_one_line_naming_the_file(tmp_path, fasta, finished_run, tiny_export):
    task = motif_task(tmp_path / "task")
    raw = open(os.path.join(task, "train.csv.gz"), "rb").read()
    open(os.path.join(task, "train.csv.gz"), "wb").write(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match="train.csv.gz: not a readable gzip UTF-8 CSV, truncated or corrupt"):
        finetune.main(["--model", "onehot-cnn", "--task-dir", task, "--output-dir", str(tmp_path / "ft")])

    folder = tmp_path / "model"
    shutil.copytree(tiny_export / "discriminator", folder)
    weights = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(weights[:len(weights) // 2])
    good_task = motif_task(tmp_path / "task2")
    with pytest.raises(ValueError, match="model.safetensors: truncated or corrupt safetensors file"):
        finetune.main(["--model", str(folder), "--task-dir", good_task, "--output-dir", str(tmp_path / "ft")])
    with pytest.raises(ValueError, match="model.safetensors: truncated or corrupt safetensors file"):
        publish.main(["--model", str(folder), "--output-dir", str(tmp_path / "hub")])

    output_dir = copy_run(finished_run, tmp_path / "run")
    checkpoint_weights = output_dir / "checkpoints" / "step-00000002" / "model.safetensors"
    checkpoint_weights.write_bytes(checkpoint_weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="step-00000002/model.safetensors: truncated or corrupt"):
        resume(tmp_path / "run", fasta)

    results = tmp_path / "results.json"
    results.write_text(json.dumps({"task": "x", "primary_metric": "mcc"}))
    with pytest.raises(ValueError, match=r"results.json: fine-tuning results .* without the key\(s\) \['label_type'"):
        publish.main(["--model", str(tiny_export / "discriminator"), "--output-dir", str(tmp_path / "hub2"),
                      "--results", str(results)])

    from nucel.tokenization.genome_store import GenomeStore

    store = copy_run(finished_run, tmp_path / "run2") / "genome-store"
    (store / "index.json").write_text('{"format_version": 1, "recor')
    with pytest.raises(ValueError, match="genome-store/index.json: unreadable or corrupt genome-store index"):
        GenomeStore(str(store))


def test_a_half_written_metrics_line_is_tolerated_on_resume(tmp_path, fasta, finished_run):
    output_dir = copy_run(finished_run, tmp_path)
    with open(output_dir / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 3, "loss": 1.2')  # what a kill during a write leaves
    resume(tmp_path, fasta)
    assert [r["step"] for r in read_metrics(output_dir) if "loss" in r] == [1, 2, 3, 4]


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("objective: electra\nmodel:\n  hidden_size: [64\n  num_hidden_layers: 2\n")
    with pytest.raises(ValueError, match=r"bad.yaml:\d+: YAML syntax error"):
        load_config(str(path))


def test_flex_attention_cannot_train_on_cpu(tmp_path, fasta):
    with pytest.raises(ValueError, match="attn_implementation=flex_attention: PyTorch has no FlexAttention backward"):
        run(tmp_path, fasta, attn_implementation="flex_attention")


def test_errors_under_accelerate_launch_are_one_line(tmp_path):
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    done = subprocess.run([launcher, "launch", "--quiet", "--num_processes", "1", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no",
                           os.path.join(REPO_ROOT, "training", "pretrain.py"), "--config",
                           os.path.join(CONFIGS, "tiny.yaml"), "--fasta", str(tmp_path / "nowhere.fa"),
                           "--output-dir", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and lines == [f"error: {tmp_path / 'nowhere.fa'}: FASTA file not found"], lines
