import pytest
import torch
import transformers

from nucel.modeling_nucel import NucELConfig, NucELModel


@pytest.mark.parametrize("overrides, field", [
    (dict(hidden_size=100, num_attention_heads=3), "hidden_size"),
    (dict(hidden_size=96, num_attention_heads=32), "hidden_size"),  # odd head size: no RoPE
    (dict(local_attention=127), "local_attention"),
    (dict(local_attention=4096, max_position_embeddings=1024), "local_attention"),
    (dict(generator_hidden_size=250, generator_num_attention_heads=8), "generator_hidden_size"),
    (dict(num_hidden_layers=0), "num_hidden_layers"),
    (dict(global_attn_every_n_layers=0), "global_attn_every_n_layers"),
    (dict(mask_rate=0.0), "mask_rate"),
    (dict(discriminator_weight=-1.0), "discriminator_weight"),
    (dict(generator_temperature=0.0), "generator_temperature"),
    (dict(replaced_token_head="dense"), "replaced_token_head"),
    (dict(classifier_pooling="max"), "classifier_pooling"),
    (dict(hidden_activation="tanhh"), "hidden_activation"),
    (dict(nucleotide_token_ids=[5, 6, 7]), "nucleotide_token_ids"),
    (dict(nucleotide_token_ids=[0, 6, 7, 8]), "nucleotide_token_ids"),  # pad is special
    (dict(mask_token_id=99), "mask_token_id"),
    (dict(attention_dropout=1.5), "attention_dropout"),
])
def test_invalid_values_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=rf"NucELConfig\.{field}="):
        NucELConfig(**overrides)


def test_defaults_are_the_published_discriminator():
    config = NucELConfig()
    with torch.device("meta"):
        model = NucELModel(config)
    n_params = sum(p.numel() for p in model.parameters())
    assert round(n_params / 1e6, 1) == 92.3
    assert config.layer_types[:4] == ["full_attention", "sliding_attention", "sliding_attention", "full_attention"]
    assert (config.generator_hidden_size, config.generator_num_hidden_layers) == (256, 11)
    assert config.discriminator_weight == 50.0 and config.local_attention == 128


def test_generator_config_shares_everything_but_the_shape(make_config):
    config = make_config(local_attention=32, vocab_size=24)
    generator = config.generator_config()
    assert (generator.hidden_size, generator.num_hidden_layers, generator.num_attention_heads,
            generator.intermediate_size) == (32, 2, 2, 48)
    assert generator.local_attention == 32 and generator.vocab_size == 24


def test_modernbert_config_round_trip(make_config):
    config = make_config(global_attn_every_n_layers=2, local_rope_theta=5000.0, global_rope_theta=80000.0)
    stock = config.to_modernbert_config()
    assert isinstance(stock, transformers.ModernBertConfig)
    back = NucELConfig.from_modernbert_config(stock, unk_token_id=1, mask_token_id=4)
    for field in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "local_attention",
                  "global_attn_every_n_layers", "global_rope_theta", "local_rope_theta", "norm_eps", "vocab_size",
                  "pad_token_id", "cls_token_id", "sep_token_id", "mask_token_id"):
        assert getattr(back, field) == getattr(config, field), field


def test_modernbert_with_biases_is_refused(make_config):
    stock = make_config().to_modernbert_config()
    stock.mlp_bias = True
    with pytest.raises(ValueError, match="ModernBertConfig.mlp_bias"):
        NucELConfig.from_modernbert_config(stock)


def test_config_save_load(tmp_path, make_config):
    config = make_config(nucleotide_token_ids=[6, 7, 8, 9])
    config.save_pretrained(tmp_path)
    loaded = transformers.AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, NucELConfig) and loaded.nucleotide_token_ids == [6, 7, 8, 9]
