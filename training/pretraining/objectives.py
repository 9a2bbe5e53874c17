"""The pretraining objectives, one object each: the model it trains, the loss parts it logs, what evaluation reads
from its output, the encoders each token passes through (for FLOPs and memory) and what it exports. The loop,
the compute estimate and the config all read this table; a third objective is one more class here.

    electra   NucELForPreTraining: a generator fills the masked bases, the discriminator labels every position.
    mlm       NucELForMaskedLM with the discriminator's shape: the baseline at equal compute.
"""

import os

from torch import nn

from nucel.modeling_nucel import NucELForMaskedLM, NucELForPreTraining
from nucel.tokenization.hf_tokenizers import load_tokenizer, save_tokenizer


def linear_weights(module):
    """Weights of every matmul in `module` (what a token multiplies through)."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


# Every objective's loss parts, one slot each in the running sums a checkpoint holds (`interval` in progress.json):
# a new part takes a new slot here.
LOSS_PART_SLOTS = ("generator_loss", "discriminator_loss")


class Electra:
    name = "electra"
    loss_parts = ("generator_loss", "discriminator_loss")  # logged beside the loss
    eval_prefix = "eval_generator"
    detects_replacements = True  # evaluation also scores the discriminator

    def build(self, model_config):
        return NucELForPreTraining(model_config)

    def masked_logits(self, output):
        return output.generator_logits

    def encoders(self, model):
        """(config, matmul weights) of each encoder every token passes through: discriminator and generator."""
        generator = linear_weights(model.generator)
        return [(model.config, linear_weights(model) - generator), (model.config.generator_config(), generator)]

    def export(self, model, output_dir):
        return model.save_components(output_dir)


class MaskedLanguageModel:
    name = "mlm"
    loss_parts = ()
    eval_prefix = "eval_mlm"
    detects_replacements = False

    def build(self, model_config):
        model_config.sparse_prediction = True  # logits only at the masked positions, like the generator
        return NucELForMaskedLM(model_config)

    def masked_logits(self, output):
        return output.logits

    def encoders(self, model):
        return [(model.config, linear_weights(model))]

    def export(self, model, output_dir):
        model.config.sparse_prediction = False  # an exported MLM returns logits at every position, as users expect
        path = os.path.join(output_dir, "mlm")
        model.save_pretrained(path)
        return {"mlm": path}


OBJECTIVES = {objective.name: objective for objective in (Electra(), MaskedLanguageModel())}


def export_with_tokenizer(objective, model, output_dir):
    """Hub-ready folders of the trained `model` with the nucleotide tokenizer in each; returns {name: path}."""
    paths = objective.export(model, output_dir)
    tokenizer = load_tokenizer("nucleotide", model_max_length=model.config.max_position_embeddings)
    for path in paths.values():
        save_tokenizer(tokenizer, path)
    return paths
