"""Render a NucEL model folder (plus what is known of its training and evaluation) into a Hub model card.

The card is a `huggingface_hub.ModelCard`: YAML metadata (library, pipeline tag per head, tags, license, datasets,
widget examples with real DNA, a `model-index` of results) checked against `hub_cards.metadata`, then a body with
usage, model shape, training details, evaluation, limitations and citations (BibTeX).

A fine-tuned model's card is written from its run's own facts (its results.json): the widget and usage show test
sequences of its task, its labels are named as the task names them, a GUE task is named as such, the base model is
a Hub id or described (never a local folder in `base_model`), and the cells a benchmark grid trained beside it are
shown as baselines.
"""

import os

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from nucel.files import is_hub_id
from nucel.gue import GUE_TASKS, PUBLISHED_GUE_MCC, SCALE
from nucel.modeling_nucel.modeling_nucel import HEADS, PIPELINE_TAGS
from nucel.run_directory import kind_of
from nucel.run_records import UNDER_TRAINED_NOTE, mark, read_results
from nucel.tasks import DEFAULT_DEV_FRACTION, DEFAULT_SPLIT_SEED, label_names_of, load_task

from .metadata import check_metadata

TAGS = ["biology", "genomics", "dna", "electra", "modernbert"]
PIPELINE_TAG_BY_CLASS = dict(PIPELINE_TAGS)  # modeling_nucel.HEADS: the head table cards derive from
AUTO_CLASS_BY_TAG = {}  # pipeline tag -> the Auto class its widget and usage load (the first head with that tag)
for _name, _auto, _tag, _ in HEADS:
    if _auto:
        AUTO_CLASS_BY_TAG.setdefault(_tag, _auto)
# A real human core promoter with a TATA box (GUE prom_core_tata, test split, a positive example), 70 bp.
PROMOTER = "GTCTATAAATAGAGCAGCCAGTTGCAGGGCTCCATTCTGCTTTCCAACTGCCTGACTGCTTGTTCGTCTC"
GENERIC_EXAMPLE = "a human core promoter with a TATA box (GUE prom_core_tata, test split), a generic example"
# sklearn-named metrics in results.json -> Hub metric ids (https://hf.co/metrics).
HUB_METRIC = {"mcc": "matthews_correlation", "accuracy": "accuracy", "f1": "f1", "precision": "precision",
              "recall": "recall", "pearson": "pearsonr", "spearman": "spearmanr", "mse": "mse"}
DNABERT2_PAPER = "https://arxiv.org/abs/2306.15006"
EXAMPLES_PER_CARD = 3  # widget entries drawn from a task's test split (one per class, in label-id order)


def pipeline_tag_for(config):
    architectures = getattr(config, "architectures", None) or ["NucELModel"]
    if architectures[0] not in PIPELINE_TAG_BY_CLASS:
        raise ValueError(f"config.json: architecture {architectures[0]!r} is not a NucEL head "
                         f"({', '.join(PIPELINE_TAG_BY_CLASS)})")
    return PIPELINE_TAG_BY_CLASS[architectures[0]]


def widget_examples(pipeline_tag, mask_token="[MASK]"):
    """Real DNA for the Hub's inference widget; the fill-mask example hides the first A of the TATA box."""
    if pipeline_tag == "fill-mask":
        return [{"text": PROMOTER[:6] + mask_token + PROMOTER[7:],
                 "example_title": "TATA-box promoter, one base masked"}]
    return [{"text": PROMOTER, "example_title": "human core promoter (TATA box)"}]


def benchmark_name(task):
    """How a card names a task: "GUE (DNABERT-2) <task>" for a GUE task folder, else the task's own name."""
    return f"GUE (DNABERT-2) {task}" if task in GUE_TASKS else task


