"""Publishing and conversion refuse what they must not carry or guess: code files that are not this package's,
and a source tensor of the wrong shape."""

import pytest
import torch
from conftest import one_line_exit

from nucel.hub_cards import convert, publish


@pytest.mark.slow
def test_publish_refuses_unknown_code_files(tmp_path, tiny_export):
    hub = tmp_path / "hub"
    publish.main(["--model", str(tiny_export / "discriminator"), "--output-dir", str(hub)])
    (hub / "helper.py").write_text("print('hello')\n")
    with pytest.raises(ValueError, match="helper.py: a code file that is not this package's own"):
        publish.main(["--model", str(tiny_export / "discriminator"), "--output-dir", str(hub)])


def test_convert_names_a_tensor_of_the_wrong_shape(tmp_path):
    import transformers
    from conftest import stock_config, write_source

    torch.manual_seed(0)
    state = transformers.ModernBertModel(stock_config()).state_dict()
    state["layers.1.attn.Wqkv.weight"] = torch.zeros(100, 64)
    source = write_source(tmp_path / "source", state, "ModernBertModel")
    message = one_line_exit(convert.cli, [source, str(tmp_path / "out")])
    assert message == (f"error: {source}/model.safetensors: weight layers.1.attn.Wqkv.weight has shape [100, 64], but "
                       "the ModernBERT its config.json describes expects [192, 64]")
    state["layers.1.attn.Wqkv.weight"] = torch.zeros(192, 64)
    state["embeddings.tok_embeddings.weight"] = torch.zeros(27, 32)
    source = write_source(tmp_path / "narrow", state, "ModernBertModel")
    message = one_line_exit(convert.cli, [source, str(tmp_path / "out")])
    assert message == (f"error: {source}/config.json: hidden_size=64, but the weights beside it have 32 "
                       "(embeddings.tok_embeddings.weight is [27, 32]): it does not describe these weights")
    assert not (tmp_path / "out").exists()
