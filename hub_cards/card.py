"""Render a NucEL model folder (plus what is known of its training and evaluation) into a Hub model card.

The card is a `huggingface_hub.ModelCard`: YAML metadata (library, pipeline tag per head, tags, license, datasets,
widget examples with real DNA, a `model-index` of results) checked against `hub_cards.metadata`, then a body with
usage, model shape, training details, evaluation and limitations.
"""

import os

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from modeling_nucel.modeling_nucel import HEADS, PIPELINE_TAGS
from tokenization.json_files import read_json_object

from .metadata import HUB_ID, check_metadata

TAGS = ["biology", "genomics", "dna", "electra", "modernbert"]
PIPELINE_TAG_BY_CLASS = dict(PIPELINE_TAGS)  # modeling_nucel.HEADS: the head table cards derive from
AUTO_CLASS_BY_TAG = {}  # pipeline tag -> the Auto class its widget and usage load (the first head with that tag)
for _name, _auto, _tag, _ in HEADS:
    if _auto:
        AUTO_CLASS_BY_TAG.setdefault(_tag, _auto)
# A real human core promoter with a TATA box (GUE prom_core_tata, test split, a positive example), 70 bp.
PROMOTER = "GTCTATAAATAGAGCAGCCAGTTGCAGGGCTCCATTCTGCTTTCCAACTGCCTGACTGCTTGTTCGTCTC"
# sklearn-named metrics in results.json -> Hub metric ids (https://hf.co/metrics).
HUB_METRIC = {"mcc": "matthews_correlation", "accuracy": "accuracy", "f1": "f1", "precision": "precision",
              "recall": "recall", "pearson": "pearsonr", "spearman": "spearmanr", "mse": "mse"}


def pipeline_tag_for(config):
    architectures = getattr(config, "architectures", None) or ["NucELModel"]
    if architectures[0] not in PIPELINE_TAG_BY_CLASS:
        raise ValueError(f"config.json: architecture {architectures[0]!r} is not a NucEL head "
                         f"({', '.join(PIPELINE_TAG_BY_CLASS)})")
    return PIPELINE_TAG_BY_CLASS[architectures[0]]


def widget_examples(pipeline_tag, mask_token="[MASK]"):
    """Real DNA for the Hub's inference widget; the fill-mask example hides the first A of the TATA box."""
    if pipeline_tag == "fill-mask":
        return [{"text": PROMOTER[:6] + mask_token + PROMOTER[7:], "example_title": "TATA-box promoter, one base masked"}]
    return [{"text": PROMOTER, "example_title": "human core promoter (TATA box)"}]


def eval_results(all_results):
    """`EvalResult`s (-> the card's model-index) from finetune results.json dicts: every metric, test mean."""
    entries = []
    for results in all_results:
        seeds = len(results["seeds"])
        probe = (results.get("config") or {}).get("probe")
        how = f"{probe} probe, " if probe else ""
        for metric, summary in results["test"].items():
            entries.append(EvalResult(
                task_type="text-classification", dataset_type=results["task"], dataset_name=results["task"],
                dataset_split="test", metric_type=HUB_METRIC.get(metric, metric), metric_value=summary["mean"],
                metric_name=f"test {metric} ({how}mean of {seeds} seed{'s' if seeds > 1 else ''})"))
    return entries


def _usage(pipeline_tag, repo_id, architecture, stock):
    auto = AUTO_CLASS_BY_TAG[pipeline_tag]
    example = widget_examples(pipeline_tag)[0]["text"]
    trust = "" if stock else ", trust_remote_code=True"
    # An untrained or lightly trained generator also ranks special tokens; the bases are what a user asks about.
    targets = ', targets=["A", "C", "G", "T"]' if pipeline_tag == "fill-mask" else ""
    lines = [
        "```python",
        f"from transformers import AutoTokenizer, {auto}, pipeline",
        "",
        f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}"{trust})',
        f'model = {auto}.from_pretrained("{repo_id}"{trust})',
        f'inputs = tokenizer("{example}", return_tensors="pt")',
        "outputs = model(**inputs)",
        "",
        f'pipe = pipeline("{pipeline_tag}", model="{repo_id}"{trust})',
        f'print(pipe("{example}"{targets}))',
        "```",
    ]
    if pipeline_tag == "fill-mask":
        lines += ["", "`targets` keeps the ranking to the four bases; without it special tokens such as `[SEP]` "
                  "can rank among them."]
    if architecture == "NucELForReplacedTokenDetection" and not stock:
        lines += [
            "", "The ELECTRA replaced-token-detection head ships with the weights: per base, a logit that is "
            "positive where the base looks replaced (wrong in its context), usable zero-shot.", "",
            "```python",
            "from transformers import AutoModelForPreTraining",
            "",
            f'detector = AutoModelForPreTraining.from_pretrained("{repo_id}", trust_remote_code=True)',
            "logits = detector(**inputs).logits  # (batch, tokens); [CLS]/[SEP] positions are not scored",
            "```",
        ]
    return "\n".join(lines)


