"""Which settings file a command reads: a named file must exist; without one, config.yaml or
the environment alone, and a clear word when neither is there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_settings import MINIMAL
from worker.config_file import load_settings_for_command
from worker.errors import ConfigError

ENV_ONLY = {
    "HIREBRIDGE_PAGEUP__TENANT_ID": "218",
    "HIREBRIDGE_PAGEUP__CLIENT_ID": "acme",
    "HIREBRIDGE_PAGEUP__CLIENT_SECRET": "from-env",
    "HIREBRIDGE_HRIS__URL": "https://hris.example/api/employees",
}


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder and no HIREBRIDGE_ settings in the environment."""
    for key in list(os.environ):
        if key.startswith("HIREBRIDGE_") and key != "HIREBRIDGE_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_named_config_file_that_does_not_exist_is_named_as_missing(
    bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ENV_ONLY.items():  # even when the environment would be enough
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as given:
        load_settings_for_command(Path("missing.yaml"))
    monkeypatch.setenv("HIREBRIDGE_CONFIG", str(bare / "gone.yaml"))
    with pytest.raises(ConfigError) as from_env:
        load_settings_for_command(None)
    assert given.value.problems == [
        f"missing.yaml (in {bare}): config file not found (named by --config)"
    ]
    assert from_env.value.problems == [
        f"{bare / 'gone.yaml'}: config file not found (named by $HIREBRIDGE_CONFIG)"
    ]


def test_no_config_file_and_no_environment_points_at_the_example(
    bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIREBRIDGE_UNRELATED__X", "1")  # not a settings section
    with pytest.raises(ConfigError) as caught:
        load_settings_for_command(None)
    (problem,) = caught.value.problems
    assert problem.startswith(f"no config file: config.yaml (in {bare}) does not exist")
    assert f"cp {REPO / 'config.example.yaml'} config.yaml" in problem
    (bare / "config.example.yaml").write_text("# a copy beside it\n")
    with pytest.raises(ConfigError, match=r"To start: cp config\.example\.yaml config\.yaml"):
        load_settings_for_command(None)


def test_without_a_config_file_the_environment_alone_may_configure_everything(
    bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ENV_ONLY.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HIREBRIDGE_CONFIG", "")  # empty: no file named
    settings = load_settings_for_command(None)
    assert settings.sources["pageup"].tenant_id == "218"
    assert settings.targets["hris"].mapping == bare / "mappings" / "example_hris.yaml"


@pytest.mark.parametrize("given_by", ["variables", "secret files"])
def test_an_incomplete_environment_without_a_config_file_says_both(
    bare: Path, monkeypatch: pytest.MonkeyPatch, given_by: str
) -> None:
    if given_by == "variables":
        monkeypatch.setenv("HIREBRIDGE_PAGEUP__TENANT_ID", "218")
        monkeypatch.setenv("HIREBRIDGE_PAGEUP__CLIENT_SECRET", "s")
    else:
        secrets = bare / "secrets"
        secrets.mkdir()
        (secrets / "pageup__tenant_id").write_text("218")
        (secrets / "pageup__client_secret").write_text("s")
        monkeypatch.setenv("HIREBRIDGE_SECRETS_DIR", str(secrets))
    with pytest.raises(ConfigError) as caught:
        load_settings_for_command(None)
    first, *rest = caught.value.problems
    assert first.startswith("no config file: config.yaml") and first.endswith(
        "The HIREBRIDGE_ settings in the environment alone are incomplete:"
    )
    assert rest == ["pageup.client_id: Field required", "hris: Field required"]


def test_the_default_config_file_is_read_when_present(bare: Path) -> None:
    (bare / "config.yaml").write_text(MINIMAL)
    assert load_settings_for_command(None).targets["hris"].mapping == bare / "maps" / "hris.yaml"