def describe_task(results):
    """One markdown line naming the benchmark and task of a results.json, with no local path."""
    task = results["task"]
    if task in GUE_TASKS:
        return (f"{benchmark_name(task)}: the task `{task}` of GUE, the benchmark of the DNABERT-2 paper "
                f"([Zhou et al., ICLR 2024]({DNABERT2_PAPER})): {GUE_TASKS[task]}; the paper reports test MCC, "
                "model chosen on dev")
    source = results.get("task_dir")
    if is_hub_id(source):
        return f"`{task}`: the Hub dataset [`{source}`](https://huggingface.co/datasets/{source})"
    return f"`{task}`: a task folder of its own (not a published benchmark this card recognises)"


def split_source(finetuning, task=None):
    """`test.csv.gz` of the task folder `mouse_3` (the file's name only, never its path)."""
    recorded = ((finetuning.get("data") or {}).get("test") or {}).get("path")
    task = task or finetuning["task"]
    if isinstance(recorded, str) and recorded:
        if ":" in os.path.basename(recorded):  # "<dataset>:<split>" of a load_dataset task
            return f"the `{recorded.rpartition(':')[2]}` split of the dataset `{task}`"
        return f"`{os.path.basename(recorded)}` of the task folder `{task}`"
    return f"the test split of the task `{task}`"


def _label_of(label, label_type):
    return {"multi-class": "label", "multi-label": "labels", "regression": "score"}.get(label_type, "label") + \
        f" {label}"


def task_examples(finetuning, max_bases=None, count=EXAMPLES_PER_CARD):
    """Widget examples drawn from the test split of the task a fine-tuning results.json records: `{"examples",
    "source", "reason"}`. The split is read again through nucel/tasks.py's loader from the
    recorded `task_dir`, and used only when its SHA-256 is the one recorded; otherwise `examples` is None and
    `reason` says why. One example per class (in label-id order), each of at most `max_bases` bases."""
    task, task_dir = finetuning["task"], finetuning.get("task_dir")
    found = {"examples": None, "source": split_source(finetuning), "reason": None}
    if not isinstance(task_dir, str) or not os.path.isdir(task_dir):
        found["reason"] = (f"the task `{task}` is a Hub dataset, not read again to write this card"
                           if is_hub_id(task_dir) else
                           f"the files of the task `{task}` were not found where fine-tuning read them")
        return found
    config = finetuning.get("config") or {}
    try:
        loaded = load_task(task_dir, finetuning.get("label_type"), config.get("sequence_column") or "sequence",
                           config.get("label_column") or "label", config.get("dev_fraction") or DEFAULT_DEV_FRACTION,
                           config.get("split_seed", DEFAULT_SPLIT_SEED), config.get("dataset_config"))
    except (ValueError, OSError) as failure:
        found["reason"] = f"the files of the task `{task}` could not be read ({type(failure).__name__})"
        return found
    test = loaded.splits["test"]
    recorded = ((finetuning.get("data") or {}).get("test") or {}).get("sha256")
    if recorded != test.sha256:
        found["reason"] = (f"the test split of `{task}` has changed since fine-tuning (its SHA-256 is not the one "
                           "results.json records)")
        return found
    label_type = loaded.label_type

    def usable(index, plain):
        sequence = test.sequences[index]
        return (max_bases is None or len(sequence) <= max_bases) and (not plain or set(sequence) <= set("ACGT"))

    rows = [i for i in range(len(test)) if usable(i, True)] or [i for i in range(len(test)) if usable(i, False)]
    if not rows:
        found["reason"] = f"every test sequence of `{task}` is longer than the model's {max_bases} bases"
        return found
    chosen, seen = [], set()
    order = finetuning.get("label_names") or []
    for index in rows:  # the first test row of each class (multi-class) or label set / score (others)
        raw = test.raw_labels[index]
        key = tuple(label_names_of([raw], label_type)) if label_type != "regression" else (raw,)
        if key not in seen:
            seen.add(key)
            chosen.append((index, raw, key))
    if label_type == "multi-class":
        chosen.sort(key=lambda item: order.index(item[2][0]) if item[2][0] in order else len(order))
    found["examples"] = [
        {"text": test.sequences[index],
         "example_title": f"{task} test split, {test.row_name(index)}: "
                          f"{_label_of(key[0] if label_type == 'multi-class' else raw, label_type)}"}
        for index, raw, key in chosen[:count]]
    return found


