"""Import the authors' released NucEL weights (`FreakingPotato/NucEL`) as a NucEL folder every command here reads.

    nucel-convert FreakingPotato/NucEL runs/nucel-release     # a Hub id (offline: from the local cache)
    nucel-convert path/to/checkpoint runs/nucel-release       # a local folder
    python -m nucel.hub_cards.convert ...                           # the same command

SOURCE holds a ModernBERT `config.json` and its weights (`model.safetensors`, sharded safetensors, or a
`pytorch_model.bin` read with `weights_only=True`), and optionally the authors' `vocab.json`. No file of SOURCE
runs as code, and none is copied. What the weights are is read from their names:

- `bert.*` + `discriminator_predictions.*`: the authors' ELECTRA discriminator -> `NucELForReplacedTokenDetection`
  with a one-layer (`linear`) replaced-token head whose weight and bias are negated: the release scores
  1 = original, and in this package a positive logit means "replaced", as in ELECTRA;
- `model.*` + `head.*` + `decoder.*`: a stock `ModernBertForMaskedLM` (the generator) -> `NucELForMaskedLM`;
- the backbone alone (`embeddings.*`, `layers.*`, `final_norm.*`, bare or under `model.`/`bert.`) -> `NucELModel`.

OUTPUT gets config.json (NucEL, carrying the release's special and nucleotide ids), model.safetensors, the
remote-code files, a tokenizer.json giving the release's ids (`tokenization.release_vocabulary`; `[CLS] bases`
without [SEP], as the model was trained) and conversion.json: the source, its revision and license, what was
found and converted. Anything the source holds that is not converted stops the run with one line naming it.
"""

import argparse
import glob
import json
import os

import huggingface_hub
import torch
import transformers
from huggingface_hub.repocard import metadata_load
from safetensors.torch import load_file

from nucel.commands import first_paragraph, one_line_errors
from nucel.console import add_output_options, apply_output_options
from nucel.files import HUB_ID, file_sha256, read_json_object
from nucel.model_folder import check_config_sizes
from nucel.modeling_nucel import NucELForMaskedLM, NucELForReplacedTokenDetection, NucELModel
from nucel.run_directory import check_output_directory, claim_output_directory
from nucel.run_records import CONVERSION_FILE
from nucel.safe_loading import check_safetensors, load_plain_data
from nucel.tokenization import alphabet
from nucel.tokenization.hf_tokenizers import save_tokenizer
from nucel.tokenization.release_vocabulary import read_release_vocabulary, release_tokenizer, release_vocabulary

RELEASE = "FreakingPotato/NucEL"
# What is fetched of a Hub repository: configs, weights, vocabulary and the card (for its license); never code.
SOURCE_FILES = ["config.json", "*.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "vocab.json",
                "tokenizer_config.json", "special_tokens_map.json", "README.md", "LICENSE*"]
BACKBONE_PARTS = ("embeddings.", "layers.", "final_norm.")
# The generator's sampling in the authors' training code; recorded, as this package's generator has no top-k.
RELEASE_SAMPLING = {"temperature": 0.9, "top_k": 5}
# What could not be read offline from the release itself, and how a user checks each (README lists them too).
ASSUMPTIONS = (
    "token ids: the release's NucEL_Tokenizer (k=1) as its public source builds them; with a vocab.json in SOURCE "
    "its ids are used instead. Check: the printed 'vocabulary' line and tokenizer.json against the release's "
    "tokenizer on a few sequences.",
    "windows: [CLS] + bases, no [SEP] (the release's tokenizer never appends one).",
    "discriminator sign: the release's discriminator_predictions logit is high for original bases; it is negated "
    "here. Check: on real DNA with a few bases changed, the converted detector's logits are higher at the changed "
    "bases.",
    "whitespace: removed before tokenizing, as this package's own tokenizer does (the release's handling of it is "
    "not documented).",
)


