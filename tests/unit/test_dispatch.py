"""The node's dispatcher hands each connection to the receiving process with the fewest open
associations, hears their ends, and skips a receiver whose channel closed (real sockets)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from radraft.dicom_node.dispatch import ENDED, Dispatcher, receive_connection


@pytest.fixture
def dispatcher() -> Iterator[Dispatcher]:
    dispatch = Dispatcher("127.0.0.1", 0, 3)
    ends = dispatch.receiver_ends
    dispatch.receiver_ends = []  # the test holds the receivers' ends, as the processes would
    dispatch.start()
    dispatch.receiver_ends = ends
    yield dispatch
    dispatch.close()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _handed(dispatch: Dispatcher, clients: list[socket.socket],
            receivers: tuple[int, ...] = (0, 1, 2)) -> list[int]:
    """Which receiver got each of `clients` (in order), by reading the receivers' ends."""
    got: dict[int, int] = {}
    for index in receivers:
        end = dispatch.receiver_ends[index]
        end.settimeout(0.3)
        while True:
            try:
                connection = receive_connection(end)
            except TimeoutError:
                break
            assert connection is not None
            with connection:
                assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                got[connection.getpeername()[1]] = index
    return [got[client.getsockname()[1]] for client in clients]


def _wait(condition: object) -> None:
    for _ in range(100):
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def test_connections_spread_evenly_and_go_where_an_association_ended(
        dispatcher: Dispatcher) -> None:
    first = [_connect(dispatcher.port) for _ in range(3)]
    assert sorted(_handed(dispatcher, first)) == [0, 1, 2]
    second = [_connect(dispatcher.port) for _ in range(3)]
    assert sorted(_handed(dispatcher, second)) == [0, 1, 2]
    assert dispatcher.open == [2, 2, 2]
    dispatcher.receiver_ends[1].send(ENDED)
    _wait(lambda: dispatcher.open == [2, 1, 2])
    third = _connect(dispatcher.port)
    assert _handed(dispatcher, [third]) == [1]
    for client in [*first, *second, third]:
        client.close()


def test_a_receiver_whose_channel_closed_gets_nothing_more(dispatcher: Dispatcher) -> None:
    dispatcher.receiver_ends[0].close()
    _wait(lambda: not dispatcher.alive[0])
    clients = [_connect(dispatcher.port) for _ in range(4)]
    assert sorted(_handed(dispatcher, clients, receivers=(1, 2))) == [1, 1, 2, 2]
    for client in clients:
        client.close()


def test_a_taken_port_is_a_start_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(Exception, match=f"cannot listen on 127.0.0.1:{port}"):
            Dispatcher("127.0.0.1", port, 2)
