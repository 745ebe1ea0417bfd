"""The bot's whole configuration, read once from the environment (and `.env`) by the CLI.

The model client's settings (`Phi4Settings`) are part of it, so one object is built once
and handed down: the client gets the same object, as the plain values it knows.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from bot.phi4.settings import Phi4Settings, split_csv
from bot.shared.urls import url_secrets

DEFAULT_SYSTEM_PROMPT = (
    "You are Phi-4, a helpful assistant in a Telegram chat. Answer in the language the "
    "user writes in. Answer concisely and use Markdown sparingly."
)

READ_CHARS_PER_TOKEN = 5
"""The estimate allows under 4 characters a token of English, Russian or code, so reading 5
a token never leaves out a turn the window could hold (`python -m bench.context`)."""

IdSet = Annotated[frozenset[int], NoDecode]
NameSet = Annotated[frozenset[str], NoDecode]


class Settings(Phi4Settings):
    """Every knob of phi4bot; names match the environment variables in README."""

    telegram_bot_token: SecretStr | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_url: str = Field("https://api.telegram.org", alias="TELEGRAM_API_URL")

    database_url: str = Field("sqlite:///phi4bot.db", alias="DATABASE_URL")
    history_chars: int | None = Field(
        None,
        alias="PHI4BOT_HISTORY_CHARS",
        gt=0,
        description="an extra cap on the history's characters; unset: the window decides",
    )
    history_media: int = Field(3, alias="PHI4BOT_HISTORY_MEDIA", ge=0)
    max_attachment_bytes: int = Field(20 * 1024 * 1024, alias="PHI4BOT_MAX_ATTACHMENT_BYTES", gt=0)
    store_retry: float = Field(60.0, alias="PHI4BOT_STORE_RETRY", ge=0)
    """Seconds an arriving message is held, its storing tried again, while the database is
    locked, full or out of reach; then its sender is asked to send it again."""
    shutdown_seconds: float = Field(20.0, alias="PHI4BOT_SHUTDOWN_SECONDS", gt=0)
    """Seconds a SIGTERM leaves for everything under way: answers are stopped and their text
    so far stored first, then the rest (final edits, notices) is waited for until then."""
    retention_days: float | None = Field(None, alias="PHI4BOT_RETENTION_DAYS", gt=0)
    """Conversations untouched this many days are deleted whole; None keeps them forever."""
    media_retention_days: float | None = Field(None, alias="PHI4BOT_MEDIA_RETENTION_DAYS", gt=0)
    """Stored files no turn of the last this many days shows lose their bytes (the turn keeps
    a placeholder); None keeps them."""
    max_video_seconds: float = Field(120.0, alias="PHI4BOT_MAX_VIDEO_SECONDS", gt=0)
    max_document_chars: int = Field(40_000, alias="PHI4BOT_MAX_DOCUMENT_CHARS", gt=0)
    max_pdf_pages: int = Field(8, alias="PHI4BOT_MAX_PDF_PAGES", ge=0)
    image_max_side: int = Field(2048, alias="PHI4BOT_IMAGE_MAX_SIDE", ge=64)
    """Longest side of an image given to the model (and stored); larger ones are scaled down."""
    decode_concurrency: int = Field(2, alias="PHI4BOT_DECODE_CONCURRENCY", ge=1)
    """Downloaded files decoded at once, whatever arrives: what bounds the bot's memory."""
    media_wait: float = Field(3.0, alias="PHI4BOT_MEDIA_WAIT", ge=0)
    """Seconds a photo, album, video or document sent without a caption waits for its
    sender's next message (text or voice), which is then its question in the same turn."""

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
    uvloop: bool = Field(True, alias="PHI4BOT_UVLOOP")
    instance_id: str | None = Field(None, alias="PHI4BOT_INSTANCE_ID")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", alias="LOG_FORMAT")
    metrics_port: int | None = Field(None, alias="PHI4BOT_METRICS_PORT", gt=0, lt=65536)
    metrics_host: str = Field("127.0.0.1", alias="PHI4BOT_METRICS_HOST")

    @field_validator(
        "allowed_users",
        "allowed_chats",
        "admins",
        "group_admin_only",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return split_csv(value)

    def history_read_chars(self, window: int | None = None) -> int:
        """Characters of history to read from the store for one answer: more than `window`
        (the largest the backend fits prompts to; else `PHI4_CONTEXT_TOKENS`) can hold,
        capped by `PHI4BOT_HISTORY_CHARS` when it is set. The window fitting
        (`bot.phi4.fitting`) then keeps what really fits."""
        most = (window or self.context_tokens) * READ_CHARS_PER_TOKEN
        return min(most, self.history_chars) if self.history_chars else most

    @field_validator("metrics_port", "history_chars", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("group_admin_only", mode="after")
    @classmethod
    def _strip_slashes(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(name.lstrip("/").lower() for name in value)

    @field_validator("telegram_api_url")
    @classmethod
    def _no_trailing_slash_here(cls, value: str) -> str:
        return value.rstrip("/")

    def secrets(self) -> list[str]:
        """Every configured secret value, for log redaction: the token, the webhook secret,
        the database's password and what any other URL hides, and the model client's keys."""
        found = [self.telegram_bot_token, self.webhook_secret]
        own = [s.get_secret_value() for s in found if s is not None and s.get_secret_value()]
        own += url_secrets(self.database_url) + url_secrets(self.telegram_api_url)
        return own + self.client_secrets()
