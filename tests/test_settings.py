"""Settings: YAML file, environment overrides, secret files, every problem listed."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from tests.conftest import REPO
from worker.errors import ConfigError
from worker.settings import Settings, load_settings

MINIMAL = """
pageup:
  tenant_id: "218"
  client_id: acme
  client_secret: from-file
hris:
  url: https://hris.example/api/employees
  mapping: maps/hris.yaml
"""


def test_yaml_env_and_secret_files_merge_with_env_winning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(MINIMAL)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "hris__auth__api_key").write_text("key-from-secret-file")
    monkeypatch.setenv("HIREBRIDGE_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("HIREBRIDGE_PAGEUP__CLIENT_SECRET", "from-env")
    monkeypatch.setenv("HIREBRIDGE_HRIS__AUTH__TYPE", "api_key")
    monkeypatch.setenv("HIREBRIDGE_SYNC__CONCURRENCY", "3")

    settings = load_settings(config)

    assert settings.sources["pageup"].client_secret.get_secret_value() == "from-env"
    assert settings.sources["pageup"].client_id == "acme"
    assert settings.targets["hris"].auth.api_key is not None
    assert settings.targets["hris"].auth.api_key.get_secret_value() == "key-from-secret-file"
    assert settings.sync.concurrency == 3
    assert settings.targets["hris"].mapping == tmp_path / "maps" / "hris.yaml"
    assert "from-env" not in repr(settings)


def test_urls_are_built_from_environment_data_centre_and_tenant(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(MINIMAL + "  \nsync: {}\n")
    uat = load_settings(config).sources["pageup"]
    assert (
        uat.resolved_api_base_url == "https://apiuat.dc2.pageuppeople.com/v3/218/recruitment/hire/"
    )
    assert uat.resolved_token_url == "https://loginuat.dc2.pageuppeople.com/connect/token"
    live = uat.model_copy(update={"environment": "live", "data_centre": "dc4"})
    assert live.resolved_api_base_url.startswith("https://api.dc4.pageuppeople.com/v3/218/")
    assert live.resolved_token_url == "https://login.dc4.pageuppeople.com/connect/token"


def test_every_problem_is_listed(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "pageup: {tenant_id: '218', client_id: x, data_centre: dc9}\n"
        "hris: {url: 'https://h', auth: {type: basic, username: u}, colour: red}\n"
        "sync: {concurrency: 0}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    joined = "\n".join(caught.value.problems)
    assert "pageup.client_secret: Field required" in joined
    assert "pageup.data_centre: Input should be 'dc2', 'dc3', 'dc4' or 'dc5'" in joined
    assert "auth type 'basic' needs password" in joined
    assert "hris.colour: Extra inputs are not permitted" in joined
    assert "sync.concurrency: Input should be greater than or equal to 1" in joined


def test_a_ca_bundle_must_exist_and_be_pem(tmp_path: Path) -> None:
    from worker.remote.lanes import tls_context

    config = tmp_path / "config.yaml"
    config.write_text(MINIMAL + "tls: {ca_bundle: ca.pem}\n")
    with pytest.raises(ConfigError, match=r"tls.ca_bundle: .*ca.pem is not a file"):
        load_settings(config)
    (tmp_path / "ca.pem").write_text("not a certificate")
    settings = load_settings(config)
    assert settings.tls.ca_bundle == tmp_path / "ca.pem"
    with pytest.raises(ConfigError, match="not a PEM CA bundle"):
        tls_context(settings.tls.ca_bundle)


def test_missing_required_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml", required=True)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_settings(bad)


def test_a_key_given_twice_at_any_depth_is_refused_naming_both_lines(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        MINIMAL
        + "sync:\n  concurrency: 4\n  concurrency: 2\n"
        + "hris:\n  url: https://other.example\n"
        + "inbound:\n  apna:\n    auth: {type: bearer, token: a, token: b}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert [p.removesuffix("; YAML silently keeps only the later one")
            for p in caught.value.problems] == [
        f"{config}:11:3: duplicate key 'sync.concurrency', first given at {config}:10:3",
        f"{config}:12:1: duplicate key 'hris', first given at {config}:6:1",
        f"{config}:16:36: duplicate key 'inbound.apna.auth.token', first given at {config}:16:26",
    ]  # fmt: skip


# A mapping of named entries, or a list of them (a list of plain names is a value).
NAMED = ("sources", "targets", "routes", "channels", "users")


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        entry = (typing.get_args(field.annotation) or (None,))[-1]
        if name in NAMED and isinstance(entry, type) and issubclass(entry, BaseModel):
            keys |= _keys(entry, f"{prefix}{name}.*.")  # dict[str, Entry] or list[Entry]
            continue
        options = typing.get_args(field.annotation) or (field.annotation,)
        for annotation in options:  # a section, or an optional one (X | None)
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                keys |= _keys(annotation, f"{prefix}{name}.")
    return keys


def _yaml_keys(data: dict[str, object], prefix: str = "") -> set[str]:
    keys = set()
    for name, value in data.items():
        keys.add(prefix + name)
        if name in NAMED and isinstance(value, dict | list):
            for entry in value.values() if isinstance(value, dict) else value:
                if isinstance(entry, dict):
                    keys |= _yaml_keys(entry, f"{prefix}{name}.*.")
        elif isinstance(value, dict) and name not in ("headers", "types"):  # free-form maps
            keys |= _yaml_keys(value, f"{prefix}{name}.")
    return keys


def test_config_example_loads_and_documents_every_key() -> None:
    example = REPO / "config.example.yaml"
    settings = load_settings(example, required=True)
    assert settings.targets["hris"].mapping == REPO / "mappings" / "example_hris.yaml"
    documented = _yaml_keys(yaml.safe_load(example.read_text()))
    # pageup and hris are the single-source form of sources.* and targets.* (documented there).
    single = {k for k in _keys(Settings) if k.split(".")[0] in ("pageup", "hris")}
    # A source's own schedule, and its applications', have the keys of service.schedule
    # (documented there).
    schedules = ("sources.*.schedule.", "sources.*.applications.schedule.")
    same = {k for k in _keys(Settings) if k.startswith(schedules)}
    assert _keys(Settings) - single - same == documented


@pytest.mark.parametrize(
    ("inbound", "problem"),
    [
        ({"apna": {"enabled": True}}, "apna: enabled needs auth and target"),
        ({"apna": {"enabled": True, "auth": {"username": "a"}, "target": {"url": "https://t"}}},
         "apna.auth: type 'basic' needs password"),
        ({"pop": {"enabled": True, "target": {"url": "https://t"}}}, "pop: enabled needs auth"),
        ({"apna": {"enabled": True, "path": "/x", "auth": {"type": "bearer", "token": "t"},
                   "target": {"url": "https://t"}},
          "pop": {"enabled": True, "path": "/x", "auth": "u:p", "target": {"url": "https://t"}}},
         "apna.path and pop.path must differ"),
        ({"apna": {"path": "no-slash"}}, "inbound.apna.path"),
        ({"pop": {"path": "/inbound/pop\n"}}, "inbound.pop.path"),  # the whole path must match
    ],
)  # fmt: skip
def test_inbound_sources_must_be_complete_when_enabled(
    tmp_path: Path, inbound: dict[str, object], problem: str
) -> None:
    config = tmp_path / "config.yaml"
    data = yaml.safe_load(MINIMAL)
    data["inbound"] = inbound
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


ROUTED = """
sources:
  au: {tenant_id: "218", client_id: au-client, client_secret: from-file}
  nz: {tenant_id: "431", client_id: nz-client, client_secret: from-file,
       schedule: {interval_seconds: 600}, concurrency: 2}
