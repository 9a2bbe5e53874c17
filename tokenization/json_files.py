"""Reading the small JSON files the package writes beside its data (indexes, configs, markers, results): one reader
that names the file and what was expected, instead of a raw JSONDecodeError or KeyError."""

import json


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
