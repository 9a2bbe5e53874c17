"""nucel-publish and training/benchmark.py: Hub folders that load in a fresh process, widget pipelines
offline, push failures as one line, and the benchmark grid table."""

import json
import os
import subprocess
import sys

import pytest
from conftest import motif_task
from huggingface_hub import ModelCard
from transformers import pipeline

from nucel import run_records
from nucel.hub_cards import publish
from nucel.training.finetuning import grid as benchmark
from nucel.training.finetuning import run as finetune


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory, tiny_export):
    tmp = tmp_path_factory.mktemp("fine-tuned")
    finetune.main(["--model", str(tiny_export / "discriminator"), "--task-dir", motif_task(tmp / "task"),
                   "--output-dir", str(tmp / "ft"), "--max-steps", "12", "--eval-steps", "6", "--quiet"])
    return tmp / "ft"


@pytest.mark.slow
@pytest.mark.parametrize("which, tag, auto_class", [
    ("discriminator", "feature-extraction", "AutoModel"),
    ("generator", "fill-mask", "AutoModelForMaskedLM"),
    ("fine-tuned", "text-classification", "AutoModelForSequenceClassification"),
])
def test_published_folder_loads_in_a_fresh_process(tmp_path, tiny_export, fine_tuned, which, tag, auto_class):
    model_dir = fine_tuned / "model" if which == "fine-tuned" else tiny_export / which
    out = tmp_path / "hub"
    loaded = publish.main(["--model", str(model_dir), "--output-dir", str(out), "--repo-id", "org/nucel-test"])
    assert loaded["pipeline_tag"] == tag and loaded["auto_class"] == auto_class
    assert sorted(name for name in os.listdir(out) if not name.startswith(".")) == [
        "LICENSE", "README.md", "config.json", "configuration_nucel.py", "model.safetensors", "modeling_nucel.py",
        "tokenizer.json", "tokenizer_config.json"]
    config = json.loads((out / "config.json").read_text())
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForMaskedLM", "AutoModelForPreTraining",
                                       "AutoModelForSequenceClassification", "AutoModelForTokenClassification"}
    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == tag and loaded["widget_text"] == card.data.widget[0]["text"]
    if tag == "feature-extraction":
        assert loaded["output"]["shape"] == [1, 72, 64]  # [CLS] + 70 bp + [SEP], hidden 64
        # the discriminator keeps its replaced-token head: loaded in the fresh process and documented in the card
        assert loaded["replaced_token_logits"] == {"class": "NucELForReplacedTokenDetection", "shape": [1, 72]}
        assert "AutoModelForPreTraining.from_pretrained" in card.text
    elif tag == "fill-mask":
        assert len(loaded["output"]) == 4 and all(0 <= o["score"] <= 1 for o in loaded["output"])
    else:
        assert loaded["output"][0]["label"] in ("0", "1")
        assert card.data.eval_results[0].dataset_name == "task"  # the model's own results.json -> model-index
        assert "### Fine-tuning" in card.text


def test_pretraining_summary_enters_the_card(tmp_path, tiny_export):
    run = tmp_path / "run"
    os.makedirs(run)
    os.symlink(tiny_export / "discriminator", run / "discriminator")
    summary = {"steps": 1200, "tokens_seen": 4_953_600, "validation": {"eval_discriminator_auc": 0.58},
               "genome": {"checksum": "abc123", "total_length": 24_333_275,
                          "sources": [{"path": "/data/hg38.fa.gz", "sha256": "f" * 64, "bytes": 1}]},
               "config": {"objective": "electra", "masking": "uniform", "mask_rate": 0.15, "global_batch_size": 16,
                          "crop_length": 256, "learning_rate": 1e-3},
               "compute_estimate": {"tokens": 4.9e6, "flops": 1.2e15, "flops_per_token": 2.4e8}}
    (run / "pretraining_summary.json").write_text(json.dumps(summary))
    args = publish.parse_args(["--model", str(run / "discriminator"), "--output-dir", str(tmp_path / "o")])
    os.makedirs(args.output_dir)
    publish.assemble(args, args.output_dir, *publish.read_inputs(args))
    text = (tmp_path / "o" / "README.md").read_text()
    assert "### Pretraining" in text and "1,200 steps, 4,953,600 tokens" in text and "`hg38.fa.gz`" in text
    assert "eval_discriminator_auc 0.5800" in text and "1.2e+15 FLOPs" in text


