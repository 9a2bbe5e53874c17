"""nucel-convert: the authors' released NucEL checkpoints (FreakingPotato/NucEL) imported exactly, with their ids.

The synthetic checkpoints are built (conftest.py) the way the release describes itself: a stock transformers ModernBERT
with the release's config values (27-token vocabulary, global layer every 3rd, RoPE 160k/10k) at a tiny shape,
its key names (`bert.*` + `discriminator_predictions`, or a stock ModernBertForMaskedLM), and the authors' vocab.json
built by the rule their tokenizer follows. Nothing from the release's code is imported.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import transformers
from conftest import (
    REPO_ROOT,
    motif_task,
    randomise_norms,
    run_isolated,
    stock_config,
    write_release_discriminator,
    write_source,
)
from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForPreTraining, AutoTokenizer

from nucel.hub_cards import convert
from nucel.inference.embed import Embedder
from nucel.inference.interpretation.attention import attention_maps
from nucel.inference.interpretation.mutagenesis import SaturationMutagenesis
from nucel.inference.variants import VariantScorer
from nucel.modeling_nucel import NucELForMaskedLM, NucELForReplacedTokenDetection, NucELModel
from nucel.tokenization.token_layout import TokenLayout

BASE_IDS = {"A": 11, "C": 12, "G": 13, "T": 14}


def release_ids(text):
    """The release's encoding, from its description: upper-case, [CLS] first, no [SEP], anything not A/C/G/T is
    [UNK]."""
    return [2] + [BASE_IDS.get(c, 1) for c in text.upper()]


def random_text(length, seed, alphabet="ACGTACGTACGTacgtNnRyK"):
    rng = np.random.default_rng(seed)
    return "".join(rng.choice(list(alphabet), length))


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The three source formats (discriminator as a .bin, generator and backbone as safetensors), converted."""
    root = tmp_path_factory.mktemp("release")
    discriminator_source, discriminator = write_release_discriminator(
        root / "src-disc", weights="pytorch_model.bin", card="---\nlicense: mit\ntags: [dna]\n---\n# NucEL\n")
    generator = randomise_norms(transformers.ModernBertForMaskedLM(stock_config()), 2)
    backbone = randomise_norms(transformers.ModernBertModel(stock_config()), 3)
    sources = {
        "discriminator": discriminator_source,
        "generator": write_source(root / "src-gen", {k: v for k, v in generator.state_dict().items()
                                                     if k != "decoder.weight"}, "ModernBertForMaskedLM"),
        "backbone": write_source(root / "src-backbone", backbone.state_dict(), "ModernBertModel", vocabulary=False),
    }
    logs, records = {}, {}
    for kind, source in sources.items():
        lines = []
        records[kind] = convert.convert_release(source, str(root / kind), log=lines.append)
        logs[kind] = lines
    return {"root": root, "sources": sources, "records": records, "logs": logs,
            "stock": {"discriminator": discriminator, "generator": generator, "backbone": backbone}}


def release_batch(texts):
    rows = [release_ids(text) for text in texts]
    width = max(map(len, rows))
    input_ids = torch.tensor([row + [0] * (width - len(row)) for row in rows])
    attention_mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    return input_ids, attention_mask


TEXTS = [random_text(200, 1), random_text(37, 2), random_text(90, 3)]  # longer than the 16-token window


def close_on_real_tokens(a, b, attention_mask):
    torch.testing.assert_close(a[attention_mask.bool()], b[attention_mask.bool()], atol=1e-5, rtol=1e-5)


