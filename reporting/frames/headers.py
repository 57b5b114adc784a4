"""Header values of a study's instances, converted once per distinct raw value.

pydicom converts a raw element the first time it is read (12-50 µs each: validation,
multi-value splitting, UID and DS objects), and the instances of a series repeat most
values byte for byte (orientation, rescale, modality, the series' UIDs...). `HeaderValues`
keys each conversion by everything it depends on (tag, VR, raw bytes, byte order,
implicit VR, character set), so it returns exactly what `Dataset.get` would, at the
cost of a dictionary lookup. Decimal strings that differ per slice (Image Position) are
parsed with `float`, as pydicom's DS does, and go to pydicom when they do not parse.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

_CHARSET = 0x00080005
_ABSENT = ("absent",)
T = TypeVar("T")


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return int(tag)


class HeaderValues:
    """`Dataset.get` memoised by raw bytes; one per scan (its memory ends with the scan)."""

    def __init__(self) -> None:
        self._memo: dict[Hashable, Any] = {}
        self._tags: dict[str, int] = {}

    def _raw_key(self, ds: Dataset, keyword: str) -> tuple[Any, ...] | None:
        """What the converted value depends on; None when it cannot be keyed."""
        tag = self._tags.get(keyword)
        if tag is None:
            tag = self._tags[keyword] = _tag(keyword)
        elem = ds.get_item(tag, keep_deferred=True)
        if elem is None:
            return _ABSENT
        if not isinstance(elem, RawDataElement) or elem.value is None:
            return None  # converted already (or deferred): ask pydicom
        charset = ds.get_item(_CHARSET, keep_deferred=True)
        if isinstance(charset, RawDataElement):
            charset_key: Any = charset.value
        elif charset is not None:
            charset_key = str(charset.value)
        else:
            charset_key = None
        return (tag, elem.VR, elem.value, elem.is_little_endian, elem.is_implicit_VR,
                charset_key)

    def get(self, ds: Dataset, keyword: str, default: Any = None) -> Any:
        key = self._raw_key(ds, keyword)
        if key is None:
            return ds.get(keyword, default)
        if key is _ABSENT:
            return default
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = ds.get(keyword, default)
            return value

    def numbers(self, ds: Dataset, keyword: str) -> Any:
        """A decimal string's numbers (Image Position...): the fast path for unique values."""
        key = self._raw_key(ds, keyword)
        if key is not None and key is not _ABSENT and key[1] in ("DS", None):
            try:
                return tuple(float(part) for part in key[2].split(b"\\"))
            except ValueError:
                pass  # padding or an empty value: pydicom decides
        return self.get(ds, keyword)

    def derived(self, ds: Dataset, keywords: Sequence[str], extra: Hashable,
                compute: Callable[[], T]) -> T:
        """`compute()` memoised by the raw values of `keywords` (and `extra`)."""
        keys = [self._raw_key(ds, k) for k in keywords]
        if any(k is None for k in keys):
            return compute()
        memo_key = ("derived", tuple(keywords), tuple(keys), extra)
        try:
            value: T = self._memo[memo_key]
        except KeyError:
            value = self._memo[memo_key] = compute()
        return value
