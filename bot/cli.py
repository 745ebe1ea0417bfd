"""The `phi4bot` command: run the bot, chat from a terminal, check the configuration, or
copy and measure the database."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from datetime import UTC
from pathlib import Path

from pydantic import SecretStr, ValidationError

from bot.config import Settings
from bot.logs import configure_logging
from bot.ops import MetricsPortUnavailable
from bot.telegram.app import run_bot
from bot.telegram.refusal import TokenRefused
from bot.terminal import run_chat, run_check
from bot.uncaught import route_uncaught_through_logging
from storage import DatabaseStats
from storage.errors import StorageError, megabytes

TOKEN_MISSING = (
    "phi4bot: TELEGRAM_BOT_TOKEN is not set. Get a token from @BotFather and set it "
    "in the environment or in a .env file."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phi4bot", description="A Telegram bot for Microsoft Phi-4-multimodal."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the Telegram bot (long polling, or a webhook)")
    run.add_argument("--webhook-url", help="public HTTPS URL Telegram should post updates to")
    run.add_argument(
        "--listen",
        default="127.0.0.1",
        help="address the webhook server binds (behind a reverse proxy on this machine)",
    )
    run.add_argument("--port", type=int, default=8443, help="port the webhook server binds")
    chat = sub.add_parser("chat", help="talk to the configured model from this terminal")
    chat.add_argument("--image", action="append", type=Path, default=[], help="attach an image")
    chat.add_argument("--audio", action="append", type=Path, default=[], help="attach audio")
    chat.add_argument("--prompt", "-p", help="answer this one prompt and exit")
    sub.add_parser("check", help="show the configuration and check that the backend answers")
    db = sub.add_parser("db", help="database tools").add_subparsers(
        dest="db_command", required=True
    )
    copy = db.add_parser("copy", help="copy every conversation from one database to another")
    copy.add_argument("--from", dest="source", required=True, metavar="URL", help="source URL")
    copy.add_argument("--to", dest="target", required=True, metavar="URL", help="target URL")
    stats = db.add_parser("stats", help="each table's rows and size, and the oldest conversation")
    stats.add_argument("--url", metavar="URL", help="the database (default: DATABASE_URL)")
    return parser


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SystemExit(f"phi4bot: invalid configuration: {problems}") from None


def with_webhook_secret(settings: Settings) -> Settings:
    """The settings with a webhook secret: `PHI4BOT_WEBHOOK_SECRET`, or a random one per start.

    Made here, before logging is set up, so the log masks a generated secret too (PTB logs
    `setWebhook`'s parameters at DEBUG).
    """
    if settings.webhook_secret is not None and settings.webhook_secret.get_secret_value():
        return settings
    generated = SecretStr(secrets.token_urlsafe(32))
    return settings.model_copy(update={"webhook_secret": generated})


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 130


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "db" and args.db_command == "copy":
        return _copy_database(args.source, args.target)
    if args.command == "db":
        return _database_stats(args.url or _settings().database_url)
    settings = _settings()
    if args.command == "run" and args.webhook_url:
        settings = with_webhook_secret(settings)  # before logging: it masks the secret too
    configure_logging(settings.log_level, settings.secrets(), settings.log_format)
    route_uncaught_through_logging()
    if args.command == "run":
        if (
            settings.telegram_bot_token is None
            or not settings.telegram_bot_token.get_secret_value()
        ):
            print(TOKEN_MISSING, file=sys.stderr)
            return 2
        try:
            run_bot(settings, webhook_url=args.webhook_url, listen=args.listen, port=args.port)
        except (StorageError, MetricsPortUnavailable, TokenRefused) as exc:
            print(f"phi4bot: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "chat":
        return asyncio.run(
            run_chat(settings, images=args.image, audio=args.audio, prompt=args.prompt)
        )
    return asyncio.run(run_check(settings))


def _copy_database(source: str, target: str) -> int:
    """`phi4bot db copy`: print the per-table counts; exit 1 when they do not verify."""
    from storage.copy import copy_database
    from storage.errors import StorageError

    try:
        report = asyncio.run(copy_database(source, target))
    except StorageError as exc:
        print(f"phi4bot: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def _database_stats(url: str) -> int:
    """`phi4bot db stats`: rows and size per table, and the conversation untouched longest."""
    from storage import open_store
    from storage.url import redact

    async def read() -> DatabaseStats:
        store = await open_store(url, max_attachment_bytes=1)
        try:
            return await store.database_stats()
        finally:
            await store.close()

    try:
        stats = asyncio.run(read())
    except StorageError as exc:
        print(f"phi4bot: {exc}", file=sys.stderr)
        return 2
    print(f"database: {redact(url)}")
    print(f"{'table':<18} {'rows':>9} {'size':>11}")
    for table in stats.tables:
        size = "?" if table.size is None else megabytes(table.size)
        print(f"{table.name:<18} {table.rows:>9} {size:>11}")
    if stats.oldest_touched is None:
        print("oldest conversation: none yet")
    else:
        touched = stats.oldest_touched.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(
            f"oldest conversation: {stats.oldest_conversation} in chat {stats.oldest_chat}, "
            f"last written {touched}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
