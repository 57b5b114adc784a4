from __future__ import annotations

from pathlib import Path

import pytest

from radraft.core.errors import ConfigError
from radraft.core.settings import load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "radraft.yaml"
    path.write_text(text)
    return path


def test_defaults_need_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RADRAFT_CONFIG", raising=False)
    settings = load_settings(None)
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("radraft-data/radraft.db")
    assert settings.broker_url == "sqla+" + settings.database_url
    assert settings.dicom.port == 11112


def test_unknown_key_names_key_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "dicom:\n  port: 11113\n  prot: 5\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert f"{path}:3: dicom.prot: unknown key" in str(err.value)


def test_bad_value_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "site:\n  uid_root: '1.2.x'\nhl7:\n  port: 99999\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    text = str(err.value)
    assert f"{path}:2: site.uid_root" in text
    assert f"{path}:4: hl7.port" in text


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "dicom:\n  port: 11113\n  ae_title: FROMFILE\n")
    monkeypatch.setenv("RADRAFT_DICOM__PORT", "11999")
    settings = load_settings(path)
    assert settings.dicom.port == 11999
    assert settings.dicom.ae_title == "FROMFILE"


def test_bad_environment_value_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RADRAFT_DICOM__PORT", "eleven")
    with pytest.raises(ConfigError, match=r"RADRAFT_DICOM__PORT: dicom\.port"):
        load_settings(None)


def test_destination_kinds_and_masking(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "database_url: postgresql://radraft:s3cret@db:5432/radraft\n"
        "destinations:\n"
        "  pacs: {kind: dicom, host: pacs, port: 104, ae_title: PACS}\n"
        "  ris: {kind: hl7, host: ris, port: 2575, role: ris}\n"
        "  drop: {kind: folder, path: /tmp/out}\n"
        "  bad: {kind: fax, number: 1}\n",
    )
    with pytest.raises(ConfigError, match=r":6: destinations.bad"):
        load_settings(path)
    path.write_text(path.read_text().rsplit("  bad:", 1)[0])
    settings = load_settings(path)
    assert settings.destinations["ris"].kind == "hl7"
    assert "s3cret" not in str(settings.masked())
    assert settings.broker_url.startswith("amqp://")


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "dicom:\n  port: [1,\n")
    with pytest.raises(ConfigError, match=r"radraft.yaml:\d+: YAML syntax error"):
        load_settings(path)


def test_frame_recipe_errors_name_key_and_line(tmp_path: Path) -> None:
    # FrameRecipe is a plain dataclass (frame assembly imports no pydantic); settings
    # still refuse its unknown keys and out-of-range values, naming key and line.
    path = write(tmp_path, "profiles:\n  x:\n    frames:\n      frame_size: 10\n      sizes: 1\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert f"{path}:5: profiles.x.frames.sizes: unknown key" in str(err.value)
    path = write(tmp_path, "profiles:\n  x:\n    frames:\n      frame_size: 10\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert f"{path}:3: profiles.x.frames:" in str(err.value)
    assert "frame_size must be between 28 and 2048" in str(err.value)
    path = write(tmp_path, "profiles:\n  x:\n    frames:\n      frame_size: '64'\n")
    frames = load_settings(path).profiles["x"].frames
    assert frames.frame_size == 64
    assert load_settings(path).masked()["profiles"]["x"]["frames"]["frame_size"] == 64
