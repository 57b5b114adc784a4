"""One settings object for radraft: a YAML file plus `RADRAFT_` environment overrides.

Load it with :func:`load_settings` and pass it down; nothing reads configuration globally.
Unknown keys are errors, and every error names the key and the file line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from radraft.core.errors import ConfigError
from radraft.core.recipe import FrameRecipe as FrameRecipe  # re-exported
from radraft.core.yaml_lines import LineMap, load_yaml_with_lines

CONFIG_ENV = "RADRAFT_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteSettings(_Strict):
    timezone: str = "UTC"
    # Root for output UIDs (SR, KOS). "2.25" derives UUID-based UIDs (PS3.5 B.2).
    uid_root: str = "2.25"
    name: str = "radraft"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("uid_root")
    @classmethod
    def _uid_root(cls, value: str) -> str:
        parts = value.split(".")
        if not all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in parts):
            raise ValueError(f"{value!r} is not a DICOM UID root (digits and dots)")
        if len(value) > 40:
            raise ValueError("uid_root longer than 40 characters leaves no room for ids")
        return value


class DicomSettings(_Strict):
    ae_title: str = "RADRAFT"
    # Loopback unless configured: a door opens to the network only by a written decision
    # (deploy/ configurations set 0.0.0.0; README "Security").
    host: str = "127.0.0.1"
    port: int = Field(11112, ge=1, le=65535)
    allowed_calling_aets: list[str] = Field(default_factory=list)
    stable_seconds: float = Field(30.0, gt=0)
    min_free_bytes: int = Field(1 << 30, ge=0)
    # Receiving processes (the node dispatches associations to them); parsing is GIL-bound.
    receive_processes: int = Field(1, ge=1, le=32)
    maximum_pdu_size: int = Field(0, ge=0)
    network_timeout_s: float = Field(60.0, gt=0)
    # DICOM TLS (README "Security"): certificate and key turn it on; a CA requires client
    # certificates it signed; tls_peers ties calling AE titles to certificate common names.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    tls_peers: dict[str, str] = Field(default_factory=dict)

    @field_validator("ae_title")
    @classmethod
    def _ae(cls, value: str) -> str:
        if not 0 < len(value) <= 16 or "\\" in value:
            raise ValueError("an AE title has 1 to 16 characters and no backslash")
        return value


class Hl7Settings(_Strict):
    # Loopback unless configured: a door opens to the network only by a written decision
    # (deploy/ configurations set 0.0.0.0; README "Security").
    host: str = "127.0.0.1"
    port: int = Field(2575, ge=1, le=65535)
    max_message_bytes: int = Field(1 << 20, gt=0)
    idle_timeout_s: float = Field(300.0, gt=0)
    # A frame that was started must be finished within this (a truncated frame is answered
    # by closing the connection, not by waiting for the idle timeout).
    frame_timeout_s: float = Field(30.0, gt=0)
    # MSH-11 values accepted; others are refused with AR 202 (T: training messages).
    processing_ids: list[str] = Field(default_factory=lambda: ["P", "D"])
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None  # when set, senders must present a certificate it signed
    # An order arriving this long after its study became stable re-evaluates the rules.
    order_grace_s: float = Field(3600.0, ge=0)
    # Who may send: addresses, CIDR networks, "CN=<client certificate name>" (README
    # "Security"); empty: anyone who reaches the port. Others are disconnected unread.
    allowed_senders: list[str] = Field(default_factory=list)
    # A batch (FHS/BHS) of more messages is refused whole with AR: one sender's batch cannot
    # hold the shared writer for seconds.
    max_batch_messages: int = Field(1000, ge=1)


class WebSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    secret_key: SecretStr = SecretStr("")
    escalate_after_minutes: float = Field(15.0, gt=0)
    # Session cookies always carry Secure (set it behind a TLS-terminating proxy such as a
    # Kubernetes Ingress); otherwise Secure follows the request's scheme.
    secure_cookies: bool = False
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDRs):
    # the client address the login throttle counts and the scheme come from them.
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1"])


class ModelSettings(_Strict):
    backend: Literal["transformers", "openai"] = "transformers"
    # Model directory for the in-process backend; empty: <data_dir>/models/tiny.
    path: Path | None = None
    base_urls: list[str] = Field(default_factory=list)
    name: str = "radraft-tiny"
    timeout_s: float = Field(300.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    api_key: SecretStr = SecretStr("")
    # Longest answer; every schema string and list is bounded, so this is only a backstop.
    max_tokens: int = Field(4096, ge=256)
    # Visual tokens the video may spend (the frame budget); the rest of the context is text.
    max_video_tokens: int = Field(12288, ge=64)
    # The served model's video processor pixel range per frame (Qwen2.5-VL's defaults): the
    # token arithmetic of the budget and of the truncation check follows the server's resize.
    video_min_pixels: int = Field(128 * 28 * 28, ge=28 * 28)
    video_max_pixels: int = Field(768 * 28 * 28, ge=28 * 28)
    # An endpoint that failed is left out for this long before it is tried again.
    endpoint_cooldown_s: float = Field(30.0, ge=0)


class ProfileSettings(_Strict):
    frames: FrameRecipe = Field(default_factory=FrameRecipe)
    prompt: str = ""
    send_hl7: bool = True
    labs: list[str] = Field(default_factory=list)
    lab_window_days: int = Field(30, ge=0)
    max_priors: int = Field(2, ge=0)
    prior_window_days: int = Field(1825, ge=0)


class _TlsClient(_Strict):
    # TLS to the peer (README "Security"): its certificate is checked against tls_ca (else
    # the system's trust store) and `host`; tls_cert/tls_key: radraft's client certificate.
    tls: bool = False
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None


class DicomDestination(_TlsClient):
    kind: Literal["dicom"]
    host: str
    port: int = Field(ge=1, le=65535)
    ae_title: str
    timeout_s: float = Field(30.0, gt=0)


class Hl7Destination(_TlsClient):
    kind: Literal["hl7"]
    host: str
    port: int = Field(ge=1, le=65535)
    role: Literal["ris", "ed"] = "ris"
    # R: results stored, not verified (default); P: verified preliminary, only if asked.
    result_status: Literal["R", "P"] = "R"
    charset: str = "UNICODE UTF-8"
    alert_message_type: str = "ORU^R01"
    receiving_application: str = ""
    receiving_facility: str = ""
    timeout_s: float = Field(30.0, gt=0)


class FolderDestination(_Strict):
    kind: Literal["folder"]
    path: Path


Destination = Annotated[
    DicomDestination | Hl7Destination | FolderDestination, Field(discriminator="kind")
]


class RetentionSettings(_Strict):
    studies_days: int = Field(30, ge=0)
    priors_days: int = Field(7, ge=0)
    outbox_days: int = Field(30, ge=0)


class DeliverySettings(_Strict):
    max_age_hours: float = Field(72.0, gt=0)
    base_backoff_s: float = Field(10.0, gt=0)
    max_backoff_s: float = Field(1800.0, gt=0)


class JobSettings(_Strict):
    max_attempts: int = Field(3, ge=1)
    sweep_interval_s: float = Field(15.0, gt=0)
    time_limit_s: float = Field(1800.0, gt=0)
    # A queued row whose wake-up was lost (embedded broker, failed publish) is re-sent after
    # this long; a duplicate wake-up is harmless (claims check the attempts count).
    redeliver_after_s: float = Field(300.0, gt=0)


class PacsSettings(_TlsClient):
    """The PACS radraft queries for priors (C-FIND, then C-MOVE or C-GET); `tls` as for a
    destination."""

    host: str = ""
    port: int = Field(104, ge=1, le=65535)
    ae_title: str = ""
    retrieve: Literal["move", "get"] = "get"
    timeout_s: float = Field(60.0, gt=0)


def _default_profiles() -> dict[str, ProfileSettings]:
    """Named frame recipes (reporting.frames); windows are CT presets, MR uses percentiles."""
    def recipe(labs: list[str], **fields: Any) -> ProfileSettings:
        return ProfileSettings(frames=FrameRecipe(**fields), labs=labs)

    # Labs for the clinical context (ehr.context): LOINC codes or words of the test name.
    # Renal function before contrast (iodine or gadolinium), troponin/D-dimer for the chest,
    # lipase for the abdomen, glucose/INR/platelets before stroke treatment.
    renal = ["2160-0", "creatinine", "33914-3", "62238-1", "98979-8", "egfr"]
    chest = ["10839-9", "89579-7", "6598-7", "67151-1", "troponin", "48065-7", "48066-5",
             "d-dimer"]
    abdomen = ["3040-3", "lipase", "1975-2", "bilirubin", "6690-2", "wbc", "1988-5", "crp"]
    stroke = ["2345-7", "glucose", "6301-6", "inr", "777-3", "platelets"]
    return {
        "ct-generic": recipe(renal, windows=["abdomen", "lung", "bone"]),
        "ct-head": recipe(stroke, windows=["brain", "subdural", "bone"], max_frames=192),
        "ct-stroke": recipe(renal + stroke, windows=["stroke", "brain"], max_frames=128),
        # Three windows packed as R/G/B of one frame (as MedGemma 1.5 reads CT).
        "ct-chest": recipe(renal + chest, windows=["lung", "mediastinum", "bone"],
                           pack_windows=True),
        "ct-abdomen-multiphase": recipe(renal + abdomen, windows=["abdomen"], max_frames=256),
        "ct-angio": recipe(renal + chest, windows=["angio"], combine="mip", max_frames=192),
        "mr-brain": recipe(renal, windows=["auto"], max_frames=256, prior_share=0.3),
        "mr-generic": recipe(renal, windows=["auto"]),
    }


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
    model: ModelSettings = Field(default_factory=ModelSettings)
    pacs: PacsSettings = Field(default_factory=PacsSettings)
    profiles: dict[str, ProfileSettings] = Field(default_factory=_default_profiles)
    destinations: dict[str, Destination] = Field(default_factory=dict)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    jobs: JobSettings = Field(default_factory=JobSettings)

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