def label_sentence(finetuning, source=None):
    """What the model's outputs are, in the task's own words: class names, or for classes that are bare numbers
    "label 0 / label 1 as in <the task file>" (the data give them no meaning this card could state)."""
    names, label_type = [str(name) for name in finetuning["label_names"]], finetuning["label_type"]
    column = (finetuning.get("config") or {}).get("label_column") or "label"
    source = source or split_source(finetuning)
    if label_type == "regression":
        return f"The model outputs one score: the task's numeric `{column}` column, as in {source}."
    listed = ", ".join(f"`{name}`" for name in names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20
                                                               else "")
    if all(name.lstrip("-").isdigit() for name in names):
        where = (" (what each stands for is in the DNABERT-2 paper's description of the task)"
                 if finetuning["task"] in GUE_TASKS else " (see the task's source for what each stands for)")
        return (f"Labels {listed}: {' / '.join(f'label {name}' for name in names[:20])} as in the `{column}` "
                f"column of {source}. The data give these classes no names, so the model outputs them as "
                f"{listed} and this card does not say what they mean{where}.")
    several = ("; a sequence may carry several (multi-label: one sigmoid per name)"
               if label_type == "multi-label" else "")
    return f"Labels {listed}: the class names of the `{column}` column of {source}{several}."


def describe_base(finetuning, base_model=None):
    """What a fine-tuned model started from, readable and without a local path: a Hub id as a link, a baseline as
    itself, a local folder as what it is ("a NucEL discriminator pretrained with this package (not on the Hub)")."""
    model = str(finetuning.get("model") or "")
    info = finetuning.get("model_info") or {}
    kind = baseline_kind(finetuning)
    if kind == "onehot-cnn":
        return "a one-hot CNN (the `onehot-cnn` baseline, no pretraining)"
    if kind == "random-init":
        return "random weights (the `random-init` baseline: the NucEL architecture without pretraining)"
    if base_model:
        return f"[`{base_model}`](https://huggingface.co/{base_model})"
    if is_hub_id(model):
        return f"[`{model}`](https://huggingface.co/{model})"
    folder = os.path.basename(os.path.normpath(str(info.get("location") or model)))
    what = {"discriminator": "discriminator", "generator": "generator", "mlm": "MLM encoder"}.get(folder, "encoder")
    return f"a NucEL {what} pretrained with this package (not on the Hub)"


def grid_baselines(results_paths):
    """The results.json of every other cell of the benchmark grid (training/finetuning/grid.py) that each of
    `results_paths` sits in: <grid>/<task>/<model-hash>/results.json beside <grid>/benchmark.json. Only cells of
    the same task and the same test split (SHA-256) are returned; [] when no path is a grid cell."""
    ours = {os.path.realpath(path) for path in results_paths}
    found, seen = [], set(ours)
    for path in results_paths:
        cell = os.path.dirname(os.path.realpath(path))
        task_dir = os.path.dirname(cell)
        grid = os.path.dirname(task_dir)
        try:
            if not os.path.isfile(path) or kind_of(grid)[0] != "benchmark":
                continue
            own = read_results(path)
        except ValueError:  # an unreadable marker or results.json: not a grid this card can read
            continue
        own_test = ((own.get("data") or {}).get("test") or {}).get("sha256")
        for name in sorted(os.listdir(task_dir)):
            sibling = os.path.realpath(os.path.join(task_dir, name, "results.json"))
            if sibling in seen or not os.path.isfile(sibling):
                continue
            seen.add(sibling)
            try:
                results = read_results(sibling)
            except ValueError:
                continue  # an unfinished or foreign cell: not shown
            if results["task"] == own["task"] and \
                    ((results.get("data") or {}).get("test") or {}).get("sha256") == own_test:
                found.append(results)
    return found


