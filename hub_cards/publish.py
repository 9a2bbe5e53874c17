"""Assemble a Hub-ready folder from a NucEL model folder, prove it loads in a fresh process, then (optionally) push.

    nucel-publish --model runs/demo/discriminator --output-dir runs/demo/hub \
        --results runs/demo/finetune/prom_core_tata/runs_demo_discriminator/results.json
    nucel-publish --model runs/ft/tata/model --output-dir runs/ft/tata/hub --repo-id org/nucel-tata --push
    nucel-publish --model runs/ft/tata/model --output-dir runs/ft/tata/hub-stock --format modernbert

--format nucel (default): model.safetensors, config.json (auto_map for every head) and the remote-code .py files;
every NucEL head, loaded with trust_remote_code=True. --format modernbert: transformers' own ModernBERT classes
(config.json says model_type modernbert; no code files), which the Auto classes, pipeline() and the Hub's inference
widgets load without trust_remote_code; what that format cannot hold is reported (the replaced-token head).
Both: tokenizer files, LICENSE and README.md (the card: `hub_cards`). Training details are read from beside the
model: a pretraining export's ../pretraining_summary.json, a fine-tuned model's ../results.json (which also enters
the model-index, with every --results file). Before anything is pushed, a fresh Python process that cannot import
this package loads the folder with the Auto classes and runs `transformers.pipeline` on the card's widget example,
and huggingface_hub's own card validation runs.
"""

import argparse
import filecmp
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile

import huggingface_hub
from transformers import PreTrainedTokenizerFast

from nucel import modeling_nucel
from nucel.commands import first_paragraph, one_line_errors
from nucel.console import add_output_options, apply_output_options
from nucel.files import HUB_ID, file_sha256, is_hub_id
from nucel.fresh_process import run_isolated
from nucel.hub_cards import render_card
from nucel.hub_cards.card import AUTO_CLASS_BY_TAG, grid_baselines
from nucel.model_folder import read_model_config, resolve_model
from nucel.modeling_nucel import NucELConfig
from nucel.modeling_nucel.configuration_nucel import NUCEL_ONLY_FIELDS
from nucel.modeling_nucel.modeling_nucel import MODERNBERT_CLASSES, follow_umask
from nucel.outputs import check_distinct, clean_leftovers, commit, remove, temporary_path
from nucel.run_directory import LOCK, MARKER, check_output_directory, claim_output_directory, kind_of, read_marker
from nucel.run_records import CONVERSION_FILE, read_conversion, read_pretraining_summary, read_results
from nucel.safe_loading import check_weight_files
from nucel.safe_saving import outside_allow_lists, private_content, rebuild_model_config
from nucel.tokenization import tokenization_kmer
from nucel.tokenization.hf_tokenizers import load_saved_tokenizer, save_tokenizer

# Run in a fresh interpreter: this repository's packages are unimportable there, so only the folder's own files
# (remote code) can make it load. Prints one JSON line describing what loaded and what the pipeline returned.
FRESH_PROCESS_CHECK = r"""
import json
import sys

import transformers
from huggingface_hub import ModelCard

folder, trust = sys.argv[1], sys.argv[3] == "remote-code"
card = ModelCard.load(folder + "/README.md")
tag, text = card.data.pipeline_tag, card.data.widget[0]["text"]
auto = json.loads(sys.argv[2])[tag]  # hub_cards.card.AUTO_CLASS_BY_TAG
model = getattr(transformers, auto).from_pretrained(folder, trust_remote_code=trust)
tokenizer = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=trust)
output = transformers.pipeline(tag, model=model, tokenizer=tokenizer)(text)
if tag == "feature-extraction":
    preview = {"shape": [len(output), len(output[0]), len(output[0][0])]}
elif tag == "fill-mask":
    preview = [{"token_str": o["token_str"], "score": round(o["score"], 4)} for o in output[:4]]
else:
    preview = output if isinstance(output, list) else [output]
    plain = [{k: (v.item() if type(v).__module__ == "numpy" else v) for k, v in o.items()} for o in preview[:4]]
    preview = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in o.items()} for o in plain]
loaded = {"auto_class": auto, "model_class": type(model).__name__, "model_module": type(model).__module__,
          "pipeline_tag": tag, "widget_text": text, "output": preview, "transformers": transformers.__version__}
if (model.config.architectures or [""])[0] == "NucELForReplacedTokenDetection":  # the ELECTRA head, documented
    detector = transformers.AutoModelForPreTraining.from_pretrained(folder, trust_remote_code=True)
    logits = detector(**tokenizer(text, return_tensors="pt")).logits
    loaded["replaced_token_logits"] = {"class": type(detector).__name__, "shape": list(logits.shape)}
print(json.dumps(loaded))
"""


