"""Allow-lists of addresses, networks and certificate names (hl7.allowed_senders), and the
node's TLS settings checked at start (issue 25, item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from radraft.core.errors import ConfigError
from radraft.core.peers import AllowList, cert_common_name
from radraft.core.settings import DicomSettings
from radraft.dicom_node.tls import node_context


def test_allow_list_by_address_network_and_name() -> None:
    allow = AllowList.parse(["10.1.2.3", "192.168.0.0/16", "CN=ris.test", "::1"], "k")
    assert allow.allows("10.1.2.3") and allow.allows("192.168.44.5")
    assert allow.allows("::ffff:192.168.1.1") and allow.allows("::1")
    assert not allow.allows("10.1.2.4") and not allow.allows(None)
    assert allow.allows("8.8.8.8", "ris.test") and not allow.allows("8.8.8.8", "ed.test")
    assert not allow.allows("not an address")
    assert AllowList.parse([], "k").allows("8.8.8.8")  # empty: open


def test_a_bad_entry_names_the_key_and_index() -> None:
    with pytest.raises(ConfigError, match=r"hl7.allowed_senders\[1\]: 'ris' is neither"):
        AllowList.parse(["10.0.0.0/8", "ris"], "hl7.allowed_senders")


def test_common_name_from_a_peer_certificate() -> None:
    cert = {"subject": ((("countryName", "BE"),), (("commonName", "ris.test"),))}
    assert cert_common_name(cert) == "ris.test"
    assert cert_common_name({}) is None and cert_common_name(None) is None


def test_node_tls_settings_are_checked(tmp_path: Path) -> None:
    assert node_context(DicomSettings()) is None
    with pytest.raises(ConfigError, match=r"need dicom\.tls_cert"):
        node_context(DicomSettings(tls_peers={"CT": "ct.test"}))
    with pytest.raises(ConfigError, match=r"dicom\.tls_peers needs dicom\.tls_ca"):
        node_context(DicomSettings(tls_cert=tmp_path / "c", tls_key=tmp_path / "k",
                                   tls_peers={"CT": "ct.test"}))
    with pytest.raises(ConfigError, match=r"dicom\.tls_cert / tls_key / tls_ca"):
        node_context(DicomSettings(tls_cert=tmp_path / "missing.crt",
                                   tls_key=tmp_path / "missing.key"))