def eval_results(all_results):
    """`EvalResult`s (-> the card's model-index) from finetune results.json dicts: every metric, test mean."""
    entries = []
    for results in all_results:
        seeds = len(results["seeds"])
        probe = (results.get("config") or {}).get("probe")
        how = f"{probe} probe, " if probe else ""
        for metric, summary in results["test"].items():
            entries.append(EvalResult(
                task_type="text-classification", dataset_type=results["task"],
                dataset_name=benchmark_name(results["task"]),
                dataset_split="test", metric_type=HUB_METRIC.get(metric, metric), metric_value=summary["mean"],
                metric_name=f"test {metric} ({how}mean of {seeds} seed{'s' if seeds > 1 else ''})"))
    return entries


def _usage(pipeline_tag, repo_id, architecture, stock, example=None, about=None):
    """The usage snippet on `example` (default: the generic promoter), with `about` saying what it is."""
    auto = AUTO_CLASS_BY_TAG[pipeline_tag]
    example = example or widget_examples(pipeline_tag)[0]["text"]
    about = about or (GENERIC_EXAMPLE + (", one base masked" if pipeline_tag == "fill-mask" else ""))
    trust = "" if stock else ", trust_remote_code=True"
    # An untrained or lightly trained generator also ranks special tokens; the bases are what a user asks about.
    targets = ', targets=["A", "C", "G", "T"]' if pipeline_tag == "fill-mask" else ""
    lines = [
        "```python",
        f"from transformers import AutoTokenizer, {auto}, pipeline",
        "",
        f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}"{trust})',
        f'model = {auto}.from_pretrained("{repo_id}"{trust})',
        f"sequence = \"{example}\"  # {about}",
        'inputs = tokenizer(sequence, return_tensors="pt")',
        "outputs = model(**inputs)",
        "",
        f'pipe = pipeline("{pipeline_tag}", model="{repo_id}"{trust})',
        f'print(pipe(sequence{targets}))',
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


def _corpus_lines(corpus):
    """The genomes a model was pretrained on, each with its target and realised share of the tokens, and how
    soft-masked repeats counted; nothing for a summary written before corpora existed."""
    if not corpus:
        return []
    lines = []
    if len(corpus["genomes"]) > 1:
        lines += [f"- corpus (sampling `{corpus['sampling']}`): " + "; ".join(
            f"{g['name']} weight {g['weight']:g}, target {g['target_share']:.1%}, trained on "
            f"{g['realised_share']:.1%} of the tokens ({g['tokens']:,})" for g in corpus["genomes"])]
    repeats = corpus.get("repeat_weight", 1.0)
    lines.append("- soft-masked (lower-case) repeats: " + (
        "counted like other bases" if repeats == 1.0 else f"loss weight {repeats:g}")
        + (f", windows with more than {corpus['max_repeat_fraction']:.0%} of them dropped"
           if corpus.get("max_repeat_fraction", 1.0) < 1.0 else ""))
    return lines


def _training_section(pretraining, finetuning, base_model=None):
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
        lines += _corpus_lines(pretraining.get("corpus"))
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
                  f"- task: {benchmark_name(finetuning['task'])} ({finetuning['label_type']}, labels "
                  f"{', '.join(map(str, finetuning['label_names']))}), from {describe_base(finetuning, base_model)}",
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
    if is_hub_id(model):
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


def _how(results):
    config = results.get("config") or {}
    how = ([f"{config['probe']} probe"] if config.get("probe") else []) + (["LoRA"] if config.get("lora") else [])
    return f" ({', '.join(how)})" if how else ""


