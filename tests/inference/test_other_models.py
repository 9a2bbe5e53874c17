"""Other models through the same inference commands: the package's own stock ModernBERT export, a Hub id from the
local cache, any single-nucleotide masked LM; another model's own code only with --trust-remote-code; k-mer
tokenizers refused with the reason. The side-by-side example: one VCF scored by two models, AUROCs compared."""

import json
import shutil

import numpy as np
import pytest

from nucel import modeling_nucel
from nucel.inference.embed import Embedder
from nucel.inference.variants import VariantScorer, score_vcf
from nucel.tokenization.hf_tokenizers import load_saved_tokenizer, load_tokenizer, save_tokenizer


@pytest.fixture(scope="module")
def stock_exports(tiny_export, tmp_path_factory):
    """The tiny NucEL discriminator and generator as transformers' own ModernBERT classes (what
    `publish --format modernbert` writes): the same weights, no NucEL code."""
    folder = tmp_path_factory.mktemp("stock")
    for part, nucel_class in (("discriminator", "NucELForReplacedTokenDetection"), ("generator", "NucELForMaskedLM")):
        model = getattr(modeling_nucel, nucel_class).from_pretrained(tiny_export / part)
        (model.model if part == "discriminator" else model).to_modernbert().save_pretrained(folder / part)
        save_tokenizer(load_saved_tokenizer(str(tiny_export / part)), folder / part)
    return folder


def test_a_stock_modernbert_export_embeds_as_the_nucel_folder_does(tiny_export, stock_exports):
    sequences = ["ACGTACGTTGCA" * 20, "GGGCCCAT" * 30]
    stock = Embedder.from_pretrained(str(stock_exports / "discriminator"))
    assert type(stock.encoder).__name__ == "ModernBertModel"
    for ours, theirs in zip(Embedder.from_pretrained(str(tiny_export)).embed(sequences), stock.embed(sequences)):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_a_hub_id_is_read_from_the_local_cache_only(tiny_export, stock_exports, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--dna-mlm" / "snapshots" / ("a" * 40)
    shutil.copytree(stock_exports / "generator", snapshot)
    (cache / "models--someone--dna-mlm" / "refs").mkdir()
    (cache / "models--someone--dna-mlm" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    scorer = VariantScorer.from_pretrained("someone/dna-mlm", window=64)
    assert scorer.available == ["generator_llr"] and type(scorer.generator).__name__ == "ModernBertForMaskedLM"
    with pytest.raises(ValueError, match="--model someone/not-cached: a Hub id that is not in the local Hugging "
                                         "Face cache .* these commands never download"):
        VariantScorer.from_pretrained("someone/not-cached")


def test_another_models_code_runs_only_with_trust_remote_code(tiny_export, tmp_path):
    folder = tmp_path / "custom"
    shutil.copytree(tiny_export / "generator", folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="my-dna-lm", auto_map={"AutoModelForMaskedLM": "modeling_mine.MyDnaLM",
                                                    "AutoConfig": "modeling_mine.MyConfig"})
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "pwned"
    (folder / "modeling_mine.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    with pytest.raises(ValueError, match="needs code from the folder .* unless you pass --trust-remote-code"):
        Embedder.from_pretrained(str(folder))
    assert not marker.exists()


def test_a_kmer_model_is_refused_with_the_reason(tiny_export, tmp_path):
    folder = tmp_path / "kmer"
    shutil.copytree(tiny_export / "generator", folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    save_tokenizer(load_tokenizer("kmer", k=3, stride=3), folder)
    with pytest.raises(ValueError, match="these commands read single-nucleotide models .* a k-mer model scores and "
                                         "embeds tokens, not bases"):
        VariantScorer.from_pretrained(str(folder))


@pytest.mark.slow
def test_one_vcf_scored_by_two_models_side_by_side(tiny_export, stock_exports, tmp_path):
    """The README's side-by-side example in small: the NucEL run folder and the stock export of its generator
    score one labelled VCF; the generator's AUROC is the same number through both (same weights)."""
    rng = np.random.default_rng(5)
    genome = "".join(rng.choice(list("ACGT"), 2000))
    (tmp_path / "ref.fa").write_text(">chr1\n" + genome + "\n")
    rows, labels = [], []
    for number, pos in enumerate(range(100, 1900, 45), start=1):
        ref = genome[pos - 1]
        alt = "ACGT"[("ACGT".index(ref) + 1 + number % 3) % 4]
        rows.append(f"chr1\t{pos}\tv{number}\t{ref}\t{alt}\t.\t.\t.\n")
        labels.append(f"v{number},{number % 2}\n")
    (tmp_path / "calls.vcf").write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=2000>\n"
                                        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + "".join(rows))
    (tmp_path / "labels.csv").write_text("id,label\n" + "".join(labels))
    printed = {}
    for name, model in (("nucel", tiny_export), ("stock", stock_exports / "generator")):
        lines = []
        summary = score_vcf(VariantScorer.from_pretrained(str(model), window=64), str(tmp_path / "calls.vcf"),
                            str(tmp_path / "ref.fa"), str(tmp_path / f"{name}.tsv"),
                            labels=str(tmp_path / "labels.csv"), quiet=True, log=lines.append)
        printed[name] = summary["metrics"]
        assert any("generator_llr" in line and "AUROC" in line for line in lines)
    assert set(printed["nucel"]) == {"generator_llr", "discriminator_site", "discriminator_window",
                                     "embedding_cosine_distance"} and set(printed["stock"]) == {"generator_llr"}
    assert printed["stock"]["generator_llr"]["auroc"] == pytest.approx(printed["nucel"]["generator_llr"]["auroc"])