# ------------------------------------------------------------------------------------------------ reading SOURCE
def locate_source(source, cache_dir=None, subfolder=None):
    """(local folder, Hub revision or None): a folder as is; a Hub id from the cache (and the Hub when online);
    `subfolder`: where in it the checkpoint sits (the card stays at the root)."""
    if os.path.isdir(source):
        return source, None
    if not HUB_ID.match(source):
        raise ValueError(f"SOURCE {source}: neither a folder nor a Hub id (ORG/NAME)")
    offline = huggingface_hub.constants.HF_HUB_OFFLINE
    try:
        patterns = SOURCE_FILES + ([f"{subfolder.strip('/')}/{pattern}" for pattern in SOURCE_FILES] if subfolder
                                   else [])
        folder = huggingface_hub.snapshot_download(source, cache_dir=cache_dir, allow_patterns=patterns,
                                                   local_files_only=offline)
    except Exception as failure:  # noqa: BLE001  (not cached, no network, no such repository: one line either way)
        first = (str(failure).strip().splitlines() or [type(failure).__name__])[0]
        where = "the local Hugging Face cache (offline)" if offline else "the Hub"
        raise ValueError(f"SOURCE {source}: not found in {where}: {first}; on a machine online, "
                         f"`hf download {source}` fills the cache") from None
    return folder, os.path.basename(os.path.normpath(folder))


def within(folder, subfolder):
    if not subfolder:
        return folder
    path = os.path.join(folder, subfolder)
    if not os.path.isdir(path):
        raise ValueError(f"--subfolder {subfolder}: not a folder of {folder}")
    return path


def read_source_config(folder, vocabulary):
    """The source's ModernBERT config (`model_type` modernbert; its `auto_map` is ignored, nothing runs), with the
    special ids of `vocabulary` (stock defaults such as pad 50283 lie outside a 27-row embedding)."""
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"{folder}: no config.json (expected a ModernBERT checkpoint such as {RELEASE})")
    values = read_json_object(path, "model config")
    if values.get("model_type") != "modernbert":
        raise ValueError(f"{path}: model_type {values.get('model_type')!r}; nucel-convert reads ModernBERT "
                         f"checkpoints (model_type 'modernbert', as {RELEASE})")
    values = {key: value for key, value in values.items() if key not in ("auto_map", "architectures")}
    values.update(pad_token_id=vocabulary[alphabet.PAD], cls_token_id=vocabulary[alphabet.CLS],
                  sep_token_id=vocabulary[alphabet.SEP], bos_token_id=vocabulary[alphabet.CLS],
                  eos_token_id=vocabulary[alphabet.SEP])
    try:
        return transformers.ModernBertConfig.from_dict(values)
    except (TypeError, ValueError) as failure:
        raise ValueError(f"{path}: not a valid ModernBERT config ({failure})") from None


def weight_files(folder):
    """The checkpoint's weight files: safetensors (one or sharded) first, else pytorch_model.bin."""
    safetensors = sorted(glob.glob(os.path.join(glob.escape(folder), "*.safetensors")))
    if safetensors:
        return safetensors
    binary = os.path.join(folder, "pytorch_model.bin")
    if os.path.isfile(binary):
        return [binary]
    raise ValueError(f"{folder}: no weights (expected model.safetensors or pytorch_model.bin)")


def read_weights(files):
    """name -> tensor of every file. A .bin loads with weights_only=True: tensors only, no pickled code."""
    state = {}
    for path in files:
        if path.endswith(".safetensors"):
            check_safetensors(path)
            tensors = load_file(path)
        else:
            tensors = load_plain_data(path)  # weights_only=True: a pickle of other objects is refused
            if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
                raise ValueError(f"{path}: expected a state dict of tensors")
        repeated = sorted(set(state) & set(tensors))
        if repeated:
            raise ValueError(f"{path}: weight {repeated[0]} is also in another file of the checkpoint")
        state.update(tensors)
    return state