def baseline_kind(results):
    """"onehot-cnn", "random-init" (the models without pretraining) or None, for a results.json's model."""
    model = str(results.get("model") or "")
    kind = (results.get("model_info") or {}).get("kind")
    if model == "onehot-cnn" or kind == "onehot-cnn":
        return "onehot-cnn"
    if kind == "random-init" or model.startswith("random-init"):
        return "random-init"
    return None


def _baseline_name(results):
    """A grid cell's model as a row of the evaluation table, without a local path."""
    model = str(results.get("model") or "")
    kind = baseline_kind(results)
    if kind == "onehot-cnn":
        name = "one-hot CNN (`onehot-cnn`, no pretraining)"
    elif kind == "random-init":
        name = "random init (`random-init`: the NucEL architecture without pretraining)"
    elif is_hub_id(model):
        name = f"[`{model}`](https://huggingface.co/{model})"
    else:
        name = f"`{os.path.basename(os.path.normpath(model))}` (a local model, not on the Hub)"
    return f"baseline: {name}{_how(results)}"


def _mean_sd(summary):
    sd = f" ± {summary['sd']:.4f}" if summary.get("sd") is not None else ""
    return f"{summary['mean']:.4f}{sd}"


def published_gue(task, metric):
    """[(model, test MCC)] the DNABERT-2 paper reports for a GUE task (Table 4); [] for other tasks or metrics."""
    if task not in GUE_TASKS or metric != "mcc":
        return []
    return [(model, scores[task] / SCALE) for model, scores in PUBLISHED_GUE_MCC.items() if task in scores]


def _evaluation_section(all_results, baselines=(), described=()):
    """This model's test results, then per task the baselines of its benchmark grid and, for GUE tasks, the
    published numbers; then what each task is (except the tasks in `described`: the Task section names them)."""
    if not all_results:
        return "No evaluation recorded with this folder."
    lines = ["| model | task | metric | test (mean ± sd) | seeds |", "|---|---|---|---|---|"]
    tasks, marked, published = [], False, False
    for results in all_results:
        if results["task"] not in tasks:
            tasks.append(results["task"])
    for task in tasks:
        ours = [results for results in all_results if results["task"] == task]
        for results in ours:
            primary = results["primary_metric"]
            lines.append(f"| **this model**{_how(results)} | {benchmark_name(task)} | {primary} | "
                         f"{_mean_sd(results['test'][primary])}{mark(results)} | {results['test'][primary]['n']} |")
        for results in baselines:
            primary = results["primary_metric"]
            if results["task"] == task and primary in results["test"]:
                marked = True
                lines.append(f"| {_baseline_name(results)} | {benchmark_name(task)} | {primary} | "
                             f"{_mean_sd(results['test'][primary])}{mark(results)} | {results['test'][primary]['n']} |")
        for model, value in published_gue(task, ours[0]["primary_metric"]):
            published = True
            lines.append(f"| published: {model} | {benchmark_name(task)} | mcc | {value:.4f} | — |")
    if marked:
        lines += ["", "*baseline*: another model that the same benchmark grid (`nucel-benchmark`) fine-tuned on "
                  "the same splits with the same options (seeds, steps, learning-rate rule); `onehot-cnn` and "
                  f"`random-init` have no pretraining. {_training_rule(list(all_results) + list(baselines))}"]
    if any(mark(results) for results in list(all_results) + list(baselines)):
        lines += ["", UNDER_TRAINED_NOTE]
    if published:
        lines += ["", f"*published*: the [DNABERT-2 paper]({DNABERT2_PAPER}), Table 4 (test MCC, model chosen on "
                  "dev); those models were pretrained and fine-tuned far longer than a small run of this package."]
    named = [f"- {describe_task(next(r for r in all_results if r['task'] == task))}" for task in tasks
             if task not in described]
    lines += [""] + named if named else []
    return "\n".join(lines)


