"""Each file uploaded to the Space once per backend, its server path reused while still served.

Gradio keeps uploaded files in its cache directory (content-addressed, shared by all sessions)
until the Space restarts or cleans its cache. So a path the Space gave for some bytes is reused
on later turns after a HEAD request confirms the Space still serves it; a file it no longer has
is uploaded again. Only the most recent `capacity` files are remembered.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence

from bot.phi4.conversation import Attachment
from bot.phi4.space.wire import SpaceWire

log = logging.getLogger(__name__)

FileKey = tuple[str, str, str]


def file_key(attachment: Attachment) -> FileKey:
    """Same bytes under the same name and type: the same upload."""
    digest = hashlib.sha256(attachment.data).hexdigest()
    return digest, attachment.filename, attachment.mime_type


class UploadCache:
    """Server paths of files already uploaded, most recently used last."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._paths: OrderedDict[FileKey, str] = OrderedDict()

    async def server_paths(
        self, wire: SpaceWire, prefix: str, session_hash: str, attachments: Sequence[Attachment]
    ) -> list[str]:
        """One server path per attachment, uploading (in one request) only what the Space lacks."""
        keys = [file_key(a) for a in attachments]
        unique = list(dict.fromkeys(keys))
        known = [k for k in unique if k in self._paths]
        served = await asyncio.gather(*(wire.has_file(prefix, self._paths[k]) for k in known))
        for key, still_there in zip(known, served, strict=True):
            if not still_there:
                log.debug("the Space no longer has %s; uploading it again", self._paths[key])
                del self._paths[key]
        missing = [k for k in unique if k not in self._paths]
        if missing:
            by_key = dict(zip(keys, attachments, strict=True))
            paths = await wire.upload(prefix, session_hash, [by_key[k] for k in missing])
            self._paths.update(zip(missing, paths, strict=True))
        result = [self._paths[k] for k in keys]
        for key in unique:
            self._paths.move_to_end(key)
        while len(self._paths) > self.capacity:
            self._paths.popitem(last=False)
        log.debug("%d file(s) reused, %d uploaded", len(unique) - len(missing), len(missing))
        return result
