"""Hub cards from the run's own facts (issue 31): the widget and usage show a test sequence of the fine-tuned task,
the labels and the benchmark are named, base_model is a Hub id or absent, a benchmark-grid cell lists its baseline
siblings, and every BibTeX entry of the citation parses."""

import csv
import gzip
import json
import os
import re
import shutil

import latexcodec  # noqa: F401  (registers the "latex" codec; a dependency of pybtex)
import pybtex.database
import pybtex.errors
import pytest
from conftest import SHARED_DATA, motif_task
from huggingface_hub import ModelCard

from nucel import run_records
from nucel.gue import GUE_TASKS
from nucel.hub_cards import PROMOTER, metadata_problems, publish, render_card
from nucel.training.finetuning import grid as benchmark
from nucel.training.finetuning import run as finetune

QUICK = ["--max-steps", "2", "--quiet"]


@pytest.fixture(scope="module")
def mouse_grid(tmp_path_factory, tiny_export):
    """A benchmark grid on a motif task in a folder named like the GUE task mouse_3: the tiny discriminator,
    the one-hot CNN and random-init, two seeds each."""
    tmp = tmp_path_factory.mktemp("grid")
    task = motif_task(tmp / "data" / "mouse_3", sizes=(48, 16, 16))
    models = [str(tiny_export / "discriminator"), "onehot-cnn", f"random-init:{tiny_export / 'discriminator'}"]
    benchmark.main(["--tasks", task, "--models", *models, "--output-dir", str(tmp / "grid"), "--seeds", "1", "2",
                    *QUICK])
    cells = {model: benchmark.cell_directory(str(tmp / "grid"), task, model) for model in models}
    return tmp, task, cells


@pytest.fixture(scope="module")
def marks(tmp_path_factory, tiny_export):
    """A fine-tune on a multi-label task with named classes (TATA, GC, none), in a folder of its own name."""
    tmp = tmp_path_factory.mktemp("marks")
    task = motif_task(tmp / "chip_marks", label_type="multi-label", sizes=(48, 16, 16))
    finetune.main(["--model", str(tiny_export / "discriminator"), "--task-dir", task, "--output-dir",
                   str(tmp / "ft"), *QUICK])
    return tmp, task


def assemble(model_dir, output_dir, *extra):
    args = publish.parse_args(["--model", str(model_dir), "--output-dir", str(output_dir), "--repo-id",
                               "org/nucel-test", *map(str, extra)])
    os.makedirs(args.output_dir)
    publish.assemble(args, args.output_dir, *publish.read_inputs(args))
    return ModelCard.load(os.path.join(args.output_dir, "README.md"))


def split_rows(task_dir, split="test"):
    with gzip.open(os.path.join(task_dir, f"{split}.csv.gz"), "rt") as handle:
        return list(csv.DictReader(handle))


