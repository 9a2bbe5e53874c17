"""FSDP: the accelerate configs build the plugin they describe; a CPU launch is FSDP2 in float32 or one error line;
2 CPU processes (gloo) train a tiny ELECTRA fully sharded, checkpoint (sharded, torch.distributed.checkpoint),
resume, and export the weights a DDP run of the same seed exports; and a sharded checkpoint is checked before DCP
reads it (DCP unpickles without restriction), so nothing in it runs."""

import glob
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import (
    REPO_ROOT,
    one_line_exit,
    planted_motif_genome,
    read_metrics,
    tiny_config,
    write_config,
    write_fasta,
)

PRETRAIN = os.path.join(REPO_ROOT, "training", "pretrain.py")
ACCELERATE_CONFIGS = os.path.join(REPO_ROOT, "training", "configs", "accelerate")
FSDP_CPU = os.path.join(ACCELERATE_CONFIGS, "fsdp-cpu-2proc.yaml")


# ------------------------------------------------------------------------------------------------ the configs
def fsdp_configs():
    import yaml

    found = []
    for path in sorted(glob.glob(os.path.join(ACCELERATE_CONFIGS, "*.yaml"))):
        with open(path) as handle:
            if yaml.safe_load(handle).get("distributed_type") == "FSDP":
                found.append(pytest.param(path, id=os.path.basename(path)))
    return found


def launch_environment(config_file):
    """The variables `accelerate launch --config_file config_file` exports to each process (accelerate's own
    parsing of the YAML), and the parsed launch arguments."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", config_file, PRETRAIN])
    args = _validate_launch_command(args)[0]
    return prepare_multi_gpu_env(args), args


def build_plugin(config_file, monkeypatch, device="cpu"):
    """accelerate's FullyShardedDataParallelPlugin as each process of that launch builds it, on `device`."""
    import accelerate.utils.dataclasses as dataclasses
    from accelerate import FullyShardedDataParallelPlugin

    environment, args = launch_environment(config_file)
    for key in [key for key in os.environ if key.startswith(("FSDP_", "ACCELERATE_"))]:
        monkeypatch.delenv(key)
    for key, value in environment.items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)
    monkeypatch.setattr(dataclasses, "get_torch_accelerator_backend", lambda *a, **k: (device, None))
    return FullyShardedDataParallelPlugin(), environment, args


def test_fsdp_configs_exist():
    names = {os.path.basename(param.values[0]) for param in fsdp_configs()}
    assert {"fsdp-8gpu.yaml", "fsdp-cpu-2proc.yaml"} <= names


@pytest.mark.parametrize("config_file", fsdp_configs())
def test_fsdp_config_builds_the_plugin_it_describes(config_file, monkeypatch):
    from torch.distributed.fsdp import StateDictType

    from nucel.modeling_nucel import NucELForPreTraining, modeling_nucel
    from nucel.training.pretraining.distributed import check_fsdp_launch

    name = os.path.basename(config_file)
    plugin, environment, args = build_plugin(config_file, monkeypatch, "cpu" if "cpu" in name else "cuda")
    assert environment["ACCELERATE_USE_FSDP"] == "true"
    # Each NucEL encoder layer (generator's and discriminator's) is one FSDP unit: the class the config names is
    # the model's layer class, and accelerate finds it in a NucEL model
    assert plugin.transformer_cls_names_to_wrap == ["NucELEncoderLayer"]
    layer_class = modeling_nucel.NucELEncoderLayer
    model = NucELForPreTraining(tiny_config())
    layers = [module for module in model.modules() if isinstance(module, layer_class)]
    assert len(layers) == tiny_config().num_hidden_layers + tiny_config().generator_num_hidden_layers
    plugin.set_auto_wrap_policy(model)  # raises if the class were not in the model
    assert plugin.auto_wrap_policy.keywords["transformer_layer_cls"] == {layer_class}
    # Sharded checkpoints (checked before torch.distributed.checkpoint reads them); nothing offloaded or recomputed
    assert plugin.state_dict_type == StateDictType.SHARDED_STATE_DICT
    assert environment["FSDP_OFFLOAD_PARAMS"] == "false" and plugin.cpu_ram_efficient_loading is False
    assert plugin.activation_checkpointing is False
    if name == "fsdp-8gpu.yaml":
        from torch.distributed.fsdp import BackwardPrefetch, ShardingStrategy

        assert plugin.fsdp_version == 1 and args.num_processes == 8 and not args.cpu
        assert plugin.sharding_strategy == ShardingStrategy.FULL_SHARD
        assert plugin.backward_prefetch == BackwardPrefetch.BACKWARD_PRE
        assert plugin.use_orig_params is True and plugin.sync_module_states is True
    if "cpu" in name:  # what pretrain accepts on CPU: FSDP2, float32, 2+ processes
        assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
        assert args.num_processes >= 2 and environment["ACCELERATE_MIXED_PRECISION"] == "no"
        monkeypatch.setenv("WORLD_SIZE", str(args.num_processes))
        monkeypatch.setenv("ACCELERATE_USE_CPU", "1")  # as its usage line launches it
        check_fsdp_launch("no")