def test_every_format_is_found_reported_and_no_source_code_runs(release):
    records, logs = release["records"], release["logs"]
    assert {kind: record["format"] for kind, record in records.items()} == \
        {"discriminator": "discriminator", "generator": "generator", "backbone": "backbone"}
    assert {kind: record["class"] for kind, record in records.items()} == {
        "discriminator": "NucELForReplacedTokenDetection", "generator": "NucELForMaskedLM", "backbone": "NucELModel"}
    assert records["discriminator"]["weights"].keys() == {"pytorch_model.bin"}
    assert records["discriminator"]["license"] == "mit" and records["generator"]["license"] is None
    assert records["discriminator"]["vocabulary"] == "vocab.json of the source"
    assert "documented id table" in records["backbone"]["vocabulary"]
    assert records["discriminator"]["tokens_outside_embedding"] == [f"[RESERVED_{i}]" for i in range(12, 16)]
    assert any(line.startswith("replaced-token logit: negated") for line in logs["discriminator"])
    assert any("A C G T = 11, 12, 13, 14" in line for line in logs["generator"])
    for kind in records:
        folder = release["root"] / kind
        saved = json.loads((folder / "conversion.json").read_text())
        assert saved["source"] == release["sources"][kind] and saved["format"] == kind
        assert not (folder / "tokenizer.py").exists() and "auto_map" not in json.loads(
            (folder / "tokenizer_config.json").read_text())
    assert not any(os.path.exists(os.path.join(source, "CODE_RAN")) for source in release["sources"].values())


def test_config_carries_the_release_ids(release):
    config = json.loads((release["root"] / "discriminator" / "config.json").read_text())
    assert config["model_type"] == "nucel" and config["vocab_size"] == 27
    assert [config[f"{name}_token_id"] for name in ("pad", "unk", "cls", "sep", "mask")] == [0, 1, 2, 3, 4]
    assert config["nucleotide_token_ids"] == [11, 12, 13, 14]
    assert config["replaced_token_head"] == "linear" and config["generator_temperature"] == 0.9
    assert (config["local_attention"], config["global_attn_every_n_layers"]) == (16, 3)
    assert (config["global_rope_theta"], config["local_rope_theta"]) == (160000.0, 10000.0)


def test_tokenizer_gives_the_release_ids(release):
    tokenizer = AutoTokenizer.from_pretrained(release["root"] / "discriminator")
    for seed in range(20):
        text = random_text(int(np.random.default_rng(seed).integers(1, 250)), seed + 100)
        assert tokenizer(text)["input_ids"] == release_ids(text), text
    assert tokenizer("acgtNRYSWKMBDHV")["input_ids"] == [2, 11, 12, 13, 14] + [1] * 11
    assert tokenizer.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == [0, 1, 2, 3, 4]
    assert tokenizer("AC[MASK]T")["input_ids"] == [2, 11, 12, 4, 14]
    assert len(tokenizer) == 27 and tokenizer.convert_ids_to_tokens(7) == "[UNUSED_7]"


@pytest.mark.slow
def test_backbone_and_generator_outputs_are_identical(release):
    input_ids, attention_mask = release_batch(TEXTS)
    stock = release["stock"]
    backbone = AutoModel.from_pretrained(release["root"] / "backbone").eval()
    generator = AutoModelForMaskedLM.from_pretrained(release["root"] / "generator").eval()
    assert isinstance(backbone, NucELModel) and isinstance(generator, NucELForMaskedLM)
    with torch.no_grad():
        close_on_real_tokens(backbone(input_ids, attention_mask).last_hidden_state,
                             stock["backbone"](input_ids, attention_mask=attention_mask).last_hidden_state,
                             attention_mask)
        close_on_real_tokens(generator(input_ids, attention_mask).logits,
                             stock["generator"](input_ids, attention_mask=attention_mask).logits, attention_mask)


def test_discriminator_logits_are_negated_and_hidden_states_identical(release):
    input_ids, attention_mask = release_batch(TEXTS)
    authors = release["stock"]["discriminator"]
    detector = AutoModelForPreTraining.from_pretrained(release["root"] / "discriminator").eval()
    assert isinstance(detector, NucELForReplacedTokenDetection)
    with torch.no_grad():
        output = detector(input_ids, attention_mask)
        close_on_real_tokens(output.logits, -authors(input_ids, attention_mask), attention_mask)
        close_on_real_tokens(output.last_hidden_state,
                             authors.bert(input_ids, attention_mask=attention_mask).last_hidden_state, attention_mask)
    backbone = AutoModel.from_pretrained(release["root"] / "discriminator")  # the same folder, as an encoder
    assert isinstance(backbone, NucELModel)


