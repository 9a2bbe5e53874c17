"""FSDP under accelerate, on GPUs and on CPU.

`accelerate launch --config_file training/configs/accelerate/fsdp-*.yaml` exports the config's `fsdp_config` as
`ACCELERATE_USE_FSDP=true` and `FSDP_*` variables, and `Accelerator()` builds its FullyShardedDataParallelPlugin
from them. On CUDA GPUs accelerate then shards the model. On CPU (gloo) accelerate (1.16 here) does not: its
`AcceleratorState` switches to FSDP only for accelerator devices (MULTI_GPU, MULTI_XPU, ...), so a CPU launch of
an FSDP config quietly trains as plain DDP (MULTI_CPU), and an FSDP1 config with `fsdp_sync_module_states: true`
stops in `Accelerator()` with "FSDP parameter initialization with `sync_module_states=True` is not supported on
cpu". PyTorch's FSDP2 (`fully_shard`) itself runs on CPU with gloo, and so does accelerate's FSDP2 code (prepare,
sharded `save_state`/`load_state` through torch.distributed.checkpoint, the gathered `get_state_dict`) once the
state says FSDP. So:

- `check_fsdp_launch` (before `Accelerator()`): an FSDP launch on CPU must be FSDP2 in float32, or it is refused
  with one line, instead of a traceback (FSDP1) or a silent DDP run;
- `use_fsdp_on_cpu` (after `Accelerator()`): switches accelerate's state to FSDP with the launch's plugin, so the
  CPU run takes the code path an FSDP GPU run takes (tests/training/test_fsdp.py trains under it).

Nothing changes for a GPU launch or a launch without an FSDP config.
"""

import os

import torch
from accelerate import FullyShardedDataParallelPlugin
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType, get_torch_accelerator_backend, parse_flag_from_env

FSDP_CPU_CONFIG = "training/configs/accelerate/fsdp-cpu-2proc.yaml"


def fsdp_requested() -> bool:
    """Whether `accelerate launch` was given an FSDP config (it exports ACCELERATE_USE_FSDP=true)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def cpu_requested() -> bool:
    """ACCELERATE_USE_CPU as accelerate reads it (`--cpu`, or set by hand to run a multi-process config on CPU)."""

    return parse_flag_from_env("ACCELERATE_USE_CPU")


def has_accelerator() -> bool:
    """Whether accelerate finds an accelerator device (CUDA, XPU, ...) here."""

    return get_torch_accelerator_backend()[0] not in (None, "cpu")


def check_fsdp_launch(precision: str) -> None:
    """Refuse, with one line and before `Accelerator()`, an FSDP launch on CPU that accelerate cannot run as FSDP."""
    if not fsdp_requested():
        return
    if not cpu_requested():
        if has_accelerator():
            return  # accelerate's own FSDP
        raise ValueError("accelerate config FSDP on a machine without GPUs: launch with ACCELERATE_USE_CPU=1 (without "
                         f"it accelerate starts no process group on CPU; {FSDP_CPU_CONFIG} is the CPU config)")
    version = os.environ.get("FSDP_VERSION", "1")
    if version != "2":
        raise ValueError(f"accelerate config FSDP with fsdp_version {version} on CPU: accelerate runs FSDP1 on "
                         "accelerator devices only (it refuses sync_module_states on CPU, and without it trains plain "
                         f"DDP); use fsdp_version 2 ({FSDP_CPU_CONFIG}), a DDP launch, or GPUs")
    if precision != "no":
        raise ValueError(f"config mixed_precision={precision} with FSDP on CPU: FSDP on CPU trains in float32 only "
                         "(mixed_precision no, --dtype float32)")
    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        raise ValueError("accelerate config FSDP on CPU with 1 process: FSDP shards across processes; launch 2 or "
                         "more (--num_processes 2) or drop the FSDP config")


def use_fsdp_on_cpu(accelerator) -> None:
    """After `Accelerator()` under an FSDP launch on CPU (checked by `check_fsdp_launch`): make accelerate's state
    FSDP with the plugin the launch described, which accelerate builds on accelerator devices only. Both shared
    states are switched: `AcceleratorState()` re-reads `PartialState`'s fields whenever it is constructed."""

    if not fsdp_requested() or accelerator.distributed_type == DistributedType.FSDP:
        return
    if accelerator.distributed_type != DistributedType.MULTI_CPU:
        raise ValueError(f"accelerate config FSDP: accelerate set up {accelerator.distributed_type.value}, not FSDP; "
                         "FSDP runs on GPUs, or on CPU with 2 or more processes (gloo)")
    plugin = FullyShardedDataParallelPlugin()  # from the FSDP_* variables the launcher exported
    PartialState().distributed_type = DistributedType.FSDP
    state = AcceleratorState()
    state.distributed_type, state.fsdp_plugin = DistributedType.FSDP, plugin
    if accelerator.distributed_type != DistributedType.FSDP or not accelerator.is_fsdp2:
        raise RuntimeError("accelerate did not take the FSDP state on CPU (accelerate changed how it keeps its "
                           "state?); run FSDP on GPUs or use a DDP launch on CPU")
    if not torch.distributed.is_initialized() or torch.distributed.get_backend() != "gloo":
        raise RuntimeError("FSDP on CPU needs a gloo process group")
