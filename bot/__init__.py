"""phi4bot: a Telegram bot that gives every chat its own conversation with Phi-4-multimodal."""

__version__ = "0.1.0"
