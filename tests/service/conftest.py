"""The inbound rig, here served with the service's own server config (tests/service/test_server)."""

from tests.inbound.conftest import make_rig  # noqa: F401 (a fixture, shared)