@pytest.mark.slow
def test_converted_folder_loads_in_a_fresh_interpreter(release, tmp_path):
    source = r"""
import sys, torch, transformers
folder, out = sys.argv[1], sys.argv[2]
tokenizer = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
model = transformers.AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
inputs = tokenizer(sys.argv[3], return_tensors="pt")
with torch.no_grad():
    torch.save({"ids": inputs["input_ids"], "states": model(**inputs).last_hidden_state}, out)
print(type(model).__name__)
"""
    text = TEXTS[0]
    done = run_isolated(source, [release["root"] / "discriminator", tmp_path / "out.pt", text], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "NucELModel"
    saved = torch.load(tmp_path / "out.pt")
    assert saved["ids"][0].tolist() == release_ids(text)
    authors = release["stock"]["discriminator"]
    with torch.no_grad():
        expected = authors.bert(torch.tensor([release_ids(text)])).last_hidden_state
    torch.testing.assert_close(saved["states"], expected, atol=1e-5, rtol=1e-5)


def test_inference_reads_the_release_layout_exactly(release):
    """nucel-embed's byte-encoder path gives the tokenizer's ids: windows `[CLS] bases`, no [SEP]."""
    folder = release["root"] / "discriminator"
    embedder = Embedder.from_pretrained(str(folder), device="cpu", window=254)
    assert embedder.layout.sep_id is None and embedder.layout.nucleotide_ids == (11, 12, 13, 14)
    text = TEXTS[1]
    states = embedder.encode_pieces([__import__("tokenization").encode_sequence(text)])[0]
    with torch.no_grad():
        expected = release["stock"]["discriminator"].bert(torch.tensor([release_ids(text)])).last_hidden_state[0, 1:]
    np.testing.assert_allclose(states, expected.numpy(), atol=1e-5, rtol=1e-5)
    long_text = random_text(600, 7, "ACGT")  # tiled into windows of at most 255 bases ([CLS] + 255 = 256)
    assert Embedder.from_pretrained(str(folder), device="cpu").window == 255
    maps = attention_maps(embedder.encoder, "s", __import__("tokenization").encode_sequence(long_text[:50]),
                          embedder.layout)
    assert maps.maps.shape[-1] == 51 and np.isfinite(maps.received()).all()


@pytest.mark.slow
def test_variant_scores_and_mutagenesis_run_on_converted_parts(release, tmp_path):
    from nucel.tokenization.reference import ReferenceGenome

    rng = np.random.default_rng(5)
    genome = "".join(rng.choice(list("ACGT"), 3000))
    (tmp_path / "ref.fa").write_text(f">chr1\n{genome}\n")
    reference = ReferenceGenome(str(tmp_path / "ref.fa"))
    scorer = VariantScorer.from_pretrained(str(release["root"] / "discriminator"),
                                           generator=str(release["root"] / "generator"), device="cpu", window=101)
    alt = {"A": "C", "C": "G", "G": "T", "T": "A"}
    rows = scorer.score(reference, [("chr1", 1500, genome[1499], alt[genome[1499]])])
    assert rows[0].status == "ok" and all(np.isfinite(v) for v in rows[0].scores.values())
    assert set(rows[0].scores) == {"generator_llr", "discriminator_site", "discriminator_window",
                                   "embedding_cosine_distance"}
    # The generator's masked log-probabilities equal the generator run on the release's own ids.
    ids = reference.fetch("chr1", 1449, 1550)
    log_p = scorer._masked_log_probs([(ids, 50)])[0]
    masked = release_ids(genome[1449:1550])
    masked[51] = 4
    with torch.no_grad():
        logits = release["stock"]["generator"](torch.tensor([masked])).logits[0, 51, [11, 12, 13, 14]]
    np.testing.assert_allclose(log_p, torch.log_softmax(logits, -1).numpy(), atol=1e-5)

    from nucel.inference import variants

    (tmp_path / "v.vcf").write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=3000>\n"
                                    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                                    f"chr1\t1500\tsnv\t{genome[1499]}\t{alt[genome[1499]]}\t.\t.\t.\n")
    variants.main(["--model", str(release["root"] / "discriminator"), "--generator", str(release["root"] / "generator"),
                   "--vcf", str(tmp_path / "v.vcf"), "--reference", str(tmp_path / "ref.fa"), "--window", "101",
                   "--output", str(tmp_path / "scores.tsv"), "--quiet", "--device", "cpu"])
    header, row = (tmp_path / "scores.tsv").read_text().strip().split("\n")
    scores = dict(zip(header.split("\t"), row.split("\t")))
    assert scores["status"] == "ok"
    assert float(scores["generator_llr"]) == pytest.approx(rows[0].scores["generator_llr"], rel=1e-4)

    ism = SaturationMutagenesis.from_pretrained(str(release["root"] / "discriminator"), head="discriminator",
                                                device="cpu")
    result = ism("s", genome[:60])
    assert result.effects.shape == (60, 4) and np.isfinite(result.effects).all()

    from nucel.inference import interpret

    interpret.main(["--model", str(release["root"] / "discriminator"), "--sequence", genome[:255], "--attention",
                    "--output-dir", str(tmp_path / "interpret"), "--no-report", "--quiet", "--device", "cpu"])
    assert (tmp_path / "interpret" / "seq1" / "ism.tsv").exists()
    with pytest.raises(ValueError, match="at most 255 bases"):  # [CLS] + 255 bases = 256 positions, no [SEP]
        interpret.main(["--model", str(release["root"] / "discriminator"), "--sequence", genome[:256],
                        "--output-dir", str(tmp_path / "interpret2"), "--quiet", "--device", "cpu"])


