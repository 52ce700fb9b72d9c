"""``server/helper/checking.py``: Prepare's checks on the event loop in slices, or in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from pets.server.helper import checking
from pets.v1 import aggregation_pb2 as pb


class Recorder:
    """A checker that accepts holders whose name ends in an even digit, refuses the rest,
    skips the known ones, and notes the thread and slice of each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def check(
        self,
        items: Sequence[pb.SealedContribution],
        accepted: dict[str, tuple[bytes, bytes]] | None = None,
    ) -> tuple[dict[str, tuple[bytes, bytes]], list[tuple[str, str]]]:
        self.calls.append((threading.current_thread().name, [i.holder for i in items]))
        known = accepted or {}
        opened, refused = {}, []
        for item in items:
            if item.holder in known:
                continue
            if int(item.holder[-1]) % 2 == 0:
                opened[item.holder] = (b"sealed", b"seed")
            else:
                refused.append((item.holder, "does not open"))
        return opened, refused

    def finalise(self, items: object, accepted: object = None) -> bytes:  # pragma: no cover
        raise AssertionError("not used")


ITEMS = [pb.SealedContribution(holder=f"h{i:03d}") for i in range(2 * checking.SLICE + 3)]
KNOWN = {"h000": (b"s", b"k")}


def _run(in_thread: bool) -> tuple[object, Recorder]:
    recorder = Recorder()

    async def go() -> object:
        return await checking.check(recorder, ITEMS, dict(KNOWN), in_thread=in_thread)

    return asyncio.run(go()), recorder


def test_slices_on_the_loop_decide_as_one_call_does() -> None:
    whole = Recorder().check(ITEMS, dict(KNOWN))
    on_loop, recorder = _run(in_thread=False)
    assert on_loop == whole
    assert [len(holders) for _, holders in recorder.calls] == [checking.SLICE] * 2 + [3]
    assert {thread for thread, _ in recorder.calls} == {threading.main_thread().name}


def test_a_verifying_protocol_checks_the_batch_in_a_worker_thread() -> None:
    in_thread, recorder = _run(in_thread=True)
    assert in_thread == Recorder().check(ITEMS, dict(KNOWN))
    ((thread, holders),) = recorder.calls
    assert thread != threading.main_thread().name and len(holders) == len(ITEMS)


def test_the_loop_serves_others_between_slices() -> None:
    async def go() -> list[str]:
        order: list[str] = []
        recorder = Recorder()
        original = recorder.check

        def check(items, accepted=None):  # type: ignore[no-untyped-def]
            order.append("slice")
            return original(items, accepted)

        recorder.check = check  # type: ignore[method-assign]

        async def other() -> None:
            order.append("other")

        task = asyncio.ensure_future(checking.check(recorder, ITEMS, {}, in_thread=False))
        await asyncio.gather(task, other())
        return order

    order = asyncio.run(go())
    assert order.count("slice") == 3 and order.index("other") < len(order) - 1
