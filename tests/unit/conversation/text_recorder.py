"""A TurnRecorder for text turns, noting each sentence a refused sender reads."""

from __future__ import annotations

from bot.conversation.recorder import TurnRecorder
from bot.conversation.store_retry import StoreRetry
from bot.conversation.turns import IncomingTurn
from bot.shared import UserFacingError
from bot.shared.tasks import TaskSupervisor
from storage import Store


def text_recorder(
    store: Store,
    refused: list[str],
    *,
    tasks: TaskSupervisor | None = None,
    retry: StoreRetry | None = None,
    waiting_cap: int | None = None,
) -> TurnRecorder:
    """The recorder the bot builds, without media: its refusals land in `refused`."""

    async def refuse(turn: IncomingTurn, problem: UserFacingError) -> None:
        refused.append(problem.user_message)

    return TurnRecorder(
        store,
        media=None,  # type: ignore[arg-type]  # text turns only
        accepts=frozenset(),
        refuse=refuse,
        tasks=TaskSupervisor() if tasks is None else tasks,
        retry=retry,
        waiting_cap=waiting_cap,
    )
