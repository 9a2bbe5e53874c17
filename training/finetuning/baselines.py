"""The models every pretrained encoder is compared against, trained by the same runner on the same splits.

- `onehot-cnn`: a one-hot convolutional network of the Genomic Benchmarks / Tang & Koo kind (two convolution
  blocks, global max pooling, a dense layer). It knows nothing but the task's training data.
- Frozen probes (Tang & Koo, 2024): a pretrained encoder with every weight frozen, its embeddings (a chosen
  layer) fed to a linear head (logistic regression / ridge regression through the loss: cross-entropy, BCE or
  MSE, with weight decay as the L2 penalty) or to the same CNN over per-token embeddings. Only the head learns,
  so the score measures what pretraining put into the embeddings.
"""

import types

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from nucel.modeling_nucel.modeling_nucel import classification_loss
from nucel.tokenization import alphabet

PROBES = ("linear", "cnn")


class SequenceCNNConfig(PretrainedConfig):
    """Conv(k=19) -> BN -> ReLU -> max-pool(4) -> Conv(k=7) -> BN -> ReLU -> global max-pool -> dense -> output."""

    model_type = "nucel-sequence-cnn"

    def __init__(self, input_channels=4, channels=(64, 128), kernel_sizes=(19, 7), pool_size=4, dense_size=128,
                 dropout=0.2, vocab_size=alphabet.VOCAB_SIZE, **kwargs):
        self.input_channels = input_channels
        self.channels = list(channels)
        self.kernel_sizes = list(kernel_sizes)
        self.pool_size = pool_size
        self.dense_size = dense_size
        self.dropout = dropout
        self.vocab_size = vocab_size
        super().__init__(**kwargs)


def one_hot_table(vocab_size=alphabet.VOCAB_SIZE):
    """Token id -> 4 channels: A C G T one-hot, N a uniform 0.25, specials and padding all zero."""
    table = torch.zeros(vocab_size, 4)
    for channel, token_id in enumerate(alphabet.NUCLEOTIDE_IDS):
        table[token_id, channel] = 1.0
    table[alphabet.N_ID] = 0.25
    return table


class SequenceCNNForSequenceClassification(PreTrainedModel):
    """The CNN on one-hot DNA (`input_ids`) or on per-token embeddings (`inputs_embeds`, for the CNN probe)."""

    config_class = SequenceCNNConfig
    main_input_name = "input_ids"

    def __init__(self, config):
        super().__init__(config)
        self.register_buffer("one_hot", one_hot_table(config.vocab_size), persistent=False)
        self.convolutions, self.norms, width = nn.ModuleList(), nn.ModuleList(), config.input_channels
        for channels, kernel in zip(config.channels, config.kernel_sizes):
            self.convolutions.append(nn.Conv1d(width, channels, kernel, padding=kernel // 2))
            self.norms.append(nn.BatchNorm1d(channels))
            width = channels
        self.pool = nn.MaxPool1d(config.pool_size, ceil_mode=True)
        self.dense = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(width, config.dense_size), nn.ReLU(),
                                   nn.Dropout(config.dropout), nn.Linear(config.dense_size, config.num_labels))
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, SequenceCNNForSequenceClassification):
            module.one_hot.copy_(one_hot_table(module.config.vocab_size))

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, labels=None, **unused):
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("SequenceCNNForSequenceClassification.forward: pass exactly one of input_ids or "
                             "inputs_embeds")
        features = self.one_hot[input_ids] if inputs_embeds is None else inputs_embeds
        if attention_mask is None:
            attention_mask = torch.ones(features.shape[:2], dtype=torch.long, device=features.device)
        # Padding is zeroed after every block (as the convolution's own zero padding would be), so a padded
        # batch gives each sequence the output it gets alone.
        real = attention_mask.to(features.dtype).unsqueeze(1)
        hidden = features.transpose(1, 2) * real
        for i, (convolution, norm) in enumerate(zip(self.convolutions, self.norms)):
            hidden = torch.relu(norm(convolution(hidden))) * real
            if i < len(self.convolutions) - 1:
                hidden, real = self.pool(hidden), self.pool(real)
                hidden = nn.functional.dropout(hidden, self.config.dropout / 2, self.training)
        pooled = hidden.amax(-1)  # after ReLU and masking, padding (zeros) never exceeds a real position
        logits = self.dense(pooled)
        loss = classification_loss(self.config, logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


class FrozenEncoderProbe(nn.Module):
    """A frozen encoder + a trainable head on one layer's embeddings (`probe`: linear | cnn)."""

    def __init__(self, encoder, probe, num_labels, problem_type, layer=-1):
        super().__init__()
        if probe not in PROBES:
            raise ValueError(f"--probe {probe!r}: expected one of {', '.join(PROBES)}")
        layers = encoder.config.num_hidden_layers
        if not -(layers + 1) <= layer <= layers:
            raise ValueError(f"--probe-layer {layer}: the encoder has layers 0 (embeddings) to {layers} "
                             f"(or -1 for the last)")
        self.encoder = encoder.requires_grad_(False).eval()
        self.layer, self.probe = layer, probe
        self.config = types.SimpleNamespace(problem_type=problem_type, num_labels=num_labels, probe=probe,
                                            layer=layer, use_return_dict=True)
        hidden = encoder.config.hidden_size
        if probe == "linear":
            self.head = nn.Linear(hidden, num_labels)
        else:
            self.head = SequenceCNNForSequenceClassification(SequenceCNNConfig(
                input_channels=hidden, num_labels=num_labels, problem_type=problem_type))

    def train(self, mode=True):
        super().train(mode)
        self.encoder.eval()  # frozen means no dropout either: the embeddings are those users will extract
        return self

    @torch.no_grad()
    def embeddings(self, input_ids, attention_mask):
        """Per-token embeddings of the chosen layer: -1 / the last = the final (normed) output, 0 = token embeddings."""
        last = self.layer in (-1, self.encoder.config.num_hidden_layers)
        outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=not last,
                               return_dict=True)
        return outputs.last_hidden_state if last else outputs.hidden_states[self.layer]

    def forward(self, input_ids, attention_mask=None, labels=None, **unused):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        states = self.embeddings(input_ids, attention_mask)
        if self.probe == "linear":
            real = attention_mask.to(states.dtype).unsqueeze(-1)
            logits = self.head((states * real).sum(1) / real.sum(1))  # mean over real tokens
        else:
            logits = self.head(inputs_embeds=states, attention_mask=attention_mask).logits
        loss = classification_loss(self.config, logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)
