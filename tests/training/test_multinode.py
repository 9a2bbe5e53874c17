"""Multi-node pretraining, proven on one host: two "machines" are two `accelerate launch` invocations of
training/configs/accelerate/multi-node.yaml with --machine_rank 0 and 1 against 127.0.0.1 (one CPU process each,
gloo, ACCELERATE_USE_CPU=1), each in its own empty working directory, sharing one --output-dir as machines share
a file system. What breaks first in real multi-node runs, each checked here:

- sharding by global rank: machine 1's only process has local rank 0 but global rank 1, and reads the other half
  of every global batch (a shard picked by local rank would repeat machine 0's);
- only global rank 0 writes the output directory, metrics, summary and exports (prints them too); the other rank
  writes exactly its RNG state into each checkpoint;
- the genome store is built once (by global rank 0), or found ready at a path both machines read and left as is;
- --resume continues on both machines with metrics and weights equal to an uninterrupted run.

Every process runs training/pretrain.py unchanged under PROBE, which records who the process is, a hash of each
train micro-batch row it built and every file system write it made under the run's folders.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, planted_motif_genome, read_metrics, write_config, write_fasta
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

PRETRAIN = os.path.join(REPO_ROOT, "training", "pretrain.py")
MULTI_NODE = os.path.join(REPO_ROOT, "training", "configs", "accelerate", "multi-node.yaml")
LAUNCHER = os.path.join(os.path.dirname(sys.executable), "accelerate")
TIMEOUT = 300  # seconds for one two-machine run (measured: 10-20 s on 2 busy CPU cores)
THROUGHPUT = ("tokens_per_second", "mfu")  # the only metrics that differ between equal runs

PROBE = '''\
"""training/pretrain.py under a probe: $NUCEL_PROBE_DIR/rank-<global rank>.json gets this process's identity,
a hash of every row of every train micro-batch it built, and every write (open for writing, mkdir, rename,
remove, torch.save) under --output-dir, --genome-store and its working directory. $NUCEL_PROBE_SLOW_SAVE=S:
global rank 1 starts each checkpoint save S seconds late (a slow machine)."""
import atexit
import hashlib
import json
import os
import runpy
import sys
import time


def folder_of(flag):
    return [os.path.realpath(sys.argv[sys.argv.index(flag) + 1])] if flag in sys.argv else []


WATCHED = folder_of("--output-dir") + folder_of("--genome-store") + [os.path.realpath(os.getcwd())]
record = {"env": {key: os.environ.get(key) for key in ("RANK", "LOCAL_RANK", "GROUP_RANK", "WORLD_SIZE")},
          "batches": {}, "writes": []}
quiet = False


def watched(path):
    if isinstance(path, int):
        return None
    path = os.path.realpath(os.fsdecode(path))
    return path if any(path == root or path.startswith(root + os.sep) for root in WATCHED) else None


def note(event, *paths):
    global quiet
    quiet = True
    try:
        found = [path for path in map(watched, paths) if path]
        if found:
            record["writes"].append([event, *found])
    finally:
        quiet = False


def audit(event, args):
    if quiet:
        return
    if event == "open":
        path, mode, flags = args
        if any(c in mode for c in "wax+") if isinstance(mode, str) else \\
                flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC):
            note(event, path)
    elif event in ("os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree", "os.truncate", "os.symlink", "os.link"):
        note(event, args[0])
    elif event == "os.rename":
        note(event, args[0], args[1])


def dump():
    global quiet
    quiet = True
    with open(os.path.join(os.environ["NUCEL_PROBE_DIR"], f"rank-{record.get('process_index', 0)}.json"),
              "w") as handle:
        json.dump(record, handle)


sys.addaudithook(audit)
atexit.register(dump)

import torch  # noqa: E402  (imported after the audit hook, so the files they open are seen)
from accelerate import Accelerator, PartialState  # noqa: E402  (after the audit hook, as torch)

from nucel.training.pretraining.batches import MaskedWindowBatches  # noqa: E402  (after the audit hook)

torch_save = torch.save


def save(obj, f, *args, **kwargs):  # torch.save writes from C++, where no audit event is raised
    if isinstance(f, (str, os.PathLike)):
        note("torch.save", f)
    return torch_save(obj, f, *args, **kwargs)


torch.save = save
getitem = MaskedWindowBatches.__getitem__


def probed_getitem(self, k):
    batch = getitem(self, k)
    state = PartialState()
    record.update(process_index=state.process_index, local_process_index=state.local_process_index,
                  num_processes=state.num_processes, shard=[self.rank, self.world_size])
    record["batches"][str(k)] = [
        hashlib.sha256(b"".join(batch[key][row].numpy().tobytes() for key in sorted(batch))).hexdigest()[:16]
        for row in range(len(batch["input_ids"]))]
    return batch


MaskedWindowBatches.__getitem__ = probed_getitem
if os.environ.get("NUCEL_PROBE_SLOW_SAVE"):
    save_state = Accelerator.save_state

    def slow_save_state(self, *args, **kwargs):
        if self.process_index == 1:
            time.sleep(float(os.environ["NUCEL_PROBE_SLOW_SAVE"]))
        return save_state(self, *args, **kwargs)

    Accelerator.save_state = slow_save_state
sys.argv[0] = os.environ["NUCEL_PROBE_SCRIPT"]
runpy.run_path(sys.argv[0], run_name="__main__")
'''


class Run:
    """One run's output directory, each machine's stdout/stderr and working directory, and each global rank's probe
    record (index = global rank)."""

    def __init__(self, folder, output_dir, machines):
        self.folder, self.output_dir, self.machines = folder, output_dir, machines
        self.stdout = [(folder / f"machine-{rank}.out").read_text() for rank in range(len(machines))]
        self.stderr = [(folder / f"machine-{rank}.err").read_text() for rank in range(len(machines))]
        self.probes = [json.loads((folder / "probe" / f"rank-{rank}.json").read_text())
                       for rank in range(len(machines))]

    def text(self):
        return "".join(self.stdout + self.stderr)

    def written(self, rank, under=None):
        """(event, path relative to `under`, default the output directory) of each write by global rank `rank`."""
        root = os.path.realpath(under or self.output_dir)
        return [(event, os.path.relpath(path, root)) for event, *paths in self.probes[rank]["writes"] for path in paths]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def probe_environment(folder):
    (folder / "probe").mkdir(parents=True)
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "NUCEL_PROBE_DIR": str(folder / "probe"),
            "NUCEL_PROBE_SCRIPT": PRETRAIN}


def run_machines(root, name, config, *args, env=None, machines=2, output_dir=None):
    """`machines` x `accelerate launch --config_file multi-node.yaml --machine_rank R` started together, one process
    each, every one in its own empty working directory, all with the same --output-dir (default root/name/run). A
    machine that fails or a run past TIMEOUT stops them all (their process groups are killed): nothing hangs.
    machines=1: one plain process, no launcher (the reference run)."""
    folder = root / name
    environment = {**probe_environment(folder), **(env or {})}
    output_dir = output_dir or folder / "run"
    port = free_port()
    processes, directories = [], []
    try:
        for rank in range(machines):
            directory = folder / f"machine-{rank}"
            directory.mkdir()
            directories.append(directory)
            launch = [LAUNCHER, "launch", "--config_file", MULTI_NODE, "--num_machines", str(machines),
                      "--num_processes", str(machines), "--machine_rank", str(rank), "--main_process_ip",
                      "127.0.0.1", "--main_process_port", str(port)] if machines > 1 else [sys.executable]
            with open(folder / f"machine-{rank}.out", "w") as out, open(folder / f"machine-{rank}.err", "w") as err:
                processes.append(subprocess.Popen(
                    [*launch, str(root / "probe.py"), "--config", config, "--output-dir", str(output_dir),
                     *map(str, args)], cwd=directory, env=environment, stdout=out, stderr=err,
                    start_new_session=True))
        deadline = time.monotonic() + TIMEOUT
        while any(process.poll() is None for process in processes):
            failed = any(process.poll() not in (None, 0) for process in processes)
            if failed or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    codes = [process.returncode for process in processes]
    tails = "\n".join(f"machine {rank} (exit {code}):\n{(folder / f'machine-{rank}.err').read_text()[-2500:]}"
                      for rank, code in enumerate(codes))
    assert codes == [0] * machines, tails
    return Run(folder, output_dir, directories)


def comparable(records):
    return [{key: value for key, value in record.items() if key not in THROUGHPUT} for record in records]


def train_losses(run):
    return [record["loss"] for record in read_metrics(run.output_dir) if "loss" in record]


# ------------------------------------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("multinode")
    genome = planted_motif_genome(80_000, seed=1)  # 593 train windows of 160 bp: one epoch is 74 steps of 8
    write_fasta(folder / "motifs.fa.gz", [("chrA", genome[:60_000]), ("chrB", genome[60_000:])])
    (folder / "probe.py").write_text(PROBE)
    return folder


def settings(root, name, **overrides):
    """A tiny config: 8 steps of a global batch of 8 (evaluated at 4 and 8) unless overridden."""
    return write_config(root / "configs" / name, **{"learning_rate": 1e-3, "per_device_batch_size": 4, **overrides})


@pytest.fixture(scope="module")
def one_process(root):
    """The reference: one process with the whole global batch of 8."""
    return run_machines(root, "one-process", settings(root, "one", objective="mlm", per_device_batch_size=8),
                        "--fasta", root / "motifs.fa.gz", machines=1)


@pytest.fixture(scope="module")
def two_machines(root):
    """The same run on two machines, 4 windows each per step."""
    return run_machines(root, "two-machines", settings(root, "two", objective="mlm"), "--fasta", root / "motifs.fa.gz")


@pytest.fixture(scope="module")
def electra_straight(root):
    """ELECTRA on two machines, 8 steps uninterrupted (the generator's sampling draws from each rank's RNG)."""
    run = run_machines(root, "electra-straight", settings(root, "electra"), "--fasta", root / "motifs.fa.gz")
    store = run.output_dir / "genome-store"
    return run, {name: os.stat(store / name).st_mtime_ns for name in os.listdir(store)}


@pytest.fixture(scope="module")
def electra_resumed(root, electra_straight):
    """The same run stopped after step 4 (checkpoints at 2 and 4), then resumed to 8 in its output directory with
    --resume, both on two machines that read the genome store electra_straight built (--genome-store without
    --fasta: a prepared store). Returns (halfway run, its checkpoints' files, resumed run)."""
    store = electra_straight[0].output_dir / "genome-store"
    halfway = run_machines(root, "electra-halfway", settings(root, "electra-4", max_steps=4, save_steps=2),
                           "--genome-store", store)
    checkpoints = {name: sorted(os.listdir(halfway.output_dir / "checkpoints" / name))
                   for name in os.listdir(halfway.output_dir / "checkpoints")}
    resumed = run_machines(root, "electra-resumed", settings(root, "electra-8", save_steps=2), "--genome-store",
                           store, "--resume", output_dir=halfway.output_dir)
    return halfway, checkpoints, resumed


# ------------------------------------------------------------------------------------------------------ tests
def test_each_machine_reads_its_global_ranks_shard(one_process, two_machines):
    """Machine 1's process is local rank 0 but global rank 1: it shards by the global rank, and at every step the
    two machines' rows are disjoint and together exactly the one-process run's global batch."""
    identities = [(probe["env"]["GROUP_RANK"], probe["env"]["LOCAL_RANK"], probe["process_index"],
                   probe["local_process_index"], probe["num_processes"], probe["shard"])
                  for probe in two_machines.probes]
    assert identities == [("0", "0", 0, 0, 2, [0, 2]), ("1", "0", 1, 0, 2, [1, 2])]
    reference = one_process.probes[0]["batches"]
    first, second = (probe["batches"] for probe in two_machines.probes)
    assert list(reference) == list(first) == list(second) == [str(k) for k in range(8)]
    for k, rows in reference.items():
        assert len(first[k]) == len(second[k]) == 4 and not set(first[k]) & set(second[k]), k
        assert sorted(first[k] + second[k]) == sorted(rows), k
    assert "global batch 8 = 4 x 2 process(es) x 1" in two_machines.stdout[0]
    # the same global batches; losses differ only by how masked positions are averaged per rank (as on one machine)
    assert np.allclose(train_losses(two_machines), train_losses(one_process), rtol=0.02), \
        (train_losses(one_process), train_losses(two_machines))


def test_only_global_rank_zero_writes_and_reports(two_machines):
    run = two_machines
    assert [os.listdir(machine) for machine in run.machines] == [[], []]  # nothing relative to a working directory
    first = {path for _, path in run.written(0)}
    assert {"metrics.jsonl", "pretraining_summary.json", "mlm/config.json", "genome-store/index.json",
            "checkpoints/.partial-step-00000008/optimizer.bin"} <= first  # the probe sees rank 0's writes
    # Global rank 1 writes its RNG state into each checkpoint being saved (accelerate's save_state creates the
    # folder on every rank), and nothing else
    second = run.written(1)
    assert all(re.fullmatch(r"checkpoints/\.partial-step-\d{8}(/random_states_1\.pkl)?", path) for _, path in second), \
        second
    assert sorted(path for event, path in second if event == "torch.save") == [
        "checkpoints/.partial-step-00000004/random_states_1.pkl",
        "checkpoints/.partial-step-00000008/random_states_1.pkl"]
    for step in ("step-00000004", "step-00000008"):
        assert {"random_states_0.pkl", "random_states_1.pkl", "model.safetensors"} <= set(
            os.listdir(run.output_dir / "checkpoints" / step))
    records = read_metrics(run.output_dir)
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 9))  # written once, not once per machine
    assert [r["step"] for r in records if "eval_mlm_loss" in r] == [4, 8]
    with open(run.output_dir / "pretraining_summary.json") as handle:
        assert json.load(handle)["exports"] == {"mlm": str(run.output_dir / "mlm")}
    assert (run.output_dir / "mlm" / "model.safetensors").is_file()
    # the progress lines and the summary come from global rank 0 alone
    assert run.text().count("exported mlm: ") == run.text().count("validation at step 8: ") == 1
    assert "exported mlm: " in run.stdout[0] and "step 8/8: loss" in run.stdout[0]
    assert "global batch 8 = 4 x 2 process(es) x 1" in run.stdout[1]  # accelerate prints once per machine
    for text in (run.stdout[1], run.stderr[1]):
        assert not re.search(r"^(step |validation |exported |genome store|warning: pretraining)", text, re.M), text


