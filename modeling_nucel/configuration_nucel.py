"""NucEL configuration: a ModernBERT backbone plus the ELECTRA generator/discriminator settings.

This file is also Hub remote code: it imports only the standard library and transformers.
"""

import copy
from typing import Any, List, Optional, Sequence

from transformers import ModernBertConfig, PretrainedConfig

# Ids of the single-nucleotide alphabet (tokenization/alphabet.py is the source of truth; a test pins them equal).
# The remote-code files cannot import the tokenization package, so the defaults are restated here.
_DEFAULT_SPECIAL_IDS = {"pad_token_id": 0, "unk_token_id": 1, "cls_token_id": 2, "sep_token_id": 3, "mask_token_id": 4}
_DEFAULT_NUCLEOTIDE_IDS = (5, 6, 7, 8)  # A C G T
REPLACED_TOKEN_HEADS = ("prediction", "linear")
# NucEL fields a stock ModernBertConfig has no meaning for. A stock export keeps them as inert extra keys, so
# `from_modernbert_config` recovers them.
NUCEL_ONLY_FIELDS = ("unk_token_id", "mask_token_id", "nucleotide_token_ids", "generator_hidden_size",
                     "generator_num_hidden_layers", "generator_num_attention_heads", "generator_intermediate_size",
                     "mask_rate", "discriminator_weight", "generator_temperature", "share_embeddings",
                     "replaced_token_head")
_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_python", "relu", "silu", "swish", "quick_gelu")


