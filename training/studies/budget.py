"""Equal compute: each arm's optimizer steps from one budget, in tokens seen, training FLOPs or wall-clock seconds.

- tokens: steps = tokens / (global batch x sequence length); arms with one batch shape see the same tokens.
- flops: steps = FLOPs / (tokens per step x the objective's FLOPs per token, compute.py); ELECTRA, which runs a
  generator beside the discriminator, gets fewer steps than MLM of the discriminator's shape.
- seconds: steps = seconds / the arm's measured seconds per step on this machine (a short timed run of the
  arm's model and optimizer before it trains). The plan is written once (plan.json) and reused, so a resumed
  study keeps every arm's step count and learning-rate schedule.
"""

import time

import torch

from nucel.tokenization import alphabet
from nucel.tokenization.token_layout import NATIVE
from nucel.training.pretraining import build as pretrain
from nucel.training.pretraining.compute import flops_per_token, tokens_per_step

CALIBRATION_STEPS, CALIBRATION_WARMUP = 6, 2


def synthetic_batch(config, masker, generator):
    """A masked micro-batch of random nucleotides with the run's shape: what a step costs does not depend on the
    bases."""
    nucleotides = torch.tensor(alphabet.NUCLEOTIDE_IDS)
    inputs, labels = [], []
    for _ in range(config.per_device_batch_size):
        body = nucleotides[torch.randint(len(nucleotides), (config.crop_length,), generator=generator)]
        ids = torch.from_numpy(NATIVE.frame(body.numpy()))
        masked, label = masker(ids, 0, generator)
        inputs.append(masked)
        labels.append(label)
    return {"input_ids": torch.stack(inputs), "labels": torch.stack(labels)}


def measure_step_seconds(config, steps=CALIBRATION_STEPS, warmup=CALIBRATION_WARMUP):
    """Seconds per optimizer step of `config` on this machine: its model, optimizer and batch shape, timed after
    `warmup` untimed steps (fp32 on CPU, as pretraining runs there)."""
    _, attention = pretrain.resolve_runtime(config)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    generator = torch.Generator().manual_seed(config.seed)
    model = pretrain.build_model(config, attention).to(device)
    optimizer, _ = pretrain.build_optimizer(config, model)
    accumulation = config.gradient_accumulation_steps(1)
    batch = {key: value.to(device) for key, value in synthetic_batch(config, pretrain.build_masker(config),
                                                                       generator).items()}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step():
        for _ in range(accumulation):
            with autocast:
                loss = model(**batch).loss
            (loss / accumulation).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def plan_arm(config, kind, amount):
    """{max_steps, and what decided it} for one arm's config (its max_steps is ignored)."""
    tokens = tokens_per_step(config)
    per_token = flops_per_token(config.model_config(), config.objective, config.crop_length + 2)
    step_seconds = measure_step_seconds(config) if kind == "seconds" else None
    per_step = {"tokens": tokens, "flops": tokens * per_token, "seconds": step_seconds}[kind]
    plan = {"max_steps": max(1, round(amount / per_step)), "tokens_per_step": tokens, "flops_per_token": per_token}
    if step_seconds is not None:
        plan["calibrated_step_seconds"] = step_seconds
    return plan
