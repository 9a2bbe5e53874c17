"""Shared fixtures and builders. At module level imports only torch, transformers, pytest, numpy, safetensors and this
repo (anything else is imported inside the function that needs it), so the compat venv (transformers 4.48) can use it.
pytest puts tests/ on sys.path, so test modules in every folder import these with `from conftest import ...`."""

import json
import os
import shutil
import sys

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import save_file

from nucel.fresh_process import run_isolated
from nucel.modeling_nucel import NucELConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")

TINY = dict(
    hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4, local_attention=16,
    max_position_embeddings=256, generator_hidden_size=32, generator_num_hidden_layers=2,
    generator_num_attention_heads=2, generator_intermediate_size=48,
)


@pytest.fixture(autouse=True)
def output_settings_per_test():
    """A command run in this process sets its output (nucel/console.py: --quiet quiets the library loggers and
    exports environment variables to child processes): every test starts from the defaults again."""
    yield
    if "nucel.console" in sys.modules:
        sys.modules["nucel.console"].reset_output()


def tiny_config(**overrides):
    """A 4-layer, 64-wide NucEL config with a 16-token window: fast, and long inputs exercise the window."""
    return NucELConfig(**{**TINY, **overrides})


@pytest.fixture
def make_config():
    return tiny_config


def dna_batch(batch=3, length=80, lengths=None, seed=0):
    """[CLS] random ACGT(N) [SEP] [PAD]... with per-row real lengths; returns (input_ids, attention_mask)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = lengths or [length] * batch
    input_ids = torch.zeros(len(lengths), length, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, n in enumerate(lengths):
        input_ids[row, 1:n - 1] = torch.randint(5, 10, (n - 2,), generator=generator)
        input_ids[row, 0], input_ids[row, n - 1] = 2, 3
        attention_mask[row, :n] = 1
    return input_ids, attention_mask


def write_fasta(path, records, width=60):
    """A gzip FASTA of (name, sequence) records, `width` bases per line."""
    import gzip

    with gzip.open(path, "wt") as handle:
        for name, sequence in records:
            handle.write(f">{name}\n")
            for i in range(0, len(sequence), width):
                handle.write(sequence[i:i + width] + "\n")
    return str(path)


def strong_site(motif, rng):
    """A site drawn from a motif's PWM sharpened (p^3), like the best sites of a ChIP-seq peak set."""
    sharp = motif.probabilities ** 3
    return "".join("ACGT"[rng.choice(4, p=row / row.sum())] for row in sharp)


@pytest.fixture
def padded_batch():
    """Rows of 80, 50 and 12 real tokens padded to 80: longer than the 16-token window, with heavy padding."""
    return dna_batch(lengths=[80, 50, 12], length=80)


# ----------------------------------------------------------------------------------------- fresh-process loading


def interpreters():
    """This Python, plus NUCEL_OTHER_PYTHON (the other transformers version) when `make test-compat` sets it."""
    found = [pytest.param(sys.executable, id="this-python")]
    if os.environ.get("NUCEL_OTHER_PYTHON"):
        found.append(pytest.param(os.environ["NUCEL_OTHER_PYTHON"], id="other-python"))
    return found


def saved_inputs(root):
    """A padded batch (rows of 60 and 33 real tokens) saved as root/inputs.pt for a fresh-process loader."""
    input_ids, attention_mask = dna_batch(lengths=[60, 33], length=60)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    torch.save(inputs, root / "inputs.pt")
    return inputs