def test_fsdp1_config_on_cpu(monkeypatch):
    """What accelerate does with the GPU config on CPU, and the one line pretrain says instead."""
    from nucel.training.pretraining.distributed import check_fsdp_launch

    gpu_config = os.path.join(ACCELERATE_CONFIGS, "fsdp-8gpu.yaml")
    with pytest.raises(RuntimeError, match="sync_module_states=True` is not supported on cpu"):
        build_plugin(gpu_config, monkeypatch, "cpu")
    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="FSDP with fsdp_version 1 on CPU: .* use fsdp_version 2"):
        check_fsdp_launch("no")


@pytest.mark.parametrize("change, message", [
    pytest.param({"FSDP_VERSION": "1"}, r"fsdp_version 1 on CPU: accelerate runs FSDP1 on accelerator devices only",
                 id="fsdp1"),
    pytest.param({"--dtype": "bfloat16"}, r"mixed_precision=bf16 with FSDP on CPU: FSDP on CPU trains in float32 only",
                 id="bf16"),
    pytest.param({"WORLD_SIZE": "1"}, r"FSDP on CPU with 1 process", id="one-process"),
    pytest.param({"ACCELERATE_USE_CPU": "0"}, r"FSDP on a machine without GPUs: launch with ACCELERATE_USE_CPU=1",
                 id="no-cpu-flag", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")),
])
def test_fsdp_launch_on_cpu_refused_in_one_line(tmp_path, monkeypatch, change, message):
    """A CPU launch that accelerate would run as plain DDP, or stop with a traceback, is one line; nothing written."""
    from nucel.training.pretraining import run as pretrain

    environment = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "ACCELERATE_USE_CPU": "1", "WORLD_SIZE": "2"}
    environment.update({key: value for key, value in change.items() if not key.startswith("--")})
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    fasta = write_fasta(tmp_path / "g.fa.gz", [("chrA", planted_motif_genome(5_000))])
    argv = ["--config", write_config(tmp_path), "--fasta", fasta, "--output-dir", str(tmp_path / "run"),
            *[item for key, value in change.items() if key.startswith("--") for item in (key, value)]]
    line = one_line_exit(pretrain.cli, argv)
    assert re.search(message, line), line
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------- training under FSDP on CPU
def launch(config, fasta, output_dir, *args, fsdp=True):
    """pretrain in 2 CPU processes (gloo): under fsdp-cpu-2proc.yaml, or DDP; returns stdout + stderr."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    how = (["--config_file", FSDP_CPU] if fsdp else
           ["--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no"])
    result = subprocess.run([launcher, "launch", *how, PRETRAIN, "--config", config, "--fasta", fasta,
                             "--output-dir", str(output_dir), *args], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def exported(output_dir):
    from safetensors.torch import load_file

    return {name: load_file(output_dir / name / "model.safetensors") for name in ("discriminator", "generator")}


@pytest.mark.slow
def test_fsdp_two_processes_checkpoint_resume_and_match_ddp(tmp_path):
    """ELECTRA, 2 CPU processes x 4 windows: FSDP2 (each encoder layer sharded) stopped after a sharded checkpoint
    at step 3 and resumed to step 6 exports the weights a DDP run of the same seed exports (1e-6), with the same
    losses and validation numbers."""
    fasta = write_fasta(tmp_path / "g.fa.gz", [("chrA", planted_motif_genome(30_000, seed=3))])
    settings = dict(per_device_batch_size=4, max_steps=6, eval_steps=3, save_steps=3, learning_rate=1e-3)
    ddp_dir, fsdp_dir = tmp_path / "ddp" / "run", tmp_path / "fsdp" / "run"
    launch(write_config(tmp_path / "ddp", **settings), fasta, ddp_dir, fsdp=False)

    halfway = launch(write_config(tmp_path / "fsdp", **{**settings, "max_steps": 3}), fasta, fsdp_dir)
    assert "global batch 8 = 4 x 2 process(es) x 1" in halfway
    step_3 = fsdp_dir / "checkpoints" / "step-00000003"
    # accelerate's sharded layout: the model and optimizer as torch.distributed.checkpoint folders, one data file per
    # rank; no gathered model.safetensors
    assert sorted(os.listdir(step_3)) == ["optimizer_0", "progress.json", "pytorch_model_fsdp_0",
                                          "random_states_0.pkl", "random_states_1.pkl", "scheduler.json"]
    for folder in ("pytorch_model_fsdp_0", "optimizer_0"):
        assert sorted(os.listdir(step_3 / folder)) == [".metadata", "__0_0.distcp", "__1_0.distcp"]

    resumed = launch(write_config(tmp_path / "fsdp", **settings), fasta, fsdp_dir, "--resume")
    assert f"resuming from {step_3} (step 3)" in resumed

    fsdp, ddp = exported(fsdp_dir), exported(ddp_dir)
    for name in ("discriminator", "generator"):
        assert fsdp[name].keys() == ddp[name].keys(), name
        worst = max((fsdp[name][key] - ddp[name][key]).abs().max().item() for key in ddp[name])
        assert worst <= 1e-6, (name, worst)
    # The resumed run's metrics are the uninterrupted run's: every step's losses, and validation at steps 3 and 6
    # (measured: within 1e-8; the AUC, a rank statistic, within 1e-5, as weights 1e-7 apart reorder near-ties)
    fsdp_metrics, ddp_metrics = read_metrics(fsdp_dir), read_metrics(ddp_dir)
    assert [record["step"] for record in fsdp_metrics] == [record["step"] for record in ddp_metrics]
    for mine, theirs in zip(fsdp_metrics, ddp_metrics):
        assert mine.keys() == theirs.keys(), mine["step"]
        for key in set(theirs) - {"tokens_per_second"}:
            tolerance = dict(rtol=0, atol=1e-4) if key == "eval_discriminator_auc" else dict(rtol=1e-6, atol=1e-7)
            assert (mine[key] is None and theirs[key] is None) or np.isclose(mine[key], theirs[key], **tolerance), (
                mine["step"], key, mine[key], theirs[key])


# ------------------------------------------------------------------------------ sharded checkpoints, checked
# (written by one process: torch.distributed.checkpoint warns that it assumes so)
ONE_PROCESS_DCP = pytest.mark.filterwarnings("ignore:torch.distributed is disabled:UserWarning")


class PlantedCode:
    """Unpickling this creates a file: what code in a checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def optimizer_state(lr):
    return {"optimizer": {"state": {"w": {"exp_avg": torch.ones(3), "step": torch.tensor(2.0)}},
                          "param_groups": [{"lr": lr, "betas": (0.9, 0.98), "params": ["w"]}]}}


