"""How a model reads a window of DNA: `TokenLayout`, the map from this package's alphabet ids (the fast byte encoder,
tokenization/encoding.py) to one model's input ids, and the one place a window is framed (`[CLS] bases [SEP]`, or
`[CLS] bases` for a model trained without [SEP]).

A layout is read off a model folder's saved tokenizer and checked against its config, so every command feeds a
model exactly what `AutoTokenizer` would; this package's own tokenizer is `NATIVE` (the alphabet's ids unchanged).
"""

import os
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from transformers import PretrainedConfig, PreTrainedTokenizerBase

from nucel.tokenization import alphabet
from nucel.tokenization.hf_tokenizers import load_saved_tokenizer

PROBE = "ACGTN"  # one of each base, then N: the ids a single-nucleotide tokenizer must give one by one


@dataclass(frozen=True, eq=False)
class TokenLayout:
    """How this package's alphabet ids become one model's input ids, and what frames a window."""

    to_model: np.ndarray  # (alphabet.VOCAB_SIZE,) int64: the model's id of each alphabet id
    cls_id: int
    sep_id: Optional[int]  # None: windows end after the last base (the model never saw [SEP])
    pad_id: int
    mask_id: int
    nucleotide_ids: tuple  # the model's ids of A, C, G, T: the columns a masked-nucleotide head is read at

    @property
    def specials(self) -> int:
        """Tokens a window adds around its bases: [CLS], and [SEP] when the model was trained with one."""
        return 1 if self.sep_id is None else 2

    @property
    def template(self) -> str:
        return "[CLS] bases" if self.sep_id is None else "[CLS] bases [SEP]"

    @classmethod
    def native(cls) -> "TokenLayout":
        """This package's own tokenizer: the alphabet's ids unchanged, `[CLS] bases [SEP]`."""
        return cls.assemble(alphabet.PAD_ID, alphabet.UNK_ID, alphabet.CLS_ID, alphabet.SEP_ID, alphabet.MASK_ID,
                            alphabet.NUCLEOTIDE_IDS, alphabet.N_ID, sep_in_window=True)

    @classmethod
    def assemble(cls, pad_id: int, unk_id: int, cls_id: int, sep_id: Optional[int], mask_id: int, bases: Sequence[int],
                 n_id: int, sep_in_window: bool) -> "TokenLayout":
        """A layout from a model's ids; the alphabet's reserved ids (which text never yields) map to [UNK]."""
        to_model = np.full(alphabet.VOCAB_SIZE, unk_id, dtype=np.int64)
        for alphabet_id, model_id in ((alphabet.PAD_ID, pad_id), (alphabet.CLS_ID, cls_id),
                                      (alphabet.SEP_ID, unk_id if sep_id is None else sep_id),
                                      (alphabet.MASK_ID, mask_id), (alphabet.N_ID, n_id),
                                      *zip(alphabet.NUCLEOTIDE_IDS, bases)):
            to_model[alphabet_id] = model_id
        return cls(to_model, cls_id, sep_id if sep_in_window else None, pad_id, mask_id, tuple(bases))

    @classmethod
    def for_config(cls, config: PretrainedConfig, where: str = "the model") -> "TokenLayout":
        """The native layout, for a model whose config uses this package's alphabet; else one error line (a model
        over another id table needs the layout of its folder's tokenizer: `from_folder`)."""
        native = NATIVE
        wrong = {field: getattr(config, field, None) for field, value in
                 (("pad_token_id", native.pad_id), ("cls_token_id", native.cls_id), ("sep_token_id", native.sep_id),
                  ("mask_token_id", native.mask_id)) if getattr(config, field, None) != value}
        if list(getattr(config, "nucleotide_token_ids", native.nucleotide_ids)) != list(native.nucleotide_ids):
            wrong["nucleotide_token_ids"] = list(config.nucleotide_token_ids)
        if config.vocab_size != alphabet.VOCAB_SIZE or wrong:
            raise ValueError(f"{where}: a vocabulary of {config.vocab_size} tokens"
                             f"{f' with {wrong}' if wrong else ''}, not this package's single-nucleotide alphabet "
                             f"({alphabet.VOCAB_SIZE} tokens, tokenization/alphabet.py), and no saved tokenizer to "
                             "read its ids from (a converted model keeps its tokenizer.json beside config.json)")
        return native

    @classmethod
    def from_folder(cls, folder: str, config: PretrainedConfig, trust_remote_code: bool = False) -> "TokenLayout":
        """The layout of a model folder: read off its saved tokenizer (no code from the folder runs unless
        `trust_remote_code`) and checked against `config`; a folder saved without a tokenizer is read with this
        package's alphabet."""
        if not any(os.path.isfile(os.path.join(folder, name)) for name in ("tokenizer.json", "tokenizer_config.json")):
            return cls.for_config(config, f"--model {folder}")
        return cls.of_tokenizer(load_saved_tokenizer(folder, trust_remote_code), config, f"--model {folder}")

    @classmethod
    def of_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig,
                     where: str = "the tokenizer") -> "TokenLayout":
        """Ask `tokenizer` how it writes each base, N, IUPAC codes, lower case and a window; the byte encoder's ids
        map onto its answers, so both read any text the same way. Anything the byte encoder cannot mirror (k-mers,
        a window without a leading [CLS]) is one error line."""
        def ids(text, special=False):
            return list(tokenizer(text, add_special_tokens=special)["input_ids"])

        probed = ids(PROBE)
        if len(probed) != len(PROBE) or len(set(probed[:4])) != 4:
            raise ValueError(f"{where}: its tokenizer reads {PROBE!r} as {len(probed)} token(s) {probed}; these "
                             "commands read single-nucleotide models (one token per base): a k-mer model scores and "
                             "embeds tokens, not bases, so its numbers would not line up with positions")
        bases, n_id = probed[:4], probed[4]
        # Another model's config may name no nucleotide or mask ids: its tokenizer's answer is then the layout.
        if getattr(config, "nucleotide_token_ids", None) is not None and bases != list(config.nucleotide_token_ids):
            raise ValueError(f"{where}: its tokenizer gives A C G T the ids {bases}, but config.json's "
                             f"nucleotide_token_ids are {list(config.nucleotide_token_ids)}")
        for text, expected in ((PROBE.lower(), probed), ("RYSWKMBDHV", [n_id] * 10)):
            if ids(text) != expected:
                raise ValueError(f"{where}: its tokenizer reads {text!r} as {ids(text)}, not {expected}; the byte "
                                 "encoder folds lower case to upper and IUPAC codes to N, so they would disagree")
        cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        framed = ids("A", special=True)
        if framed not in ([cls_id, bases[0]], [cls_id, bases[0], sep_id]):
            raise ValueError(f"{where}: its tokenizer frames 'A' as {framed}; these commands read windows written "
                             f"[CLS] bases [SEP] or [CLS] bases (ids {cls_id}, {sep_id})")
        missing = [name for name in ("pad", "unk", "mask") if getattr(tokenizer, f"{name}_token_id") is None]
        if missing:
            raise ValueError(f"{where}: its tokenizer has no {' / '.join(missing)} token")
        if (getattr(config, "mask_token_id", None) not in (None, tokenizer.mask_token_id)
                or getattr(config, "cls_token_id", None) not in (None, cls_id)):
            raise ValueError(f"{where}: its tokenizer's [CLS]/[MASK] ids {cls_id}/{tokenizer.mask_token_id} differ "
                             f"from config.json's {config.cls_token_id}/{config.mask_token_id}")
        layout = cls.assemble(tokenizer.pad_token_id, tokenizer.unk_token_id, cls_id, sep_id,
                              tokenizer.mask_token_id, bases, n_id, sep_in_window=len(framed) == 3)
        if layout.to_model.max() >= config.vocab_size:
            raise ValueError(f"{where}: its tokenizer gives id {int(layout.to_model.max())}, outside the model's "
                             f"{config.vocab_size}-token embedding")
        return layout

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, TokenLayout) and np.array_equal(self.to_model, other.to_model)
                and (self.cls_id, self.sep_id, self.pad_id, self.mask_id, self.nucleotide_ids)
                == (other.cls_id, other.sep_id, other.pad_id, other.mask_id, other.nucleotide_ids))

    def frame(self, piece: np.ndarray) -> np.ndarray:
        """The one window framing: alphabet ids (any integer array) -> `[CLS] piece [SEP]` (no [SEP] where the
        model had none) in the model's ids, int64 (len(piece) + specials). Pretraining windows, the study's
        calibration batches and every inference command frame their windows here."""
        framed = np.empty(len(piece) + self.specials, dtype=np.int64)
        framed[0] = self.cls_id
        framed[1:len(piece) + 1] = self.to_model[np.asarray(piece, dtype=np.intp)]
        if self.sep_id is not None:
            framed[-1] = self.sep_id
        return framed

    def batch(self, pieces: Sequence[np.ndarray],
              device: Union[str, torch.device]) -> Tuple[torch.Tensor, torch.Tensor]:
        """uint8 alphabet-id arrays -> (input_ids, attention_mask), each (len(pieces), longest framed piece), of
        framed rows right-padded with the model's [PAD]."""
        width = max(len(piece) for piece in pieces) + self.specials
        input_ids = np.full((len(pieces), width), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(pieces), width), dtype=np.int64)
        for row, piece in enumerate(pieces):
            framed = self.frame(piece)
            input_ids[row, :len(framed)] = framed
            attention_mask[row, :len(framed)] = 1
        return torch.from_numpy(input_ids).to(device), torch.from_numpy(attention_mask).to(device)

    def max_bases(self, config: PretrainedConfig) -> int:
        """The most bases one window may hold: the position limit less the window's special tokens."""
        return config.max_position_embeddings - self.specials


NATIVE = TokenLayout.native()  # this package's own tokenizer
