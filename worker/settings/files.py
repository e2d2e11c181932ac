"""Reading a settings file (the config, or one tenant of the folder of tenants)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from worker.errors import ConfigError
from worker.yamlfile import read_yaml


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The file's top-level mapping; ConfigError naming the file when it is not one, or when
    a key is given twice (YAML would silently keep the later one)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    document = read_yaml(text, path)
    if document.duplicates:
        raise ConfigError(document.duplicates)
    loaded = document.data
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of keys"])
    return loaded
