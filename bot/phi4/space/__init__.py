"""Phi-4 through its Gradio Space: the backend and the pieces of the Gradio protocol it speaks.

`backend` drives one turn (upload, join the queue, stream); `wire` makes its HTTP calls;
`uploads` uploads each file once and reuses its server path; `turn` builds the history sent
(in the shape the Space's Gradio version validates) and reads the Space's messages;
`gradio_config` reads `/config` (chat functions, version); `gradio_diff` replays streamed
diffs; `zerogpu` carries the Hugging Face credentials.
"""

from __future__ import annotations

from bot.phi4.space.backend import SpaceBackend

__all__ = ["SpaceBackend"]
