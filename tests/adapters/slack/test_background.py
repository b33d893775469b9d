"""Work started after a Slack ack: kept alive while it runs and awaited at shutdown, so an acked vote is never dropped."""

from __future__ import annotations

import asyncio
import gc

from adapters.slack.listeners import Background


def test_drain_waits_for_started_work_including_work_started_meanwhile() -> None:
    done: list[str] = []

    async def main() -> None:
        later = Background()

        async def vote(name: str, delay: float) -> None:
            await asyncio.sleep(delay)
            done.append(name)
            if name == "first":
                later.start(vote("follow-up", 0.05))  # e.g. a refusal sent after a vote

        later.start(vote("first", 0.05))
        later.start(vote("second", 0.01))
        assert len(later) == 2
        await later.drain()
        assert len(later) == 0

    asyncio.run(main())
    assert sorted(done) == ["first", "follow-up", "second"]


def test_started_work_is_kept_referenced_until_it_ends() -> None:
    """asyncio holds only weak references to tasks: unreferenced work can vanish mid-vote."""
    finished = asyncio.Event

    async def main() -> bool:
        later = Background()
        gate = finished()
        ran = []

        async def vote() -> None:
            await gate.wait()
            ran.append(True)

        later.start(vote())
        await asyncio.sleep(0)
        gc.collect()
        gate.set()
        await later.drain()
        return bool(ran)

    assert asyncio.run(main())


def test_a_failing_piece_of_work_does_not_stop_the_drain() -> None:
    async def main() -> list[str]:
        later = Background()
        done: list[str] = []

        async def boom() -> None:
            raise RuntimeError("vote failed")

        async def fine() -> None:
            await asyncio.sleep(0.01)
            done.append("fine")

        later.start(boom())
        later.start(fine())
        await later.drain()
        return done

    assert asyncio.run(main()) == ["fine"]