@pytest.mark.parametrize("which, task", [("generator", "fill-mask"), ("discriminator", "feature-extraction")])
def test_pipelines_on_exports_offline(tiny_export, which, task):
    pipe = pipeline(task, model=str(tiny_export / which), trust_remote_code=True)
    if task == "fill-mask":
        predictions = pipe("ACGTAC[MASK]TACGT")
        assert len(predictions) == 5 and all("[MASK]" not in p["sequence"] for p in predictions)
    else:
        assert len(pipe("ACGTACGTAC")[0]) == 12  # [CLS] + 10 + [SEP]


@pytest.mark.slow
def test_text_classification_pipeline_on_a_fine_tuned_export(fine_tuned):
    pipe = pipeline("text-classification", model=str(fine_tuned / "model"), trust_remote_code=True)
    outputs = pipe(["ACGTTATAAAGGCTACGT", "GGGCGGCCGCGCGCGAAT"], top_k=None)
    assert [sorted(o["label"] for o in output) for output in outputs] == [["0", "1"], ["0", "1"]]
    assert all(abs(sum(o["score"] for o in output) - 1) < 1e-5 for output in outputs)


def run_publish_cli(tmp_path, *argv, env_overrides=None):
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env_overrides or {})}
    done = subprocess.run([sys.executable, "-m", "nucel.hub_cards.publish", *map(str, argv)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    return done.returncode, [line for line in done.stderr.splitlines() if line.strip()]


@pytest.mark.slow
def test_push_offline_fails_with_one_line_before_any_work(tmp_path, tiny_export):
    code, lines = run_publish_cli(tmp_path, "--model", tiny_export / "discriminator", "--output-dir", tmp_path / "o",
                                  "--repo-id", "org/x", "--push", env_overrides={"HF_HUB_OFFLINE": "1"})
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: --push: HF_HUB_OFFLINE is set")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_push_without_token_fails_with_one_line(tmp_path, tiny_export):
    code, lines = run_publish_cli(tmp_path, "--model", tiny_export / "discriminator", "--output-dir", tmp_path / "o",
                                  "--repo-id", "org/x", "--push",
                                  env_overrides={"HF_HUB_OFFLINE": "0", "HF_TOKEN": "", "HF_HOME": str(tmp_path)})
    assert code == 1 and lines == ["error: --push: no Hugging Face token; run `hf auth login` or set HF_TOKEN"]


def test_push_validates_the_card_with_the_hub_before_uploading(tmp_path, tiny_export, monkeypatch):
    """huggingface_hub's own validator runs first; its verdict stops the push in one line, nothing uploaded."""
    calls = []

    def refuse(card, repo_type=None):
        calls.append("validate")
        raise ValueError("- \"license\" must be one of [...]\nmore detail")

    monkeypatch.setattr(publish.huggingface_hub.ModelCard, "validate", refuse)
    monkeypatch.setattr(publish.huggingface_hub, "create_repo", lambda *a, **k: calls.append("create"))
    monkeypatch.setattr(publish.huggingface_hub, "upload_folder", lambda *a, **k: calls.append(
        ("upload", k["allow_patterns"])))
    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# x\n")
    (folder / ".env").write_text("HF_TOKEN=hf_secret\n")  # in the folder, not written by publish: never uploaded
    with pytest.raises(ValueError, match=r"^--push to org/x: the Hub's card validation failed: - \"license\" "
                                         r"must be one of \[\.\.\.\]$"):
        publish.push(str(folder), "org/x", private=False, files=["README.md"])
    assert calls == ["validate"]
    monkeypatch.setattr(publish.huggingface_hub.ModelCard, "validate", lambda card, repo_type=None:
                        calls.append("validated"))
    publish.push(str(folder), "org/x", private=False, files=["README.md"])
    assert calls == ["validate", "validated", "create", ("upload", ["README.md"])]


def test_push_needs_a_repo_id(tmp_path, tiny_export):
    with pytest.raises(ValueError, match="--push needs --repo-id ORG/NAME"):
        publish.main(["--model", str(tiny_export / "discriminator"), "--output-dir", str(tmp_path / "o"), "--push"])


@pytest.mark.slow
def test_publish_refuses_what_is_not_a_nucel_model(tmp_path, fine_tuned):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        publish.main(["--model", str(tmp_path / "nothing"), "--output-dir", str(tmp_path / "o")])
    cnn = tmp_path / "cnn"
    finetune.main(["--model", "onehot-cnn", "--task-dir", str(fine_tuned.parent / "task"), "--output-dir", str(cnn),
                   "--max-steps", "2", "--quiet"])
    with pytest.raises(ValueError, match="model_type 'nucel-sequence-cnn'; only NucEL models"):
        publish.main(["--model", str(cnn / "model"), "--output-dir", str(tmp_path / "o")])


@pytest.mark.slow
def test_benchmark_grid_prints_one_table_and_reuses_finished_cells(tmp_path, tiny_export, capsys):
    task = motif_task(tmp_path / "prom_core_tata")  # named as the GUE task: the published rows appear
    argv = ["--tasks", task, "--models", str(tiny_export / "discriminator"), "onehot-cnn",
            "--output-dir", str(tmp_path / "grid"), "--max-steps", "6", "--eval-steps", "3", "--quiet"]
    table = benchmark.main(argv)
    lines = table.splitlines()
    assert lines[0].startswith("Test MCC x100, mean ± sd over 1 seed(s)")
    assert lines[2] == "| model | prom_core_tata | mean |"
    ours = [line for line in lines if line.startswith(f"| {tiny_export}") or line.startswith("| onehot-cnn")]
    assert len(ours) == 2
    assert "| DNABERT-2 (published) | 74.17 | 74.17 |" in lines
    for model in (str(tiny_export / "discriminator"), "onehot-cnn"):
        cell = benchmark.cell_directory(str(tmp_path / "grid"), task, model)
        results = json.loads(open(os.path.join(cell, "results.json")).read())
        mcc = results["test"]["mcc"]["mean"] * 100
        assert any(line.startswith(f"| {model} | {mcc:.2f}{run_records.mark(results)} |") for line in lines)
    assert (tmp_path / "grid" / "benchmark.md").read_text().strip() == table
    capsys.readouterr()
    assert benchmark.main(argv) == table
    assert capsys.readouterr().out.count("reusing") == 2


def test_benchmark_checks_every_input_before_training(tmp_path):
    task = motif_task(tmp_path / "task")
    with pytest.raises(ValueError, match="neither a folder"):
        benchmark.main(["--tasks", task, "--models", "onehot-cnn", "bad model", "--output-dir", str(tmp_path / "g")])
    with pytest.raises(ValueError, match="no train.csv"):
        benchmark.main(["--tasks", task, str(tmp_path), "--models", "onehot-cnn", "--output-dir", str(tmp_path / "g")])
    assert not (tmp_path / "g").exists()


@pytest.mark.slow
def test_a_fine_tune_of_a_hub_model_names_it_as_base_model(tmp_path, fine_tuned):
    import shutil

    copy = tmp_path / "ft"
    shutil.copytree(fine_tuned, copy)
    results = json.loads((copy / "results.json").read_text())
    (copy / "results.json").write_text(json.dumps({**results, "model": "org/nucel-base"}))
    args = publish.parse_args(["--model", str(copy / "model"), "--output-dir", str(tmp_path / "o")])
    os.makedirs(args.output_dir)
    publish.assemble(args, args.output_dir, *publish.read_inputs(args))
    card = ModelCard.load(tmp_path / "o" / "README.md")
    assert card.data.base_model == "org/nucel-base" and card.data.datasets is None
    assert str(tmp_path) not in str(card)  # no local path of this machine in the card
    assert (tmp_path / "o" / "LICENSE").read_text().startswith("MIT License")
    with pytest.raises(ValueError, match="--base-model 'not a hub id': expected a Hub id ORG/NAME"):
        publish.read_inputs(publish.parse_args(["--model", str(copy / "model"), "--output-dir",
                                                str(tmp_path / "p"), "--base-model", "not a hub id"]))


def test_pretraining_exports_recommend_mean_pooling(tiny_export):
    """A user's own Trainer script on an export gets the pooling the project recommends (ELECTRA never trains
    [CLS] alone), not ModernBERT's "cls"."""
    from transformers import AutoModelForSequenceClassification

    for which in ("discriminator", "generator"):
        assert json.loads((tiny_export / which / "config.json").read_text())["classifier_pooling"] == "mean"
    classifier = AutoModelForSequenceClassification.from_pretrained(tiny_export / "discriminator", num_labels=2)
    assert classifier.config.classifier_pooling == "mean"