FORMATS = ("nucel", "modernbert")
REPOSITORY_LICENSE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "LICENSE")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument("--model", required=True, help="a NucEL model folder (pretraining export or fine-tuned)")
    parser.add_argument("--output-dir", required=True, help="where the Hub folder is assembled")
    parser.add_argument("--repo-id", default=None, help="ORG/NAME on the Hub (the card's usage snippet uses it)")
    parser.add_argument("--results", nargs="*", default=[], help="finetune results.json files for the model-index")
    parser.add_argument("--license", default=None, help="Hub license id (default: mit; a converted model keeps its "
                                                            "source's license)")
    parser.add_argument("--format", choices=FORMATS, default="nucel",
                        help="nucel: NucEL classes as remote code, every head; modernbert: transformers' own "
                             "ModernBERT classes, no code (Hub widgets run it)")
    parser.add_argument("--base-model", default=None,
                        help="Hub id of the model this one was fine-tuned from (the card's base_model; default: "
                             "the fine-tuning run's --model when that was a Hub id)")
    parser.add_argument("--datasets", nargs="*", default=None,
                        help="Hub dataset ids for the card metadata (none are written unless given)")
    parser.add_argument("--push", action="store_true", help="upload the folder with huggingface_hub.upload_folder")
    parser.add_argument("--private", action="store_true", help="create the Hub repository as private")
    add_output_options(parser)
    return parser.parse_args(argv)


def check_push_possible(args):
    """Fail before any work when a push cannot happen: no repo id, offline mode, or no token."""
    if not args.push:
        return
    if not args.repo_id:
        raise ValueError("--push needs --repo-id ORG/NAME")
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise ValueError(f"--push: HF_HUB_OFFLINE is set, so nothing can be uploaded to {args.repo_id}; "
                         "unset it on a machine that reaches huggingface.co (the folder is still assembled without "
                         "--push)")
    if not huggingface_hub.get_token():
        raise ValueError("--push: no Hugging Face token; run `hf auth login` or set HF_TOKEN")


def load_model(model_dir):
    """The NucEL model saved in `model_dir`, as the class its config names."""
    if os.path.isfile(os.path.join(model_dir, "probe.json")):
        raise ValueError(f"--model {model_dir}: a frozen-probe head, not a Hub model (publish the encoder instead)")
    config = read_model_config(model_dir, expected="a NucEL export or a fine-tuned model/")
    if config.get("model_type") != NucELConfig.model_type:
        raise ValueError(f"--model {model_dir}: config.json has model_type {config.get('model_type')!r}; only "
                         "NucEL models (model_type 'nucel') are published by this script")
    architecture = (config.get("architectures") or ["NucELModel"])[0]
    if architecture not in modeling_nucel.__all__ or not architecture.startswith("NucEL"):
        raise ValueError(f"--model {model_dir}: config.json names architecture {architecture!r}; expected one of "
                         "this package's NucEL classes")
    check_weight_files(model_dir)
    return getattr(modeling_nucel, architecture).from_pretrained(model_dir)  # this package's class: no folder code


def training_context(model_dir):
    """(pretraining summary, finetuning results) found beside the model folder, each or both None. Results that
    record the weights they describe must describe these weights (a model/ and results.json of two runs are
    refused, not mixed on one card)."""
    parent = os.path.dirname(os.path.abspath(model_dir))
    pretraining = os.path.join(parent, "pretraining_summary.json")
    finetuning = os.path.join(parent, "results.json")
    results = read_results(finetuning) if os.path.isfile(finetuning) else None
    saved = (results or {}).get("saved_model") or {}
    if isinstance(saved, dict) and saved.get("sha256"):
        weights = os.path.join(model_dir, str(saved.get("weights", "model.safetensors")))
        if not os.path.isfile(weights) or file_sha256(weights) != saved["sha256"]:
            raise ValueError(f"{finetuning}: describes other weights than {weights} (sha256 "
                             f"{str(saved['sha256'])[:16]}...); the fine-tuning run that wrote them did not "
                             "finish: run it again before publishing")
    return (read_pretraining_summary(pretraining) if os.path.isfile(pretraining) else None, results)