targets:
  payroll: {url: "https://payroll.example/api", mapping: maps/payroll.yaml}
  hris: {url: "https://hris.example/api", mapping: maps/hris.yaml}
routes:
  - {source: au, target: payroll}
  - {source: nz, target: payroll, when: "offer.Location.Country == 'New Zealand'"}
  - {source: nz, target: hris}
"""


def test_sources_targets_and_routes_with_secrets_per_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(ROUTED)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "sources__nz__client_secret").write_text("nz-from-secret-file")
    monkeypatch.setenv("HIREBRIDGE_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("HIREBRIDGE_SOURCES__AU__CLIENT_SECRET", "au-from-env")
    monkeypatch.setenv("HIREBRIDGE_TARGETS__HRIS__AUTH__TYPE", "bearer")
    monkeypatch.setenv("HIREBRIDGE_TARGETS__HRIS__AUTH__TOKEN", "t0k")

    settings = load_settings(config)

    assert settings.sources["au"].client_secret.get_secret_value() == "au-from-env"
    assert settings.sources["nz"].client_secret.get_secret_value() == "nz-from-secret-file"
    assert settings.targets["hris"].auth.type == "bearer"
    assert settings.targets["payroll"].mapping == tmp_path / "maps" / "payroll.yaml"
    assert settings.schedule_of("nz").interval_seconds == 600
    assert settings.schedule_of("au") == settings.service.schedule
    assert (settings.concurrency_of("nz"), settings.concurrency_of("au")) == (2, 8)
    assert [r.when for r in settings.routes] == [None, "offer.Location.Country == 'New Zealand'",
                                                 None]  # fmt: skip


def test_the_single_source_form_is_one_source_one_target_one_route(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(MINIMAL)
    settings = load_settings(config)
    assert list(settings.sources) == ["pageup"] and list(settings.targets) == ["hris"]
    assert [(r.source, r.target, r.when) for r in settings.routes] == [("pageup", "hris", None)]
    assert settings.pageup is None and settings.hris is None


def test_a_folder_of_tenants_adds_one_source_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "tenants"
    folder.mkdir()
    for name, tenant in (("acme", "501"), ("globex", "502")):
        (folder / f"{name}.yaml").write_text(
            f"tenant_id: '{tenant}'\nclient_id: {name}\nclient_secret: placeholder\n"
        )
    config = tmp_path / "config.yaml"
    data = yaml.safe_load(ROUTED)
    data["sources_dir"] = "tenants"
    data["routes"] += [{"source": "acme", "target": "hris"}, {"source": "globex", "target": "hris"}]
    config.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("HIREBRIDGE_SOURCES__GLOBEX__CLIENT_SECRET", "globex-secret")

    settings = load_settings(config)

    assert sorted(settings.sources) == ["acme", "au", "globex", "nz"]
    assert settings.sources["acme"].tenant_id == "501"
    assert settings.sources["globex"].client_secret.get_secret_value() == "globex-secret"
    (folder / "au.yaml").write_text("tenant_id: '999'\nclient_id: x\nclient_secret: y\n")
    (folder / "broken.yaml").write_text("tenant_id: [\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    joined = "\n".join(caught.value.problems)
    assert f"{folder / 'au.yaml'}: source 'au' is also defined in the config file" in joined
    assert f"{folder / 'broken.yaml'}" in joined


def test_routes_and_sources_that_cannot_work_are_all_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(ROUTED)
    data["sources"]["Bad-Name"] = {"tenant_id": "7", "client_id": "x", "client_secret": "y"}
    data["sources"]["au_again"] = {"tenant_id": "218", "client_id": "x", "client_secret": "y"}
    data["routes"] += [
        {"source": "nowhere", "target": "hris"},
        {"source": "au", "target": "payrol"},
        {"source": "au", "target": "hris", "when": "offer.Country =="},
        {"source": "au_again", "target": "hris"},
    ]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    problems = caught.value.problems
    assert "sources.Bad-Name: a name is lower-case letters, digits and _ (at most 40), " \
           "starting with a letter" in problems  # fmt: skip
    assert "routes.3: unknown source 'nowhere' (sources: Bad-Name, au, au_again, nz)" in problems
    assert "routes.4: unknown target 'payrol' (targets: hris, payroll)" in problems
    assert any(p.startswith("routes.5: when: bad expression") for p in problems)
    assert "sources.Bad-Name: no route takes its offers anywhere (add one to routes)" in problems
    assert (
        "sources.au_again: same tenant and offer_action_type_id as sources.au (both would "
        "take the same offers: give each consumer its own action type)"
    ) in problems


def test_both_forms_at_once_are_refused(tmp_path: Path) -> None:
    data = {**yaml.safe_load(ROUTED), **yaml.safe_load(MINIMAL)}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"give both pageup and hris .* or use sources, targets"):
        load_settings(config)
