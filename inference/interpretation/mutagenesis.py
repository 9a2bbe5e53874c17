"""In-silico saturation mutagenesis (ISM): every base of a sequence changed to each other base, and what the model
says about each change.

`effects[i, b]` is the change in the model's reading when position i holds base b instead of the reference base
(0 in the reference's column). All three kinds of model are oriented the same way, so one picture reads the same:
**negative = the model disfavours the change**.

- classifier: the target class's log-odds, log(p / (1 - p)) (for two classes: the difference of the two class
  logits), or its probability (`value="probability"`); a regression head's output itself;
- generator: log p(b) - log p(reference) at position i masked (the masked-marginal score; one forward per
  position instead of three);
- discriminator: the change in the original-token logit at position i (minus the replaced-token logit): a base
  that looks replaced there gives a negative effect.

`importance[i]` is minus the mean effect of the three alternatives: how much the model relies on the reference
base at i. Mutants are batched, so a 1-kbp sequence takes 3,000 rows in batches of `batch_size`.
"""

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from nucel.inference.windows import check_sequence_length
from nucel.model_folder import HEAD_CLASSES, check_batch_size, load
from nucel.tokenization import alphabet
from nucel.tokenization.encoding import decode_bases, encode_sequence, reverse_complement
from nucel.tokenization.token_layout import TokenLayout

VALUES = ("logit", "probability")


@dataclass
class Mutagenesis:
    """ISM of one sequence."""

    name: str
    ids: np.ndarray  # (L,) token ids of the reference
    effects: np.ndarray  # (L, 4) over A, C, G, T; 0 at the reference base
    kind: str
    measure: str  # what an effect is a change of, for axis labels

    @property
    def sequence(self):
        return decode_bases(self.ids)

    @property
    def importance(self):
        """Minus the mean effect of the alternatives at each position (all four where the reference is not ACGT)."""
        is_reference = reference_columns(self.ids)
        alternatives = np.where(is_reference, 0.0, self.effects).sum(1)
        return -alternatives / (4 - is_reference.sum(1))

    def top_positions(self, k):
        """The 0-based positions of the k largest importances, largest first."""
        order = np.argsort(-self.importance, kind="stable")
        return order[:k]


def reference_columns(ids):
    """(L, 4) bool: True at each position's reference base."""
    return np.asarray(ids)[:, None] == np.asarray(alphabet.NUCLEOTIDE_IDS)[None, :]


def target_index(config, target):
    """--target as a class index: a label name or index; default the last class (the positive one of two)."""
    names = {str(name): int(index) for index, name in (config.id2label or {}).items()}
    if target is None:
        return config.num_labels - 1
    if str(target) in names:
        return names[str(target)]
    if str(target).lstrip("-").isdigit() and 0 <= int(target) < config.num_labels:
        return int(target)
    raise ValueError(f"--target {target}: not a class of this classifier (classes: "
                     f"{', '.join(f'{i}={n}' for n, i in sorted(names.items(), key=lambda item: item[1]))})")