def run_fresh(python, loader_source, args, workdir):
    """Run `loader_source` in a new offline process that cannot import this repo; returns its stdout."""
    result = run_isolated(loader_source, args, workdir, python, env={"HF_MODULES_CACHE": str(workdir / "modules")},
                          timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# ----------------------------------------------------------------------------------------- benchmark task folders
MOTIF = "TATAAA"


def write_task(directory, splits, gzipped=True, header=("sequence", "label")):
    """A task folder: {split: [(sequence, label), ...]} written as <split>.csv(.gz) with `header`."""
    import csv
    import gzip
    import io

    os.makedirs(directory, exist_ok=True)
    for split, rows in splits.items():
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(header)
        writer.writerows(rows)
        path = os.path.join(directory, f"{split}.csv" + (".gz" if gzipped else ""))
        with (gzip.open(path, "wt") if gzipped else open(path, "w")) as handle:
            handle.write(text.getvalue())
    return str(directory)


def motif_rows(count, length=40, seed=0, label_type="multi-class"):
    """Random DNA; multi-class: 1 when TATAAA is planted; multi-label: `TATA`/`GC` for TATAAA / GGGCGG planted;
    regression: the number of planted TATAAA copies (0-2) plus 0.1 x GC fraction."""
    import random

    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        bases = [rng.choice("ACGT") for _ in range(length)]
        tata, gc = rng.random() < 0.5, rng.random() < 0.5
        copies = rng.randint(0, 2) if label_type == "regression" else int(tata)
        for copy in range(copies):
            start = 2 + copy * 18 + rng.randint(0, 6)
            bases[start:start + 6] = MOTIF
        if label_type == "multi-label" and gc:
            start = rng.randint(26, length - 8)
            bases[start:start + 6] = "GGGCGG"
        sequence = "".join(bases)
        if label_type == "multi-class":
            label = str(int(tata))
        elif label_type == "multi-label":
            label = ";".join(name for name, on in (("TATA", tata), ("GC", gc)) if on) or "none"
        else:
            label = f"{copies + 0.1 * sum(b in 'GC' for b in sequence) / length:.4f}"
        rows.append((sequence, label))
    return rows


def motif_task(directory, label_type="multi-class", sizes=(192, 64, 64), length=40):
    return write_task(directory, {split: motif_rows(n, length, seed, label_type)
                                  for seed, (split, n) in enumerate(zip(("train", "dev", "test"), sizes))})


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """A pretraining-run-like folder with discriminator/ and generator/ exports of a tiny NucEL (+ tokenizer)."""
    from nucel.modeling_nucel import NucELForPreTraining
    from nucel.tokenization.hf_tokenizers import load_tokenizer, save_tokenizer

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny-export")
    config = tiny_config()
    paths = NucELForPreTraining(config).save_components(str(root))
    for path in paths.values():
        save_tokenizer(load_tokenizer("nucleotide", model_max_length=config.max_position_embeddings), path)
    return root


# ------------------------------------------------------------------------------------------------ tiny pretraining runs
# (pretrain.main and yaml are imported inside the functions that use them: the compat venv has no accelerate)
# A tiny model on 130-token windows (128-bp crops + [CLS]/[SEP]): a few hundred steps take seconds.
TEST_CONFIG = dict(
    window_length=160, window_overlap=32, crop_length=128, validation_fraction=0.05, max_steps=8,
    global_batch_size=8, per_device_batch_size=8, learning_rate=3e-3, warmup_steps=2, logging_steps=1,
    eval_steps=4, eval_batches=2, save_steps=4, progress_bar=False, lr_scheduler="constant_with_warmup",
    model=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
               local_attention=32, max_position_embeddings=256, generator_hidden_size=32,
               generator_num_hidden_layers=1, generator_num_attention_heads=2, generator_intermediate_size=64),
)


def planted_motif_genome(length, seed=0, motifs=2, motif_length=16):
    """Random spacers (2-7 bp) between copies of two fixed 16-bp motifs: most bases are predictable from
    context, so a learning model beats the base-composition baseline within a few hundred tiny steps."""
    rng = np.random.default_rng(seed)
    library = ["".join(rng.choice(list("ACGT"), motif_length)) for _ in range(motifs)]
    parts, total = [], 0
    while total < length:
        spacer = "".join(rng.choice(list("ACGT"), int(rng.integers(2, 8))))
        parts += [spacer, library[int(rng.integers(motifs))]]
        total += len(spacer) + motif_length
    return "".join(parts)[:length]