def read_license(folder):
    """{license, license_name, license_link} as the source's model card states them (YAML front matter); None
    where it states nothing."""
    card = os.path.join(folder, "README.md")
    metadata = {}
    if os.path.isfile(card):
        try:
            metadata = metadata_load(card) or {}
        except Exception:  # noqa: BLE001  (a card without valid front matter states no license)
            metadata = {}
    return {key: metadata.get(key) if isinstance(metadata.get(key), str) else None
            for key in ("license", "license_name", "license_link")}


def read_vocabulary(folder):
    """(token -> id, where it came from): the source's vocab.json, else the release's documented table."""
    path = os.path.join(folder, "vocab.json")
    if os.path.isfile(path):
        return read_release_vocabulary(path), "vocab.json of the source"
    return release_vocabulary(), "the release's documented id table (the source has no vocab.json)"


# ------------------------------------------------------------------------------------------------ the weights
def split_format(state, path):
    """(format, backbone weights without prefix, the rest) of a checkpoint, by its weight names."""
    def under(prefix):
        return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}

    if any(key.startswith("discriminator_predictions.") for key in state):
        kind, backbone, head = "discriminator", under("bert."), under("discriminator_predictions.")
        known = {f"bert.{key}" for key in backbone} | {f"discriminator_predictions.{key}" for key in head}
    elif any(key.startswith(("head.", "decoder.")) for key in state):
        kind, backbone, head = "generator", under("model."), {k: v for k, v in state.items()
                                                              if k.startswith(("head.", "decoder."))}
        known = {f"model.{key}" for key in backbone} | set(head)
    else:
        prefixes = [prefix for prefix in ("model.", "bert.", "") if any(
            key.startswith(prefix + part) for key in state for part in BACKBONE_PARTS)]
        kind, head = "backbone", {}
        backbone = under(prefixes[0]) if prefixes else {}
        known = {f"{prefixes[0] if prefixes else ''}{key}" for key in backbone}
    unknown = sorted(set(state) - known)
    if unknown:
        raise ValueError(f"{path}: weight {unknown[0]} (and {len(unknown) - 1} more) is not part of a ModernBERT "
                         "backbone, its masked-LM head or the release's discriminator head; nothing was converted")
    if not any(key.startswith(BACKBONE_PARTS) for key in backbone):
        raise ValueError(f"{path}: no ModernBERT backbone weights (embeddings.*, layers.*, final_norm.*)")
    return kind, backbone, head


def load_stock(module, weights, path, allowed_missing=()):
    """Load `weights` into a stock transformers module; every weight must be used, every parameter filled, and
    each with the shape the config gives it (torch's size-mismatch report is a multi-line traceback)."""
    expected = module.state_dict()
    for key, value in weights.items():
        if key in expected and tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(f"{path}: weight {key} has shape {list(value.shape)}, but the ModernBERT its config.json "
                             f"describes expects {list(expected[key].shape)}")
    missing, unexpected = module.load_state_dict(weights, strict=False)
    missing = [key for key in missing if key not in allowed_missing]
    if missing or unexpected:
        example = f"e.g. {missing[0]} is missing" if missing else f"e.g. {unexpected[0]} is not in it"
        raise ValueError(f"{path}: the weights do not fill the ModernBERT its config.json describes ({len(missing)} "
                         f"missing, {len(unexpected)} unexpected; {example})")
    return module.eval()


def nucel_ids(vocabulary, detection_head):
    """NucELConfig fields carrying the release's ids (and its recipe) onto the converted model, with the pooling a
    fine-tune of it should use (mean: the release, like any ELECTRA discriminator, never trained [CLS] alone)."""
    return dict(pad_token_id=vocabulary[alphabet.PAD], unk_token_id=vocabulary[alphabet.UNK],
                cls_token_id=vocabulary[alphabet.CLS], sep_token_id=vocabulary[alphabet.SEP],
                mask_token_id=vocabulary[alphabet.MASK], nucleotide_token_ids=[vocabulary[b] for b in "ACGT"],
                generator_temperature=RELEASE_SAMPLING["temperature"], replaced_token_head=detection_head,
                classifier_pooling="mean")