def converted_origin(model_dir, finetuning):
    """Where `model_dir` says it holds weights imported by nucel-convert without the conversion record that
    carries their license: the folder's own marker, or a fine-tuning run whose base was such a folder."""
    marker = read_marker(model_dir) if os.path.isdir(model_dir) else None
    if marker and marker.get("kind") == "convert":
        return model_dir
    base = resolve_base_folder(finetuning)
    if base and (os.path.isfile(os.path.join(base, CONVERSION_FILE)) or kind_of(base)[0] == "convert"):
        return base
    return None


def resolve_base_folder(finetuning):
    """The local folder whose weights a fine-tuning run started from (finetune's own reading of --model), or None:
    a Hub id, a baseline (random-init starts from no weights), or a folder that is gone."""
    model = (finetuning or {}).get("model")
    if not isinstance(model, str):
        return None
    try:
        kind, location = resolve_model(model, baselines=("onehot-cnn",))
    except ValueError:
        return None
    return location if kind == "pretrained" and os.path.isdir(location) else None


def conversion_context(model_dir, license_id, finetuning=None):
    """(conversion record or None, the card's license). Weights imported with nucel-convert keep their source's
    license: a different --license, or none where the source states none, is refused; so is a converted model
    whose conversion record is missing, and a folder holding a LICENSE that is not this package's (MIT) when no
    --license says what it is."""
    path = os.path.join(model_dir, CONVERSION_FILE)
    conversion = read_conversion(path) if os.path.isfile(path) else None
    if conversion is None:
        origin = converted_origin(model_dir, finetuning)
        if origin is not None and license_id is None:
            raise ValueError(f"--model {model_dir}: holds weights converted by nucel-convert ({origin}) but no "
                             f"{CONVERSION_FILE}, which carries their source's license; pass --license with the "
                             "license its authors give the weights")
        foreign = any(not filecmp.cmp(found, REPOSITORY_LICENSE, shallow=False) for found in license_files(model_dir))
        if license_id is None and foreign:
            raise ValueError(f"--model {model_dir}: holds a LICENSE that is not this package's MIT license; pass "
                             "--license with the license it states")
        return None, license_id or "mit"
    source_license = conversion.get("license")
    if source_license is None and license_id is None:
        raise ValueError(f"--model {model_dir}: converted from {conversion['source']}, whose model card states no "
                         "license; pass --license with the license its authors give the weights")
    if source_license is not None and license_id not in (None, source_license):
        raise ValueError(f"--license {license_id}: {model_dir} holds weights converted from {conversion['source']}, "
                         f"released under {source_license}; a re-packaged model keeps its source's license")
    return conversion, source_license or license_id


def license_files(model_dir):
    """The LICENSE files of a model folder; a symlink is refused (its target would be published)."""
    found = sorted(glob.glob(os.path.join(glob.escape(model_dir), "LICENSE*")))
    for path in found:
        if os.path.islink(path) or not os.path.isfile(path):
            raise ValueError(f"{path}: a symlink or not a plain file; publish copies only plain files of the model "
                             "folder (copy the license text in)")
    return found


def package_code():
    """SHA-256 of every code file this package writes into a Hub folder: the remote code it ships."""
    sources = [os.path.join(os.path.dirname(os.path.abspath(modeling_nucel.__file__)), name)
               for name in modeling_nucel.modeling_nucel.REMOTE_CODE_FILES] + [tokenization_kmer.__file__]
    digests = {}
    for path in sources:
        with open(path, "rb") as handle:
            digests[os.path.basename(path)] = hashlib.sha256(handle.read()).hexdigest()
    return digests


def check_code_files(folder, allowed=None):
    """Refuse a Hub folder holding any code file that is not byte-identical to one of `allowed` (name -> SHA-256;
    default this package's own): it would be uploaded and run by everyone who loads the model with
    trust_remote_code=True."""
    known = package_code() if allowed is None else allowed
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            if not name.endswith((".py", ".pyc", ".so", ".pyd", ".sh", ".ipynb")):
                continue
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            if known.get(name) != digest:
                raise ValueError(f"{path}: a code file that is not this package's own; a Hub folder carries only "
                                 "NucEL's remote code, and a --format modernbert folder none (remove it, or "
                                 "publish into a new --output-dir)")


