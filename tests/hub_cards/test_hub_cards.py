"""hub_cards: rendered metadata passes the Hub's rules (checked locally); broken metadata fails, naming the field."""

import copy

import pytest
from conftest import tiny_config
from huggingface_hub import ModelCard

from nucel.hub_cards import (
    PROMOTER,
    CardMetadataError,
    check_metadata,
    metadata_problems,
    pipeline_tag_for,
    render_card,
)

RESULTS = {
    "task": "prom_core_tata", "primary_metric": "mcc", "label_type": "multi-class", "seeds": [{"seed": 1}, {"seed": 2}],
    "test": {"mcc": {"mean": 0.61, "sd": 0.02, "n": 2, "values": [0.59, 0.63]},
             "accuracy": {"mean": 0.8, "sd": 0.01, "n": 2, "values": [0.79, 0.81]}},
}


@pytest.mark.parametrize("architecture, tag", [
    ("NucELModel", "feature-extraction"), ("NucELForMaskedLM", "fill-mask"),
    ("NucELForSequenceClassification", "text-classification"),
    ("NucELForTokenClassification", "token-classification"),
])
def test_rendered_card_metadata_passes_the_rules(architecture, tag):
    config = tiny_config(architectures=[architecture])
    card = render_card(config, 123_456, "org/nucel-tiny", results=[RESULTS])
    metadata = card.data.to_dict()
    assert metadata_problems(metadata) == []
    assert pipeline_tag_for(config) == tag == metadata["pipeline_tag"]
    assert metadata["library_name"] == "transformers" and metadata["license"] == "mit"
    assert {"biology", "genomics", "dna", "electra", "modernbert"} <= set(metadata["tags"])
    assert "datasets" not in metadata  # no made-up Hub dataset ids: GUE tasks are not Hub datasets by those names
    widget = metadata["widget"][0]["text"]
    assert set(widget.replace("[MASK]", "")) <= set("ACGT")
    assert ("[MASK]" in widget) == (tag == "fill-mask")
    results = metadata["model-index"][0]["results"]
    assert {m["type"]: m["value"] for r in results for m in r["metrics"]} == {"matthews_correlation": 0.61,
                                                                               "accuracy": 0.8}
    reread = ModelCard(str(card))  # the text round-trips through huggingface_hub's parser
    assert reread.data.pipeline_tag == tag and len(reread.data.eval_results) == 2
    for section in ("## Usage", "## Model", "## Training", "## Evaluation", "## Limitations"):
        assert section in card.text
    assert 'trust_remote_code=True' in card.text and "org/nucel-tiny" in card.text
    assert "| **this model** | GUE (DNABERT-2) prom_core_tata | mcc | 0.6100 ± 0.0200 | 2 |" in card.text
    assert "| published: DNABERT-2 | GUE (DNABERT-2) prom_core_tata | mcc | 0.7417 | — |" in card.text


def test_card_without_results_has_no_model_index():
    card = render_card(tiny_config(architectures=["NucELModel"]), 1000, "org/x")
    assert "model-index" not in card.data.to_dict() and "No evaluation recorded" in card.text
    assert PROMOTER in card.text


VALID = render_card(tiny_config(architectures=["NucELForMaskedLM"]), 1000, "org/x", results=[RESULTS]).data.to_dict()


def broken(edit):
    metadata = copy.deepcopy(VALID)
    edit(metadata)
    return metadata


