"""The node's direct File Meta Information is byte for byte what pynetdicom + pydicom write."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom.filewriter import write_file_meta_info as pydicom_write
from pynetdicom.dsutils import create_file_meta as pynetdicom_meta

from radraft.dicom_node.fast.file_meta import create_file_meta, write_file_meta_info


@pytest.mark.parametrize(("sop_class", "sop_instance", "syntax"), [
    ("1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.8.498.1234567890123", "1.2.840.10008.1.2.1"),
    ("1.2.840.10008.5.1.4.1.1.4", "1.2.3.4", "1.2.840.10008.1.2"),
    ("1.3.12.2.1107.5.9.1", "1.2.826.0.1.3680043.10.12", "1.2.840.10008.1.2.4.70"),
    ("1.2.840.10008.5.1.4.1.1.88.67", "2.25.1234567890123456789012345678901234",
     "1.2.840.10008.1.2.1.99"),
])
def test_same_bytes_as_pydicom(sop_class: str, sop_instance: str, syntax: str) -> None:
    ours, theirs = BytesIO(), BytesIO()
    write_file_meta_info(ours, create_file_meta(
        sop_class_uid=sop_class, sop_instance_uid=sop_instance, transfer_syntax=syntax))
    pydicom_write(theirs, pynetdicom_meta(
        sop_class_uid=sop_class, sop_instance_uid=sop_instance, transfer_syntax=syntax))
    assert ours.getvalue() == theirs.getvalue()


def test_other_file_meta_goes_to_pydicom() -> None:
    meta = pynetdicom_meta(sop_class_uid="1.2.840.10008.5.1.4.1.1.2", sop_instance_uid="1.2.3",
                           transfer_syntax="1.2.840.10008.1.2.1")
    ours, theirs = BytesIO(), BytesIO()
    write_file_meta_info(ours, meta)
    pydicom_write(theirs, meta)
    assert ours.getvalue() == theirs.getvalue()
