"""Benchmark task folders: label types, label encoding, and every bad-input case (one clear error)."""

import numpy as np
import pytest
from conftest import SHARED_DATA, motif_task, write_task

from nucel.tasks import detect_label_type, label_names_of, load_task, tokenize_split
from nucel.tokenization.hf_tokenizers import load_tokenizer

ROWS = [("ACGTACGT", "0"), ("TTTTAAAA", "1")]


@pytest.mark.parametrize("labels, expected", [
    (["0", "1", "1"], "multi-class"),
    (["2", "0", "10"], "multi-class"),
    (["enhancer", "promoter"], "multi-class"),
    (["0.5", "1.25", "-3"], "regression"),
    (["1e-3", "2"], "regression"),
    (["CTCF;POLR2A", "CTCF"], "multi-label"),
    (["a", "b;c"], "multi-label"),
    (["1", "x"], "multi-class"),  # not all numbers: class names
])
def test_label_type_detection(labels, expected):
    assert detect_label_type(labels) == expected


def test_integer_classes_in_numeric_order_and_names_sorted():
    assert label_names_of(["10", "2", "0", "02"], "multi-class") == ["0", "2", "10"]
    assert label_names_of(["b;a", "c"], "multi-label") == ["a", "b", "c"]


@pytest.mark.parametrize("label_type", ["multi-class", "multi-label", "regression"])
def test_load_task_encodes_every_split(tmp_path, label_type):
    task = load_task(motif_task(tmp_path / "task", label_type))
    assert task.label_type == label_type
    train = task.splits["train"]
    if label_type == "multi-class":
        assert task.label_names == ["0", "1"] and train.labels.dtype == np.int64
        assert list(train.labels) == [int(label) for label in train.raw_labels]
    elif label_type == "multi-label":
        assert set(task.label_names) == {"GC", "TATA", "none"}
        assert train.labels.shape == (len(train), 3)
        for label, row in zip(train.raw_labels, train.labels):
            assert {task.label_names[i] for i in np.flatnonzero(row)} == set(label.split(";"))
    else:
        assert task.label_names == ["score"]
        np.testing.assert_allclose(train.labels, [float(x) for x in train.raw_labels], rtol=1e-6)
    assert set(task.describe_data()) == {"train", "dev", "test"}
    assert len(task.describe_data()["test"]["sha256"]) == 64


def test_label_type_override(tmp_path):
    task = load_task(write_task(tmp_path, {s: ROWS for s in ("train", "dev", "test")}), "regression")
    assert task.label_type == "regression" and task.splits["dev"].labels.tolist() == [0.0, 1.0]


def test_plain_and_gzipped_csv_both_read(tmp_path):
    write_task(tmp_path, {"train": ROWS, "dev": ROWS}, gzipped=False)
    write_task(tmp_path, {"test": ROWS}, gzipped=True)
    assert len(load_task(str(tmp_path)).splits["test"]) == 2


def test_the_real_gue_task_reads():
    task = load_task(f"{SHARED_DATA}/gue/prom_core_tata")
    assert task.label_type == "multi-class" and task.label_names == ["0", "1"]
    assert [len(task.splits[s]) for s in ("train", "dev", "test")] == [4904, 613, 613]


def bad(tmp_path, splits, match, label_type=None, **kwargs):
    folder = write_task(tmp_path / "bad", splits, **kwargs)
    with pytest.raises(ValueError, match=match) as failure:
        load_task(folder, label_type)
    assert "\n" not in str(failure.value)


def test_missing_split_file(tmp_path):
    bad(tmp_path, {"train": ROWS, "dev": ROWS}, r"bad: no test\.csv or test\.csv\.gz \(nor \.tsv/\.tsv\.gz\)")


def test_missing_column(tmp_path):
    bad(tmp_path, {s: ROWS for s in ("train", "dev", "test")}, r"train\.csv\.gz: no column label",
        header=("sequence", "class"))


def test_empty_split(tmp_path):
    bad(tmp_path, {"train": ROWS, "dev": [], "test": ROWS}, r"dev\.csv\.gz: the split is empty")


def test_empty_label_names_its_line(tmp_path):
    bad(tmp_path, {"train": ROWS + [("ACGT", "")], "dev": ROWS, "test": ROWS}, r"train\.csv\.gz, line 4: empty label")


def test_label_unseen_in_train(tmp_path):
    bad(tmp_path, {"train": ROWS, "dev": ROWS, "test": ROWS + [("ACGT", "2")]},
        r"test\.csv\.gz, line 4: label '2' does not occur in the training split")


def test_multi_label_name_unseen_in_train(tmp_path):
    rows = [("ACGT", "a;b"), ("ACGT", "a")]
    bad(tmp_path, {"train": rows, "dev": rows, "test": [("ACGT", "a;z")]}, r"test\.csv\.gz, line 2: label 'z'")


def test_non_numeric_regression_label(tmp_path):
    rows = [("ACGT", "0.5"), ("ACGT", "1.5")]
    bad(tmp_path, {"train": rows, "dev": rows + [("ACGT", "high")], "test": rows},
        r"dev\.csv\.gz, line 4: label 'high' is not a number")


