"""The STOW-RS body parser's decisions: content types, limits, free space, truncation; and
no file is ever left behind by a refused or cut-off request."""

from __future__ import annotations

from pathlib import Path

import pytest

from radraft.dicom_node.stow_upload import (
    StowRequestError,
    StowUpload,
    boundary_of,
    response_body,
)

CT = 'multipart/related; type="application/dicom"; boundary=XyZ'


def _upload(tmp: Path, *, room: bool = True, instance: int = 1 << 20,
            request: int = 1 << 30) -> StowUpload:
    return StowUpload("XyZ", tmp, instance, request, lambda _n: room)


def _body(*parts: bytes) -> bytes:
    return b"".join(b"--XyZ\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n"
                    for p in parts) + b"--XyZ--\r\n"


@pytest.mark.parametrize(("content_type", "status"), [
    ("application/dicom", 415), ("multipart/form-data; boundary=a", 415),
    ('multipart/related; type="application/dicom+xml"; boundary=a', 415),
    ('multipart/related; type="application/dicom"', 400), ("", 415),
])
def test_content_types_refused(content_type: str, status: int) -> None:
    with pytest.raises(StowRequestError) as refused:
        boundary_of(content_type)
    assert refused.value.http_status == status


def test_boundary_read_quoted_or_not() -> None:
    assert boundary_of(CT) == "XyZ"
    assert boundary_of('Multipart/Related; boundary="a b"; type=application/dicom') == "a b"


def test_parts_become_files_in_any_chunking(tmp_path: Path) -> None:
    body = _body(b"first part", b"\r\n--Xy second with a false boundary start")
    for size in (1, 3, 7, len(body)):
        upload = _upload(tmp_path)
        for i in range(0, len(body), size):
            upload.feed(body[i:i + size])
        upload.finish()
        assert [p.path.read_bytes() for p in upload.ready] == [
            b"first part", b"\r\n--Xy second with a false boundary start"]
        upload.discard()
    assert list(tmp_path.iterdir()) == []


def test_part_over_the_limit_is_refused_and_removed(tmp_path: Path) -> None:
    upload = _upload(tmp_path, instance=10)
    upload.feed(_body(b"0123456789ABCDEF", b"small"))
    upload.finish()
    assert [o.status for o in upload.outcomes] == [0xA700]
    assert [p.path.read_bytes() for p in upload.ready] == [b"small"]
    upload.discard()
    assert list(tmp_path.iterdir()) == []


def test_request_over_the_limit_and_full_disk(tmp_path: Path) -> None:
    with pytest.raises(StowRequestError) as big:
        _upload(tmp_path, request=20).feed(_body(b"x" * 64))
    assert big.value.http_status == 413
    full = _upload(tmp_path, room=False)
    with pytest.raises(StowRequestError) as no_room:
        full.feed(_body(b"x"))
    assert no_room.value.http_status == 503
    full.discard()
    assert list(tmp_path.iterdir()) == []


def test_cut_off_body_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    upload = _upload(tmp_path)
    body = _body(b"complete", b"cut off here")
    upload.feed(body[: body.index(b"cut off") + 3])
    with pytest.raises(StowRequestError) as cut:
        upload.finish()
    assert cut.value.http_status == 400
    upload.discard()
    assert list(tmp_path.iterdir()) == []


def test_response_statuses() -> None:
    from radraft.dicom_node.stow_upload import StowOutcome

    ok, bad = StowOutcome("1.2", "1.2.3", 0), StowOutcome("1.2", "1.2.4", 0xA900)
    assert response_body([ok])[0] == 200
    assert response_body([ok, bad])[0] == 202
    status, body = response_body([bad])
    assert status == 409
    assert body["00081198"]["Value"][0]["00081197"] == {"vr": "US", "Value": [0xA900]}