@pytest.mark.parametrize("edit, problem", [
    (lambda m: m.update(pipeline_tag="dna-classification"), "pipeline_tag: 'dna-classification' is not a Hub"),
    (lambda m: m.update(license="MIT License"), "license: 'MIT License' is not a Hub license id"),
    (lambda m: m.update(license="other"), "license: 'other' needs license_name and license_link"),
    (lambda m: m.update(tags=["dna", ""]), "tags: expected a string or a list of non-empty strings"),
    (lambda m: m.update(library_name=""), "library_name: expected a non-empty string"),
    (lambda m: m.update(base_model="discriminator"), "base_model: 'discriminator' is not a Hub model id"),
    (lambda m: m.update(widget=[{"text": "ACGTACGT"}]), "widget[0].text: a fill-mask example must contain"),
    (lambda m: m.update(widget=["ACGT[MASK]"]), "widget[0]: expected a mapping"),
    (lambda m: m.update(widget=[{"text": "AC[MASK]", "titel": "x"}]), "widget[0]: unknown key(s) ['titel']"),
    (lambda m: m.update(widget=[]), "widget: expected a non-empty list"),
    (lambda m: m["model-index"][0].update(name=""), "model-index[0].name: expected a non-empty string"),
    (lambda m: m["model-index"][0]["results"][0].update(metrics=[]), "results[0].metrics: expected a non-empty"),
    (lambda m: m["model-index"][0]["results"][0]["metrics"][0].update(value=float("nan")),
     "metrics[0].value: expected a finite number"),
    (lambda m: m["model-index"][0]["results"][0]["metrics"][0].pop("type"), "metrics[0].type: expected"),
    (lambda m: m["model-index"][0]["results"][0]["task"].update(type="dna"), "task.type: expected a Hub task id"),
    (lambda m: m["model-index"][0]["results"][0]["dataset"].pop("name"), "dataset.name: expected a non-empty"),
    (lambda m: m.update({"model-index": {"name": "x"}}), "model-index: expected a non-empty list"),
])
def test_broken_metadata_fails_naming_the_field(edit, problem):
    assert metadata_problems(VALID) == []
    metadata = broken(edit)
    problems = metadata_problems(metadata)
    assert any(problem in p for p in problems), problems
    with pytest.raises(CardMetadataError, match="model card metadata: "):
        check_metadata(metadata)


def test_render_refuses_a_non_nucel_architecture():
    with pytest.raises(ValueError, match="architecture 'BertModel' is not a NucEL head"):
        render_card(tiny_config(architectures=["BertModel"]), 1000, "org/x")


def test_card_metadata_and_body_for_users_of_the_hub():
    """base_model draws the Hub's model tree; datasets only as given; no local path in the body; a citation;
    fill-mask asks for the four bases; the pooling is stated."""
    finetuning = {"task": "tata", "label_type": "multi-class", "label_names": ["0", "1"],
                  "model": "/home/someone/private/runs/demo/discriminator",
                  "data": {"train": {"rows": 10, "sha256": "a" * 64}},
                  "config": {"lr": 3e-5, "batch_size": 32, "warmup_steps": 50, "eval_steps": 200, "max_steps": 100},
                  "seeds": [{"seed": 1}]}
    card = render_card(tiny_config(architectures=["NucELForSequenceClassification"]), 1000, "org/x",
                       finetuning=finetuning, base_model="org/nucel-base", datasets=["org/my-promoters"])
    metadata = card.data.to_dict()
    assert metadata["base_model"] == "org/nucel-base" and metadata["datasets"] == ["org/my-promoters"]
    assert "/home/someone" not in str(card) and "from [`org/nucel-base`](https://huggingface.co/org/nucel-base)" \
        in card.text
    local = render_card(tiny_config(architectures=["NucELForSequenceClassification"]), 1000, "org/x",
                        finetuning=finetuning)
    assert "base_model" not in local.data.to_dict() and "/home/someone" not in str(local)
    assert "from a NucEL discriminator pretrained with this package (not on the Hub)" in local.text
    assert "`discriminator`" not in local.text
    with pytest.raises(ValueError, match="base_model 'discriminator': not a Hub id"):
        render_card(tiny_config(architectures=["NucELModel"]), 1000, "org/x", base_model="discriminator")
    assert "## Citation" in card.text and "clark2020electra" in card.text
    assert "`classifier_pooling: mean` (recommended" in card.text
    masked = render_card(tiny_config(architectures=["NucELForMaskedLM"]), 1000, "org/g")
    assert 'targets=["A", "C", "G", "T"]' in masked.text
