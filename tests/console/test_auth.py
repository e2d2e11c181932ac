"""Sign-in, sessions and CSRF tokens (worker/console/auth.py), with a controlled clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.console.conftest import PASSWORDS, console_settings
from worker.console.auth import Authenticator, Identity, LoginLimiter
from worker.errors import ConfigError
from worker.settings import load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _auth(tmp_path: Path, clock: Clock, **console: object) -> Authenticator:
    settings = console_settings(tmp_path, **console)
    return Authenticator(settings.console, settings.service.trusted_proxies, clock=clock)


def test_sign_in_right_and_wrong_passwords_and_unknown_users_alike(tmp_path: Path) -> None:
    auth = _auth(tmp_path, Clock())
    found = auth.sign_in("otto", PASSWORDS["otto"], "10.1.1.1")
    assert isinstance(found, Identity) and found.role == "operator"
    assert auth.sign_in("otto", "wrong", "10.1.1.1") == "wrong user name or password"
    assert auth.sign_in("nobody", "wrong", "10.1.1.1") == "wrong user name or password"


def test_failed_sign_ins_lock_the_user_and_the_address_until_the_window_passes(
    tmp_path: Path,
) -> None:
    clock = Clock()
    auth = _auth(tmp_path, clock, max_failed_logins=3, lockout_minutes=1)
    for _ in range(3):
        auth.sign_in("otto", "wrong", "10.1.1.1")
    # Locked: even the right password is refused, from anywhere, for this user...
    assert auth.sign_in("otto", PASSWORDS["otto"], "10.9.9.9").startswith("too many")  # type: ignore[union-attr]
    # ...and this address is locked for every user.
    assert auth.sign_in("ada", PASSWORDS["ada"], "10.1.1.1").startswith("too many")  # type: ignore[union-attr]
    assert isinstance(auth.sign_in("ada", PASSWORDS["ada"], "10.2.2.2"), Identity)
    clock.now += 61
    assert isinstance(auth.sign_in("otto", PASSWORDS["otto"], "10.1.1.1"), Identity)


def test_sessions_expire_when_idle_and_absolutely(tmp_path: Path) -> None:
    clock = Clock()
    auth = _auth(tmp_path, clock, idle_timeout_minutes=10, absolute_timeout_hours=1)
    who = auth.sign_in("vera", PASSWORDS["vera"], "10.1.1.1")
    assert isinstance(who, Identity)
    cookie = auth.session_cookie(who)
    clock.now += 9 * 60
    found = auth.from_cookie(cookie)
    assert found is not None and found[0].user == "vera"
    clock.now += 2 * 60  # 11 minutes idle
    assert auth.from_cookie(cookie) is None
    began = clock.now
    for _ in range(7):  # used every 9 minutes: never idle, but past the hour it is over
        cookie = auth.session_cookie(who, began=began)
        clock.now += 9 * 60
        still = auth.from_cookie(cookie)
        assert (still is not None) == (clock.now - began <= 3600)


def test_a_forged_or_altered_cookie_is_no_session(tmp_path: Path) -> None:
    auth = _auth(tmp_path, Clock())
    who = auth.sign_in("vera", PASSWORDS["vera"], "10.1.1.1")
    assert isinstance(who, Identity)
    cookie = auth.session_cookie(who)
    from itsdangerous import URLSafeTimedSerializer

    payload = {"u": "ada", "r": "admin", "s": "x", "b": 1_000_000.0, "t": 1_000_000.0}
    forged = URLSafeTimedSerializer("guessed", salt="hirebridge-console-session").dumps(payload)
    assert auth.from_cookie(forged) is None
    altered = cookie[:10] + ("A" if cookie[10] != "A" else "B") + cookie[11:]
    assert auth.from_cookie(altered) is None
    other = Authenticator(console_settings(tmp_path, session_secret="x" * 40).console, [])
    assert other.from_cookie(cookie) is None  # signed with another secret


def test_csrf_tokens_belong_to_one_user_and_session(tmp_path: Path) -> None:
    auth = _auth(tmp_path, Clock())
    mine, theirs = Identity("otto", "operator", "s1"), Identity("otto", "operator", "s2")
    token = auth.csrf_token(mine)
    assert auth.csrf_valid(mine, token)
    assert not auth.csrf_valid(theirs, token)
    assert not auth.csrf_valid(mine, None)
    assert not auth.csrf_valid(mine, token[:-2] + "xx")


def test_proxy_identity_only_from_trusted_peers_with_a_role(tmp_path: Path) -> None:
    auth = _auth(
        tmp_path,
        Clock(),
        mode="proxy",
        proxy={"group_roles": {"hr-ops": "operator", "map-admins": "admin"}},
    )
    headers = {"X-Forwarded-User": "sam", "X-Forwarded-Groups": "staff, hr-ops"}
    found = auth.from_proxy("10.2.3.4", headers)
    assert found == Identity("sam", "operator", "proxy")
    assert auth.from_proxy("192.168.1.5", headers) is None  # not a trusted proxy
    assert auth.from_proxy("10.2.3.4", {"X-Forwarded-User": "sam"}) is None  # no role
    both = {"X-Forwarded-User": "sam", "X-Forwarded-Groups": "hr-ops,map-admins"}
    assert auth.from_proxy("10.2.3.4", both).role == "admin"  # type: ignore[union-attr]


def test_limiter_counts_within_its_window() -> None:
    clock = Clock()
    limiter = LoginLimiter(2, 10, clock=clock)
    limiter.failed("a")
    clock.now += 6
    limiter.failed("a")
    assert limiter.locked("a")
    clock.now += 5
    assert not limiter.locked("a")


@pytest.mark.parametrize(
    ("console", "problem"),
    [
        ({"enabled": True, "users": {}}, "session_secret: 32 characters"),
        ({"enabled": True, "session_secret": "x" * 40}, "mode 'users' needs at least one user"),
        (
            {
                "enabled": True,
                "session_secret": "x" * 40,
                "users": {"a": {"password_hash": "plain"}},
            },
            "must be an argon2id hash",
        ),
        (
            {"enabled": True, "session_secret": "x" * 40, "mode": "proxy"},
            "'proxy' needs service.trusted_proxies",
        ),
    ],
)
def test_settings_refuse_an_incomplete_console(
    tmp_path: Path, console: dict[str, object], problem: str
) -> None:
    import yaml

    from worker.demo import simulator_settings

    data = simulator_settings("http://127.0.0.1:9", "http://127.0.0.1:9", "sqlite://")
    data["console"] = console
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert any(problem in p for p in raised.value.problems), raised.value.problems


def test_the_console_is_off_by_default(tmp_path: Path) -> None:
    from worker.demo import simulator_settings
    from worker.settings import Settings

    settings = Settings(
        **simulator_settings("http://127.0.0.1:9", "http://127.0.0.1:9", "sqlite://")
    )
    assert settings.console.enabled is False


def test_notices_link_to_the_console_only_when_it_is_on(tmp_path: Path) -> None:
    from worker.settings import Settings

    url = "https://hirebridge.example.com"
    on = console_settings(tmp_path)
    on = on.model_copy(
        update={"notifications": on.notifications.model_copy(update={"console_url": url})}
    )
    assert on.notice_settings.console_url == url
    off = Settings(**{**on.model_dump(), "console": {"enabled": False}})
    assert off.notifications.console_url == url and off.notice_settings.console_url is None
