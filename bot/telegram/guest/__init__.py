"""Guest mode: the bot summoned by mention in chats it is not a member of (Bot API 10.0)."""