class SaturationMutagenesis:
    """ISM with a loaded NucEL model (`kind`: classifier, generator or discriminator)."""

    def __init__(self, model: torch.nn.Module, kind: str, target: Union[int, str, None] = None, value: str = "logit",
                 batch_size: int = 64, reverse_complement_average: bool = False,
                 layout: Optional[TokenLayout] = None) -> None:
        if kind not in HEAD_CLASSES:
            raise ValueError(f"--head {kind}: expected one of {', '.join(HEAD_CLASSES)}")
        if not isinstance(model, HEAD_CLASSES[kind]):
            raise ValueError(f"--head {kind} needs a {HEAD_CLASSES[kind].__name__}, got {type(model).__name__}")
        if value not in VALUES:
            raise ValueError(f"--value {value}: expected one of {', '.join(VALUES)}")
        self.model, self.kind, self.value = model.eval(), kind, value
        self.layout = layout or TokenLayout.for_config(model.config)
        self.batch_size, self.reverse_complement_average = check_batch_size(batch_size), reverse_complement_average
        self.target = target_index(model.config, target) if kind == "classifier" else None

    @classmethod
    def from_pretrained(cls, model: str, head: str = "auto", device: Union[str, torch.device] = "auto",
                        dtype: str = "auto", **options) -> "SaturationMutagenesis":
        """From a fine-tuned classifier, a generator or discriminator export, or a pretraining run folder."""
        if head == "none":
            raise ValueError(f"--head none: mutagenesis reads a head; expected auto, {', '.join(HEAD_CLASSES)}")
        loaded = load(model, ("head",), device, dtype, head=head)
        return cls(loaded["head"], loaded.head, layout=loaded.layout, **options)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def measure(self) -> str:
        if self.kind == "generator":
            return "log p(base) - log p(reference), masked"
        if self.kind == "discriminator":
            return "original-token logit change"
        config = self.model.config
        label = (config.id2label or {}).get(self.target, self.target)
        if config.problem_type == "regression":
            return f"output {label} change"
        return f"class {label} {'log-odds' if self.value == 'logit' else 'probability'} change"

    def __call__(self, name: str, ids: Union[str, np.ndarray]) -> Mutagenesis:
        """ISM of one sequence: token ids (uint8) or text."""
        ids = encode_sequence(ids) if isinstance(ids, str) else np.asarray(ids, dtype=np.uint8)
        check_sequence_length(name, len(ids), self.model.config, layout=self.layout)
        effects = self.effects(ids)
        if self.reverse_complement_average:
            # Position i, base b on the plus strand is position L-1-i, complement(b) on the minus strand; the
            # columns A C G T complement to T G C A, the reversed order.
            effects = (effects + self.effects(reverse_complement(ids))[::-1, ::-1]) / 2
        return Mutagenesis(name, ids, effects.astype(np.float32), self.kind, self.measure)

    def effects(self, ids: np.ndarray) -> np.ndarray:
        if self.kind == "generator":
            return self._masked_marginals(ids)
        mutants, (positions, bases) = mutant_rows(ids)
        effects = np.zeros((len(ids), 4), dtype=np.float64)
        if self.kind == "classifier":
            values = np.concatenate([self._class_value(logits) for _, logits in self._batches(
                np.concatenate([ids[None, :], mutants]))])
            effects[positions, bases] = values[1:] - values[0]
        else:
            # The head's positive logit means "replaced": its negative is the original-token logit.
            reference = -next(self._batches(ids[None, :]))[1][0, 1:len(ids) + 1]
            mutated = np.concatenate([
                -logits[np.arange(len(logits)), positions[start:start + len(logits)] + 1]
                for start, logits in self._batches(mutants)])
            effects[positions, bases] = mutated - reference[positions]
        return effects

    def _class_value(self, logits):
        """The classifier's reading of each row: the target's log-odds or probability (or a regression output)."""
        config, logits = self.model.config, torch.from_numpy(logits)
        if config.problem_type == "regression":
            return logits[:, self.target].numpy()
        if config.problem_type == "multi_label_classification":
            log_odds = logits[:, self.target]
        else:
            log_p = F.log_softmax(logits, dim=-1)
            others = torch.cat([log_p[:, :self.target], log_p[:, self.target + 1:]], dim=1)
            log_odds = log_p[:, self.target] - torch.logsumexp(others, dim=1)
        return (torch.sigmoid(log_odds) if self.value == "probability" else log_odds).numpy()

    @torch.no_grad()
    def _batches(self, rows):
        """(index of the first row, float64 logits) of each batch of `rows` (one window each, one length)."""
        for start in range(0, len(rows), self.batch_size):
            input_ids, attention_mask = self.layout.batch(list(rows[start:start + self.batch_size]), self.device)
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
            yield start, logits.double().cpu().numpy()

    def _masked_marginals(self, ids):
        """log p over A, C, G, T at each position with that position masked, minus the reference's."""
        masked = np.repeat(ids[None, :], len(ids), axis=0)
        masked[np.arange(len(ids)), np.arange(len(ids))] = alphabet.MASK_ID  # the layout writes the model's id
        columns = list(self.layout.nucleotide_ids)
        log_p = np.concatenate([
            torch.from_numpy(logits[np.arange(len(logits)), np.arange(start, start + len(logits)) + 1][:, columns])
            .log_softmax(-1).numpy() for start, logits in self._batches(masked)])
        is_reference = reference_columns(ids)
        # A position whose reference is not A/C/G/T (N) is compared against the mean of the four.
        reference = np.where(is_reference.any(1), np.where(is_reference, log_p, 0.0).sum(1), log_p.mean(1))
        return log_p - reference[:, None]


def mutant_rows(ids):
    """Every single-base change of `ids` to another of A, C, G, T: (rows, (positions, base columns))."""
    alternatives = ~reference_columns(ids)
    positions, bases = np.nonzero(alternatives)
    rows = np.repeat(ids[None, :], len(positions), axis=0)
    rows[np.arange(len(positions)), positions] = np.asarray(alphabet.NUCLEOTIDE_IDS, dtype=np.uint8)[bases]
    return rows, (positions, bases)
