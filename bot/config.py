"""The bot's whole configuration, read once from the environment (and `.env`) by the CLI."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SYSTEM_PROMPT = (
    "You are Phi-4, a helpful assistant in a Telegram chat. Answer concisely and use "
    "Markdown sparingly."
)


def _split_csv(value: object) -> object:
    """Accept `1,2,3` (the contract's form) as well as a real list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, int):
        return [value]
    return value


IdSet = Annotated[frozenset[int], NoDecode]
NameSet = Annotated[frozenset[str], NoDecode]


class Settings(BaseSettings):
    """Every knob of phi4bot; names match the environment variables in README."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    telegram_bot_token: SecretStr | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_url: str = Field("https://api.telegram.org", alias="TELEGRAM_API_URL")

    phi4_backend: Literal["space", "openai"] = Field("space", alias="PHI4_BACKEND")
    phi4_space_url: str = Field(
        "https://microsoft-phi-4-multimodal.hf.space", alias="PHI4_SPACE_URL"
    )
    hf_token: SecretStr | None = Field(None, alias="HF_TOKEN")
    hf_endpoint: str = Field("https://huggingface.co", alias="HF_ENDPOINT")
    space_fn_index: int | None = Field(None, alias="PHI4_SPACE_FN_INDEX")
    space_trigger_id: int | None = Field(None, alias="PHI4_SPACE_TRIGGER_ID")

    openai_base_url: str = Field("http://localhost:8000/v1", alias="OPENAI_BASE_URL")
    openai_api_key: SecretStr | None = Field(None, alias="OPENAI_API_KEY")
    phi4_model: str = Field("microsoft/Phi-4-multimodal-instruct", alias="PHI4_MODEL")
    openai_accepts: NameSet = Field(
        frozenset({"image", "audio"}),
        alias="PHI4_OPENAI_MEDIA",
        description="media kinds the OpenAI-compatible model takes (image,audio or empty)",
    )
    openai_vision_model: str | None = Field(None, alias="PHI4_VISION_MODEL")
    openai_speech_model: str | None = Field(None, alias="PHI4_SPEECH_MODEL")

    connect_timeout: float = Field(15.0, alias="PHI4_CONNECT_TIMEOUT", gt=0)
    stream_timeout: float = Field(120.0, alias="PHI4BOT_STREAM_TIMEOUT", gt=0)

    database_url: str = Field("sqlite:///phi4bot.db", alias="DATABASE_URL")
    history_chars: int = Field(24_000, alias="PHI4BOT_HISTORY_CHARS", gt=0)
    history_media: int = Field(3, alias="PHI4BOT_HISTORY_MEDIA", ge=0)
    max_attachment_bytes: int = Field(20 * 1024 * 1024, alias="PHI4BOT_MAX_ATTACHMENT_BYTES", gt=0)
    max_audio_seconds: float = Field(300.0, alias="PHI4BOT_MAX_AUDIO_SECONDS", gt=0)

    allowed_users: IdSet = Field(frozenset(), alias="PHI4BOT_ALLOWED_USERS")
    allowed_chats: IdSet = Field(frozenset(), alias="PHI4BOT_ALLOWED_CHATS")
    admins: IdSet = Field(frozenset(), alias="PHI4BOT_ADMINS")
    group_admin_only: NameSet = Field(frozenset({"system"}), alias="PHI4BOT_GROUP_ADMIN_ONLY")

    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, alias="PHI4BOT_SYSTEM_PROMPT")
    edit_interval: float = Field(1.0, alias="PHI4BOT_EDIT_INTERVAL", ge=0)
    group_edit_interval: float = Field(3.0, alias="PHI4BOT_GROUP_EDIT_INTERVAL", ge=0)
    private_streaming: Literal["edit", "draft"] = Field("edit", alias="PHI4BOT_PRIVATE_STREAMING")
    bot_rate: float = Field(30.0, alias="PHI4BOT_BOT_RATE", gt=0)

    max_input_chars: int = Field(8000, alias="PHI4BOT_MAX_INPUT_CHARS", gt=0)
    user_rate_per_minute: int = Field(0, alias="PHI4BOT_USER_RATE", ge=0)
    user_daily_quota: int = Field(0, alias="PHI4BOT_USER_DAILY_QUOTA", ge=0)

    webhook_secret: SecretStr | None = Field(None, alias="PHI4BOT_WEBHOOK_SECRET")
    log_level: str = Field("INFO", alias="LOG_LEVEL")

    @field_validator(
        "allowed_users",
        "allowed_chats",
        "admins",
        "group_admin_only",
        "openai_accepts",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("group_admin_only", mode="after")
    @classmethod
    def _strip_slashes(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(name.lstrip("/").lower() for name in value)

    @field_validator("openai_accepts", mode="after")
    @classmethod
    def _known_media(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = sorted(value - {"image", "audio"})
        if unknown:
            raise ValueError(f"unknown media kind {', '.join(unknown)}: use image and/or audio")
        return value

    @field_validator("telegram_api_url", "phi4_space_url", "hf_endpoint", "openai_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def secrets(self) -> list[str]:
        """Every configured secret value, for log redaction."""
        found = [self.telegram_bot_token, self.openai_api_key, self.hf_token, self.webhook_secret]
        return [s.get_secret_value() for s in found if s is not None and s.get_secret_value()]
