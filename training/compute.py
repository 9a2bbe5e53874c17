"""Training compute: FLOPs per token of a NucEL objective, the whole-run estimate, and MFU on known GPUs.

FLOPs per trained token = 6 x (weights of every matmul a token passes through) + 12 x sum over layers of
(hidden x attended context): forward 2 FLOPs per multiply-add, backward twice the forward. Local layers attend to
`local_attention` tokens, global layers to the whole sequence. ELECTRA runs both networks on every token.
"""

import torch
from torch import nn

# Dense bf16 tensor-core peaks (no sparsity), FLOP/s, matched against torch.cuda.get_device_name().
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 70e12, "L4": 121e12}


def matmul_weights(module):
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


def encoder_flops_per_token(config, sequence_length, linear_weights):
    attended = sum(min(sequence_length, config.local_attention) if kind == "sliding_attention" else sequence_length
                   for kind in config.layer_types)
    return 6 * linear_weights + 12 * config.hidden_size * attended


def flops_per_token(config, objective, sequence_length):
    """Training FLOPs per token (forward + backward) of `objective` ("electra" | "mlm") at `sequence_length`."""
    from modeling_nucel import NucELForMaskedLM, NucELForPreTraining  # noqa: PLC0415

    with torch.device("meta"):  # shapes only: no memory, no init
        if objective == "mlm":
            return encoder_flops_per_token(config, sequence_length, matmul_weights(NucELForMaskedLM(config)))
        model = NucELForPreTraining(config)
    discriminator = matmul_weights(model) - matmul_weights(model.generator)
    return (encoder_flops_per_token(config, sequence_length, discriminator)
            + encoder_flops_per_token(config.generator_config(), sequence_length, matmul_weights(model.generator)))


def run_estimate(config):
    """Tokens and FLOPs of the whole run described by a PretrainConfig (what the YAML presets record)."""
    sequence_length = config.crop_length + 2
    tokens = config.max_steps * config.global_batch_size * sequence_length
    per_token = flops_per_token(config.model_config(), config.objective, sequence_length)
    return {"tokens": tokens, "flops": float(tokens * per_token), "flops_per_token": per_token}


def peak_flops(device):
    """Peak bf16 FLOP/s of a CUDA device we know, else None (no MFU is reported on CPU or unknown GPUs)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_FLOPS.items() if key in name), None)
