"""Header values of a study's instances, converted once per distinct raw value.

pydicom converts a raw element the first time it is read (12-50 µs each: validation,
multi-value splitting, UID and DS objects), and the instances of a series repeat most
values byte for byte (orientation, rescale, modality, the series' UIDs...). `HeaderValues`
keys each conversion by everything it depends on (tag, VR, raw bytes, byte order,
implicit VR, character set), so it returns exactly what `Dataset.get` would, at the
cost of a dictionary lookup. Decimal strings and UIDs that differ per slice (Image
Position, SOP Instance UID) are decoded as pydicom's DS and UI conversions do, and go to
pydicom when they do not parse. Raw values come from `core.dicom_scan` or from pydicom's raw
elements; elements whose VR pydicom resolves from others ("US or SS") are not memoised.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement

if TYPE_CHECKING:
    from radraft.reporting.frames.loading import Instance

_CHARSET = 0x00080005
_PIXEL_DATA = 0x7FE00010
_ABSENT = ("absent",)
T = TypeVar("T")


@lru_cache(maxsize=256)
def tag_of(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return int(tag)


@lru_cache(maxsize=256)
def _ambiguous(tag: int) -> bool:
    """'US or SS' and the like: pydicom resolves those from other elements."""
    try:
        return " or " in dictionary_VR(tag)
    except KeyError:
        return True


class HeaderValues:
    """`Dataset.get` memoised by raw bytes; one per scan (its memory ends with the scan)."""

    def __init__(self) -> None:
        self._memo: dict[Hashable, Any] = {}

    def _raw_key(self, inst: Instance, keyword: str) -> tuple[Any, ...] | None:
        """What the converted value depends on; None when it cannot be keyed."""
        tag = tag_of(keyword)
        if _ambiguous(tag):
            return None
        raw = inst.raw
        if raw is not None and tag < _PIXEL_DATA:
            found = raw.elements.get(tag)
            if found is None:
                return _ABSENT
            if found[1] is None:
                return None  # a sequence: pydicom's
            charset = raw.elements.get(_CHARSET)
            return (tag, found[0], found[1], True, raw.implicit,
                    charset[1] if charset is not None else None)
        ds = inst.header
        elem = ds.get_item(tag, keep_deferred=True)
        if elem is None:
            return _ABSENT
        if not isinstance(elem, RawDataElement) or elem.value is None:
            return None  # converted already (or deferred): ask pydicom
        charset_elem = ds.get_item(_CHARSET, keep_deferred=True)
        if isinstance(charset_elem, RawDataElement):
            charset_key: Any = charset_elem.value
        elif charset_elem is not None:
            charset_key = str(charset_elem.value)
        else:
            charset_key = None
        return (tag, elem.VR, elem.value, elem.is_little_endian, elem.is_implicit_VR,
                charset_key)

    def get(self, inst: Instance, keyword: str, default: Any = None) -> Any:
        key = self._raw_key(inst, keyword)
        if key is None:
            return inst.header.get(keyword, default)
        if key is _ABSENT:
            return default
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = inst.header.get(keyword, default)
            return value

    def numbers(self, inst: Instance, keyword: str) -> Any:
        """A decimal string's numbers (Image Position...): the fast path for unique values."""
        key = self._raw_key(inst, keyword)
        if key is not None and key is not _ABSENT and key[1] in ("DS", None):
            try:
                return tuple(float(part) for part in key[2].split(b"\\"))
            except ValueError:
                pass  # padding or an empty value: pydicom decides
        return self.get(inst, keyword)

    def uid(self, inst: Instance, keyword: str) -> str:
        """A single UID as `str(ds.get(keyword, ""))` gives it (unique per instance)."""
        key = self._raw_key(inst, keyword)
        if key is _ABSENT:
            return ""
        if key is not None and key[1] in ("UI", None) and b"\\" not in key[2]:
            # pydicom's UI conversion: default encoding, trailing NULs and spaces removed.
            return str(key[2].decode("latin-1").rstrip("\0 "))
        return str(inst.header.get(keyword, ""))

    def derived(self, inst: Instance, keywords: Sequence[str], extra: Hashable,
                compute: Callable[[], T]) -> T:
        """`compute()` memoised by the raw values of `keywords` (and `extra`)."""
        keys = [self._raw_key(inst, k) for k in keywords]
        if any(k is None for k in keys):
            return compute()
        memo_key = ("derived", tuple(keywords), tuple(keys), extra)
        try:
            value: T = self._memo[memo_key]
        except KeyError:
            value = self._memo[memo_key] = compute()
        return value
