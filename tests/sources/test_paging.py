"""Numbered pages, read a few at a time: in order, complete, and never past a failure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from worker.sources.paging import numbered_pages

SIZE = 3


class Queue:
    """``total`` entries in pages of SIZE; each page answers when the test releases it."""

    def __init__(self, total: int, *, failing: int | None = None) -> None:
        self.total = total
        self.failing = failing
        self.asked: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.cancelled: list[int] = []

    async def fetch(self, page: int) -> list[Any]:
        self.asked.append(page)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.failing is not None and page > self.failing:
                await asyncio.Event().wait()  # answers only once the failure is seen: never
            if page == self.failing:
                for _ in range(20):  # the pages after it are asked meanwhile
                    await asyncio.sleep(0)
                raise RuntimeError(f"page {page} failed")
            # Later pages answer first: the order must come from the page numbers.
            for _ in range(10 - page % 10):
                await asyncio.sleep(0)
            start = (page - 1) * SIZE
            return list(range(start, min(start + SIZE, self.total)))
        except asyncio.CancelledError:
            self.cancelled.append(page)
            raise
        finally:
            self.in_flight -= 1


def read(queue: Queue, *, read_ahead: int = 4, max_pages: int = 100) -> tuple[list[Any], bool]:
    async def go() -> tuple[list[list[Any]], bool]:
        return await numbered_pages(queue.fetch, first=1, size=SIZE, max_pages=max_pages,
                                    read_ahead=read_ahead)  # fmt: skip

    pages, cut_short = asyncio.run(go())
    return [entry for page in pages for entry in page], cut_short


def test_a_queue_that_fits_in_one_page_is_asked_once() -> None:
    queue = Queue(2)
    assert read(queue) == ([0, 1], False)
    assert queue.asked == [1]


def test_pages_after_a_full_first_come_read_ahead_at_once_and_in_order() -> None:
    queue = Queue(10 * SIZE + 1)  # 11 pages, the last with one entry
    entries, cut_short = read(queue, read_ahead=4)
    assert entries == list(range(10 * SIZE + 1)) and not cut_short
    assert queue.most_in_flight == 4
    assert 11 <= len(queue.asked) <= 11 + 3, "at most read_ahead - 1 pages past the end"
    assert sorted(queue.asked) == list(range(1, len(queue.asked) + 1)), "each page once"


def test_an_exact_multiple_of_the_page_size_ends_at_the_first_empty_page() -> None:
    queue = Queue(4 * SIZE)
    assert read(queue, read_ahead=2)[0] == list(range(4 * SIZE))
    assert 5 in queue.asked


def test_one_page_at_a_time_when_read_ahead_is_one() -> None:
    queue = Queue(3 * SIZE + 1)
    assert read(queue, read_ahead=1)[0] == list(range(3 * SIZE + 1))
    assert queue.asked == [1, 2, 3, 4] and queue.most_in_flight == 1


def test_max_pages_cuts_the_list_short_and_says_so() -> None:
    queue = Queue(100 * SIZE)
    entries, cut_short = read(queue, read_ahead=4, max_pages=6)
    assert cut_short and entries == list(range(6 * SIZE))
    assert max(queue.asked) == 6


def test_a_failing_page_fails_the_list_and_cancels_the_pages_still_asked() -> None:
    queue = Queue(20 * SIZE, failing=3)
    with pytest.raises(RuntimeError, match="page 3 failed"):
        read(queue, read_ahead=4)
    assert queue.in_flight == 0, "nothing left running"
    assert queue.asked == [1, 2, 3, 4, 5, 6], "6 is asked once 2 is in, before 3 fails"
    assert sorted(queue.cancelled) == [4, 5, 6], "the pages asked after it were cancelled"
