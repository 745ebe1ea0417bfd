"""Model text → what a Telegram chat shows: paced edits, entities and splitting.

`streamer` owns one answer's messages and guarantees their final state; `pacing` shares the
bot's request budget so Telegram never answers 429, and `limiter` (python-telegram-bot's rate
limiter) sends every Bot API request through it; `render` turns Markdown into text with
entities and cuts it into messages; `reply_view` decides the next request; `sink` is the
only door to the Bot API; `replies` offers all of it to the core as its `ChatReplies` port.

Streaming knows nothing of the model client or the database.
"""
