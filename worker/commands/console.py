"""``hirebridge console hash-password``: an argon2id hash for a built-in console user."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

EXIT_OK, EXIT_FAILED = 0, 1
MIN_LENGTH = 12


def register(commands: Any) -> None:
    console = commands.add_parser("console", help="the operator console (/console/)")
    actions = console.add_subparsers(dest="console_command", required=True, metavar="ACTION")
    hashing = actions.add_parser(
        "hash-password",
        help="print an argon2id hash for console.users.<name>.password_hash (reads the "
        "password from the terminal, twice, or from stdin when piped)",
    )
    hashing.set_defaults(handler=_hash_password)


def _hash_password(_: argparse.Namespace) -> int:
    from worker.console.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ", file=sys.stderr)
            return EXIT_FAILED
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < MIN_LENGTH:
        print(f"a console password has at least {MIN_LENGTH} characters", file=sys.stderr)
        return EXIT_FAILED
    print(hash_password(password))
    return EXIT_OK
