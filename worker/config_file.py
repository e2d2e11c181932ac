"""Which settings file a command reads, and what to say when there is none.

Every command that needs settings goes through ``load_settings_for_command``, so that
``hirebridge --config missing.yaml status`` and ``hirebridge check`` with nothing set up say
the same thing: which file is missing, and how to start one.
"""

from __future__ import annotations

import os
from pathlib import Path

from worker.errors import ConfigError
from worker.settings import Settings, load_settings

DEFAULT_CONFIG = Path("config.yaml")
EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "config.example.yaml"


def load_settings_for_command(given: Path | None) -> Settings:
    """Settings as every command reads them: ``--config`` (``given``), else
    ``$HIREBRIDGE_CONFIG``, else ``config.yaml`` in the working folder.

    A file named by ``--config`` or ``$HIREBRIDGE_CONFIG`` must exist. The default
    ``config.yaml`` may be missing only when the environment (``HIREBRIDGE_...`` variables,
    ``$HIREBRIDGE_SECRETS_DIR``) gives every required setting; otherwise the error says the
    file is missing and how to start one, not which settings it would have held.
    """
    named = os.environ.get("HIREBRIDGE_CONFIG") or None  # empty: not named
    if given is not None or named is not None:
        path = given if given is not None else Path(str(named))
        origin = "--config" if given is not None else "$HIREBRIDGE_CONFIG"
        if not path.exists():
            raise ConfigError([f"{_shown(path)}: config file not found (named by {origin})"])
        return load_settings(path, required=True)
    if DEFAULT_CONFIG.exists():
        return load_settings(DEFAULT_CONFIG, required=True)
    try:
        return load_settings(None)
    except ConfigError as exc:
        raise ConfigError(_no_config_file(exc.problems)) from None


def _no_config_file(environment_problems: list[str]) -> list[str]:
    example = Path("config.example.yaml")
    if not example.exists():
        example = EXAMPLE_CONFIG if EXAMPLE_CONFIG.exists() else example
    problem = (
        f"no config file: {_shown(DEFAULT_CONFIG)} does not exist, and neither --config nor "
        f"$HIREBRIDGE_CONFIG names one. To start: cp {example} config.yaml, then edit it "
        "(every key is explained there)"
    )
    if not _environment_configures():
        return [problem]
    return [f"{problem}. The HIREBRIDGE_ settings in the environment alone are incomplete:",
            *environment_problems]  # fmt: skip


def _environment_configures() -> bool:
    """Whether HIREBRIDGE_<section> variables or secret files give any setting."""
    sections = {name.upper() for name in Settings.model_fields}
    for key in os.environ:
        name = key.upper()
        if (
            name.startswith("HIREBRIDGE_")
            and name.removeprefix("HIREBRIDGE_").split("__")[0] in sections
        ):
            return True
    secrets = os.environ.get("HIREBRIDGE_SECRETS_DIR")
    return bool(secrets) and Path(str(secrets)).is_dir() and any(Path(str(secrets)).iterdir())


def _shown(path: Path) -> str:
    """A relative path with the folder it is relative to, so that the reader can find it."""
    return str(path) if path.is_absolute() else f"{path} (in {Path.cwd()})"
