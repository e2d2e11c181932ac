"""Reading a settings file (the config, or one tenant of the folder of tenants)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from worker.errors import ConfigError


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The file's top-level mapping; ConfigError naming the file when it is not one."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of keys"])
    return loaded