def test_single_class_training_split(tmp_path):
    rows = [("ACGT", "1"), ("ACGA", "1")]
    bad(tmp_path, {"train": rows, "dev": rows, "test": rows}, r"every training label is '1'")


def test_sequences_longer_than_the_model_error_unless_truncated(tmp_path):
    split = load_task(write_task(tmp_path, {s: [("A" * 30, "0"), ("C" * 8, "1")]
                                            for s in ("train", "dev", "test")})).splits["train"]
    tokenizer = load_tokenizer("nucleotide")
    with pytest.raises(ValueError, match=r"train\.csv\.gz: 1 sequence\(s\) longer than the model's 16 tokens "
                                         r"\(the longest, line 2, has 32"):
        tokenize_split(split, tokenizer, 16)
    ids = tokenize_split(split, tokenizer, 16, truncate=True)
    assert len(ids[0]) == 16 and ids[0][0] == 2 and ids[0][-1] == 3 and len(ids[1]) == 10


# ----------------------------------------------------------------------------------------- other benchmark layouts
def test_train_and_test_only_carves_a_seeded_dev_split(tmp_path):
    """Genomic Benchmarks / NT layout: no dev file; dev is 10% of train, the same rows for the same seed."""
    rows = [(("ACGT" * 3)[: 8 + i % 4] + "ACGT"[i % 4], str(i % 2)) for i in range(50)]
    folder = write_task(tmp_path / "gb", {"train": rows, "test": ROWS})
    task = load_task(folder)
    assert [len(task.splits[s]) for s in ("train", "dev", "test")] == [45, 5, 2]
    assert task.carved_dev == {"fraction": 0.1, "seed": 42, "rows": 5}
    assert task.describe_data()["dev"]["carved_from_train"] == {"fraction": 0.1, "seed": 42, "rows": 5}
    again, other = load_task(folder), load_task(folder, split_seed=7, dev_fraction=0.2)
    assert again.splits["dev"].sequences == task.splits["dev"].sequences
    assert len(other.splits["dev"]) == 10 and other.splits["dev"].sequences != task.splits["dev"].sequences
    train, dev = task.splits["train"], task.splits["dev"]
    assert sorted(train.sequences + dev.sequences) == sorted(s for s, _ in rows)  # nothing dropped, nothing twice
    with pytest.raises(ValueError, match=r"--dev-fraction 1.5: expected a fraction in \(0, 1\)"):
        load_task(folder, dev_fraction=1.5)


def test_tsv_files_and_named_columns(tmp_path):
    folder = tmp_path / "nt"
    folder.mkdir()
    for split in ("train", "test"):
        (folder / f"{split}.tsv").write_text("name\tseq\ty\n" + "".join(
            f"r{i}\t{'ACGTTGCA'[i % 8:] + 'ACGT'}\t{i % 2}\n" for i in range(20)))
    task = load_task(str(folder), sequence_column="seq", label_column="y")
    assert task.label_names == ["0", "1"] and len(task.splits["test"]) == 20
    assert task.splits["test"].sequences[0] == "ACGTTGCAACGT"
    with pytest.raises(ValueError, match=r"train\.tsv: no column sequence or label in the header "
                                         r"\['name', 'seq', 'y'\]; .*--sequence-column"):
        load_task(str(folder))


def test_a_load_dataset_folder_reads_through_datasets(tmp_path):
    """A datasets.load_dataset path (here a local Parquet dataset; a Hub id takes the same road), with its
    validation split as dev and integer labels as classes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "parquet_task"
    folder.mkdir()
    for split, count in (("train", 30), ("validation", 6), ("test", 8)):
        table = pa.table({"seq": ["ACGT" * 2 + "ACGT"[i % 4] for i in range(count)],
                          "label": [i % 2 for i in range(count)]})
        pq.write_table(table, folder / f"{split}.parquet")
    task = load_task(str(folder), sequence_column="seq")
    assert [len(task.splits[s]) for s in ("train", "dev", "test")] == [30, 6, 8]
    assert task.label_names == ["0", "1"] and task.carved_dev is None
    assert task.splits["dev"].path.endswith("parquet_task:validation")
    assert len(task.describe_data()["test"]["sha256"]) == 64


def test_an_uncached_hub_dataset_offline_is_one_line_naming_the_cache(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(ValueError, match=r"--task-dir nucel-test/no-such-dataset: datasets.load_dataset failed "
                                         r"\(HF_DATASETS_OFFLINE/HF_HUB_OFFLINE is set: only datasets already in the "
                                         r"local datasets cache load") as failure:
        load_task("nucel-test/no-such-dataset")
    assert "\n" not in str(failure.value)


def test_a_task_dir_that_is_neither_folder_nor_id(tmp_path):
    with pytest.raises(ValueError, match="neither a folder .* nor a Hub dataset id"):
        load_task(str(tmp_path / "missing" / "deeper"))
