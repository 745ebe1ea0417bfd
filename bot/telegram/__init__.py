"""The Telegram adapter: which updates matter, read once into turns, and answers shown.

`app` builds python-telegram-bot's `Application` and owns the services' lifetime;
`handlers` and `commands` receive updates; `triggers` decide whether a group message is
addressed to the bot; `reading` turns a message (or an album from `albums`) into an
`IncomingTurn`; `admission` applies the allow-lists; `downloads` fetches media; `context`
gives handlers typed access to the `services`; `streaming/` shows answers.

It may import the conversation core and everything below it; nothing imports it but the CLI.
"""
