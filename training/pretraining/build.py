"""The pieces a pretraining run is built from, each from the run's config: the runtime (precision, attention
kernel), the train and validation genome windows, the masker, the model with fresh weights, the optimizer with its
learning-rate schedule; and the two things done with them, one optimizer step and a validation pass. The loop
(`run.py`) assembles them; the studies and benchmarks build the same pieces from here, so what they measure is
what a run trains.
"""

import contextlib
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from accelerate import Accelerator
from transformers import get_scheduler

from nucel.modeling_nucel import NucELForMaskedLM, NucELForPreTraining
from nucel.tokenization.genome_store import GenomeStore
from nucel.training.pretraining import corpus as corpora
from nucel.training.pretraining.config import PretrainConfig
from nucel.training.pretraining.genome_windows import GenomeWindows
from nucel.training.pretraining.masking import Masker
from nucel.training.pretraining.objectives import LOSS_PART_SLOTS, OBJECTIVES


# --------------------------------------------------------------------------------------------------- runtime
def resolve_runtime(config: PretrainConfig) -> tuple[str, str]:
    """(mixed_precision, attn_implementation) for this machine from the config's `auto` choices."""
    cuda = torch.cuda.is_available()
    precision = ("bf16" if cuda else "no") if config.mixed_precision == "auto" else config.mixed_precision
    attention = config.attn_implementation
    if attention == "auto":
        try:
            import flash_attn  # noqa: F401, PLC0415  (optional GPU package: only probed to resolve `auto`)
            attention = "flash_attention_2" if cuda else "sdpa"
        except ImportError:
            attention = "sdpa"
    if attention == "flex_attention" and not cuda:
        raise ValueError("config attn_implementation=flex_attention: PyTorch has no FlexAttention backward pass on "
                         "CPU, so it cannot train here; use sdpa (or auto)")
    if attention == "flash_attention_2" and not cuda:
        raise ValueError("config attn_implementation=flash_attention_2: flash-attn runs on CUDA GPUs only; use sdpa "
                         "(or auto)")
    return precision, attention



# ------------------------------------------------------------------------------------------------------ data
def build_data(config: PretrainConfig) -> tuple[GenomeStore, GenomeWindows, GenomeWindows]:
    """Train and validation windows over the run's genome store; for a corpus, the train windows carry its
    mixture (each genome's share of the batches, corpus.py)."""
    store = GenomeStore(config.store_directory)
    source = ", ".join(config.fasta) or config.store_directory
    corpus = config.corpus or None
    held_out = corpus_held_out(store, corpus) if corpus else ()
    splits = {}
    for split in ("train", "validation"):
        splits[split] = GenomeWindows(
            store, split, window_length=config.window_length, overlap=config.window_overlap,
            crop_length=config.crop_length, max_n_fraction=config.max_n_fraction,
            reverse_complement_prob=config.reverse_complement_prob, validation_records=config.validation_records,
            validation_fraction=config.validation_fraction, seed=config.seed,
            max_repeat_fraction=config.max_repeat_fraction, repeats=repeat_weight(config) is not None,
            held_out_record_ids=held_out,
            genome_of_source=corpora.genome_of_source(corpus) if corpus else None)
        if len(splits[split]) == 0:
            summary = splits[split].summary()
            filtering_repeats = config.max_repeat_fraction < 1.0
            raise ValueError(
                f"{source}: no {split} window of {config.window_length} bp with at most {config.max_n_fraction:.0%} N"
                + (f" and {config.max_repeat_fraction:.0%} soft-masked bases" if filtering_repeats else "")
                + f" ({summary['candidates']} candidates, {summary['dropped_for_n']} dropped for N"
                + (f", {summary['dropped_for_repeats']} for repeats" if filtering_repeats else "")
                + "); give more (or less N-rich) sequence")
    if corpus:
        windows = np.bincount(splits["train"].genome_ids, minlength=len(corpus["genomes"]))
        splits["train"].mixture = corpora.Mixture(corpora.shares(corpus, windows))
    return store, splits["train"], splits["validation"]


def corpus_held_out(store: GenomeStore, corpus: dict) -> list[int]:
    """Store record ids of every genome's `validation_records` (names looked up among that genome's files only:
    two genomes may both have a chrI)."""
    genome_of_source = corpora.genome_of_source(corpus)
    held_out = []
    for number, genome in enumerate(corpus["genomes"]):
        own = {record["name"]: record_id for record_id, record in enumerate(store.records)
               if genome_of_source[record["source"]] == number}
        unknown = sorted(set(genome["validation_records"]) - set(own))
        if unknown:
            raise ValueError(f"corpus genome {genome['name']!r} validation_records {unknown}: not records of its "
                             f"FASTA files (it has {', '.join(sorted(own)[:5])}{', ...' if len(own) > 5 else ''})")
        held_out += [own[name] for name in genome["validation_records"]]
    return held_out


