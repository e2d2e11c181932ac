"""sd_notify for ``Type=notify`` units: READY, STOPPING and the watchdog ping. No-op elsewhere."""

from __future__ import annotations

import contextlib
import os
import socket


def notify(message: str) -> None:
    """Send ``message`` (e.g. "READY=1") to systemd if it started us with NOTIFY_SOCKET."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    # A vanished systemd socket is not our problem: nothing to tell.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
        sock.sendto(message.encode(), address)
