"""Storage failures, each carrying the one sentence a person reads when it happens."""

from __future__ import annotations


class StorageError(Exception):
    """The database cannot be used as configured; the message names the path or URL."""


class AttachmentTooLarge(StorageError):
    """An attachment exceeds the configured cap; refused before it reaches the database.

    `user_message` is fit to send to the chat as it stands.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        self.user_message = (
            f"That file is too large: I can keep attachments of up to {megabytes(limit)}."
        )
        super().__init__(self.user_message)


def megabytes(size: int) -> str:
    """Sizes as people say them: `20 MB`, `1.5 MB`, `300 KB`."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"