def _training_rule(cells):
    """One sentence on how the rows were trained: to convergence (every row stopped by early stopping on dev,
    or marked †) or, for runs without early stopping, a fixed budget whose gaps may be budget, not pretraining."""
    if all((results.get("protocol") or {}).get("patience") for results in cells):
        return ("Every row trained until dev stopped improving (early stopping, the same patience and maximum for "
                "all), and the best dev checkpoint scored test once.")
    return ("Not every row used early stopping: a fixed training budget, not training until dev stopped improving, "
            "so a gap between rows may be budget rather than pretraining.")


def _citation(benchmarks=()):
    """The citation section: NucEL, ELECTRA and ModernBERT, plus DNABERT-2 when a GUE task is on the card."""
    entries = [NUCEL_BIBTEX, ELECTRA_BIBTEX, MODERNBERT_BIBTEX] + \
        ([DNABERT2_BIBTEX] if any(task in GUE_TASKS for task in benchmarks) else [])
    return "\n".join([
        "Cite NucEL and the methods it builds on (for converted weights, credit their authors too: see Source "
        "above)" + ("; for the GUE benchmark, DNABERT-2" if len(entries) > 3 else "") + ":", "",
        "```bibtex", "\n\n".join(entries), "```"])


# BibTeX entries (raw strings: `{\'e}` is LaTeX's accent, and must reach the card as written).
NUCEL_BIBTEX = r"""@misc{ding2025nucel,
  title         = {{NucEL}: Single-Nucleotide {ELECTRA}-Style Genomic Pre-training for Efficient and
                   Interpretable Representations},
  author        = {Ding, Ke and Parker, Brian and Wen, Jiayu},
  year          = {2025},
  eprint        = {2508.13191},
  archivePrefix = {arXiv},
  primaryClass  = {q-bio.GN},
  url           = {https://arxiv.org/abs/2508.13191}
}"""
ELECTRA_BIBTEX = r"""@inproceedings{clark2020electra,
  title     = {{ELECTRA}: Pre-training Text Encoders as Discriminators Rather Than Generators},
  author    = {Clark, Kevin and Luong, Minh-Thang and Le, Quoc V. and Manning, Christopher D.},
  booktitle = {International Conference on Learning Representations},
  year      = {2020}
}"""
MODERNBERT_BIBTEX = r"""@article{warner2024modernbert,
  title   = {Smarter, Better, Faster, Longer: A Modern Bidirectional Encoder for Fast, Memory Efficient, and Long
             Context Finetuning and Inference},
  author  = {Warner, Benjamin and Chaffin, Antoine and Clavi{\'e}, Benjamin and others},
  journal = {arXiv preprint arXiv:2412.13663},
  year    = {2024}
}"""
DNABERT2_BIBTEX = r"""@inproceedings{zhou2024dnabert2,
  title     = {{DNABERT}-2: Efficient Foundation Model and Benchmark for Multi-Species Genome},
  author    = {Zhou, Zhihan and Ji, Yanrong and Li, Weijian and Dutta, Pratik and Davuluri, Ramana and Liu, Han},
  booktitle = {International Conference on Learning Representations},
  year      = {2024},
  url       = {https://arxiv.org/abs/2306.15006}
}"""
CITATION = _citation()

LIMITATIONS = """- Trained on the DNA listed above only: other species, organelle genomes or very different sequence
  composition may be out of distribution.
- Reads at most the max length above; longer sequences must be cut or tiled.
- Soft-masked (lowercase) repeats are upper-cased and IUPAC ambiguity codes become `N`, so the model cannot tell
  repeat annotation or ambiguity classes apart.
- Not a clinical tool: predictions about regulatory function are research hypotheses, not diagnoses."""