def test_generator_and_discriminator_of_different_vocabularies_are_refused(release, tiny_export):
    with pytest.raises(ValueError, match="tokenizer's ids differ"):
        VariantScorer.from_pretrained(str(release["root"] / "discriminator"),
                                      generator=str(tiny_export / "generator"), device="cpu")
    # A converted model without its tokenizer cannot be read with this package's alphabet: one line says so.
    with pytest.raises(ValueError, match="not this package's single-nucleotide alphabet"):
        TokenLayout.for_config(NucELModel.from_pretrained(release["root"] / "backbone").config)


@pytest.mark.slow
def test_converted_model_fine_tunes_with_finetune_py(release, tmp_path):
    from nucel.training.finetuning import run as finetune

    task = motif_task(tmp_path / "task")
    results = finetune.main(["--model", str(release["root"] / "discriminator"), "--task-dir", task,
                             "--output-dir", str(tmp_path / "ft"), "--max-steps", "12", "--eval-steps", "6",
                             "--warmup-steps", "2", "--batch-size", "32", "--quiet", "--seeds", "1"])
    assert np.isfinite(results["test"]["mcc"]["mean"])
    saved = AutoTokenizer.from_pretrained(tmp_path / "ft" / "model")
    assert saved("ACGTN")["input_ids"] == release_ids("ACGTN")  # the release's ids travel with the model
    credit = json.loads((tmp_path / "ft" / "model" / "conversion.json").read_text())
    assert credit["source"] == release["sources"]["discriminator"] and credit["license"] == "mit"


@pytest.mark.slow
def test_command_line_and_bad_sources_are_one_line(release, tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "nucel.hub_cards.convert", *map(str, args)], capture_output=True,
                              text=True, cwd=REPO_ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})

    done = run(release["sources"]["generator"], tmp_path / "gen")
    assert done.returncode == 0, done.stderr
    assert "found: a ModernBertForMaskedLM (the generator)" in done.stdout
    assert (tmp_path / "gen" / "model.safetensors").exists()
    done = run(tmp_path / "nowhere", tmp_path / "o1")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and lines == [f"error: SOURCE {tmp_path / 'nowhere'}: neither a folder nor a Hub id "
                                              "(ORG/NAME)"], done.stderr
    convert.main([str(release["sources"]["generator"]), str(tmp_path / "gen")])  # re-running rewrites its own

    pickled = tmp_path / "pickled"
    write_source(pickled, {"x": torch.zeros(1)}, "ModernBertModel")
    os.remove(pickled / "model.safetensors")
    with open(pickled / "pytorch_model.bin", "wb") as handle:
        torch.save({"weights": torch.zeros(1), "hook": ValueError("a Python object")}, handle)
    extra = tmp_path / "extra"
    state = dict(release["stock"]["backbone"].state_dict(), **{"pooler.weight": torch.zeros(2)})
    write_source(extra, state, "ModernBertModel")
    saved_model = tmp_path / "saved-model"
    NucELModel.from_pretrained(release["root"] / "backbone").save_pretrained(saved_model)
    other = tmp_path / "other"
    write_source(other, release["stock"]["backbone"].state_dict(), "BertModel")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    for args, message in (
            (["Nobody/not-cached", tmp_path / "o2", "--cache-dir", tmp_path / "empty-cache"],
             "not found in the local Hugging Face cache"),
            ([pickled, tmp_path / "o3"], "refused: it holds Python objects"),
            ([extra, tmp_path / "o4"], "pooler.weight"),
            ([other, tmp_path / "o5"], "model_type 'bert'"),
            ([release["sources"]["backbone"], saved_model], "holds a saved model")):
        with pytest.raises(ValueError, match=re.escape(message)) as failure:
            convert.main(list(map(str, args)))
        assert "\n" not in str(failure.value)
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))