def read_inputs(args):
    """Everything publish reads, checked before anything is written: (model, tokenizer, pretraining summary,
    fine-tuning results beside the model, every results.json for the model-index)."""
    check_distinct({"--output-dir": args.output_dir}, {"--model": args.model,
                                                       **{f"--results {path}": path for path in args.results}})
    check_output_directory(args.output_dir, "publish")
    if os.path.isdir(args.output_dir) and kind_of(args.output_dir)[0] != "publish" \
            and [name for name in os.listdir(args.output_dir) if name != LOCK]:
        raise ValueError(f"--output-dir {args.output_dir}: an existing folder with files publish did not write; a Hub "
                         "folder is assembled in a new folder (or one publish made), so nothing else is uploaded")
    model = load_model(args.model)
    tokenizer = load_saved_tokenizer(args.model)  # no code from the folder runs (hf_tokenizers)
    pretraining, finetuning = training_context(args.model)
    conversion, args.license = conversion_context(args.model, args.license, finetuning)
    results = [read_results(path) for path in args.results] + ([finetuning] if finetuning else [])
    if args.base_model is not None and not HUB_ID.match(args.base_model):
        raise ValueError(f"--base-model {args.base_model!r}: expected a Hub id ORG/NAME")
    if args.base_model is None and finetuning and is_hub_id(finetuning["model"]):
        args.base_model = finetuning["model"]
    if args.format == "modernbert":
        stock_source(model, tokenizer, args.model)  # refusals before anything is written
    return model, tokenizer, pretraining, finetuning, results, conversion


def stock_source(model, tokenizer, model_dir):
    """(the NucEL model --format modernbert converts, what the format leaves out); one line where it cannot."""
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise ValueError(f"--format modernbert: {model_dir} has a {type(tokenizer).__name__}, which needs its own "
                         "code; only the single-nucleotide tokenizer (a plain tokenizer.json) loads without it")
    left_out = []
    if type(model).__name__ == "NucELForReplacedTokenDetection":
        left_out.append("the replaced-token-detection head (ModernBERT has none): the folder holds the backbone "
                        "(AutoModel, feature-extraction); --format nucel keeps the head")
        model = model.model
    if type(model).__name__ not in MODERNBERT_CLASSES:
        raise ValueError(f"--format modernbert: {type(model).__name__} has no ModernBERT counterpart")
    return model, left_out


def write_license(folder, license_id, model_dir):
    """The license text the card declares: the source's own LICENSE files for converted weights, this
    repository's LICENSE for MIT; None when there is no text for `license_id` here (reported)."""
    sources = license_files(model_dir)
    if not sources and license_id == "mit":
        sources = [REPOSITORY_LICENSE]
    for path in sources:
        shutil.copyfile(path, os.path.join(folder, os.path.basename(path)), follow_symlinks=False)
    return [os.path.basename(path) for path in sources] or None


def assemble(args, folder, model, tokenizer, pretraining, finetuning, results, conversion):
    """Write the Hub folder and its card into `folder`; returns (card, what the format left out, license files,
    the config keys left out). Configs are rebuilt from known fields (nucel/safe_saving.py)."""
    stock = args.format == "modernbert"
    exported, left_out = model, []
    if stock:
        source, left_out = stock_source(model, tokenizer, args.model)
        exported = source.to_modernbert()
    exported.save_pretrained(folder)  # nucel: config with auto_map for every head + the remote code
    follow_umask(folder)  # stock ModernBERT writes its weights 0600
    rebuild_model_config(folder)  # what the source held beyond the known fields is reported from the source
    save_tokenizer(tokenizer, folder)
    dropped = [f"{name}: {what}" for name, what in outside_allow_lists(args.model)]
    licenses = write_license(folder, args.license, args.model)
    repo_id = args.repo_id or f"your-org/{os.path.basename(os.path.abspath(args.output_dir))}"
    # the results' benchmark-grid siblings (random-init, onehot-cnn, other models) become the card's baselines
    own = [os.path.join(os.path.dirname(os.path.abspath(args.model)), "results.json")] if finetuning else []
    card = render_card(model.config, exported.num_parameters(), repo_id, license=args.license, results=results,
                       pretraining=pretraining, finetuning=finetuning, datasets=args.datasets,
                       mask_token=tokenizer.mask_token, conversion=conversion, base_model=args.base_model,
                       stock=stock, baselines=grid_baselines(list(args.results) + own))
    card.save(os.path.join(folder, "README.md"))
    return card, left_out, licenses, dropped


