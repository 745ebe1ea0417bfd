"""The model client's own configuration, read from the same variables the bot documents.

The bot's `Settings` extends this class, so one object configures both; the client used on
its own (the `Microsoft_Phi_4` facade, a script) builds a `Phi4Settings` and needs nothing
else of `bot/`.
"""

from __future__ import annotations

from typing import Annotated, Literal, cast

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.shared import MediaKind
from bot.shared.urls import url_secrets

DEFAULT_SPACE_URL = "https://microsoft-phi-4-multimodal.hf.space"
MediaSet = Annotated[frozenset[MediaKind], NoDecode]
BackendName = Literal["space", "openai"]
BACKEND_NAMES: tuple[BackendName, ...] = ("space", "openai")


def split_csv(value: object) -> object:
    """Accept `a,b,c` (the contract's form) as well as a real list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, int):
        return [value]
    return value


def secret_value(value: SecretStr | None) -> str | None:
    """Unwrap a secret only where a client needs it; an empty value means unset."""
    return (value.get_secret_value() or None) if value is not None else None


class Phi4Settings(BaseSettings):
    """Which backend answers and how to reach it; names match the environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    phi4_backend: str = Field(
        "space",
        alias="PHI4_BACKEND",
        description="space, openai, or a chain tried in order per answer, e.g. space,openai",
    )
    phi4_space_url: str = Field(DEFAULT_SPACE_URL, alias="PHI4_SPACE_URL")
    hf_token: SecretStr | None = Field(None, alias="HF_TOKEN")
    hf_endpoint: str = Field("https://huggingface.co", alias="HF_ENDPOINT")
    space_fn_index: int | None = Field(None, alias="PHI4_SPACE_FN_INDEX")
    space_trigger_id: int | None = Field(None, alias="PHI4_SPACE_TRIGGER_ID")

    openai_base_url: str = Field("http://localhost:8000/v1", alias="OPENAI_BASE_URL")
    openai_api_key: SecretStr | None = Field(None, alias="OPENAI_API_KEY")
    phi4_model: str = Field("microsoft/Phi-4-multimodal-instruct", alias="PHI4_MODEL")
    openai_accepts: MediaSet = Field(
        frozenset({"image", "audio"}),
        alias="PHI4_OPENAI_MEDIA",
        description="media kinds the OpenAI-compatible model takes (image,audio or empty)",
    )
    openai_vision_model: str | None = Field(None, alias="PHI4_VISION_MODEL")
    openai_speech_model: str | None = Field(None, alias="PHI4_SPEECH_MODEL")

    replica_backoff: float = Field(
        2.0,
        alias="PHI4_REPLICA_BACKOFF",
        gt=0,
        description="seconds a failed replica stays out before its first probe; doubles after "
        "each failed probe or relapse",
    )
    replica_backoff_max: float = Field(60.0, alias="PHI4_REPLICA_BACKOFF_MAX", gt=0)

    max_tokens: int | None = Field(
        None,
        alias="PHI4_MAX_TOKENS",
        gt=0,
        description="the longest answer asked of an OpenAI-compatible server, in tokens; "
        "unset leaves it to the server",
    )
    context_tokens: int = Field(
        131_072,
        alias="PHI4_CONTEXT_TOKENS",
        ge=256,
        description="the model's context window when the server does not state it",
    )
    answer_tokens: int = Field(
        4096,
        alias="PHI4_ANSWER_TOKENS",
        gt=0,
        description="tokens of the window kept free for the answer (at most a quarter of it)",
    )

    connect_timeout: float = Field(15.0, alias="PHI4_CONNECT_TIMEOUT", gt=0)
    stream_timeout: float = Field(120.0, alias="PHI4BOT_STREAM_TIMEOUT", gt=0)
    max_audio_seconds: float = Field(300.0, alias="PHI4BOT_MAX_AUDIO_SECONDS", gt=0)

    @field_validator("openai_accepts", mode="before")
    @classmethod
    def _media_csv(cls, value: object) -> object:
        value = split_csv(value)
        if isinstance(value, list | set | frozenset | tuple):
            unknown = sorted(str(v) for v in value if v not in ("image", "audio"))
            if unknown:
                raise ValueError(f"unknown media kind {', '.join(unknown)}: use image and/or audio")
        return value

    @field_validator("phi4_backend")
    @classmethod
    def _backend_chain(cls, value: str) -> str:
        names = [part.strip().lower() for part in value.split(",") if part.strip()]
        unknown = sorted(set(names) - set(BACKEND_NAMES))
        if unknown or not names:
            raise ValueError(
                f"unknown backend {', '.join(unknown) or '(empty)'}: use space, openai"
            )
        if len(set(names)) != len(names):
            raise ValueError("name each backend once")
        return ",".join(names)

    @field_validator("phi4_space_url", "hf_endpoint")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("openai_base_url")
    @classmethod
    def _base_urls(cls, value: str) -> str:
        urls = [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        if not urls:
            raise ValueError("give at least one base URL")
        return ",".join(urls)

    @property
    def backend_chain(self) -> tuple[BackendName, ...]:
        """`PHI4_BACKEND` as the backends to try in order; one name is a chain of one."""
        return tuple(cast(BackendName, name) for name in self.phi4_backend.split(","))

    @property
    def openai_base_urls(self) -> tuple[str, ...]:
        """`OPENAI_BASE_URL` as its replicas; one URL is a single server, as before."""
        return tuple(self.openai_base_url.split(","))

    def client_secrets(self) -> list[str]:
        """The model client's secret values, for log redaction: keys, and what its URLs hide."""
        found = [self.openai_api_key, self.hf_token]
        keys = [s for s in (secret_value(v) for v in found) if s]
        urls = (self.openai_base_url, self.phi4_space_url, self.hf_endpoint)
        return keys + [secret for url in urls for secret in url_secrets(url)]
