"""Training compute: FLOPs per token of a NucEL objective, the whole-run estimate, MFU on known GPUs, and a
lower bound of the memory a run needs (checked against the machine before training starts).

FLOPs per trained token = 6 x (weights of every matmul a token passes through) + 12 x sum over layers of
(hidden x attended context): forward 2 FLOPs per multiply-add, backward twice the forward. Local layers attend to
`local_attention` tokens, global layers to the whole sequence. ELECTRA runs both networks on every token.
"""

import copy

import psutil
import torch

from .objectives import OBJECTIVES

# Dense bf16 tensor-core peaks (no sparsity), FLOP/s, matched against torch.cuda.get_device_name().
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12}


def encoder_flops_per_token(config, sequence_length, linear_weights):
    attended = sum(min(sequence_length, config.local_attention) if kind == "sliding_attention" else sequence_length
                   for kind in config.layer_types)
    return 6 * linear_weights + 12 * config.hidden_size * attended


def objective_model(config, objective):
    """The model `objective` trains with `config`, on the meta device: shapes only, no memory, no init."""
    with torch.device("meta"):
        return OBJECTIVES[objective].build(copy.deepcopy(config))


def flops_per_token(config, objective, sequence_length):
    """Training FLOPs per token (forward + backward) of `objective` ("electra" | "mlm") at `sequence_length`: every
    encoder the objective runs on each token (objectives.py)."""
    model = objective_model(config, objective)
    return sum(encoder_flops_per_token(encoder, sequence_length, weights)
               for encoder, weights in OBJECTIVES[objective].encoders(model))


def tokens_per_step(config):
    """Tokens one optimizer step of a PretrainConfig trains on: the global batch of crops with [CLS] and [SEP]."""
    return config.global_batch_size * (config.crop_length + 2)


def run_estimate(config):
    """Tokens and FLOPs of the whole run described by a PretrainConfig (what the YAML presets record)."""
    sequence_length = config.crop_length + 2
    tokens = config.max_steps * tokens_per_step(config)
    per_token = flops_per_token(config.model_config(), config.objective, sequence_length)
    return {"tokens": tokens, "flops": float(tokens * per_token), "flops_per_token": per_token}


def peak_flops(device):
    """Peak bf16 FLOP/s of a CUDA device we know, else None (no MFU is reported on CPU or unknown GPUs)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_FLOPS.items() if key in name), None)


# Bytes per parameter held through training: fp32 weights, gradients and AdamW's two moments.
BYTES_PER_PARAMETER = 16
GIB = 1024 ** 3


def encoder_activation_bytes(config, sequence_length, bytes_per_value, dense_scores):
    """Activations one sequence keeps for the backward pass, counted low: per token and layer the attention input,
    q/k/v and output (6 x hidden) and the GeGLU's input and product (3 x intermediate); where attention runs
    unfused (CPU), half of the local layers' block score matrices (heads x L x 2 windows: block-local attention)."""
    per_layer = sequence_length * (6 * config.hidden_size + 3 * config.intermediate_size) * bytes_per_value
    total = per_layer * config.num_hidden_layers
    if dense_scores:
        local = sum(kind == "sliding_attention" for kind in config.layer_types)
        keys = min(sequence_length, config.local_attention) + config.local_attention
        total += local * config.num_attention_heads * sequence_length * keys * 4 // 2
    return total


def memory_estimate(config, device_type, mixed_precision):
    """A lower bound of the bytes one training process needs: (static, activations), from a PretrainConfig."""
    model = objective_model(config.model_config(), config.objective)
    sequence_length = config.crop_length + 2
    static = BYTES_PER_PARAMETER * sum(p.numel() for p in model.parameters())
    bytes_per_value = 2 if mixed_precision in ("bf16", "fp16") else 4
    dense = device_type == "cpu"
    encoders = OBJECTIVES[config.objective].encoders(model)
    per_sequence = sum(encoder_activation_bytes(encoder, sequence_length, bytes_per_value, dense)
                       for encoder, _ in encoders)
    return static, per_sequence * config.per_device_batch_size


def available_memory(device):
    """Bytes free for this process: device memory on CUDA, the machine's available RAM otherwise."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available


def check_memory(config, device, mixed_precision, processes_sharing=1):
    """Refuse, before anything is written, a run whose lower-bound memory exceeds what the machine has."""
    static, activations = memory_estimate(config, device.type, mixed_precision)
    needed = (static + activations) * processes_sharing
    available = available_memory(device)
    if needed > available:
        raise ValueError(
            f"config: this run needs at least {needed / GIB:.1f} GiB ({static / GIB:.1f} GiB of weights, gradients "
            f"and AdamW states + {activations / GIB:.1f} GiB of activations for a micro-batch of "
            f"{config.per_device_batch_size} x {config.crop_length + 2} tokens"
            + (f", x {processes_sharing} processes" if processes_sharing > 1 else "")
            + f"), but {device.type} has {available / GIB:.1f} GiB available; lower per_device_batch_size "
            "(global_batch_size is kept by gradient accumulation), crop_length or the model size")
    return needed