class NucELConfig(PretrainedConfig):
    r"""Configuration of a NucEL model.

    Backbone fields have ModernBERT's names and meanings (`to_modernbert_config()` gives the equivalent
    `transformers.ModernBertConfig`). The defaults are the published NucEL discriminator: 512 hidden x 22 layers,
    16 heads, GeGLU FFN 2048 (92.3M parameters), 128-bp local window, a global layer every 3rd layer.

    Args:
        vocab_size: size of the token embedding (the nucleotide tokenizer's 16: 5 specials, A C G T N, reserved).
        hidden_size, intermediate_size, num_hidden_layers, num_attention_heads: discriminator/backbone shape.
            The MLP is GeGLU, so its input projection is `hidden_size x 2*intermediate_size`.
        hidden_activation: activation of the GeGLU gate and of the prediction heads.
        max_position_embeddings: longest sequence (tokens, specials included) the model accepts.
        norm_eps: LayerNorm epsilon (LayerNorms have no bias).
        local_attention: total sliding window in tokens (= bp); a local-layer token sees `local_attention // 2`
            positions on each side. Must be even.
        global_attn_every_n_layers: layer `i` is global when `i % n == 0`, local otherwise.
        global_rope_theta, local_rope_theta: RoPE base of global and local layers.
        embedding_dropout, attention_dropout, mlp_dropout: dropout rates.
        initializer_range, initializer_cutoff_factor: truncated-normal init (as ModernBERT).
        pad/unk/cls/sep/mask_token_id: special token ids; never labelled as "replaced" by the discriminator.
        nucleotide_token_ids: ids of A, C, G, T: the generator samples replacements only among these.
        classifier_pooling: "mean" (default) or "cls" pooling for sequence classification. Mean: ELECTRA never
            trains the [CLS] state on its own, so a fine-tune pooling it starts from an untrained summary.
        classifier_dropout, classifier_activation: classification head settings.
        decoder_bias: bias of the MLM decoder (ModernBERT has one).
        sparse_prediction: MLM logits only at labelled positions when labels are given (as ModernBERT).
        generator_hidden_size, generator_num_hidden_layers, generator_num_attention_heads,
        generator_intermediate_size: the ELECTRA generator's shape. Unset, half the discriminator's width, heads,
            depth and FFN (the published 256 x 11 for 512 x 22); saved configs keep the values they hold.
        mask_rate: fraction of tokens the training masker selects (recorded here so exports document the recipe).
        discriminator_weight: `loss = generator_loss + discriminator_weight * discriminator_loss` (ELECTRA: 50).
        generator_temperature: softmax temperature when sampling replacements (> 0; 1.0 samples the generator).
        replaced_token_head: the discriminator's replaced-token head: "prediction" (ELECTRA's: dense, activation,
            norm, then a linear layer to one logit; what this package pretrains) or "linear" (one linear layer on the
            final states: the authors' released NucEL discriminator, imported by `nucel-convert`).
        share_embeddings: tie generator and discriminator token embeddings, ELECTRA style (the generator reads the
            discriminator's table through a learned `hidden_size -> generator_hidden_size` projection).
            Default False. With a 16-token vocabulary the table is 16 x 512 = 8k parameters, so sharing saves no
            memory. Measured (`benchmarks/share_embeddings.py`: 128x4 discriminator, 64x2 generator, 600 steps on
            the hg38 slice, one seed, ModernBERT init): held-out discriminator AUC 0.633 shared vs 0.600 unshared,
            generator accuracy 0.298 vs 0.306. One seed cannot yet separate that from noise. Unshared, the
            generator exports exactly as trained (no folding of a projected table), so that stays the default until
            more seeds or a larger run confirm the gain.
    """

    model_type = "nucel"

    def __init__(
        self,
        vocab_size: int = 16,
        hidden_size: int = 512,
        intermediate_size: int = 2048,
        num_hidden_layers: int = 22,
        num_attention_heads: int = 16,
        hidden_activation: str = "gelu",
        max_position_embeddings: int = 2048,
        initializer_range: float = 0.02,
        initializer_cutoff_factor: float = 2.0,
        norm_eps: float = 1e-5,
        local_attention: int = 128,
        global_attn_every_n_layers: int = 3,
        global_rope_theta: float = 160000.0,
        local_rope_theta: float = 10000.0,
        embedding_dropout: float = 0.0,
        attention_dropout: float = 0.0,
        mlp_dropout: float = 0.0,
        pad_token_id: Optional[int] = _DEFAULT_SPECIAL_IDS["pad_token_id"],
        unk_token_id: Optional[int] = _DEFAULT_SPECIAL_IDS["unk_token_id"],
        cls_token_id: Optional[int] = _DEFAULT_SPECIAL_IDS["cls_token_id"],
        sep_token_id: Optional[int] = _DEFAULT_SPECIAL_IDS["sep_token_id"],
        mask_token_id: Optional[int] = _DEFAULT_SPECIAL_IDS["mask_token_id"],
        nucleotide_token_ids: Sequence[int] = _DEFAULT_NUCLEOTIDE_IDS,
        classifier_pooling: str = "mean",
        classifier_dropout: float = 0.0,
        classifier_activation: str = "gelu",
        decoder_bias: bool = True,
        sparse_prediction: bool = False,
        generator_hidden_size: Optional[int] = None,
        generator_num_hidden_layers: Optional[int] = None,
        generator_num_attention_heads: Optional[int] = None,
        generator_intermediate_size: Optional[int] = None,
        mask_rate: float = 0.15,
        discriminator_weight: float = 50.0,
        generator_temperature: float = 1.0,
        share_embeddings: bool = False,
        replaced_token_head: str = "prediction",
        tie_word_embeddings: bool = True,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.hidden_activation = hidden_activation
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.initializer_cutoff_factor = initializer_cutoff_factor
        self.norm_eps = norm_eps
        self.local_attention = local_attention
        self.global_attn_every_n_layers = global_attn_every_n_layers
        self.global_rope_theta = global_rope_theta
        self.local_rope_theta = local_rope_theta
        self.embedding_dropout = embedding_dropout
        self.attention_dropout = attention_dropout
        self.mlp_dropout = mlp_dropout
        self.pad_token_id = pad_token_id
        self.unk_token_id = unk_token_id
        self.cls_token_id = cls_token_id
        self.sep_token_id = sep_token_id
        self.mask_token_id = mask_token_id
        self.nucleotide_token_ids = list(nucleotide_token_ids)
        self.classifier_pooling = classifier_pooling
        self.classifier_dropout = classifier_dropout
        self.classifier_activation = classifier_activation
        self.decoder_bias = decoder_bias
        self.sparse_prediction = sparse_prediction
        # Unset: half the discriminator (the published 256 x 11 for 512 x 22); the head size stays the
        # discriminator's, so an odd head count still gives a valid shape.
        shape_is_valid = all(isinstance(v, int) and v > 0 for v in (hidden_size, num_attention_heads))
        half_heads = max(1, num_attention_heads // 2) if shape_is_valid else None  # else validation names it
        self.generator_num_attention_heads = generator_num_attention_heads or half_heads
        self.generator_hidden_size = generator_hidden_size or (
            half_heads * (hidden_size // num_attention_heads) if shape_is_valid else None)
        self.generator_num_hidden_layers = generator_num_hidden_layers or max(1, num_hidden_layers // 2)
        self.generator_intermediate_size = generator_intermediate_size or max(1, intermediate_size // 2)
        self.mask_rate = mask_rate
        self.discriminator_weight = discriminator_weight
        self.generator_temperature = generator_temperature
        self.share_embeddings = share_embeddings
        self.replaced_token_head = replaced_token_head
        self.validate_nucel()  # before the base class, which reads derived views such as layer_types
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)

    # ------------------------------------------------------------------ validation
    def validate_nucel(self) -> None:
        """Raise `ValueError` naming the first field whose value cannot build a model."""

        def fail(field: str, expected: str) -> None:
            raise ValueError(f"NucELConfig.{field}={getattr(self, field)!r}: expected {expected}")

        for field in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                      "max_position_embeddings", "global_attn_every_n_layers", "generator_hidden_size",
                      "generator_num_hidden_layers", "generator_num_attention_heads", "generator_intermediate_size"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(field, "a positive integer")
        for hidden, heads in (("hidden_size", "num_attention_heads"),
                              ("generator_hidden_size", "generator_num_attention_heads")):
            if getattr(self, hidden) % getattr(self, heads):
                fail(hidden, f"a multiple of {heads}={getattr(self, heads)}")
            if (getattr(self, hidden) // getattr(self, heads)) % 2:
                fail(hidden, f"an even head size ({hidden} / {heads}) for rotary embeddings")
        if not isinstance(self.local_attention, int) or self.local_attention < 2 or self.local_attention % 2:
            fail("local_attention", "an even window of at least 2 tokens (the window is centred: window/2 per side)")
        if self.local_attention > self.max_position_embeddings:
            fail("local_attention", f"at most max_position_embeddings={self.max_position_embeddings}")
        for field in ("global_rope_theta", "local_rope_theta", "norm_eps", "initializer_range"):
            if not getattr(self, field) > 0:
                fail(field, "a positive number")
        for field in ("embedding_dropout", "attention_dropout", "mlp_dropout", "classifier_dropout"):
            if not 0.0 <= getattr(self, field) < 1.0:
                fail(field, "a probability in [0, 1)")
        for field in ("hidden_activation", "classifier_activation"):
            if getattr(self, field) not in _ACTIVATIONS:
                fail(field, f"one of {', '.join(_ACTIVATIONS)}")
        if self.classifier_pooling not in ("cls", "mean"):
            fail("classifier_pooling", "'cls' or 'mean'")
        for field in ("pad_token_id", "unk_token_id", "cls_token_id", "sep_token_id", "mask_token_id"):
            value = getattr(self, field)
            if value is not None and not (isinstance(value, int) and 0 <= value < self.vocab_size):
                fail(field, f"None or a token id in [0, vocab_size={self.vocab_size})")
        ids = self.nucleotide_token_ids
        if len(ids) != 4 or len(set(ids)) != 4 or not all(isinstance(i, int) and 0 <= i < self.vocab_size for i in ids):
            fail("nucleotide_token_ids", f"4 distinct token ids (A, C, G, T) in [0, vocab_size={self.vocab_size})")
        if set(ids) & set(self.special_token_ids):
            fail("nucleotide_token_ids", "ids that are not special tokens")
        if not 0.0 < self.mask_rate < 1.0:
            fail("mask_rate", "a fraction in (0, 1)")
        if not self.discriminator_weight >= 0:
            fail("discriminator_weight", "a non-negative number")
        if not self.generator_temperature > 0:
            fail("generator_temperature", "a positive temperature")
        if self.replaced_token_head not in REPLACED_TOKEN_HEADS:
            fail("replaced_token_head", " or ".join(repr(kind) for kind in REPLACED_TOKEN_HEADS))

    # ------------------------------------------------------------------ derived views
    @property
    def special_token_ids(self) -> List[int]:
        """The special ids in use (never labelled as replaced, never sampled)."""
        names = ("pad_token_id", "unk_token_id", "cls_token_id", "sep_token_id", "mask_token_id")
        return sorted({getattr(self, name) for name in names if getattr(self, name) is not None})

    @property
    def layer_types(self) -> List[str]:
        """Per layer: "full_attention" (global) or "sliding_attention" (local), ModernBERT's rule and names."""
        n = self.global_attn_every_n_layers
        return ["full_attention" if i % n == 0 else "sliding_attention" for i in range(self.num_hidden_layers)]

    def generator_config(self) -> "NucELConfig":
        """The generator as a standalone NucEL config: the generator shape, everything else shared."""
        values = copy.deepcopy(self.to_dict())
        for field in ("model_type", "transformers_version", "architectures", "auto_map"):
            values.pop(field, None)
        values.update(hidden_size=self.generator_hidden_size, num_hidden_layers=self.generator_num_hidden_layers,
                      num_attention_heads=self.generator_num_attention_heads,
                      intermediate_size=self.generator_intermediate_size)
        # the generator attends the way the discriminator was asked to (from_pretrained / the constructor)
        return NucELConfig(**values, attn_implementation=getattr(self, "_attn_implementation_internal", None))

    @classmethod
    def from_modernbert_config(cls, modernbert_config: PretrainedConfig, **overrides: Any) -> "NucELConfig":
        """NucEL config equivalent to a `transformers.ModernBertConfig` (4.48 or 5.x layout).

        ModernBERT has no mask/unk/nucleotide ids: pass them in `overrides` when the vocabulary is not NucEL's.
        """
        stock = modernbert_config
        for field in ("attention_bias", "mlp_bias", "norm_bias", "classifier_bias"):
            if getattr(stock, field, False):
                raise ValueError(f"ModernBertConfig.{field}=True: NucEL layers have no biases")
        layer_types = getattr(stock, "layer_types", None)
        if layer_types:  # transformers 5.x: an explicit list, global layers are "full_attention"
            global_layers = [i for i, kind in enumerate(layer_types) if kind == "full_attention"]
            every_n = global_layers[1] if len(global_layers) > 1 else len(layer_types)
            if [i for i in range(len(layer_types)) if i % every_n == 0] != global_layers:
                raise ValueError(f"ModernBertConfig.layer_types={layer_types}: NucEL needs a global layer every "
                                 "n-th layer starting at layer 0")
            rope = stock.rope_parameters
            global_theta = rope["full_attention"]["rope_theta"]
            local_theta = rope["sliding_attention"]["rope_theta"]
        else:  # transformers 4.x
            every_n = stock.global_attn_every_n_layers
            global_theta, local_theta = stock.global_rope_theta, stock.local_rope_theta
        values = dict(
            vocab_size=stock.vocab_size, hidden_size=stock.hidden_size, intermediate_size=stock.intermediate_size,
            num_hidden_layers=stock.num_hidden_layers, num_attention_heads=stock.num_attention_heads,
            hidden_activation=stock.hidden_activation, max_position_embeddings=stock.max_position_embeddings,
            initializer_range=stock.initializer_range, initializer_cutoff_factor=stock.initializer_cutoff_factor,
            norm_eps=stock.norm_eps, local_attention=stock.local_attention, global_attn_every_n_layers=every_n,
            global_rope_theta=global_theta, local_rope_theta=local_theta,
            embedding_dropout=stock.embedding_dropout, attention_dropout=stock.attention_dropout,
            mlp_dropout=stock.mlp_dropout, pad_token_id=stock.pad_token_id, cls_token_id=stock.cls_token_id,
            sep_token_id=stock.sep_token_id, unk_token_id=None, mask_token_id=None,
            classifier_pooling=stock.classifier_pooling, classifier_dropout=stock.classifier_dropout,
            classifier_activation=stock.classifier_activation, decoder_bias=stock.decoder_bias,
            sparse_prediction=stock.sparse_prediction, tie_word_embeddings=stock.tie_word_embeddings,
            id2label=dict(stock.id2label), label2id=dict(stock.label2id), problem_type=stock.problem_type,
        )
        values.update({field: getattr(stock, field) for field in NUCEL_ONLY_FIELDS if hasattr(stock, field)})
        values.update(overrides)
        return cls(**values)

    def to_modernbert_config(self, keep_nucel_fields: bool = False) -> PretrainedConfig:
        """The equivalent `transformers.ModernBertConfig` of the backbone (works under transformers 4.48 and 5.x).
        `keep_nucel_fields`: carry NUCEL_ONLY_FIELDS along as extra keys (stock ModernBERT ignores them)."""
        extra = {field: getattr(self, field) for field in NUCEL_ONLY_FIELDS} if keep_nucel_fields else {}
        stock = ModernBertConfig(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
            hidden_activation=self.hidden_activation, max_position_embeddings=self.max_position_embeddings,
            initializer_range=self.initializer_range, initializer_cutoff_factor=self.initializer_cutoff_factor,
            norm_eps=self.norm_eps, norm_bias=False, attention_bias=False, mlp_bias=False,
            local_attention=self.local_attention, global_attn_every_n_layers=self.global_attn_every_n_layers,
            global_rope_theta=self.global_rope_theta, local_rope_theta=self.local_rope_theta,
            embedding_dropout=self.embedding_dropout, attention_dropout=self.attention_dropout,
            mlp_dropout=self.mlp_dropout, pad_token_id=self.pad_token_id, cls_token_id=self.cls_token_id,
            sep_token_id=self.sep_token_id, bos_token_id=self.cls_token_id, eos_token_id=self.sep_token_id,
            classifier_pooling=self.classifier_pooling, classifier_dropout=self.classifier_dropout,
            classifier_activation=self.classifier_activation, classifier_bias=False, decoder_bias=self.decoder_bias,
            sparse_prediction=self.sparse_prediction, tie_word_embeddings=self.tie_word_embeddings,
            id2label=dict(self.id2label), label2id=dict(self.label2id), problem_type=self.problem_type, **extra,
        )
        # transformers 5.x keeps only layer_types and rope_parameters, and 4.x would read its own defaults for these
        # names from a 5.x-saved config.json: set them, so a saved config says the same in both layouts.
        stock.global_attn_every_n_layers = self.global_attn_every_n_layers
        stock.global_rope_theta, stock.local_rope_theta = self.global_rope_theta, self.local_rope_theta
        return stock


__all__ = ["NucELConfig"]