def write_config(folder, **overrides):
    import yaml

    values = {**TEST_CONFIG, **overrides, "model": {**TEST_CONFIG["model"], **overrides.get("model", {})}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "test.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def run(folder, fasta, *args, **overrides):
    """pretrain.main in this process; returns the output directory."""
    from nucel.training.pretraining import run as pretrain

    output_dir = folder / "run"
    pretrain.main(["--config", write_config(folder, **overrides), "--fasta", *([fasta] if isinstance(fasta, str)
                   else fasta), "--output-dir", str(output_dir), *map(str, args)])
    return output_dir


def read_metrics(output_dir):
    with open(output_dir / "metrics.jsonl") as handle:
        return [json.loads(line) for line in handle]


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


def tiny_study(root, arms=None, **overrides):
    """A study YAML over a planted-motif genome and a planted-motif task; returns its path."""
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    preset = root / "preset.yaml"
    preset.write_text(yaml.safe_dump({**TEST_CONFIG, "eval_steps": 3, "logging_steps": 1, "save_steps": 3}))
    fasta = root / "genome.fa.gz"
    if not fasta.exists():
        genome = planted_motif_genome(40_000, seed=2)
        write_fasta(fasta, [("chrA", genome[:30_000]), ("chrB", genome[30_000:])])
    task = root / "motif_task"
    if not task.exists():
        motif_task(task, sizes=(128, 48, 48))
    values = {"pretraining": str(preset), "fasta": [str(fasta)], "budget": {"tokens": 8 * 130 * 6},
              "arms": arms or {"electra": {}, "mlm": {"objective": "mlm"}}, "tasks": [str(task)], "seeds": [1, 2],
              "evaluations": ["finetune", "linear"], "baselines": ["random-init", "onehot-cnn"],
              "finetune": {"max_steps": 6, "eval_steps": 3, "batch_size": 16}, "output_dir": str(root / "study"),
              **overrides}
    path = root / "study.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return str(path)


# ------------------------------------------------------------------------------------------- release-format checkpoints
# The release's config.json values (transformers 4.x layout), at a test-sized shape.
RELEASE_CONFIG = dict(
    model_type="modernbert", architectures=["ModernBertModel"], vocab_size=27, hidden_size=64, intermediate_size=96,
    num_hidden_layers=4, num_attention_heads=4, global_attn_every_n_layers=3, local_attention=16,
    global_rope_theta=160000.0, local_rope_theta=10000.0, max_position_embeddings=256, hidden_activation="gelu",
    norm_eps=1e-5, pad_token_id=0, cls_token_id=2, sep_token_id=3, bos_token_id=5, eos_token_id=6,
    auto_map={"AutoTokenizer": ["tokenizer.NucEL_Tokenizer", None]})


def authors_vocabulary():
    """The release's dictionary as its tokenizer builds it: one list enumerated into a dict, so the k=1 k-mers
    (A C G T again) overwrite the alphabet's entries and the reserved tokens run on from 15."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[BOS]", "[EOS]", *"ACGT", *"ACGT",
              *(f"[RESERVED_{i}]" for i in range(16))]
    return {token: i for i, token in enumerate(tokens)}


def stock_config():
    values = {k: v for k, v in RELEASE_CONFIG.items() if k not in ("model_type", "architectures", "auto_map")}
    return transformers.ModernBertConfig(**values)


def randomise_norms(module, seed):
    """LayerNorm weights are 1 at init: make them random so a norm mixed up in conversion shows."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if "norm" in name:
                parameter.copy_(1 + 0.2 * torch.randn(parameter.shape, generator=generator))
    return module.eval()


class AuthorsDiscriminator(torch.nn.Module):
    """The release's discriminator: the backbone as `bert`, a bare Linear(hidden, 1), sigmoid = P(original)."""

    def __init__(self, config):
        super().__init__()
        self.bert = transformers.ModernBertModel(config)
        self.discriminator_predictions = torch.nn.Linear(config.hidden_size, 1)

    def forward(self, input_ids, attention_mask=None):
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.discriminator_predictions(hidden).squeeze(-1)


def write_source(folder, state, architecture, vocabulary=True, weights="model.safetensors", card=None):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as handle:
        json.dump({**RELEASE_CONFIG, "architectures": [architecture]}, handle)
    if vocabulary:
        with open(os.path.join(folder, "vocab.json"), "w") as handle:
            json.dump(authors_vocabulary(), handle)
    state = {key: value.contiguous() for key, value in state.items()}
    if weights.endswith(".bin"):
        torch.save(state, os.path.join(folder, weights))
    else:
        save_file(state, os.path.join(folder, weights))
    # Custom code that must never run: it would leave a file behind.
    with open(os.path.join(folder, "tokenizer.py"), "w") as handle:
        handle.write(f"open({os.path.join(folder, 'CODE_RAN')!r}, 'w').write('yes')\n")
    if card:
        with open(os.path.join(folder, "README.md"), "w") as handle:
            handle.write(card)
    return str(folder)


def write_release_discriminator(folder, seed=1, **source_options):
    """A release-format discriminator checkpoint (`bert.*` + `discriminator_predictions`, vocab.json) in `folder`."""
    torch.manual_seed(seed)
    model = randomise_norms(AuthorsDiscriminator(stock_config()), seed)
    return write_source(folder, model.state_dict(), "NucELDiscriminator", **source_options), model


# ---------------------------------------------------------------------------------------------- one-line command errors
def one_line_exit(cli, argv):
    """The `error: ...` line a command exits with (status 1: sys.exit with a message)."""
    with pytest.raises(SystemExit) as exited:
        cli(argv)
    message = exited.value.code
    assert isinstance(message, str) and message.startswith("error: ") and "\n" not in message, message
    return message


SEQUENCE = "ACGTACGTACGGATTACAGGCATTAGCATCGATCGATTTACGGA" * 3


VCF = ("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
       "chr1\t5\ta\tA\tT\t.\t.\t.\nchr1\t9\tb\tA\tG\t.\t.\t.\n")


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "ref.fa").write_text(f">chr1\n{SEQUENCE}\n")
    (tmp_path / "in.vcf").write_text(VCF)
    return tmp_path


def score_argv(model, inputs, *extra):
    return ["--model", str(model), "--vcf", str(inputs / "in.vcf"), "--reference", str(inputs / "ref.fa"),
            "--output", str(inputs / "out.tsv"), "--quiet", *map(str, extra)]
