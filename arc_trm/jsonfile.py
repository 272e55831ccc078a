"""Reading a JSON file a user named: the one place that turns OS and parse errors into a
one-line :class:`ArcTrmError` naming the file."""

from pathlib import Path
from typing import Any

import orjson

from arc_trm.errors import ArcTrmError


def read_json(path: Path | str, what: str = "file") -> Any:
    path = Path(path)
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise ArcTrmError(f"{what} is not valid JSON ({e})", source=str(path)) from None
    except IsADirectoryError:
        raise ArcTrmError(f"{what} expected, found a folder", source=str(path)) from None
    except FileNotFoundError:
        raise ArcTrmError(f"no such {what}", source=str(path)) from None
    except OSError as e:
        raise ArcTrmError(f"cannot read the {what} ({e.strerror})", source=str(path)) from None
