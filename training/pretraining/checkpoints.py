"""Pretraining checkpoints: written atomically, found, checked, and loaded without running code from them.

A checkpoint is `<output-dir>/checkpoints/step-N/`: accelerate's state (model.safetensors, optimizer.bin,
random_states_<rank>.pkl), the learning-rate schedule as `scheduler.json`, and `progress.json` (step, config,
genome checksum). It is written as `.partial-step-N` and renamed when complete, so a kill during a save never
leaves a checkpoint that `--resume` would pick.

Before anything is loaded the folder is listed: every entry must be one this package writes there
(`expected_files`), and anything else, such as a `custom_checkpoint_0.pkl` planted beside `scheduler.json` or a
`pytorch_model.bin` that accelerate would unpickle, is refused by name. Then every file that accelerate's
`load_state` opens is checked: the safetensors header must cover the file, and every pickle (optimizer, the RNG
states of every rank) must load with `torch.load(weights_only=True)`, which builds tensors and plain data only
and refuses any other object; a crafted file is refused with one line and nothing in it runs. Checkpoints
written before `scheduler.json` existed hold the schedule in accelerate's `custom_checkpoint_0.pkl` instead,
which is read the same safe way.

Under FSDP (training/pretraining/distributed.py) accelerate writes the model and optimizer its own way, and the
listing expected is that layout's (`checkpoint_layout`); a checkpoint of another layout is refused by name, with
the launch that wrote it. FULL_STATE_DICT: `pytorch_model_fsdp.bin` and `optimizer.bin`, gathered on rank 0, both
pickles checked as above. SHARDED_STATE_DICT: the folders `pytorch_model_fsdp_0/` and `optimizer_0/`, each a
torch.distributed.checkpoint save, checked before it is read (sharded_checkpoints.py).
"""

import json
import os
import re
import shutil
import sys

from accelerate.utils import DistributedType

from nucel.console import library_message_as_note
from nucel.files import read_json_object
from nucel.safe_loading import check_safetensors, load_plain_data
from nucel.training.pretraining.sharded_checkpoints import check_dcp_folder

CHECKPOINTS = "checkpoints"
PROGRESS_FILE = "progress.json"
SCHEDULER_FILE = "scheduler.json"
LEGACY_SCHEDULER_FILE = "custom_checkpoint_0.pkl"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.bin"
# accelerate's names under FSDP (accelerate.utils.constants FSDP_MODEL_NAME, OPTIMIZER_NAME; one model, one optimizer)
FSDP_FULL_MODEL_FILE = "pytorch_model_fsdp.bin"
FSDP_MODEL_FOLDER = "pytorch_model_fsdp_0"
FSDP_OPTIMIZER_FOLDER = "optimizer_0"

# What accelerate's save_state writes, by launch: one process or DDP, or FSDP with either state-dict type
PLAIN, FSDP_FULL, FSDP_SHARDED = "plain", "FSDP FULL_STATE_DICT", "FSDP SHARDED_STATE_DICT"
LAYOUT_FILES = {PLAIN: {MODEL_FILE, OPTIMIZER_FILE}, FSDP_FULL: {FSDP_FULL_MODEL_FILE, OPTIMIZER_FILE},
                FSDP_SHARDED: {FSDP_MODEL_FOLDER, FSDP_OPTIMIZER_FOLDER}}
LAUNCH_OF_LAYOUT = {PLAIN: "a launch without FSDP (one process or DDP)",
                    FSDP_FULL: "an FSDP launch with fsdp_state_dict_type FULL_STATE_DICT",
                    FSDP_SHARDED: "an FSDP launch with fsdp_state_dict_type SHARDED_STATE_DICT"}


def random_states_file(process_index):
    return f"random_states_{process_index}.pkl"


def checkpoint_directories(output_dir):
    """Complete checkpoints, oldest first (a save is complete once renamed from `.partial-*`)."""
    root = os.path.join(output_dir, CHECKPOINTS)
    if not os.path.isdir(root):
        return []
    found = [name for name in os.listdir(root) if name.startswith("step-") and name[5:].isdigit()
             and os.path.exists(os.path.join(root, name, PROGRESS_FILE))]
    return [os.path.join(root, name) for name in sorted(found, key=lambda name: int(name[5:]))]


