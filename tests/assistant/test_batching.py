"""Coalescer: calls made together are served by one blocking call, each caller gets its own answer or error."""

from __future__ import annotations

import asyncio
import threading

import pytest

from assistant.batching import Coalescer
from assistant.thread_pool import FixedThreadPool


def test_calls_made_together_share_one_run_and_each_gets_its_own_answer() -> None:
    runs: list[list[int]] = []
    threads: set[str] = set()

    def square_all(items: list[int]) -> list[int | BaseException]:
        runs.append(list(items))
        threads.add(threading.current_thread().name)
        return [ValueError(f"odd {i}") if i % 2 else i * i for i in items]

    pool = FixedThreadPool(1, "coalescer-test")

    async def main() -> list[object]:
        squares = Coalescer(square_all, pool)
        first = await asyncio.gather(*(squares(i) for i in range(6)), return_exceptions=True)
        alone = await squares(8)
        return [*first, alone]

    try:
        answers = asyncio.run(main())
    finally:
        pool.shutdown()
    assert answers[0::2] == [0, 4, 16, 64]
    assert [str(a) for a in answers[1:6:2]] == ["odd 1", "odd 3", "odd 5"]
    assert runs == [[0, 1, 2, 3, 4, 5], [8]]  # one run for the six made in the same moment, one for the late one
    assert threads == {"coalescer-test_0"}


def test_calls_made_while_a_run_is_under_way_wait_for_the_next_one_and_max_batch_bounds_a_run() -> None:
    runs: list[list[int]] = []
    gate = threading.Event()

    def echo(items: list[int]) -> list[int]:
        runs.append(list(items))
        gate.wait(5)
        return items

    async def main() -> list[int]:
        echoes = Coalescer(echo, max_batch=3)
        first = asyncio.ensure_future(echoes(0))
        await asyncio.sleep(0.05)  # the first run has started and waits on the gate
        later = [asyncio.ensure_future(echoes(i)) for i in range(1, 6)]
        await asyncio.sleep(0.05)
        gate.set()
        return [await first, *[await f for f in later]]

    assert asyncio.run(main()) == [0, 1, 2, 3, 4, 5]
    assert runs == [[0], [1, 2, 3], [4, 5]]


def test_a_failing_run_fails_every_caller_of_its_batch_and_the_next_batch_runs() -> None:
    calls = 0

    def flaky(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return [s.upper() for s in items]

    async def main() -> tuple[list[object], str]:
        upper = Coalescer(flaky)
        failed = await asyncio.gather(upper("a"), upper("b"), return_exceptions=True)
        return failed, await upper("c")

    failed, after = asyncio.run(main())
    assert all(isinstance(f, ConnectionError) for f in failed) and len(failed) == 2
    assert after == "C"


def test_a_run_that_answers_the_wrong_number_of_items_is_an_error_not_a_silent_mismatch() -> None:
    async def main() -> None:
        short = Coalescer(lambda items: items[:-1])
        await asyncio.gather(short(1), short(2))

    with pytest.raises(RuntimeError, match="answered 1 of 2"):
        asyncio.run(main())
