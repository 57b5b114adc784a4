"""Wiring of every patch point of dicom_node/fast against the installed pynetdicom/pydicom.

For each: what it replaces still exists upstream with the shape assumed (checked on the
library's own source, so a renamed attribute fails here rather than silently ending the
speed-up), and after install/accelerate the replacement is what pynetdicom calls.
"""

from __future__ import annotations

import inspect
import logging
import queue
import socket
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pydicom
import pydicom.filewriter
import pynetdicom
import pynetdicom.association
import pynetdicom.dimse_messages
import pytest
from pynetdicom import AE, _config
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_messages import DIMSEMessage
from pynetdicom.dul import DULServiceProvider
from pynetdicom.fsm import STATES
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.transport import AssociationSocket

from radraft.dicom_node import fast
from radraft.dicom_node.fast import direct_write, file_meta, received_file
from radraft.dicom_node.fast.reactor import REACTOR_SLEEP_S, TimeWithoutReactorSleep
from radraft.dicom_node.fast.transport import FastSocket, WaitingMessageQueue, WakingQueue

_DIMSE: Any = pynetdicom.dimse_messages
_ASSOC: Any = pynetdicom.association


def _source(obj: Any) -> str:
    return inspect.getsource(obj)


@pytest.fixture
def stock_afterwards() -> Iterator[None]:
    yield
    fast.uninstall()


def test_the_pinned_versions_are_the_installed_ones() -> None:
    assert fast.version_mismatch() is None
    assert {"pynetdicom": pynetdicom.__version__, "pydicom": pydicom.__version__} == fast.PINNED


def test_received_file_globals_exist_as_assumed_and_are_replaced(stock_afterwards: None) -> None:
    fast.uninstall()
    decode = _source(DIMSEMessage.decode_msg)
    # pynetdicom opens the received file, writes its meta, through module globals.
    assert 'NamedTemporaryFile(delete=False, mode="wb", suffix=".dcm")' in decode
    assert "create_file_meta(" in decode and "write_file_meta_info(" in decode
    assert _DIMSE.NamedTemporaryFile is tempfile.NamedTemporaryFile
    assert _DIMSE.write_file_meta_info is pydicom.filewriter.write_file_meta_info
    assert fast.install()
    assert _DIMSE.NamedTemporaryFile is received_file.received_file
    assert _DIMSE.create_file_meta is file_meta.create_file_meta
    assert _DIMSE.write_file_meta_info is file_meta.write_file_meta_info
    fast.uninstall()
    assert _DIMSE.NamedTemporaryFile is tempfile.NamedTemporaryFile


def test_reactor_sleep_exists_as_assumed_and_is_replaced(stock_afterwards: None) -> None:
    fast.uninstall()
    assert _ASSOC.time is time
    assert f"time.sleep({REACTOR_SLEEP_S})" in _source(Association._run_reactor)
    assert "self.dimse.get_msg(block=False)" in _source(Association._run_reactor)
    assert "self.msg_queue.get(block=block" in _source(DIMSEServiceProvider.get_msg)
    assert fast.install()
    assert isinstance(_ASSOC.time, TimeWithoutReactorSleep)


def test_dul_and_dimse_attributes_exist_as_assumed() -> None:
    dul_init = _source(DULServiceProvider.__init__)
    dul_run = _source(DULServiceProvider.run_reactor)
    for name in ("self.to_provider_queue", "self.event_queue", "self._recv_pdu",
                 "self._run_loop_delay", "self._kill_thread"):
        assert name in dul_init, name
    assert "self._read_pdu_data()" in _source(DULServiceProvider._is_transport_event)
    assert "self.socket.ready" in _source(DULServiceProvider._is_transport_event)
    assert "time.sleep(self._run_loop_delay)" in dul_run
    assert "self.socket.recv(6)" in _source(DULServiceProvider._read_pdu_data)
    assert "self.socket.recv(pdu_length)" in _source(DULServiceProvider._read_pdu_data)
    assert STATES["Sta6"] == "Association established and ready for data transfer"
    assert "self._data_set_file" in _source(DIMSEMessage.__init__)
    assert "primitive._dataset_path = self._data_set_path" in _source(
        DIMSEMessage.message_to_primitive)
    assert "self.msg_queue" in _source(DIMSEServiceProvider.__init__)
    assert "self.message" in _source(DIMSEServiceProvider.__init__)
    assert "self.dul.send_pdu(" in _source(DIMSEServiceProvider.send_msg)
    assert "self.dimse.send_msg(rsp, cx_id)" in _source(StorageServiceClass.SCP)
    sock = _source(AssociationSocket)
    assert "def ready(self) -> bool" in sock and "def recv(self, nr_bytes: int)" in sock
    assert "self._is_connected" in sock


def test_accelerate_puts_each_replacement_where_pynetdicom_calls_it(
    stock_afterwards: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As the node configures it: pynetdicom's standard log handlers would see every PDU
    # (EVT_DATA_RECV), and direct writes are then not used.
    monkeypatch.setattr(_config, "LOG_HANDLER_LEVEL", "none")
    assert fast.install()
    ae = AE(ae_title="WIRING")
    assoc = Association(ae, "acceptor")
    ours, theirs = socket.socketpair()
    assoc.set_socket(AssociationSocket(assoc, client_socket=ours))
    early_sync = fast.EarlySync()
    fast.accelerate(assoc, early_sync=early_sync, max_pdu=1 << 20,
                    on_arrival=lambda _n: None, discard=lambda: False)
    dul: Any = assoc.dul
    assert type(dul.socket) is FastSocket and dul.socket.max_pdu == 1 << 20
    assert isinstance(dul.to_provider_queue, WakingQueue)
    assert isinstance(dul.event_queue, queue.SimpleQueue)
    assert isinstance(dul._recv_pdu, queue.SimpleQueue)
    assert dul._run_loop_delay == 0
    assert isinstance(assoc.dimse.msg_queue, WaitingMessageQueue)
    # Instance attributes shadow the methods DUL.run and StorageServiceClass call.
    assert getattr(dul._read_pdu_data, "__self__", None).__class__ is (
        direct_write.DirectDatasetWriter)
    assert "send_msg" in vars(assoc.dimse)
    assert assoc._accelerated  # type: ignore[attr-defined]
    early_sync.shutdown()
    ours.close()
    theirs.close()


def test_accelerate_refuses_without_install(stock_afterwards: None) -> None:
    fast.uninstall()
    assoc = Association(AE(ae_title="WIRING"), "acceptor")
    with pytest.raises(RuntimeError):
        fast.accelerate(assoc, early_sync=fast.EarlySync(), max_pdu=1 << 20,
                        on_arrival=lambda _n: None, discard=lambda: False)


def test_another_version_installs_nothing_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    stock_afterwards: None,
) -> None:
    fast.uninstall()
    monkeypatch.setattr(pynetdicom, "__version__", "3.0.5")
    monkeypatch.setattr(fast, "_refusal_logged", False)
    with caplog.at_level(logging.WARNING, logger="radraft.dicom_node.fast"):
        assert fast.install(log_refusal=False) is False  # a receiving process: quiet
        assert not caplog.records
        assert fast.install() is False
        assert fast.install() is False
        assert fast.log_refusal_once() is True  # the node's own process: already said
    refusals = [r for r in caplog.records if "not installed" in r.getMessage()]
    assert len(refusals) == 1
    assert "pynetdicom 3.0.5 (written for 3.0.4)" in refusals[0].getMessage()
    assert _DIMSE.NamedTemporaryFile is tempfile.NamedTemporaryFile
    assert _ASSOC.time is time