def repeat_weight(config: PretrainConfig) -> float | None:
    """The loss weight batches give soft-masked positions, or None for plain (unweighted) losses."""
    return config.repeat_weight if config.repeat_weight != 1.0 else None


def build_masker(config: PretrainConfig) -> Masker:
    return Masker(config.masking, config.mask_rate, total_steps=config.max_steps, bert_80_10_10=config.bert_80_10_10,
                  span_mean_length=config.span_mean_length, randommask_phases=config.randommask_phases,
                  randommask_min_span=config.randommask_min_span, randommask_growth=config.randommask_growth)


# ----------------------------------------------------------------------------------------------------- model
def build_model(config: PretrainConfig,
                attn_implementation: str = "sdpa") -> NucELForPreTraining | NucELForMaskedLM:
    """The objective's model (objectives.py) with the run's shape and fresh weights."""
    return OBJECTIVES[config.objective].build(config.model_config(attn_implementation))


def build_optimizer(config: PretrainConfig, model: torch.nn.Module,
                    ) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW without weight decay on norms and biases; warmup + decay from transformers.get_scheduler."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_epsilon)
    scheduler = get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=config.warmup_steps,
                              num_training_steps=config.max_steps)
    return optimizer, scheduler


# ------------------------------------------------------------------------------------------------------ step
def optimizer_step(accelerator: Accelerator, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   scheduler: torch.optim.lr_scheduler.LRScheduler, batches: Iterator[dict[str, torch.Tensor]],
                   accumulation_steps: int, max_grad_norm: float) -> torch.Tensor:
    """One optimizer step over `accumulation_steps` micro-batches; returns summed (loss, gen, disc) as a tensor."""
    totals = torch.zeros(3, device=accelerator.device)
    for micro in range(accumulation_steps):
        batch = {key: value.to(accelerator.device, non_blocking=True) for key, value in next(batches).items()}
        sync = micro == accumulation_steps - 1  # gradients are all-reduced once, on the last micro-batch
        with contextlib.nullcontext() if sync else accelerator.no_sync(model):
            output = model(**batch)
            accelerator.backward(output.loss / accumulation_steps)
        parts = [getattr(output, name, None) for name in LOSS_PART_SLOTS]
        totals += torch.stack([output.loss.detach().float()] + [
            (part.detach().float() if part is not None else torch.zeros((), device=accelerator.device))
            for part in parts]) / accumulation_steps
    if max_grad_norm:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return totals


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]], objective_name: str,
             device: torch.device, seed: int, autocast: contextlib.AbstractContextManager,
             ) -> dict[str, float | None]:
    """Validation: generator (or MLM) loss and accuracy at masked positions; for ELECTRA also discriminator
    accuracy and AUC over every scored position, beside the trivial baselines they must beat."""
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415  (heavy: only validation's AUC needs it)

    objective = OBJECTIVES[objective_name]
    was_training = model.training
    model.eval()
    mlm_loss = mlm_correct = masked = 0.0
    counts = 0
    scores, truths = [], []
    # A private RNG for the generator's sampling: evaluating never shifts the training random stream.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), autocast:
        torch.manual_seed(seed)
        for batch in batches:
            batch = {key: value.to(device) for key, value in batch.items()}
            output = model(**batch)
            targets = batch["labels"][batch["labels"] != -100]
            logits = objective.masked_logits(output).float()
            mlm_loss += torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
            mlm_correct += (logits.argmax(-1) == targets).sum().item()
            masked += targets.numel()
            counts = counts + torch.bincount(targets.cpu(), minlength=logits.shape[-1]).float()
            if objective.detects_replacements:
                scored = output.discriminator_labels != -100
                scores.append(output.logits.float()[scored].cpu())
                truths.append(output.discriminator_labels[scored].cpu())
    model.train(was_training)
    prefix = objective.eval_prefix
    metrics = {f"{prefix}_loss": mlm_loss / max(masked, 1), f"{prefix}_accuracy": mlm_correct / max(masked, 1),
               "eval_base_composition_accuracy": (counts.max() / counts.sum().clamp_min(1)).item()}
    if objective.detects_replacements:
        scores, truths = torch.cat(scores), torch.cat(truths)
        replaced = truths.mean().item()
        metrics.update({
            "eval_discriminator_accuracy": ((scores > 0).float() == truths).float().mean().item(),
            "eval_discriminator_auc": roc_auc_score(truths.numpy(), scores.numpy()) if 0 < replaced < 1 else None,
            "eval_all_original_accuracy": 1.0 - replaced})
    return metrics
