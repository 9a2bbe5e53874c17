"""Results others can read: exported files follow the umask, and pretraining that learned nothing says so (console,
pretraining_summary.json, and a metrics.png whose baselines stay visible under a curve lying on them)."""

import json
import os
import stat

import pytest
from conftest import motif_task, tiny_config

from nucel.training.pretraining import metrics_log
from nucel.training.pretraining.metrics_log import MetricsLog, not_learned


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def modes(folder):
    return {name: stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode) for name in os.listdir(folder)
            if os.path.isfile(os.path.join(folder, name)) and not name.startswith(".nucel-run")}


@pytest.mark.slow
def test_exported_files_are_readable_by_group_and_others(tmp_path, umask_022, tiny_export):
    from nucel.hub_cards import publish
    from nucel.modeling_nucel import NucELForPreTraining
    from nucel.training.finetuning import run as finetune

    paths = NucELForPreTraining(tiny_config()).save_components(str(tmp_path / "export"))
    finetune.main(["--model", "onehot-cnn", "--task-dir", motif_task(tmp_path / "task", sizes=(24, 8, 8)),
                   "--output-dir", str(tmp_path / "ft"), "--max-steps", "2", "--quiet"])
    publish.main(["--model", str(tiny_export / "discriminator"), "--output-dir", str(tmp_path / "hub"),
                  "--format", "modernbert"])
    for folder in (*paths.values(), tmp_path / "ft" / "model", tmp_path / "hub"):
        found = modes(folder)
        assert any(name.endswith(".safetensors") for name in found), found
        assert all(mode == 0o644 for mode in found.values()), (folder, {k: oct(v) for k, v in found.items()})


def test_a_discriminator_stuck_at_all_original_is_named():
    stuck = {"eval_discriminator_accuracy": 0.8871, "eval_all_original_accuracy": 0.8871,
             "eval_discriminator_auc": 0.64, "eval_generator_accuracy": 0.31, "eval_base_composition_accuracy": 0.30}
    (warning,) = not_learned(stuck)
    assert warning.startswith("discriminator_accuracy 0.8871 is no better than all_original_accuracy 0.8871")
    assert "AUC 0.6400" in warning
    assert not_learned({**stuck, "eval_discriminator_accuracy": 0.95}) == []
    (warning,) = not_learned({"eval_mlm_accuracy": 0.29, "eval_base_composition_accuracy": 0.30})
    assert warning.startswith("mlm_accuracy 0.2900 is no better than base_composition_accuracy 0.3000")


def test_pretraining_that_learned_nothing_warns_in_console_and_summary(tmp_path, capsys):
    from conftest import planted_motif_genome, run, write_fasta

    fasta = write_fasta(tmp_path / "g.fa.gz", [("chrA", planted_motif_genome(30_000, seed=3))])
    output_dir = run(tmp_path, fasta, max_steps=2, save_steps=2, eval_steps=2, learning_rate=1e-9)
    summary = json.loads((output_dir / "pretraining_summary.json").read_text())
    assert any(w.startswith("discriminator_accuracy") for w in summary["warnings"]), summary["warnings"]
    assert "warning: pretraining learned nothing measurable: discriminator_accuracy" in capsys.readouterr().err


def test_baselines_are_drawn_on_top_of_the_curves(tmp_path, monkeypatch):
    log = MetricsLog(str(tmp_path / "metrics.jsonl"))
    for step in (10, 20):
        log.write({"step": step, "loss": 1.0})
        log.write({"step": step, "eval_discriminator_accuracy": 0.8871, "eval_all_original_accuracy": 0.8871})
    drawn = {}

    def capture(figure, axes, png_path, dpi=100):
        drawn.update({line.get_label(): line for line in axes[1].lines})

    monkeypatch.setattr(metrics_log, "save_figure", capture)
    log.plot(str(tmp_path / "metrics.png"))
    baseline, model = drawn["all_original_accuracy (baseline)"], drawn["discriminator_accuracy"]
    assert baseline.get_zorder() > model.get_zorder() and baseline.get_linestyle() == "--"
