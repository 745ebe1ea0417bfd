"""Phi-4 through its Gradio Space: the backend and the pieces of the Gradio protocol it speaks.

`backend` drives one turn (upload, join the queue, stream); `wire` makes its HTTP calls;
`turn` builds the history sent and reads the Space's messages; `gradio_config` finds the
chat functions in `/config`; `gradio_diff` replays streamed diffs; `zerogpu` carries the
Hugging Face credentials.
"""

from __future__ import annotations

from bot.phi4.space.backend import SpaceBackend

__all__ = ["SpaceBackend"]
