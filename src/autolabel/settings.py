"""Settings: environment (``AUTOLABEL_*``), then ``autolabel.toml``, then defaults.

CLI flags override these per command. The data dir holds the SQLite database,
the response cache and assembled model files; tests point it at a temp dir with
``AUTOLABEL_HOME``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from autolabel.errors import ConfigError

CONFIG_FILE = "autolabel.toml"


class Prices(BaseSettings):
    """Per-million-token prices used by ``autolabel plan`` and evaluation reports."""

    model_config = SettingsConfigDict(extra="forbid")

    input_per_million: float = 0.0
    output_per_million: float = 0.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AUTOLABEL_", extra="forbid", env_nested_delimiter="__"
    )

    home: Path = Field(default=Path(".autolabel"), description="data dir: database, cache, models")
    db: str | None = Field(default=None, description="SQLAlchemy URL; default sqlite in home")
    provider: str = Field(default="local", description="'local' or 'openai'")
    model: str | None = Field(default=None, description="model name or GGUF path")
    base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint")
    api_key: SecretStr | None = None
    concurrency: int = Field(default=16, ge=1, le=1024)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=60.0, gt=0)
    structured: Literal["auto", "json_schema", "json_object", "text"] = Field(
        default="auto",
        description="structured-output form for OpenAI-compatible endpoints; auto negotiates",
    )
    max_retries: int = Field(default=6, ge=0)
    reasks: int = Field(default=2, ge=0)
    samples: int = Field(default=5, ge=1, description="self-consistency samples without logprobs")
    temperature: float = Field(default=0.0, ge=0)
    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = None
    prices: dict[str, Prices] = Field(default_factory=dict, description="model name -> prices")
    review_idle_release: float | None = Field(
        default=None, gt=0, description="review TUI: seconds without a key before the item is freed"
    )

    @property
    def home_dir(self) -> Path:
        path = self.home.expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def database_url(self) -> str:
        return self.db or f"sqlite:///{self.home_dir / 'autolabel.db'}"

    @property
    def cache_dir(self) -> Path:
        return self.home_dir / "cache"

    def resolved_api_key(self) -> str | None:
        import os

        if self.api_key is not None:
            return self.api_key.get_secret_value()
        return os.environ.get("OPENAI_API_KEY")


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings; ``overrides`` (non-None CLI flags) win over env and file."""
    path = config_file or Path(CONFIG_FILE)
    file_data: dict[str, Any] = {}
    if path.exists():
        try:
            file_data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        file_data = file_data.get("autolabel", file_data)
    clean = {k: v for k, v in overrides.items() if v is not None}

    class _FileSettings(Settings):
        @classmethod
        def settings_customise_sources(  # type: ignore[override]
            cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        ):
            return (init_settings, env_settings, _TomlSource(settings_cls, file_data))

    try:
        return _FileSettings(**clean)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        where = f"{path} / AUTOLABEL_* environment" if file_data else "AUTOLABEL_* environment"
        raise ConfigError(f"invalid settings ({where}): {problems}") from exc