def convert_weights(kind, stock_config, backbone, head, ids, path):
    """The NucEL model of a checkpoint: stock ModernBERT first (so transformers checks every shape), then this
    package's exact import of it (`from_modernbert`); the discriminator's head is attached with its sign flipped."""
    if kind == "generator":
        stock = transformers.ModernBertForMaskedLM(stock_config)
        tied = ("decoder.weight",) if stock_config.tie_word_embeddings else ()
        load_stock(stock, {**{f"model.{k}": v for k, v in backbone.items()}, **head}, path, tied)
        return NucELForMaskedLM.from_modernbert(stock, **ids)
    encoder = NucELModel.from_modernbert(load_stock(transformers.ModernBertModel(stock_config), backbone, path),
                                         **ids)
    if kind == "backbone":
        return encoder
    weight, bias = head.pop("weight", None), head.pop("bias", None)
    hidden = stock_config.hidden_size
    if weight is None or tuple(weight.shape) != (1, hidden) or head or (bias is not None and bias.numel() != 1):
        raise ValueError(f"{path}: discriminator_predictions is not a Linear({hidden}, 1) (weight "
                         f"{None if weight is None else tuple(weight.shape)}, other keys {sorted(head)})")
    detector = NucELForReplacedTokenDetection(encoder.config)
    detector.model = encoder
    with torch.no_grad():  # the release's logit says "original"; its negation says "replaced"
        detector.discriminator_classifier.weight.copy_(-weight)
        detector.discriminator_classifier.bias.copy_(-bias.reshape(1) if bias is not None else torch.zeros(1))
    return detector.to(encoder.dtype).eval()


