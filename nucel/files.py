"""File helpers every room uses: one JSON-object reader that names the file and what was expected (instead of a raw
JSONDecodeError or KeyError), a file's SHA-256, and telling a Hub id from a local path."""

import hashlib
import json
import os
import re

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")  # ORG/NAME of a Hugging Face Hub repository


def is_hub_id(name):
    """ORG/NAME that is not an existing local path (a local folder of that name wins)."""
    return isinstance(name, str) and bool(HUB_ID.match(name)) and not os.path.exists(name)


def file_sha256(path, block=8 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def read_json_object(path, kind, required=(), hint=""):
    """The JSON object in `path` holding every `required` key; one ValueError naming the file otherwise.
    `kind` says what the file is ("genome-store index"), `hint` what to do about a bad one."""
    suffix = f"; {hint}" if hint else ""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as failure:
        raise ValueError(f"{path}: unreadable or corrupt {kind} ({failure}){suffix}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object ({kind}){suffix}")
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"{path}: {kind} without the key(s) {missing}{suffix}")
    return data