def verify_in_fresh_process(folder, stock=False, python=None):
    """Load `folder` the way Hub users will, in a new interpreter (`python`, default this one) that cannot import
    this package; a stock folder without trust_remote_code. Returns what it printed (a dict)."""
    code = "stock" if stock else "remote-code"
    with tempfile.TemporaryDirectory() as scratch:  # cwd away from the repository, so nothing leaks in
        done = run_isolated(FRESH_PROCESS_CHECK, [os.path.abspath(folder), json.dumps(AUTO_CLASS_BY_TAG), code],
                            scratch, python=python or sys.executable)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{folder}: the assembled folder does not load in a fresh process: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def push(folder, repo_id, private, files):
    """Validate the card with the Hub's own validator, then create the repository and upload `files` (the ones
    this run wrote) of the folder."""
    try:
        huggingface_hub.ModelCard.load(os.path.join(folder, "README.md")).validate()
    except Exception as failure:  # noqa: BLE001  (the Hub's verdict, or no network: either way nothing is uploaded)
        first = (str(failure).strip().splitlines() or [type(failure).__name__])[0]
        raise ValueError(f"--push to {repo_id}: the Hub's card validation failed: {first}") from None
    try:
        huggingface_hub.create_repo(repo_id, private=private, exist_ok=True)
        return huggingface_hub.upload_folder(folder_path=folder, repo_id=repo_id,
                                             commit_message="Upload NucEL model with nucel-publish",
                                             allow_patterns=list(files), ignore_patterns=[MARKER, LOCK])
    except Exception as failure:  # noqa: BLE001  (network, auth and Hub errors all end as one line, no traceback)
        first = (str(failure).strip().splitlines() or [type(failure).__name__])[0]
        raise ValueError(f"--push to {repo_id} failed: {first}") from None


def main(argv=None):
    args = parse_args(argv)
    apply_output_options(args)
    check_push_possible(args)
    inputs = read_inputs(args)
    with claim_output_directory(args.output_dir, "publish"):
        return publish(args, *inputs)


def publish(args, *inputs):
    """Assemble into a staging folder, check it (no foreign code, nothing private, loads in a fresh process), then
    commit its files into --output-dir together and push exactly those."""
    stock = args.format == "modernbert"
    staging = temporary_path(os.path.join(args.output_dir, ".assemble"))
    clean_leftovers(os.path.join(args.output_dir, ".assemble"))
    check_code_files(args.output_dir, allowed={} if stock else package_code())  # what an earlier run left there
    os.makedirs(staging)
    try:
        card, left_out, licenses, dropped = assemble(args, staging, *inputs)
        check_code_files(staging, allowed={} if stock else package_code())
        problems = private_content(staging)
        if problems:
            raise ValueError(f"--output-dir {args.output_dir}: refused to write a Hub folder: {problems[0]}"
                             + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        loaded = verify_in_fresh_process(staging, stock)
        files = sorted(os.listdir(staging))
        commit([(os.path.join(staging, name), os.path.join(args.output_dir, name)) for name in files])
    finally:
        remove(staging)
    strays = sorted(set(os.listdir(args.output_dir)) - set(files) - {MARKER, LOCK})
    print(f"assembled {args.output_dir} ({args.format} format): pipeline_tag {card.data.pipeline_tag}, "
          f"{len(card.data.eval_results or [])} model-index result(s), license {args.license}"
          + (f" ({', '.join(licenses)})" if licenses else " (no license text here: add the LICENSE file yourself)"))
    for item in left_out:
        print(f"--format modernbert leaves out {item}")
    if dropped:
        print(f"left out of the configs of {args.model} (not fields of the model or tokenizer, credentials, or "
              f"code elsewhere): {'; '.join(dropped)}")
    if strays:
        print(f"{args.output_dir}: not written by this run, left in place and never uploaded: {', '.join(strays)}")
    if stock:
        print("--format modernbert keeps these NucEL fields in config.json as keys stock ModernBERT ignores: "
              + ", ".join(NUCEL_ONLY_FIELDS))
    print(f"fresh-process check: {loaded['auto_class']} -> {loaded['model_class']}; "
          f"pipeline('{loaded['pipeline_tag']}') on the widget text -> {json.dumps(loaded['output'])}", flush=True)
    if "replaced_token_logits" in loaded:
        detector = loaded["replaced_token_logits"]
        print(f"fresh-process check: AutoModelForPreTraining -> {detector['class']}; replaced-token logits of shape "
              f"{detector['shape']}", flush=True)
    if args.push:
        print(f"pushed: {push(args.output_dir, args.repo_id, args.private, files)}")
    return loaded


cli = one_line_errors(main)


if __name__ == "__main__":
    cli()
