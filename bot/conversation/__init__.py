"""The conversation core: a turn that arrived, recorded, queued in its lane and answered.

Here live the values a turn is read into (`turns`), recording it on arrival (`recorder`),
one lane per conversation (`lanes`), admission and quotas (`access`, `dispatcher`), the
answer itself (`pipeline`), the history the model reads (`prompt`), what a restart left
undone (`recovery`) and the refusals that end as replies (`errors`).

The core knows neither Telegram nor HTTP. It may import `bot.phi4`, `bot.media`,
`bot.shared`, `bot.config` and `storage`; it reaches the chat only through the ports in
`ports` (a reply that streams, a typing indicator, a media download), which the Telegram
adapter implements.
"""