# ------------------------------------------------------------------------------------------------ the command
def convert_release(source, output_dir, cache_dir=None, subfolder=None, log=print):
    """Convert `source` (folder or Hub id; `subfolder` in it) into the NucEL folder `output_dir`; returns the
    conversion record."""
    check_output_directory(output_dir, "convert", option="OUTPUT")  # before any work: refused without a trace
    root, revision = locate_source(source, cache_dir, subfolder)
    folder = within(root, subfolder)
    vocabulary, vocabulary_source = read_vocabulary(folder)
    stock_config = read_source_config(folder, vocabulary)
    files = weight_files(folder)
    state = read_weights(files)
    where = files[0] if len(files) == 1 else folder
    kind, backbone, head = split_format(state, where)
    # Before the stock model is built: a config of absurd sizes would exhaust memory building it.
    check_config_sizes(stock_config.to_dict(), {key: list(value.shape) for key, value in backbone.items()},
                       os.path.join(folder, "config.json"))
    rows = backbone.get("embeddings.tok_embeddings.weight")
    if rows is None or rows.shape[0] != stock_config.vocab_size:
        raise ValueError(f"{where}: the token embedding has {None if rows is None else rows.shape[0]} rows, "
                         f"config.json vocab_size {stock_config.vocab_size}")
    tokenizer, outside = release_tokenizer(vocabulary, stock_config.vocab_size, stock_config.max_position_embeddings)
    ids = nucel_ids(vocabulary, "linear" if kind == "discriminator" else "prediction")
    model = convert_weights(kind, stock_config, backbone, head, ids, where)
    model = model.to(rows.dtype)
    record = {
        "source": source, "subfolder": subfolder, "revision": revision, **read_license(root), "format": kind,
        "class": type(model).__name__, "weights": {os.path.basename(path): file_sha256(path) for path in files},
        "tensors": len(state), "parameters": model.num_parameters(), "dtype": str(rows.dtype).replace("torch.", ""),
        "vocabulary": vocabulary_source, "vocab_size": stock_config.vocab_size,
        "token_ids": {token: vocabulary[token] for token in (*alphabet.SPECIAL_TOKENS, *"ACGT")},
        "tokens_outside_embedding": outside, "window": "[CLS] bases (no [SEP])",
        "replaced_token_logit": "negated: the release's logit is high for original bases; here positive = replaced"
                                if kind == "discriminator" else None,
        "generator_sampling": RELEASE_SAMPLING, "assumptions": list(ASSUMPTIONS),
    }
    with claim_output_directory(output_dir, "convert", option="OUTPUT"):
        model.save_pretrained(output_dir)
        save_tokenizer(tokenizer, output_dir)
        with open(os.path.join(output_dir, CONVERSION_FILE), "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=2)
            handle.write("\n")
    report(record, output_dir, log)
    return record


def report(record, output_dir, log):
    found = {"discriminator": "the authors' discriminator (bert.* + discriminator_predictions)",
             "generator": "a ModernBertForMaskedLM (the generator)", "backbone": "a ModernBERT backbone"}
    log(f"source: {record['source']}" + (f" (revision {record['revision']})" if record["revision"] else "")
        + f"; license: {record['license'] or 'not stated in its model card'}")
    log(f"found: {found[record['format']]}; {record['tensors']} tensors, {', '.join(record['weights'])}")
    log(f"converted: {record['class']}, {record['parameters'] / 1e6:.1f}M parameters, {record['dtype']}")
    if record["replaced_token_logit"]:
        log(f"replaced-token logit: {record['replaced_token_logit']}")
    ids = record["token_ids"]
    log(f"vocabulary: {record['vocabulary']}; {record['vocab_size']} ids, A C G T = "
        f"{', '.join(str(ids[b]) for b in 'ACGT')}, [PAD] [UNK] [CLS] [SEP] [MASK] = "
        f"{', '.join(str(ids[t]) for t in alphabet.SPECIAL_TOKENS)}; N and IUPAC codes -> [UNK]; windows "
        f"{record['window']}"
        + (f"; {len(record['tokens_outside_embedding'])} token(s) past the embedding left out"
           if record["tokens_outside_embedding"] else ""))
    log(f"wrote {output_dir}: config.json, model.safetensors, tokenizer.json, {CONVERSION_FILE}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    # --model and --output-dir, as every command names them; SOURCE OUTPUT (the first spelling) still work
    parser.add_argument("--model", metavar="SOURCE", help=f"a local checkpoint folder or a Hub id such as {RELEASE}")
    parser.add_argument("--output-dir", metavar="OUTPUT", help="the NucEL model folder to write")
    parser.add_argument("source", metavar="SOURCE", nargs="?", help="--model, given first without the option")
    parser.add_argument("output", metavar="OUTPUT", nargs="?", help="--output-dir, given last without the option")
    parser.add_argument("--subfolder", default=None, help="where in SOURCE the checkpoint sits (default: its root)")
    parser.add_argument("--cache-dir", default=None, help="Hugging Face cache to read a Hub id from (default: "
                                                          "HF_HUB_CACHE)")
    add_output_options(parser)
    args = parser.parse_args(argv)
    # argparse fills positionals left to right: with --model given, a lone positional is OUTPUT
    positionals = [value for value in (args.source, args.output) if value is not None]
    args.source = args.model if args.model is not None else (positionals.pop(0) if positionals else None)
    args.output = args.output_dir if args.output_dir is not None else (positionals.pop(0) if positionals else None)
    if positionals:
        parser.error(f"unrecognized arguments: {positionals[0]} (expected --model SOURCE --output-dir OUTPUT, or "
                     "SOURCE OUTPUT)")
    if args.source is None or args.output is None:
        parser.error("expected --model SOURCE --output-dir OUTPUT (or SOURCE OUTPUT)")
    return args


def main(argv=None):
    args = parse_args(argv)
    apply_output_options(args)
    if os.path.abspath(args.output) == os.path.abspath(args.source):
        raise ValueError(f"OUTPUT {args.output}: is SOURCE; write the converted model elsewhere")
    return convert_release(args.source, args.output, args.cache_dir, args.subfolder)


cli = one_line_errors(main)


if __name__ == "__main__":
    cli()