def tied_weight_saved_once(message):
    """accelerate's warning when a checkpoint drops a weight that shares its storage with another: for NucEL the
    masked-LM decoder, tied to the token embeddings (tie_word_embeddings) and tied again when the model is built,
    so nothing is lost: one note. Any other shared tensor keeps accelerate's warning."""
    found = re.search(r"Removed shared tensor \{(.*?)\}", message)
    names = re.findall(r"'([^']+)'", found.group(1)) if found else []
    if not names or not all(name.endswith("decoder.weight") for name in names):
        return None
    return (f"checkpoints store {', '.join(sorted(names))} once: the decoder is tied to the token embeddings "
            "(tied again on resume)")


def checkpoint_layout(accelerator):
    """The layout accelerate's `save_state` writes and `load_state` opens under this launch (LAYOUT_FILES)."""

    if accelerator.distributed_type != DistributedType.FSDP:
        return PLAIN
    state_dict_type = accelerator.state.fsdp_plugin.state_dict_type
    name = getattr(state_dict_type, "name", str(state_dict_type))
    if name not in ("FULL_STATE_DICT", "SHARDED_STATE_DICT"):
        raise ValueError(f"accelerate config fsdp_state_dict_type {name}: nucel pretrain checkpoints FSDP runs with "
                         "SHARDED_STATE_DICT or FULL_STATE_DICT")
    return FSDP_FULL if name == "FULL_STATE_DICT" else FSDP_SHARDED


