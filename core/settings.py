"""One settings object for radraft: a YAML file plus `RADRAFT_` environment overrides.

Load it with :func:`load_settings` and pass it down; nothing reads configuration globally.
Unknown keys are errors, and every error names the key and the file line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from radraft.core.errors import ConfigError
from radraft.core.recipe import FrameRecipe
from radraft.core.settings_destinations import (
    HL7_TABLE_0074,
    Destination,
    DicomDestination,
    DicomwebDestination,
    FolderDestination,
    Hl7Destination,
)
from radraft.core.settings_network import (
    CommitmentPeer,
    DicomSettings,
    DicomwebSettings,
    Hl7Settings,
    PacsSettings,
    SiteSettings,
    ViewerSettings,
    WebSettings,
)
from radraft.core.settings_work import (
    AlertSettings,
    ConsistencySettings,
    DeliverySettings,
    JobSettings,
    Mode,
    ModelSettings,
    ProfileSettings,
    QualitySettings,
    RetentionSettings,
    _default_profiles,
)
from radraft.core.yaml_lines import LineMap, load_yaml_with_lines

CONFIG_ENV = "RADRAFT_CONFIG"


class Settings(BaseSettings):
    """Every radraft setting. Keys are documented in README.md, "Configuration"."""

    model_config = SettingsConfigDict(
        env_prefix="RADRAFT_", env_nested_delimiter="__", extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Path("radraft-data")
    database_url: str = ""
    broker_url: str = ""
    rules_file: Path | None = None
    site: SiteSettings = Field(default_factory=SiteSettings)
    dicom: DicomSettings = Field(default_factory=DicomSettings)
    hl7: Hl7Settings = Field(default_factory=Hl7Settings)
    web: WebSettings = Field(default_factory=WebSettings)
    dicomweb: DicomwebSettings = Field(default_factory=DicomwebSettings)
    viewer: ViewerSettings = Field(default_factory=ViewerSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    pacs: PacsSettings = Field(default_factory=PacsSettings)
    profiles: dict[str, ProfileSettings] = Field(default_factory=_default_profiles)
    destinations: dict[str, Destination] = Field(default_factory=dict)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    consistency: ConsistencySettings = Field(default_factory=ConsistencySettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the YAML file (passed as init values).
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'radraft.db').resolve()}"
        if not self.broker_url:
            # Embedded broker: kombu's SQLAlchemy transport on the same SQLite file.
            if self.database_url.startswith("sqlite"):
                self.broker_url = "sqla+" + self.database_url
            else:
                self.broker_url = "amqp://guest:guest@127.0.0.1:5672//"
        _refuse_placeholders(self)
        return self

    @property
    def model_path(self) -> Path:
        return self.model.path or self.data_dir / "models" / "tiny"

    @property
    def dicom_dir(self) -> Path:
        return self.data_dir / "dicom"

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("sqla+")

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets and passwords masked."""
        data = self.model_dump(mode="json")
        data["database_url"] = _mask_url(self.database_url)
        data["broker_url"] = _mask_url(self.broker_url)
        return data


PLACEHOLDER = "change-me"  # what deploy/k8s/secret.yaml ships: never a real secret


def _refuse_placeholders(settings: Settings) -> None:
    """Start with a placeholder secret? No: a deployment that forgot to set one fails loudly
    instead of running with a password everyone can read in the repository."""
    for key, url in (("database_url", settings.database_url),
                     ("broker_url", settings.broker_url)):
        creds = url.partition("://")[2].rpartition("@")[0]
        if creds.partition(":")[2] == PLACEHOLDER:
            raise ValueError(f"{key}: the password is the placeholder {PLACEHOLDER!r}; "
                             "set a real one")
    for key, secret in (("web.secret_key", settings.web.secret_key),
                        ("model.api_key", settings.model.api_key)):
        if secret.get_secret_value() == PLACEHOLDER:
            raise ValueError(f"{key}: the placeholder {PLACEHOLDER!r}; set a real secret")


def _mask_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def _describe(exc: ValidationError, lines: LineMap) -> str:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(p) for p in loc if not str(p).startswith("function-"))
        env = "RADRAFT_" + "__".join(str(p).upper() for p in loc)
        where = env if env in os.environ else lines.where(loc)
        # Dataclass fields (FrameRecipe) report unknown keys as unexpected arguments.
        unknown = err["type"] in ("extra_forbidden", "unexpected_keyword_argument")
        message = "unknown key" if unknown else err["msg"]
        problems.append(f"{where}: {key}: {message}")
    return "invalid configuration:\n  " + "\n  ".join(problems)


def load_settings(path: Path | str | None = None) -> Settings:
    """Load settings from `path` (or $RADRAFT_CONFIG, or none) plus the environment."""
    if path is None and os.environ.get(CONFIG_ENV):
        path = os.environ[CONFIG_ENV]
    data: Any = {}
    lines = LineMap(Path(path) if path else None)
    if path is not None:
        data, lines = load_yaml_with_lines(Path(path))
        if not isinstance(data, dict):
            raise ConfigError(f"{path}:1: the configuration must be a mapping of keys")
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, lines)) from None
    rules = settings.rules_file
    if path is not None and rules is not None and not rules.is_absolute():
        # A relative rules file is relative to the config file, not the working directory.
        settings.rules_file = (Path(path).parent / rules).resolve()
    return settings


# The sections live in settings_network, settings_destinations and settings_work; they are
# re-exported here so that `from radraft.core.settings import DicomSettings` keeps working.
__all__ = [
    "CONFIG_ENV",
    "HL7_TABLE_0074",
    "PLACEHOLDER",
    "AlertSettings",
    "CommitmentPeer",
    "ConsistencySettings",
    "DeliverySettings",
    "Destination",
    "DicomDestination",
    "DicomSettings",
    "DicomwebDestination",
    "DicomwebSettings",
    "FolderDestination",
    "FrameRecipe",
    "Hl7Destination",
    "Hl7Settings",
    "JobSettings",
    "Mode",
    "ModelSettings",
    "PacsSettings",
    "ProfileSettings",
    "QualitySettings",
    "RetentionSettings",
    "Settings",
    "SiteSettings",
    "ViewerSettings",
    "WebSettings",
    "load_settings",
]
