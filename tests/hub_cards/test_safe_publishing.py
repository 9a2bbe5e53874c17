"""Nothing private leaves the machine and no other repository's code is invited in: publish and fine-tuning
rebuild configs from known fields, follow no symlink, write only into a folder of their own, push only the files
they wrote, carry a converted model's license or refuse; --training-arg takes no Hub or token field."""

import json
import os
import shutil

import pytest
from conftest import motif_task

from nucel.hub_cards import publish
from nucel.modeling_nucel.modeling_nucel import AUTO_MAP
from nucel.safe_saving import known_config_keys, private_content
from nucel.tokenization.hf_tokenizers import TOKENIZER_CONFIG_KEYS
from nucel.training.finetuning import run as finetune

TOKEN = "hf_" + "Ab3" * 12


def hostile_source(tiny_export, folder):
    """A NucEL export whose configs carry a token, a home path, a custom pipeline and an auto_map into another
    repository: what a folder downloaded from somewhere, or edited by a careless hand, may hold."""
    shutil.copytree(tiny_export / "discriminator", folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(hub_token=TOKEN, data_dir="/home/alice/cohort", custom_pipelines={
        "dna-scan": {"impl": "mallory/evil--pipeline.Scan", "pt": ["AutoModel"]}})
    config["auto_map"]["AutoModel"] = "mallory/evil--modeling.Model"
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config.update(hub_token=TOKEN, name_or_path="/home/alice/tokenizer")
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder


def assert_clean(folder):
    assert private_content(folder) == []
    config = json.loads((folder / "config.json").read_text())
    assert set(config) <= known_config_keys(config["model_type"])
    assert "custom_pipelines" not in config and "hub_token" not in config and "data_dir" not in config
    assert all(reference in AUTO_MAP.values() for reference in config.get("auto_map", {}).values())
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert set(tokenizer_config) <= TOKENIZER_CONFIG_KEYS
    text = "".join(path.read_text(errors="replace") for path in folder.iterdir() if path.is_file())
    assert TOKEN not in text and "/home/alice" not in text and "mallory" not in text


def test_the_private_scan_finds_what_it_must(tmp_path, tiny_export):
    """The scan every published folder passes (below) is not vacuous: it names each kind of leak."""
    folder = hostile_source(tiny_export, tmp_path / "src")
    os.symlink("/etc/hostname", folder / "LICENSE")
    found = "\n".join(private_content(folder))
    for expected in ("LICENSE: a symlink", "config.json: holds hf_Ab3", "key 'data_dir' outside the allow-list",
                     "config.json: key 'custom_pipelines'", "tokenizer_config.json: key 'hub_token'"):
        assert expected in found, found


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["nucel", "modernbert"])
def test_publish_rebuilds_configs_and_publishes_nothing_private(tmp_path, tiny_export, capsys, fmt):
    source = hostile_source(tiny_export, tmp_path / "src")
    os.symlink(tmp_path / "secret.txt", source / "LICENSE")  # its target would become the published LICENSE
    (tmp_path / "secret.txt").write_text("patient ids ...")
    with pytest.raises(ValueError, match=r"src/LICENSE: a symlink or not a plain file"):
        publish.main(["--model", str(source), "--output-dir", str(tmp_path / "hub"), "--format", fmt])
    assert not (tmp_path / "hub").exists()
    (source / "LICENSE").unlink()

    publish.main(["--model", str(source), "--output-dir", str(tmp_path / "hub"), "--format", fmt])
    printed = capsys.readouterr().out
    assert "left out of the configs" in printed and "custom_pipelines" in printed and "'hub_token'" in printed
    assert_clean(tmp_path / "hub")
    if fmt == "modernbert":
        assert "auto_map" not in json.loads((tmp_path / "hub" / "config.json").read_text())


def test_publish_writes_only_into_a_new_folder_or_its_own(tmp_path, tiny_export):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / ".env").write_text(f"HF_TOKEN={TOKEN}\n")
    (folder / "cohort.csv").write_text("patient,genotype\n")
    with pytest.raises(ValueError, match="an existing folder with files publish did not write"):
        publish.main(["--model", str(tiny_export / "discriminator"), "--output-dir", str(folder)])
    assert sorted(os.listdir(folder)) == [".env", "cohort.csv"]  # untouched: no marker, no lock


@pytest.mark.slow
def test_publish_pushes_only_the_files_it_wrote(tmp_path, tiny_export, monkeypatch, capsys):
    hub = tmp_path / "hub"
    publish.main(["--model", str(tiny_export / "discriminator"), "--output-dir", str(hub)])
    (hub / "notes.txt").write_text("my notes")  # a file of the user's in the publish folder
    uploads = []
    monkeypatch.setattr(publish, "check_push_possible", lambda args: None)
    monkeypatch.setattr(publish.huggingface_hub.ModelCard, "validate", lambda card, repo_type=None: None)
    monkeypatch.setattr(publish.huggingface_hub, "create_repo", lambda *a, **k: None)
    monkeypatch.setattr(publish.huggingface_hub, "upload_folder", lambda **k: uploads.append(k["allow_patterns"]))
    publish.main(["--model", str(tiny_export / "discriminator"), "--output-dir", str(hub), "--repo-id", "org/x",
                  "--push"])
    assert "notes.txt" in capsys.readouterr().out  # reported as left in place and never uploaded
    assert uploads and "notes.txt" not in uploads[0] and "config.json" in uploads[0] and "README.md" in uploads[0]
    assert (hub / "notes.txt").read_text() == "my notes"


@pytest.mark.slow
def test_a_converted_model_without_its_record_keeps_no_license_by_default(tmp_path, tiny_export):
    converted = tmp_path / "converted"
    shutil.copytree(tiny_export / "discriminator", converted)
    (converted / ".nucel-run.json").write_text(json.dumps({"kind": "convert"}))  # nucel-convert's marker
    with pytest.raises(ValueError, match="weights converted by nucel-convert .* but no conversion.json"):
        publish.main(["--model", str(converted), "--output-dir", str(tmp_path / "hub")])
    (converted / ".nucel-run.json").unlink()
    (converted / "LICENSE").write_text("Apache License\nVersion 2.0\n")
    with pytest.raises(ValueError, match="holds a LICENSE that is not this package's MIT license; pass --license"):
        publish.main(["--model", str(converted), "--output-dir", str(tmp_path / "hub")])
    publish.main(["--model", str(converted), "--output-dir", str(tmp_path / "hub"), "--license", "apache-2.0"])
    assert (tmp_path / "hub" / "LICENSE").read_text().startswith("Apache License")


@pytest.mark.parametrize("argument", ["hub_token=" + TOKEN, "push_to_hub=true", "hub_model_id=org/x",
                                      "hub_strategy=every_save", "push_to_hub_token=x"])
def test_training_arg_refuses_hub_and_token_fields(argument):
    with pytest.raises(ValueError, match="refused: fine-tuning never pushes to the Hub or takes a token"):
        finetune.parse_training_args([argument])


@pytest.mark.slow
def test_a_fine_tuned_model_does_not_carry_its_sources_private_keys(tmp_path, tiny_export):
    source = hostile_source(tiny_export, tmp_path / "src")
    finetune.main(["--model", str(source), "--task-dir", motif_task(tmp_path / "task", sizes=(48, 16, 16)),
                   "--output-dir", str(tmp_path / "ft"), "--max-steps", "2", "--quiet"])
    assert_clean(tmp_path / "ft" / "model")
    results = json.loads((tmp_path / "ft" / "results.json").read_text())
    assert len(results["saved_model"]["sha256"]) == 64