def save_checkpoint(accelerator, output_dir, step, progress, scheduler, keep):
    """Write checkpoint `step` atomically and keep the newest `keep` checkpoints."""
    checkpoint_layout(accelerator)  # a layout that could not be resumed is refused before anything is written
    root = os.path.join(output_dir, CHECKPOINTS)
    partial, final = os.path.join(root, f".partial-step-{step:08d}"), os.path.join(root, f"step-{step:08d}")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)  # our own leftover from a save that was killed
        os.makedirs(root, exist_ok=True)
    accelerator.wait_for_everyone()
    with library_message_as_note("accelerate.utils.other", tied_weight_saved_once):
        accelerator.save_state(partial)
    accelerator.wait_for_everyone()  # every rank's files (its RNG state, its shards) are written before the rename
    if accelerator.is_main_process:
        with open(os.path.join(partial, SCHEDULER_FILE), "w", encoding="utf-8") as handle:
            json.dump(scheduler.state_dict(), handle)
        with open(os.path.join(partial, PROGRESS_FILE), "w", encoding="utf-8") as handle:
            json.dump({**progress, "step": step}, handle, indent=1)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)  # the commit point
        for old in checkpoint_directories(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def read_progress(directory):
    return read_json_object(os.path.join(directory, PROGRESS_FILE), "checkpoint progress",
                            ("step", "config", "genome_checksum", "interval"),
                            hint="not a checkpoint written by nucel pretrain")


def saved_layout(directory):
    """The layout whose model entry `directory` holds (None: none of them)."""
    for layout, names in LAYOUT_FILES.items():
        if any(name != OPTIMIZER_FILE and os.path.lexists(os.path.join(directory, name)) for name in names):
            return layout
    return None


def expected_files(directory, saved_processes, layout=PLAIN):
    """The names a checkpoint of `saved_processes` ranks holds in `layout`: the schedule as `scheduler.json`, or
    (a plain checkpoint written before it existed) as the legacy pickle, never both."""
    names = LAYOUT_FILES[layout] | {PROGRESS_FILE} | {random_states_file(i) for i in range(saved_processes)}
    has_json = os.path.isfile(os.path.join(directory, SCHEDULER_FILE))
    return names | {SCHEDULER_FILE if has_json or layout != PLAIN else LEGACY_SCHEDULER_FILE}


def check_listing(directory, saved_processes, layout=PLAIN):
    """Refuse, by name, any entry of the checkpoint folder this package does not write there: accelerate's
    `load_state` opens files by name (custom_checkpoint_<i>.pkl, pytorch_model.bin, scaler.pt, sampler.bin),
    some with `weights_only=False`, so an unchecked extra file is a way to run code. A checkpoint of another
    layout (an FSDP checkpoint resumed without FSDP, or the reverse) is refused with the launch that wrote it."""
    found = saved_layout(directory)
    if found is not None and found != layout:
        raise ValueError(f"{directory}: written by {LAUNCH_OF_LAYOUT[found]}, and this run is "
                         f"{LAUNCH_OF_LAYOUT[layout]}; resume it with the accelerate config that wrote it")
    expected = expected_files(directory, saved_processes, layout)
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        kind_ok = os.path.isdir(path) if name in (FSDP_MODEL_FOLDER, FSDP_OPTIMIZER_FOLDER) else os.path.isfile(path)
        if name not in expected or os.path.islink(path) or not kind_ok:
            why = ("the legacy schedule pickle beside scheduler.json" if name == LEGACY_SCHEDULER_FILE else
                   "a link" if os.path.islink(path) else "not a file nucel pretrain writes there")
            raise ValueError(f"{path}: refused: {why}; a checkpoint folder holds only "
                             f"{', '.join(sorted(expected))} (remove it if you put it there)")


def verify_checkpoint(directory, process_index, saved_processes, layout=PLAIN):
    """Check every file `directory` holds before anything is loaded; returns the scheduler state. A rank that
    the saving run did not have (more processes now) has no RNG state to restore."""
    check_listing(directory, saved_processes, layout)
    if layout == PLAIN:
        check_safetensors(os.path.join(directory, MODEL_FILE))
    elif layout == FSDP_FULL:
        load_plain_data(os.path.join(directory, FSDP_FULL_MODEL_FILE))
    else:
        for folder in (FSDP_MODEL_FOLDER, FSDP_OPTIMIZER_FOLDER):
            path = os.path.join(directory, folder)
            if not os.path.isdir(path):
                raise ValueError(f"{path}: missing (this sharded checkpoint's {folder.split('_')[0]} state)")
            check_dcp_folder(path)
    if layout != FSDP_SHARDED:
        load_plain_data(os.path.join(directory, OPTIMIZER_FILE))
    for rank in range(saved_processes):  # every rank's file, so a planted one is refused by all ranks alike
        states_path = os.path.join(directory, random_states_file(rank))
        states = load_plain_data(states_path)
        if not isinstance(states, dict) or "torch_manual_seed" not in states:
            raise ValueError(f"{states_path}: not an RNG state file written by accelerate")
    scheduler_path = os.path.join(directory, SCHEDULER_FILE)
    if os.path.isfile(scheduler_path):
        return read_json_object(scheduler_path, "learning-rate schedule")
    legacy = os.path.join(directory, LEGACY_SCHEDULER_FILE)
    if os.path.isfile(legacy):
        return load_plain_data(legacy)
    raise ValueError(f"{scheduler_path}: missing (the learning-rate schedule of this checkpoint)")


class _CheckedLegacyState:
    """Stands in for the scheduler while accelerate re-reads a legacy `custom_checkpoint_0.pkl` (it insists on one
    registered object per such file); the file was proven to be plain data by `verify_checkpoint` first, and its
    state is applied from that safe read."""

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def load_checkpoint(accelerator, directory, scheduler, saved_processes):
    """Restore model, optimizer, schedule and this process's RNG state from a verified checkpoint."""
    scheduler_state = verify_checkpoint(directory, accelerator.process_index, saved_processes,
                                        checkpoint_layout(accelerator))
    if not os.path.isfile(os.path.join(directory, SCHEDULER_FILE)):  # verified: the legacy pickle is there
        accelerator.register_for_checkpointing(_CheckedLegacyState())
    accelerator.load_state(directory)
    scheduler.load_state_dict(scheduler_state)
    if accelerator.process_index >= saved_processes:
        print(f"warning: {directory} was written by {saved_processes} process(es); process "
              f"{accelerator.process_index} starts with a fresh RNG state, so ELECTRA's sampling differs from an "
              "uninterrupted run (the batches do not)", file=sys.stderr, flush=True)