def dcp_folder(path, state):
    import torch.distributed.checkpoint as dcp

    dcp.save(state, checkpoint_id=str(path), no_dist=True)
    return path


def sharded_checkpoint(root):
    """A checkpoint folder in accelerate's sharded FSDP layout (one process)."""
    import json

    root.mkdir(parents=True)
    dcp_folder(root / "pytorch_model_fsdp_0", {"model": {"w": torch.ones(3)}})
    dcp_folder(root / "optimizer_0", optimizer_state(0.1))
    torch.save({"torch_manual_seed": torch.get_rng_state()}, root / "random_states_0.pkl")
    (root / "scheduler.json").write_text(json.dumps({"last_epoch": 3}))
    (root / "progress.json").write_text(json.dumps({"step": 3, "config": {}, "genome_checksum": "x", "interval": []}))
    return root


@ONE_PROCESS_DCP
def test_sharded_checkpoint_verified(tmp_path):
    from nucel.training.pretraining.checkpoints import FSDP_SHARDED, PLAIN, verify_checkpoint

    checkpoint = sharded_checkpoint(tmp_path / "step-00000003")
    assert verify_checkpoint(str(checkpoint), 0, 1, FSDP_SHARDED) == {"last_epoch": 3}
    with pytest.raises(ValueError, match="written by an FSDP launch with fsdp_state_dict_type SHARDED_STATE_DICT, "
                                         "and this run is a launch without FSDP"):
        verify_checkpoint(str(checkpoint), 0, 1, PLAIN)
    (checkpoint / "pytorch_model_fsdp_0" / "__0_1.distcp.bak").write_bytes(b"")
    with pytest.raises(ValueError, match=r"__0_1.distcp.bak: refused: not a file of a sharded checkpoint"):
        verify_checkpoint(str(checkpoint), 0, 1, FSDP_SHARDED)