def bibtex_blocks(text):
    return re.findall(r"```bibtex\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_a_gue_task_card_shows_its_own_test_sequences_labels_and_benchmark(mouse_grid, tmp_path):
    tmp, task, cells = mouse_grid
    cell = cells[next(iter(cells))]
    card = assemble(os.path.join(cell, "model"), tmp_path / "hub")
    metadata = card.data.to_dict()
    assert metadata_problems(metadata) == []
    rows = split_rows(task)
    widget = metadata["widget"]
    assert [entry["text"] for entry in widget] == [rows[0]["sequence"], rows[1]["sequence"]]  # labels 0 and 1
    assert [entry["example_title"] for entry in widget] == ["mouse_3 test split, line 2: label 0",
                                                            "mouse_3 test split, line 3: label 1"]
    assert rows[0]["label"] == "0" and rows[1]["label"] == "1" and PROMOTER not in card.text
    usage = card.text.split("## Usage")[1].split("## Model")[0]
    assert f'sequence = "{rows[0]["sequence"]}"  # mouse_3 test split, line 2: label 0' in usage
    assert "label 0 / label 1 as in the `label` column of `test.csv.gz` of the task folder `mouse_3`" in card.text
    assert "GUE (DNABERT-2) mouse_3" in card.text and "https://arxiv.org/abs/2306.15006" in card.text
    assert card.data.eval_results[0].dataset_name == "GUE (DNABERT-2) mouse_3"
    # base_model: the discriminator is a local folder, so no base_model; the text says what it is
    assert "base_model" not in metadata
    assert "from a NucEL discriminator pretrained with this package (not on the Hub)" in card.text
    assert str(tmp) not in str(card) and str(tmp_path) not in str(card)


@pytest.mark.slow
def test_a_grid_cell_card_lists_its_baseline_siblings(mouse_grid, tmp_path, tiny_export):
    tmp, task, cells = mouse_grid
    disc, cnn, random_init = cells.values()
    card = assemble(os.path.join(disc, "model"), tmp_path / "hub")
    table = card.text.split("## Evaluation")[1].split("## Limitations")[0]

    def cell_row(directory, name):
        results = json.loads(open(os.path.join(directory, "results.json")).read())
        summary, marked = results["test"]["mcc"], run_records.mark(results)  # † when a seed was still improving
        assert summary["n"] == 2 and summary["sd"] is not None
        return (f"| {name} | GUE (DNABERT-2) mouse_3 | mcc | {summary['mean']:.4f} ± {summary['sd']:.4f}{marked} "
                "| 2 |")

    assert cell_row(disc, "**this model**") in table
    assert cell_row(cnn, "baseline: one-hot CNN (`onehot-cnn`, no pretraining)") in table
    assert cell_row(random_init, "baseline: random init (`random-init`: the NucEL architecture without "
                                 "pretraining)") in table
    assert "| published: DNABERT-2 | GUE (DNABERT-2) mouse_3 | mcc | 0.6647 | — |" in table
    assert len(card.data.eval_results) == len(json.loads(open(os.path.join(disc, "results.json")).read())["test"])
    # the pretraining export published with a cell's results (the demo's publish step) lists the same baselines
    export = assemble(tiny_export / "discriminator", tmp_path / "export-hub", "--results",
                      os.path.join(disc, "results.json"))
    assert cell_row(cnn, "baseline: one-hot CNN (`onehot-cnn`, no pretraining)") in export.text
    assert export.data.widget[0]["text"] == PROMOTER  # no fine-tuned task of its own: the generic example
    assert str(tmp) not in str(export)


@pytest.mark.slow
def test_a_cell_outside_a_grid_has_no_baselines(mouse_grid, tmp_path):
    _, _, cells = mouse_grid
    alone = tmp_path / "alone"
    shutil.copytree(next(iter(cells.values())), alone)
    card = assemble(alone / "model", tmp_path / "hub")
    assert "baseline:" not in card.text and "| **this model** |" in card.text


@pytest.mark.slow
def test_named_labels_of_a_task_that_is_not_a_benchmark(marks, tmp_path):
    tmp, task = marks
    card = assemble(tmp / "ft" / "model", tmp_path / "hub")
    assert metadata_problems(card.data.to_dict()) == []
    assert "Labels `GC`, `TATA`, `none`: the class names of the `label` column of `test.csv.gz` of the task " \
           "folder `chip_marks`; a sequence may carry several" in card.text
    assert "label 0 / label 1" not in card.text
    assert "`chip_marks`: a task folder of its own (not a published benchmark" in card.text
    assert "GUE" not in card.text and "zhou2024dnabert2" not in card.text
    test_sequences = {row["sequence"]: row["label"] for row in split_rows(task)}
    assert all(entry["text"] in test_sequences for entry in card.data.widget)
    first = card.data.widget[0]
    assert first["example_title"].endswith(f"labels {test_sequences[first['text']]}")
    assert f'sequence = "{first["text"]}"' in card.text


@pytest.mark.slow
@pytest.mark.parametrize("damage, reason", [
    (lambda results, tmp: {**results, "task_dir": str(tmp / "moved-away")},
     "the files of the task `chip_marks` were not found where fine-tuning read them"),
    (lambda results, tmp: {**results, "data": {**results["data"], "test": {**results["data"]["test"],
                                                                            "sha256": "0" * 64}}},
     "the test split of `chip_marks` has changed since fine-tuning"),
])
def test_the_generic_example_when_the_task_data_is_gone_or_changed(marks, tmp_path, damage, reason):
    tmp, _ = marks
    copy = tmp_path / "ft"
    shutil.copytree(tmp / "ft", copy)
    results = json.loads((copy / "results.json").read_text())
    (copy / "results.json").write_text(json.dumps(damage(results, tmp_path)))
    card = assemble(copy / "model", tmp_path / "hub")
    assert card.data.widget[0]["text"] == PROMOTER and PROMOTER in card.text.split("## Usage")[1]
    assert "not data of this model's task: " + reason in card.text
    assert "Labels `GC`, `TATA`, `none`" in card.text  # the labels come from results.json all the same


@pytest.mark.slow
def test_every_bibtex_block_parses_and_names_nucel(mouse_grid, tmp_path):
    _, _, cells = mouse_grid
    card = assemble(os.path.join(next(iter(cells.values())), "model"), tmp_path / "hub")
    blocks = bibtex_blocks(card.text)
    assert blocks
    pybtex.errors.set_strict_mode(True)  # any syntax error raises
    keys = set()
    for block in blocks:
        data = pybtex.database.parse_string(block, "bibtex")
        assert len(data.entries) == block.count("\n@") + block.startswith("@")
        keys |= set(data.entries)
        for entry in data.entries.values():
            assert "title" in entry.fields and "year" in entry.fields and entry.persons.get("author")
    assert keys == {"ding2025nucel", "clark2020electra", "warner2024modernbert", "zhou2024dnabert2"}
    nucel = pybtex.database.parse_string(blocks[0], "bibtex").entries["ding2025nucel"]
    assert "NucEL" in nucel.fields["title"] and "Single-Nucleotide" in nucel.fields["title"]
    assert nucel.fields["eprint"] == "2508.13191" and "doi" not in nucel.fields
    modernbert = next(pybtex.database.parse_string(block, "bibtex").entries["warner2024modernbert"]
                      for block in blocks if "warner2024modernbert" in block)
    authors = [str(person).encode().decode("latex").replace("{", "").replace("}", "")
               for person in modernbert.persons["author"]]
    assert "Clavié, Benjamin" in authors  # Clavi{\'e}: the LaTeX accent, not Clavi{'e}
    assert "Clavi{'e}" not in card.text


def test_cards_without_a_gue_task_cite_without_dnabert2_and_still_parse():
    from conftest import tiny_config

    card = render_card(tiny_config(architectures=["NucELModel"]), 1000, "org/x")
    blocks = bibtex_blocks(card.text)
    keys = {key for block in blocks for key in pybtex.database.parse_string(block, "bibtex").entries}
    assert keys == {"ding2025nucel", "clark2020electra", "warner2024modernbert"}


def test_base_model_is_never_a_bare_folder_name(tmp_path):
    from conftest import tiny_config

    assert any("base_model: 'discriminator' is not a Hub model id" in problem
               for problem in metadata_problems({"base_model": "discriminator"}))
    assert metadata_problems({"base_model": "org/nucel-base"}) == []
    config = tiny_config(architectures=["NucELForSequenceClassification"])
    folder = tmp_path / "runs" / "discriminator"
    folder.mkdir(parents=True)
    for local in ("discriminator", str(folder)):
        with pytest.raises(ValueError, match="base_model 'discriminator': not a Hub id"):
            render_card(config, 1000, "org/x", base_model=local)
    finetuning = {"task": "my_task", "label_type": "multi-class", "label_names": ["0", "1"],
                  "model": str(folder), "model_info": {"kind": "pretrained", "location": str(folder)},
                  "data": {"test": {"path": str(tmp_path / "my_task" / "test.csv"), "rows": 2, "sha256": "a" * 64}},
                  "config": {"lr": 1e-4, "batch_size": 8, "warmup_steps": 0, "eval_steps": 10, "max_steps": 2},
                  "seeds": [{"seed": 1}]}
    card = render_card(config, 1000, "org/x", finetuning=finetuning)
    assert "base_model" not in card.data.to_dict() and str(tmp_path) not in str(card)
    assert "from a NucEL discriminator pretrained with this package (not on the Hub)" in card.text
    hub = render_card(config, 1000, "org/x", finetuning={**finetuning, "model": "org/nucel-base"},
                      base_model="org/nucel-base")
    assert hub.data.base_model == "org/nucel-base"


def test_gue_task_names_follow_the_shared_data_and_the_grid_table():
    """The GUE tasks a card recognises are the grid's published ones, and the shared data's README lists each."""
    assert set(GUE_TASKS) == set(benchmark.PUBLISHED_GUE_MCC["DNABERT-2"])
    readme = os.path.join(SHARED_DATA, "README.md")
    if os.path.isfile(readme):
        published = open(readme, encoding="utf-8").read().split("Published MCC")[1]
        assert all(f"| {task} |" in published for task in GUE_TASKS)
