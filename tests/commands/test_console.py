"""``hirebridge console hash-password`` (worker/commands/console.py)."""

from __future__ import annotations

import subprocess
import sys

from argon2 import PasswordHasher


def hash_password(stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", "console", "hash-password"],
        input=stdin, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_it_prints_an_argon2id_hash_of_the_password_read_from_stdin() -> None:
    done = hash_password("a long enough password\n")
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip()
    assert printed.startswith("$argon2id$")
    assert PasswordHasher().verify(printed, "a long enough password")
    assert "a long enough password" not in done.stdout + done.stderr.replace(printed, "")


def test_a_short_password_is_refused() -> None:
    done = hash_password("short\n")
    assert done.returncode == 1 and "at least 12 characters" in done.stderr