@ONE_PROCESS_DCP
def test_code_in_a_sharded_checkpoint_never_runs(tmp_path):
    """DCP (torch 2.13) would run it: it unpickles non-tensor entries with weights_only=False, and `.metadata`
    with pickle.load. Both are refused by the check pretrain runs first."""
    import torch.distributed.checkpoint as dcp

    from nucel.training.pretraining.checkpoints import FSDP_SHARDED, verify_checkpoint
    from nucel.training.pretraining.sharded_checkpoints import check_dcp_folder

    marker = tmp_path / "CODE_RAN"
    checkpoint = sharded_checkpoint(tmp_path / "step-00000003")
    planted = dcp_folder(tmp_path / "planted", optimizer_state(PlantedCode(str(marker))))
    os.replace(planted / "__0_0.distcp", checkpoint / "optimizer_0" / "__0_0.distcp")
    os.replace(planted / ".metadata", checkpoint / "optimizer_0" / ".metadata")
    with pytest.raises(ValueError, match=r"optimizer_0/__0_0.distcp: refused: entry 'optimizer.param_groups.0.lr' "
                                         r"holds Python objects .* \((io|builtins)\.open\)"):
        verify_checkpoint(str(checkpoint), 0, 1, FSDP_SHARDED)
    assert not marker.exists()
    dcp.load(optimizer_state(0.0), checkpoint_id=str(checkpoint / "optimizer_0"), no_dist=True)
    assert marker.exists(), "torch.distributed.checkpoint no longer unpickles entries freely: update the docs"
    marker.unlink()

    metadata = checkpoint / "pytorch_model_fsdp_0" / ".metadata"
    metadata.write_bytes(pickle.dumps(PlantedCode(str(marker))))
    with pytest.raises(ValueError, match=r"\.metadata: refused: it holds Python objects other than checkpoint "
                                         r"metadata, .*global (io|builtins)\.open"):
        check_dcp_folder(str(metadata.parent))
    assert not marker.exists()


@ONE_PROCESS_DCP
def test_sharded_checkpoint_entries_stay_in_their_folder(tmp_path):
    """`.metadata` names the file and byte range of every entry: one outside the folder, or past the end of a
    (truncated) file, is refused before DCP opens anything."""
    from nucel.training.pretraining.sharded_checkpoints import check_dcp_folder, read_dcp_metadata

    folder = dcp_folder(tmp_path / "model", {"model": {"w": torch.ones(3)}})
    metadata = read_dcp_metadata(str(folder / ".metadata"))
    for change in ({"relative_path": "../elsewhere.distcp"}, {"length": 10**6}):
        changed = {index: type(where)(**{**where.__dict__, **change}) for index, where in metadata.storage_data.items()}
        edited = type(metadata)(**{**metadata.__dict__, "storage_data": changed})
        (folder / ".metadata").write_bytes(pickle.dumps(edited))
        with pytest.raises(ValueError, match=r"entry 'model.w' is not stored in a data file of this folder"):
            check_dcp_folder(str(folder))
    (folder / ".metadata").write_bytes(b"\x80\x04")
    with pytest.raises(ValueError, match=r"\.metadata: truncated or corrupt"):
        check_dcp_folder(str(folder))
