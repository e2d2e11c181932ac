"""Numbered pages of a list, read a few at a time.

A run reads every page of the queue before it marks anything processed (the queue would
shift under offset paging), so nothing of a run is done until the last page is in. One page
after another, a queue of 10 pages at PageUp's latency L waited 11 L before its first offer;
a 20,000-offer backlog in pages of 100, 201 L. PageUp says nothing of the list's length, so
the next ``read_ahead`` pages are asked at once whenever a full page arrives, and what is
asked past the end comes back empty: at most ``read_ahead - 1`` calls more per listing. The
first page is asked alone, since most queues fit in it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any


async def numbered_pages(
    fetch: Callable[[int], Coroutine[Any, Any, list[Any]]],
    *,
    first: int,
    size: int,
    max_pages: int,
    read_ahead: int,
) -> tuple[list[list[Any]], bool]:
    """The pages in order, from ``first`` to the first page shorter than ``size``; and
    whether ``max_pages`` cut the list short (its last page was full). A page that fails
    fails the list: the pages still being asked are cancelled."""
    pages: list[list[Any]] = []
    asked: deque[asyncio.Task[list[Any]]] = deque()
    next_page, end = first, first + max_pages
    width = 1
    try:
        while True:
            while len(asked) < width and next_page < end:
                asked.append(asyncio.create_task(fetch(next_page)))
                next_page += 1
            if not asked:
                return pages, True
            entries = await asked.popleft()
            pages.append(entries)
            if len(entries) < size:
                return pages, False
            width = read_ahead
    finally:
        for task in asked:
            task.cancel()
        await asyncio.gather(*asked, return_exceptions=True)
