"""Reading a JSON file a user named (or arc-trm wrote, which a user may have changed): the one place
that turns OS and parse errors, and a file of the wrong shape, into a one-line :class:`ArcTrmError`
naming the file."""

from pathlib import Path
from typing import Any

import orjson

from arc_trm.errors import ArcTrmError


_SHAPES = {dict: "a JSON object", list: "a JSON list"}


def read_json(path: Path | str, what: str = "file", shape: type | None = None) -> Any:
    """The parsed file; ``shape`` (dict or list): what its top level must be, or one line says so."""
    path = Path(path)
    try:
        data = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise ArcTrmError(f"{what} is not valid JSON ({e})", source=str(path)) from None
    except IsADirectoryError:
        raise ArcTrmError(f"{what} expected, found a folder", source=str(path)) from None
    except FileNotFoundError:
        raise ArcTrmError(f"no such {what}", source=str(path)) from None
    except OSError as e:
        raise ArcTrmError(f"cannot read the {what} ({e.strerror})", source=str(path)) from None
    if shape is not None and not isinstance(data, shape):
        raise ArcTrmError(f"{what} must be {_SHAPES[shape]}, found {type(data).__name__}", source=str(path))
    return data


_KINDS = {int: "a whole number", float: "a number", str: "a string", list: "a list", dict: "an object"}


def field_of(data: dict, key: str, kind: type, what: str, source: Path | str) -> Any:
    """``data[key]`` when it is of ``kind`` (a number for ``float``); else one line naming the file, the
    field and what it holds."""
    value = data.get(key)
    ok = isinstance(value, (int, float) if kind is float else kind) and not isinstance(value, bool)
    if not ok:
        found = "nothing" if key not in data else type(value).__name__
        raise ArcTrmError(f"{what}: '{key}' must be {_KINDS[kind]}, found {found}", source=str(source))
    return value