def _model_table(config, parameters):
    rows = [("parameters", f"{parameters / 1e6:.1f}M"),
            ("hidden size x layers", f"{config.hidden_size} x {config.num_hidden_layers}"),
            ("attention heads", config.num_attention_heads),
            ("attention", f"local {config.local_attention}-token window, global every "
                          f"{config.global_attn_every_n_layers} layers, RoPE theta {config.local_rope_theta:g} "
                          f"(local) / {config.global_rope_theta:g} (global)"),
            ("MLP", f"GeGLU, {config.intermediate_size}"),
            ("max length", f"{config.max_position_embeddings} tokens, [CLS] (and [SEP]) included"),
            ("sequence pooling", f"`classifier_pooling: {config.classifier_pooling}`"
                                 + (" (recommended: ELECTRA never trains the [CLS] state on its own)"
                                    if config.classifier_pooling == "mean" else
                                    " (the recommended default is mean: ELECTRA never trains [CLS] on its own)")),
            ("tokens", f"single nucleotides: A C G T = ids {', '.join(map(str, config.nucleotide_token_ids))} "
                       f"({config.vocab_size}-entry vocabulary)")]
    return "\n".join(["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def _training_section(pretraining, finetuning):
    lines = []
    if pretraining:
        config, compute = pretraining["config"], pretraining.get("compute_estimate") or {}
        sources = ", ".join(f"`{os.path.basename(s['path'])}` (sha256 `{s['sha256'][:12]}…`)"
                            for s in pretraining["genome"]["sources"])
        lines += ["### Pretraining", "",
                  f"- objective: {config['objective']} (masking `{config['masking']}`, rate {config['mask_rate']})",
                  f"- data: {sources}; {pretraining['genome']['total_length']:,} bp, genome store checksum "
                  f"`{pretraining['genome']['checksum']}`",
                  f"- {pretraining['steps']:,} steps, {pretraining['tokens_seen']:,} tokens, global batch "
                  f"{config['global_batch_size']}, crops of {config['crop_length']} bp, lr {config['learning_rate']}",
                  ]
        if compute:
            lines.append(f"- compute of this run: {compute['tokens']:.3g} tokens x {compute['flops_per_token']:.3g} "
                         f"FLOPs/token = {compute['flops']:.3g} FLOPs")
        validation = {k: v for k, v in (pretraining.get("validation") or {}).items() if isinstance(v, float)}
        if validation:
            lines.append("- held-out validation: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(validation.items())))
        lines.append("")
    if finetuning:
        config = finetuning["config"]
        lines += ["### Fine-tuning", "",
                  f"- task: `{finetuning['task']}` ({finetuning['label_type']}, labels "
                  f"{', '.join(finetuning['label_names'])}), from {public_name(finetuning['model'])}",
                  "- splits: " + ", ".join(f"{name} {d['rows']:,} rows (sha256 `{d['sha256'][:12]}…`)"
                                           for name, d in finetuning["data"].items()),
                  f"- AdamW lr {config['lr']}, batch {config['batch_size']}, warmup {config['warmup_steps']}, "
                  + (f"{config['max_steps']} steps" if config.get("max_steps") else f"{config['epochs']:g} epochs")
                  + f"; best dev checkpoint (dev every {config['eval_steps']} steps); seeds "
                  f"{', '.join(str(r['seed']) for r in finetuning['seeds'])}"
                  + ("; LoRA" if config.get("lora") else ""), ""]
    return "\n".join(lines) if lines else "Not recorded with this folder."


def public_name(model):
    """How a card names the model something came from: a Hub id as a link, a local folder by its name only (a card
    never shows a path of the machine it was written on), a baseline as itself."""
    if HUB_ID.match(model) and not os.path.exists(model):
        return f"[`{model}`](https://huggingface.co/{model})"
    return f"`{os.path.basename(os.path.normpath(model))}`"


def _source_section(conversion):
    """Credit for weights made elsewhere and imported with `nucel-convert` (its conversion.json)."""
    source = conversion["source"]
    is_hub = conversion.get("revision") is not None
    where = (f"[`{source}`](https://huggingface.co/{source}) (revision `{conversion['revision']}`)" if is_hub
             else f"the checkpoint `{os.path.basename(os.path.normpath(source))}`")
    licence = conversion.get("license") or "not stated by the source"
    return "\n".join([
        f"The weights are the work of the authors of {where}, released under the license `{licence}`; this "
        "repository re-packages them, unchanged, with this package's model code and a plain `tokenizer.json` "
        f"that gives the release's token ids. Cite and credit the original authors. Imported as "
        f"`{conversion['format']}` with `nucel-convert`"
        + ("; the replaced-token logit is negated (the release scores original bases high; here positive = "
           "replaced)." if conversion["format"] == "discriminator" else "."),
        "", "Windows are `[CLS] bases` with no `[SEP]`, as the release was trained."])


def _evaluation_section(all_results):
    if not all_results:
        return "No evaluation recorded with this folder."
    lines = ["| task | metric | test (mean ± sd) | seeds |", "|---|---|---|---|"]
    for results in all_results:
        primary = results["primary_metric"]
        summary = results["test"][primary]
        sd = f" ± {summary['sd']:.4f}" if summary["sd"] is not None else ""
        lines.append(f"| {results['task']} | {primary} | {summary['mean']:.4f}{sd} | {summary['n']} |")
    return "\n".join(lines)


CITATION = """Cite the model's authors (see Source above for converted weights), and the methods it builds on:

```bibtex
@inproceedings{clark2020electra,
  title     = {{ELECTRA}: Pre-training Text Encoders as Discriminators Rather Than Generators},
  author    = {Clark, Kevin and Luong, Minh-Thang and Le, Quoc V. and Manning, Christopher D.},
  booktitle = {International Conference on Learning Representations},
  year      = {2020}
}

@article{warner2024modernbert,
  title   = {Smarter, Better, Faster, Longer: A Modern Bidirectional Encoder for Fast, Memory Efficient, and Long
             Context Finetuning and Inference},
  author  = {Warner, Benjamin and Chaffin, Antoine and Clavi{\'e}, Benjamin and others},
  journal = {arXiv preprint arXiv:2412.13663},
  year    = {2024}
}
```"""

LIMITATIONS = """- Trained on the DNA listed above only: other species, organelle genomes or very different sequence
  composition may be out of distribution.
- Reads at most the max length above; longer sequences must be cut or tiled.
- Soft-masked (lowercase) repeats are upper-cased and IUPAC ambiguity codes become `N`, so the model cannot tell
  repeat annotation or ambiguity classes apart.
- Not a clinical tool: predictions about regulatory function are research hypotheses, not diagnoses."""


def render_card(config, parameters, repo_id, model_name=None, license="mit", results=(), pretraining=None,
                finetuning=None, datasets=None, mask_token="[MASK]", conversion=None, base_model=None, stock=False):
    """The ModelCard of a NucEL folder with `config` (NucELConfig) and `parameters` weights.

    results: finetune results.json dicts for the model-index and evaluation table; pretraining: the run's
    pretraining_summary.json; finetuning: the results.json this model itself came from; conversion: the
    conversion.json of weights imported with nucel-convert (credited in a Source section, and as `base_model`
    when they came from the Hub); base_model: the Hub id this model was fine-tuned from (the Hub's model tree);
    datasets: Hub dataset ids, written only when given; stock: the folder holds transformers' own ModernBERT
    classes (no remote code), so usage needs no trust_remote_code and the replaced-token head is not there.
    """
    pipeline_tag = pipeline_tag_for(config)
    model_name = model_name or repo_id.split("/")[-1]
    results = list(results)
    if base_model is None and conversion and conversion.get("revision"):
        base_model = conversion["source"]
    data = ModelCardData(
        library_name="transformers", pipeline_tag=pipeline_tag, license=license, tags=list(TAGS),
        datasets=list(datasets) if datasets else None, model_name=model_name,
        eval_results=eval_results(results) or None, widget=widget_examples(pipeline_tag, mask_token),
        base_model=base_model,
        **({key: conversion[key] for key in ("license_name", "license_link") if conversion.get(key)}
           if conversion else {}))
    metadata = data.to_dict()
    check_metadata(metadata, mask_token)
    architecture = (getattr(config, "architectures", None) or [""])[0]
    kind = {"feature-extraction": "the ELECTRA discriminator: an encoder whose per-nucleotide embeddings feed "
                                  "downstream models",
            "fill-mask": "a masked-nucleotide model (the ELECTRA generator, or the MLM baseline)",
            "text-classification": "a sequence classifier fine-tuned from a NucEL encoder",
            "token-classification": "a per-nucleotide classifier fine-tuned from a NucEL encoder"}[pipeline_tag]
    if stock:
        loading = ("The folder is in transformers' own ModernBERT format (`model_type: modernbert`, no code files): "
                   "it loads with the Auto classes and `pipeline()` without `trust_remote_code`, and the Hub's "
                   "inference widget runs it."
                   + (" The replaced-token-detection head is not part of this format; the NucEL-format release "
                      "carries it." if architecture == "NucELForReplacedTokenDetection" else ""))
    else:
        loading = ("The model code ships with the weights (`configuration_nucel.py`, `modeling_nucel.py`): load it "
                   "with `trust_remote_code=True`.")
    body = "\n".join([
        f"# {model_name}", "",
        f"NucEL is an ELECTRA-style DNA language model on a ModernBERT backbone, with single-nucleotide tokens. "
        f"This repository holds {kind}. {loading}", "",
        *(["## Source", "", _source_section(conversion), ""] if conversion else []),
        "## Usage", "", _usage(pipeline_tag, repo_id, architecture, stock), "",
        "## Model", "", _model_table(config, parameters), "",
        "## Training", "", _training_section(pretraining, finetuning), "",
        "## Evaluation", "", _evaluation_section(results), "",
        "## Limitations", "", LIMITATIONS, "",
        "## Citation", "", CITATION, ""])
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def read_json(path, required=(), kind="JSON file"):
    return read_json_object(path, kind, required)


# What the card reads from training/finetune.py's results.json and training/pretrain.py's summary.
RESULTS_KEYS = ("task", "label_type", "label_names", "primary_metric", "model", "config", "data", "seeds", "test")
RESULTS_CONFIG_KEYS = ("lr", "batch_size", "warmup_steps", "eval_steps")
PRETRAINING_KEYS = ("config", "genome", "steps", "tokens_seen")


def read_results(path):
    """A fine-tuning results.json with everything the card and the benchmark table use."""
    kind = "fine-tuning results (the results.json training/finetune.py writes)"
    results = read_json(path, RESULTS_KEYS, kind)
    summary = results["test"].get(results["primary_metric"]) if isinstance(results["test"], dict) else None
    if not isinstance(summary, dict) or not {"mean", "sd", "n"} <= set(summary):
        raise ValueError(f"{path}: {kind} without test.{results['primary_metric']} (mean, sd, n)")
    missing = [key for key in RESULTS_CONFIG_KEYS if key not in (results["config"] or {})]
    if missing or not isinstance(results["seeds"], list) or not results["seeds"]:
        raise ValueError(f"{path}: {kind} without config key(s) {missing} or per-seed records")
    return results


CONVERSION_FILE = "conversion.json"  # nucel-convert's record of imported weights


def read_conversion(path):
    """conversion.json, written by nucel-convert beside weights it imported (and carried on by fine-tuning)."""
    return read_json(path, ("source", "revision", "license", "format"), "conversion record (nucel-convert)")


def read_pretraining_summary(path):
    summary = read_json(path, PRETRAINING_KEYS, "pretraining summary (training/pretrain.py)")
    if not isinstance(summary["genome"], dict) or not {"sources", "total_length", "checksum"} <= set(summary["genome"]):
        raise ValueError(f"{path}: pretraining summary without genome sources, total_length and checksum")
    return summary
