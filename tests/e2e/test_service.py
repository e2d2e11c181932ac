"""``hirebridge run`` as a subprocess against the simulators: schedule, probes, metrics,
map reloads, and a SIGTERM in the middle of a run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import REPO, Sims
from tests.e2e.service_process import Worker, apna_service, push_burst
from worker.simulators.sample import make_offers

pytestmark = pytest.mark.e2e


def test_run_syncs_on_schedule_serves_probes_reloads_and_stops_cleanly(
    sims: Sims, tmp_path: Path
) -> None:
    mapping = tmp_path / "map.yaml"
    shutil.copy(REPO / "mappings" / "example_hris.yaml", mapping)
    data = sims.settings_data(f"sqlite:///{tmp_path / 'state.sqlite'}", sync={"concurrency": 2})
    data["hris"]["mapping"] = str(mapping)
    data["service"] = {"port": 0, "schedule": {"interval_seconds": 1}, "shutdown_grace_seconds": 20}
    data["logging"] = {"format": "json"}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(tmp_path / "notify.sock"))
    systemd.settimeout(30)
    worker = Worker(config, {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    try:
        port = worker.wait_for("service_started")["port"]
        assert systemd.recv(64) == b"READY=1"
        assert systemd.recv(64) == b"WATCHDOG=1"
        base = f"http://127.0.0.1:{port}"
        first = worker.wait_for("run_finished")
        assert first["succeeded"] == 12
        worker.wait_for("run_finished", listed=0)  # the next scheduled run finds the queue empty

        assert httpx.get(f"{base}/healthz").status_code == 200
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
        exposition = httpx.get(f"{base}/metrics").text
        assert 'hirebridge_offers_total{outcome="processed",source="pageup"} 12.0' in exposition
        assert 'hirebridge_deliveries_total{outcome="posted",target="hris"} 12.0' in exposition
        assert (
            'hirebridge_http_requests_total{stage="post",status="201",system="hris"}' in exposition
        )
        assert "hirebridge_last_success_timestamp_seconds" in exposition

        mapping.write_text("fields:\n  a: nosuch(x)\n")
        worker.process.send_signal(signal.SIGHUP)
        refused = worker.wait_for("mapping_reload_refused")
        assert "unknown function nosuch()" in refused["problems"][0]
        shutil.copy(REPO / "mappings" / "example_hris.yaml", mapping)
        data["service"]["port"] = port  # the CLI finds the worker where its config says
        cli_config = tmp_path / "cli.yaml"
        cli_config.write_text(yaml.safe_dump(data))
        reload = subprocess.run(
            [sys.executable, "-m", "worker", "--config", str(cli_config), "reload"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert reload.returncode == 0, reload.stderr
        assert "reloaded: field maps hris " in reload.stdout
        worker.wait_for("mapping_reloaded")

        # A slow second batch, so that SIGTERM lands in the middle of a run.
        sims.pageup.faults.latency_seconds = 0.2
        sims.pageup.load(make_offers(10, first_id=910001))
        worker.wait_for("offer_processed")
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=30) == 0
        worker.wait_for("service_stopped")
        notices = []
        systemd.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                notices.append(systemd.recv(64))
        # STOPPING=1, then only watchdog pings while the runs in flight finish.
        assert b"STOPPING=1" in notices and b"WATCHDOG=1" in notices
        after_stopping = notices[notices.index(b"STOPPING=1") + 1 :]
        assert set(after_stopping) <= {b"WATCHDOG=1"}
    finally:
        systemd.close()
        if worker.process.poll() is None:
            worker.process.kill()

    stopped = [e for e in worker.seen if e.get("event") == "run_finished"][-1]
    assert stopped["succeeded"] < 10, "the stop came in the middle of the run"
    counts = sims.hris_counts()
    assert set(counts.values()) == {1}
    posted, marked = set(counts), {k for k, v in sims.pageup.processed.items() if v}
    assert marked == posted, "every offer posted in the stopped run was also marked processed"
    status = subprocess.run(
        [sys.executable, "-m", "worker", "--config", str(config), "status"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert "posting         0" in status.stdout and "posted          0" in status.stdout


def test_sigterm_during_a_burst_of_pushes_never_answers_200_for_an_unstored_lead(
    sims: Sims, tmp_path: Path
) -> None:
    """Requests in flight when SIGTERM arrives finish; every 200 is a lead in the inbox."""

    from worker.settings import DatabaseSettings
    from worker.simulators.apna import make_leads
    from worker.store.db import create_store_engine
    from worker.store.inbox import Inbox

    database = f"sqlite:///{tmp_path / 'state.sqlite'}"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(apna_service(sims, database)))
    worker = Worker(config, dict(os.environ))
    leads = make_leads(400, seed=3)

    def stop_at(answers: int) -> None:
        if answers == 100:
            worker.process.send_signal(signal.SIGTERM)

    try:
        port = worker.wait_for("service_started")["port"]
        answered = push_burst(f"http://127.0.0.1:{port}/inbound/apna", leads, 8, stop_at)
        assert worker.process.wait(timeout=60) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()
    engine = create_store_engine(DatabaseSettings(url=database))
    stored = {json.loads(i.payload)["contact_info"]["email"] if i.payload else i.dedup_key
              for i in Inbox(engine).items(limit=1000)}  # fmt: skip
    engine.dispose()
    ok = [i for i, status in answered.items() if status == 200]
    assert len(ok) >= 100
    delivered = {lead["email"] for lead in sims.hris.collected.get("leads", [])}
    for index in ok:
        email = leads[index]["contact_info"]["email"]
        assert email in stored or email.lower() in delivered


def test_run_syncs_job_postings_on_their_schedule_and_reports_ats_readiness(
    sims: Sims, tmp_path: Path
) -> None:
    from worker.simulators import ats
    from worker.simulators.server import BackgroundServer

    state = ats.AtsState()
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "jobs.json").write_text(json.dumps([
        {"id": "P1", "title": "Engineer", "apply_url": "https://careers.example.com/1"},
        {"id": "P2", "title": "Nurse", "apply_url": "https://careers.example.com/2"},
    ]))  # fmt: skip
    with BackgroundServer(ats.build_app(state)) as server:
        data = sims.settings_data(f"sqlite:///{tmp_path / 'state.sqlite'}")
        data["ats"] = {"enabled": True, "base_url": f"{server.url}{ats.BASE}",
                       "api_key": "ats-sim-key", "source_name": "Main_ERP",
                       "mapping": str(REPO / "mappings" / "ats_jobs.yaml"),
                       "source": {"type": "directory", "directory": str(folder)}}  # fmt: skip
        data["service"] = {"port": 0, "schedule": {"interval_seconds": 3600}}
        data["logging"] = {"format": "json"}
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        worker = Worker(config, dict(os.environ))
        try:
            port = worker.wait_for("service_started")["port"]
            finished = worker.wait_for("job_run_finished")
            assert finished["created"] == 2 and finished["halted"] is None
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz").json()
            assert ready["checks"]["ats"] == "ok"
            worker.process.send_signal(signal.SIGTERM)
            assert worker.process.wait(timeout=30) == 0
        finally:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
    assert sorted(job["title"] for job in state.jobs.values()) == ["Engineer", "Nurse"]


def test_allow_ips_behind_a_trusted_proxy_use_the_forwarded_address(
    sims: Sims, tmp_path: Path
) -> None:
    from worker.simulators.apna import make_leads

    data = sims.settings_data(f"sqlite:///{tmp_path / 'state.sqlite'}")
    intake = {"url": f"{sims.hris_url}/api/intake/leads",
              "mapping": str(REPO / "mappings" / "apna_leads.yaml")}  # fmt: skip
    data["inbound"] = {"apna": {"enabled": True, "auth": {"type": "bearer", "token": "t0k"},
                                "allow_ips": ["203.0.113.0/24"], "target": intake}}  # fmt: skip
    data["service"] = {"port": 0, "schedule": {"interval_seconds": 3600},
                       "trusted_proxies": ["127.0.0.1"]}  # fmt: skip
    data["logging"] = {"format": "json"}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    worker = Worker(config, dict(os.environ))
    try:
        port = worker.wait_for("service_started")["port"]
        url = f"http://127.0.0.1:{port}/inbound/apna"
        auth = {"Authorization": "Bearer t0k"}
        lead = make_leads(1)[0]
        direct = httpx.post(url, json=lead, headers=auth)
        forwarded = httpx.post(url, json=lead, headers={**auth, "X-Forwarded-For": "203.0.113.9"})
        elsewhere = httpx.post(url, json=lead, headers={**auth, "X-Forwarded-For": "198.51.100.7"})
        assert (direct.status_code, forwarded.status_code, elsewhere.status_code) == (403, 200, 403)
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(timeout=30) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()


def test_sighup_reads_the_folder_of_tenants_and_their_secrets_again(tmp_path: Path) -> None:
    """An integrator adds a tenant file, and fixes a tenant's secret file, while the service
    runs: SIGHUP takes both in, with no restart."""
    from tests.conftest import RoutedSims

    routed = RoutedSims().start()
    try:
        data = routed.settings_data(f"sqlite:///{tmp_path / 'state.sqlite'}")
        tenants, secrets = tmp_path / "tenants", tmp_path / "secrets"
        tenants.mkdir()
        secrets.mkdir()
        sources = data.pop("sources")
        for source in sources.values():
            source.pop("client_secret")
            source.pop("schedule", None)  # every second, like the service's schedule here
        (tenants / "au.yaml").write_text(yaml.safe_dump(sources["au"]))
        (secrets / "sources__au__client_secret").write_text("sim-secret")
        data["sources_dir"] = str(tenants)
        data["routes"] = [{"source": "*", "target": "hris"}]
        data["service"] = {"port": 0, "schedule": {"interval_seconds": 1}}
        data["logging"] = {"format": "json"}
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        env = {**os.environ, "HIREBRIDGE_SECRETS_DIR": str(secrets)}
        worker = Worker(config, env)
        try:
            worker.wait_for("run_finished", source="au", timeout=20)
            # A new tenant, with its secret wrong.
            (secrets / "sources__group__client_secret").write_text("a-wrong-secret")
            (tenants / "group.yaml").write_text(yaml.safe_dump(sources["group"]))
            worker.process.send_signal(signal.SIGHUP)
            worker.wait_for("mapping_reloaded", sources=2)
            refused = worker.wait_for("run_finished", source="group")
            assert refused["halted"] == "pageup token failed: HTTP 401: invalid_client"
            (secrets / "sources__group__client_secret").write_text("sim-secret")  # fixed
            worker.process.send_signal(signal.SIGHUP)
            worker.wait_for("mapping_reloaded", sources=2)
            done = worker.wait_for("run_finished", source="group", outcome="ok", listed=8)
            assert done["succeeded"] == 8
            worker.process.send_signal(signal.SIGTERM)
            assert worker.process.wait(timeout=30) == 0
        finally:
            if worker.process.poll() is None:
                worker.process.kill()
        assert routed.targets["hris"].external_ids().total() == 12
        assert all(n == 1 for n in routed.targets["hris"].external_ids().values())
    finally:
        routed.stop()


def test_metrics_readiness_and_check_name_each_source_and_target(tmp_path: Path) -> None:
    """Two tenants and three targets, the NZ payroll refusing our key: /metrics labels each
    source and target, /readyz names the one resting, and `check` has a line for each."""
    from tests.conftest import RoutedSims

    routed = RoutedSims().start()
    try:
        data = routed.settings_data(f"sqlite:///{tmp_path / 'state.sqlite'}")
        data["targets"]["payroll_nz"]["auth"]["api_key"] = "wrong"
        data["service"] = {"port": 0, "schedule": {"interval_seconds": 3600}}
        data["logging"] = {"format": "json"}
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(data))
        every = [(t, str(s.offer_id)) for t, samples in routed.samples.items() for s in samples]
        kiwis = sum(routed.country(tenant, offer) == "New Zealand" for tenant, offer in every)
        worker = Worker(config, dict(os.environ))
        try:
            port = worker.wait_for("service_started")["port"]
            finished = {worker.wait_for("run_finished")["source"] for _ in range(2)}
            assert finished == {"au", "group"}
            base = f"http://127.0.0.1:{port}"
            exposition = httpx.get(f"{base}/metrics").text
            ready = httpx.get(f"{base}/readyz").json()
            worker.process.send_signal(signal.SIGTERM)
            assert worker.process.wait(timeout=30) == 0
        finally:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()

        lines = set(exposition.splitlines())
        assert 'hirebridge_offers_total{outcome="processed",source="au"} 4.0' in lines
        assert (
            f'hirebridge_offers_total{{outcome="processed",source="group"}} {8 - kiwis}.0' in lines
        )
        assert 'hirebridge_runs_total{outcome="ok",source="au"} 1.0' in lines
        assert 'hirebridge_runs_total{outcome="partial",source="group"} 1.0' in lines
        assert 'hirebridge_deliveries_total{outcome="posted",target="hris"} 12.0' in lines
        assert (
            f'hirebridge_deliveries_total{{outcome="posted",target="payroll_au"}} {12 - kiwis}.0'
            in lines
        )
        assert 'hirebridge_target_resting{target="payroll_nz"} 1.0' in lines
        assert 'hirebridge_oldest_waiting_offer_age_seconds{source="au"} 0.0' in lines
        assert any(line.startswith('hirebridge_last_success_timestamp_seconds{source="au"}')
                   for line in lines)  # fmt: skip
        assert not any('source="group"' in line and "last_success" in line for line in lines)
        assert ready["sources"] == {"au": "ok", "group": "ok"}
        assert ready["targets"]["hris"] == "ok" and ready["targets"]["payroll_au"] == "ok"
        assert ready["targets"]["payroll_nz"].startswith("resting ")

        check = subprocess.run(
            [sys.executable, "-m", "worker", "--config", str(config), "check"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
    finally:
        routed.stop()
    assert check.returncode == 1, check.stdout + check.stderr
    found = re.findall(r"^(ok|FAIL) +((?:source|target|map) \S+) ", check.stdout, re.MULTILINE)
    rows = {name: status for status, name in found}
    assert rows == {
        "source au": "ok",
        "source group": "ok",
        "map payroll_au": "ok",
        "map payroll_nz": "ok",
        "map hris": "ok",
        "target payroll_au": "ok",
        "target payroll_nz": "FAIL",
        "target hris": "ok",
    }, check.stdout
    assert re.search(r"^ok +settings +loaded: 2 source\(s\), 3 target\(s\), 5 route\(s\)$",
                     check.stdout, re.MULTILINE), check.stdout  # fmt: skip
    assert "payroll_nz refused our credentials" in check.stdout