def _task_section(finetuning, drawn, examples):
    """What the fine-tuned model predicts: the benchmark and task, the labels, where the examples come from."""
    lines = [f"- task: {describe_task(finetuning)}", f"- {label_sentence(finetuning, drawn['source'])}"]
    if examples:
        lines.append(f"- examples: the widget and the usage example are sequences of the task's test split "
                     f"({drawn['source']}): " + "; ".join(f"`{e['example_title']}`" for e in examples) + ".")
    else:
        reason = drawn["reason"] if drawn["reason"] else "the task's pipeline takes no plain sequence"
        lines.append(f"- examples: the widget and the usage example show {GENERIC_EXAMPLE}, not data of this "
                     f"model's task: {reason} when this card was written.")
    return "\n".join(lines)


def render_card(config, parameters, repo_id, model_name=None, license="mit", results=(), pretraining=None,
                finetuning=None, datasets=None, mask_token="[MASK]", conversion=None, base_model=None, stock=False,
                baselines=()):
    """The ModelCard of a NucEL folder with `config` (NucELConfig) and `parameters` weights.

    results: finetune results.json dicts for the model-index and evaluation table; pretraining: the run's
    pretraining_summary.json; finetuning: the results.json this model itself came from; conversion: the
    conversion.json of weights imported with nucel-convert (credited in a Source section, and as `base_model`
    when they came from the Hub); base_model: the Hub id this model was fine-tuned from (the Hub's model tree);
    datasets: Hub dataset ids, written only when given; stock: the folder holds transformers' own ModernBERT
    classes (no remote code), so usage needs no trust_remote_code and the replaced-token head is not there;
    baselines: results.json dicts of the other cells of the benchmark grid the results come from
    (`grid_baselines`), shown beside this model's rows as baselines.

    A fine-tuned model's widget and usage example are test sequences of its own task, read again from the
    recorded task folder when its test split is unchanged (`task_examples`); otherwise the generic promoter, and
    the card says so.
    """
    pipeline_tag = pipeline_tag_for(config)
    model_name = model_name or repo_id.split("/")[-1]
    results = list(results)
    if base_model is None and conversion and conversion.get("revision"):
        base_model = conversion["source"]
    if base_model is not None and not is_hub_id(base_model):
        raise ValueError(f"base_model {os.path.basename(os.path.normpath(str(base_model)))!r}: not a Hub id "
                         "(ORG/NAME) but a local folder or a name; base_model names Hub models only (a local base "
                         "is described in the card's text)")
    limit = getattr(config, "max_position_embeddings", None)
    drawn = task_examples(finetuning, limit - 2 if isinstance(limit, int) else None) if finetuning else None
    examples = drawn["examples"] if drawn and pipeline_tag != "fill-mask" else None
    data = ModelCardData(
        library_name="transformers", pipeline_tag=pipeline_tag, license=license, tags=list(TAGS),
        datasets=list(datasets) if datasets else None, model_name=model_name,
        eval_results=eval_results(results) or None, widget=examples or widget_examples(pipeline_tag, mask_token),
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
    if finetuning and pipeline_tag in ("text-classification", "token-classification"):
        kind = (f"a {'sequence' if pipeline_tag == 'text-classification' else 'per-nucleotide'} classifier "
                f"fine-tuned on {benchmark_name(finetuning['task'])} from {describe_base(finetuning, base_model)}")
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
        *(["## Task", "", _task_section(finetuning, drawn, examples), ""] if finetuning else []),
        "## Usage", "", _usage(pipeline_tag, repo_id, architecture, stock,
                               *((examples[0]["text"], examples[0]["example_title"])
                                 if examples else ())), "",
        "## Model", "", _model_table(config, parameters), "",
        "## Training", "", _training_section(pretraining, finetuning, base_model), "",
        "## Evaluation", "", _evaluation_section(results, baselines, [finetuning["task"]] if finetuning else []), "",
        "## Limitations", "", LIMITATIONS, "",
        "## Citation", "", _citation([r["task"] for r in results] + ([finetuning["task"]] if finetuning else [])),
        ""])
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