def test_genome_store_is_built_once_or_found_ready(two_machines, electra_straight, electra_resumed):
    built = re.compile(r"^genome store .*: [\d,]+ bp in 2 records", re.M)
    straight, store_files = electra_straight
    for run in (two_machines, straight):
        assert len(built.findall(run.text())) == 1, run.text()
        assert not [path for _, path in run.written(1) if path.startswith("genome-store")]
    # A prepared store at a path both machines read (--genome-store, no --fasta): read, never written or rebuilt
    store = straight.output_dir / "genome-store"
    halfway, _, resumed = electra_resumed
    for run in (halfway, resumed):
        assert "genome store" not in run.text()
        for rank in (0, 1):
            assert not [path for _, path in run.written(rank, under=store) if not path.startswith("..")]
    assert {name: os.stat(store / name).st_mtime_ns for name in os.listdir(store)} == store_files


def test_resume_on_both_machines_equals_an_uninterrupted_run(electra_straight, electra_resumed):
    straight, _ = electra_straight
    halfway, checkpoints, resumed = electra_resumed
    assert checkpoints == {step: ["model.safetensors", "optimizer.bin", "progress.json", "random_states_0.pkl",
                                  "random_states_1.pkl", "scheduler.json"] for step in ("step-00000002",
                                                                                         "step-00000004")}
    for machine in (0, 1):  # accelerate prints on each machine's first process: both resumed from step 4
        assert f"resuming from {resumed.output_dir}/checkpoints/step-00000004 (step 4)" in resumed.stdout[machine]
    for rank in (0, 1):  # each rank went on with its own shard from micro-batch 4, as the uninterrupted run did
        batches = straight.probes[rank]["batches"]
        assert halfway.probes[rank]["batches"] == {k: batches[k] for k in "0123"}
        assert resumed.probes[rank]["batches"] == {k: batches[k] for k in "4567"}
    # exact: the model, optimizer, schedule and each rank's RNG state (ELECTRA's sampling) were restored on both
    assert comparable(read_metrics(resumed.output_dir)) == comparable(read_metrics(straight.output_dir))
    for name in ("discriminator", "generator"):
        a = load_file(straight.output_dir / name / "model.safetensors")
        b = load_file(resumed.output_dir / name / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a), name


def test_a_slow_machine_still_saves_its_rng_state_into_the_checkpoint(root):
    """Global rank 1 starts each save 1.5 s late: the checkpoint is renamed complete only after every rank's
    files are in it (without a barrier there, its RNG state went to a stray .partial-step-N and --resume refused
    the checkpoint for the missing random_states_1.pkl)."""
    run = run_machines(root, "slow-machine", settings(root, "slow", objective="mlm", max_steps=2, save_steps=2,
                                                      eval_steps=2), "--fasta", root / "motifs.fa.gz",
                       env={"NUCEL_PROBE_SLOW_SAVE": "1.5"})
    checkpoints = run.output_dir / "checkpoints"
    assert sorted(os.listdir(checkpoints)) == ["step-00000002"]  # no stray .partial-step-00000002
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= set(os.listdir(checkpoints / "step-00000002"))
