"""Sharded FSDP checkpoints (`pytorch_model_fsdp_0/`, `optimizer_0/`), checked before they are read.

Each is a torch.distributed.checkpoint (DCP) save: `__<rank>_<i>.distcp` data files and a `.metadata` pickle. DCP
(torch 2.13, filesystem.py) reads `.metadata` with plain `pickle.load`, and each non-tensor entry (the optimizer's
hyperparameters) with `torch.load(weights_only=False)`; only tensors are read with `weights_only=True`. So before
DCP opens a folder, `check_dcp_folder` reads `.metadata` with an unpickler that builds DCP's own metadata records,
`torch.Size`, dtypes, layouts and paths and refuses any other global, checks that every entry it lists lies in a
data file of the folder (no other path, no compression or other transform), and loads every non-tensor entry with
`torch.load(weights_only=True)`: a crafted `.metadata` or entry is refused with one line and nothing in it runs.
"""

import io
import os
import pickle
import re

import torch
from torch.distributed.checkpoint.filesystem import _StorageInfo
from torch.distributed.checkpoint.metadata import BytesStorageMetadata, Metadata, MetadataIndex

from nucel.safe_loading import first_line

DCP_METADATA_FILE = ".metadata"
DCP_DATA_FILE = re.compile(r"__\d+_\d+\.distcp")

# The globals a DCP `.metadata` pickle names (torch 2.13): DCP's own records, torch.Size, dtypes (checked apart),
# the layout lookup, and the path it was saved to. Building these runs no code of the file's choosing.
DCP_METADATA_GLOBALS = frozenset(
    {("torch.distributed.checkpoint.metadata", name) for name in (
        "Metadata", "MetadataIndex", "StorageMeta", "TensorStorageMetadata", "BytesStorageMetadata",
        "ChunkStorageMetadata", "TensorProperties", "_MEM_FORMAT_ENCODING")}
    | {("torch.distributed.checkpoint.filesystem", "_StorageInfo"), ("torch", "Size"),
       ("torch.serialization", "_get_layout"), ("pathlib", "PosixPath"), ("pathlib", "WindowsPath"),
       ("pathlib", "PurePosixPath"), ("pathlib", "PureWindowsPath")})


class _DcpMetadataUnpickler(pickle.Unpickler):
    """Unpickles a DCP `.metadata` file, refusing every global but DCP_METADATA_GLOBALS and torch dtypes."""

    def find_class(self, module, name):
        if (module, name) in DCP_METADATA_GLOBALS or (
                module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not part of checkpoint metadata")


def read_dcp_metadata(path):
    """A DCP `.metadata` file's Metadata, read without building anything DCP_METADATA_GLOBALS does not name."""

    if not os.path.isfile(path) or os.path.islink(path):
        raise ValueError(f"{path}: missing (the index of this sharded checkpoint)")
    try:
        with open(path, "rb") as handle:
            metadata = _DcpMetadataUnpickler(handle).load()
    except pickle.UnpicklingError as failure:
        raise ValueError(f"{path}: refused: it holds Python objects other than checkpoint metadata, which could run "
                         f"code when loaded ({first_line(failure)})") from None
    except (EOFError, AttributeError, TypeError, ValueError, IndexError, KeyError, OSError) as failure:
        raise ValueError(f"{path}: truncated or corrupt ({first_line(failure)})") from None
    if not isinstance(metadata, Metadata):
        raise ValueError(f"{path}: not the metadata of a torch.distributed.checkpoint save")
    return metadata


def check_dcp_folder(folder):
    """Check a DCP folder (a sharded FSDP model or optimizer) before torch.distributed.checkpoint reads it: only
    `.metadata` and `__<rank>_<i>.distcp` files; the metadata as `read_dcp_metadata` allows; every entry inside a
    data file of the folder, untransformed; every non-tensor entry (which DCP loads with weights_only=False)
    loading with `torch.load(weights_only=True)`. Tensor entries DCP itself loads with weights_only=True."""

    sizes = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if (name != DCP_METADATA_FILE and not DCP_DATA_FILE.fullmatch(name)) or os.path.islink(path) \
                or not os.path.isfile(path):
            raise ValueError(f"{path}: refused: not a file of a sharded checkpoint (which holds only "
                             f"{DCP_METADATA_FILE} and __<rank>_<i>.distcp files; remove it if you put it there)")
        sizes[name] = os.path.getsize(path)
    metadata_path = os.path.join(folder, DCP_METADATA_FILE)
    metadata = read_dcp_metadata(metadata_path)
    entries = metadata.state_dict_metadata
    if not isinstance(entries, dict) or not isinstance(metadata.storage_data, dict):
        raise ValueError(f"{metadata_path}: not the metadata of a torch.distributed.checkpoint save")
    for index, where in metadata.storage_data.items():
        if not isinstance(index, MetadataIndex) or not isinstance(where, _StorageInfo) \
                or not isinstance(where.relative_path, str) or where.relative_path not in sizes \
                or where.relative_path == DCP_METADATA_FILE or where.transform_descriptors \
                or not isinstance(where.offset, int) or not isinstance(where.length, int) \
                or where.offset < 0 or where.length < 0 or where.offset + where.length > sizes[where.relative_path]:
            raise ValueError(f"{metadata_path}: refused: entry {getattr(index, 'fqn', index)!r} is not stored in a "
                             "data file of this folder (or the file is truncated)")
        if isinstance(entries.get(index.fqn), BytesStorageMetadata):
            with open(os.path.join(folder, where.relative_path), "rb") as handle:
                handle.seek(where.offset)
                data = handle.read(where.length)
            try:
                torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            except pickle.UnpicklingError as failure:
                named = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(failure))
                raise ValueError(f"{os.path.join(folder, where.relative_path)}: refused: entry {index.fqn!r} holds "
                                 "Python objects other than tensors and plain data, which could run code when loaded "
                                 f"({named.group(1) if named else first_line(failure)})") from None
            except (EOFError, RuntimeError, OSError, ValueError) as failure:
                raise ValueError(f"{os.path.join(folder, where.relative_path)}: entry {index.fqn!r} truncated or "
                                 f"corrupt ({first_line(failure)})") from None