def test_hub_id_is_read_from_the_local_cache(release, tmp_path):
    """A Hub id resolves through huggingface_hub's cache layout (offline: nothing is downloaded)."""
    import shutil

    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--FreakingPotato--NucEL"
    snapshot = repo / "snapshots" / revision
    shutil.copytree(release["sources"]["discriminator"], snapshot)
    shutil.copytree(release["sources"]["generator"], snapshot / "generator")  # a checkpoint in a subfolder
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    record = convert.convert_release("FreakingPotato/NucEL", str(tmp_path / "out"), cache_dir=str(tmp_path / "cache"),
                                     log=lambda line: None)
    assert record["revision"] == revision and record["source"] == "FreakingPotato/NucEL"
    assert record["format"] == "discriminator" and record["license"] == "mit"
    record = convert.convert_release("FreakingPotato/NucEL", str(tmp_path / "gen"), cache_dir=str(tmp_path / "cache"),
                                     subfolder="generator", log=lambda line: None)
    assert record["format"] == "generator" and record["license"] == "mit"  # the card at the repository's root
    with pytest.raises(ValueError, match="--subfolder nowhere: not a folder"):
        convert.convert_release("FreakingPotato/NucEL", str(tmp_path / "x"), cache_dir=str(tmp_path / "cache"),
                                subfolder="nowhere")


@pytest.mark.slow
def test_converted_model_runs_through_nucel_embed(release, tmp_path):
    done = subprocess.run([sys.executable, "-m", "nucel.inference.embed",
                           "--model", str(release["root"] / "discriminator"), "--sequence", TEXTS[0],
                           "--output", str(tmp_path / "e.npy"), "--quiet"],
                          capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    assert np.load(tmp_path / "e.npy").shape == (1, 64)


@pytest.mark.slow
def test_published_card_credits_the_source_and_keeps_its_license(release, tmp_path):
    import shutil

    from nucel.hub_cards import publish

    revision = "fedcba9876543210fedcba9876543210fedcba98"
    repo = tmp_path / "cache" / "models--FreakingPotato--NucEL"
    shutil.copytree(release["sources"]["discriminator"], repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    convert.convert_release("FreakingPotato/NucEL", str(tmp_path / "converted"), cache_dir=str(tmp_path / "cache"),
                            log=lambda line: None)
    loaded = publish.main(["--model", str(tmp_path / "converted"), "--output-dir", str(tmp_path / "hub")])
    assert loaded["model_class"] == "NucELModel" and loaded["replaced_token_logits"]["shape"][1] == 71  # [CLS] + 70
    card = (tmp_path / "hub" / "README.md").read_text()
    header = card.split("---")[1]
    assert "license: mit" in header and "base_model: FreakingPotato/NucEL" in header
    assert "## Source" in card and f"[`FreakingPotato/NucEL`](https://huggingface.co/FreakingPotato/NucEL) (revision " \
        f"`{revision}`)" in card and "released under the license `mit`" in card
    assert "A C G T = ids 11, 12, 13, 14 (27-entry vocabulary)" in card
    with pytest.raises(ValueError, match="released under mit; a re-packaged model keeps its source's license"):
        publish.main(["--model", str(tmp_path / "converted"), "--output-dir", str(tmp_path / "hub2"),
                      "--license", "apache-2.0"])
    with pytest.raises(ValueError, match="whose model card states no license; pass --license"):
        publish.main(["--model", str(release["root"] / "generator"), "--output-dir", str(tmp_path / "hub3")])
    assert not (tmp_path / "hub2").exists() and not (tmp_path / "hub3").exists()
