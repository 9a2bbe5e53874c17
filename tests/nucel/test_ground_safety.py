"""The ground's refusals of bad input files (issue 10): task files with non-finite labels, truncated or corrupt
files named in one line, and a model folder whose config does not describe its weights."""

import gzip
import json
import os
import shutil

import pytest
from conftest import copy_run, motif_task, resume

from nucel.hub_cards import publish
from nucel.training.finetuning import run as finetune


@pytest.mark.parametrize("label", ["nan", "inf", "-Infinity"])
def test_non_finite_labels_are_refused_with_file_and_line(tmp_path, label):
    from nucel.tasks import load_task

    rows = [("ACGTACGT", "0"), ("ACGTTTGT", "1"), ("ACGGACGT", label)]
    task = motif_task(tmp_path / "t")
    with gzip.open(os.path.join(task, "train.csv.gz"), "wt") as handle:
        handle.write("sequence,label\n" + "".join(f"{s},{y}\n" for s, y in rows))
    with pytest.raises(ValueError, match=rf"train.csv.gz, line 4: label '{label}' is not a finite number"):
        load_task(task)


@pytest.mark.slow
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
