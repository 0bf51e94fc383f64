"""Reading ahead on a second thread: same items, same order, errors where they happened."""

from __future__ import annotations

import threading

import pytest

from geodata.readers import prefetched


def test_items_come_in_order_and_the_reader_runs_on_another_thread():
    threads: list[str] = []

    def numbers():
        for i in range(50):
            threads.append(threading.current_thread().name)
            yield i

    assert list(prefetched(numbers())) == list(range(50))
    assert set(threads) == {"reader"}


def test_an_error_is_raised_at_the_item_where_it_happened():
    def broken():
        yield 1
        yield 2
        msg = "line 3: broken"
        raise ValueError(msg)

    reading = prefetched(broken())
    assert [next(reading), next(reading)] == [1, 2]
    with pytest.raises(ValueError, match="line 3: broken"):
        next(reading)


def test_the_first_item_is_used_before_anything_more_is_read():
    # what the caller does with the first batch (the file's vocabulary, its notes) happens
    # before the reader makes the second item or runs the code after its last one
    events: list[str] = []

    def one_batch():
        events.append("made 0")
        yield 0
        events.append("made end")

    for item in prefetched(one_batch()):
        events.append(f"used {item}")
    assert events == ["made 0", "used 0", "made end"]


def test_at_most_one_item_is_read_ahead():
    made = []
    used = []

    def numbers():
        for i in range(10):
            made.append(i)
            yield i

    for item in prefetched(numbers(), ahead=1):
        if item >= 1:
            # the thread may be making item + 1, never item + 2
            assert len(made) <= item + 2
        used.append(item)
    assert used == list(range(10))


def test_stopping_early_stops_the_thread_and_closes_the_reader():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    reading = prefetched(endless())
    assert [next(reading) for _ in range(3)] == [0, 1, 2]
    reading.close()
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "reader"]
