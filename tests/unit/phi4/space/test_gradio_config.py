"""Looking up the chat functions' numbers in a Space's `/config`."""

from __future__ import annotations

from typing import Any

from bot.phi4.space.gradio_config import (
    DEFAULT_API_PREFIX,
    ChatEndpoints,
    api_prefix,
    find_chat_endpoints,
)
from tests.fakes.space import FakeSpace


def _dep(fn: int, **fields: Any) -> dict[str, Any]:
    return {"id": fn, "targets": [], "inputs": [], "outputs": [], "queue": True, **fields}


def test_the_public_space_layout_gives_its_known_numbers() -> None:
    assert find_chat_endpoints(FakeSpace().config()) == ChatEndpoints(10, 11, 8)


def test_a_duplicate_with_other_numbers_is_read_from_its_config() -> None:
    config = FakeSpace(add_fn=3, answer_fn=7, trigger_id=21).config()
    assert find_chat_endpoints(config) == ChatEndpoints(3, 7, 21)


def test_the_generator_chained_after_the_add_function_is_preferred() -> None:
    config = {
        "components": [{"id": 1, "type": "chatbot"}, {"id": 2, "type": "multimodaltextbox"}],
        "dependencies": [
            _dep(0, targets=[[2, "submit"]], outputs=[1, 2]),
            _dep(1, trigger_after=0, outputs=[2]),
            _dep(2, trigger_after=0, outputs=[1]),
            _dep(3, trigger_after=0, outputs=[1], types={"generator": True}),
        ],
    }
    assert find_chat_endpoints(config) == ChatEndpoints(0, 3, 2)


def test_without_a_chained_answer_function_the_next_number_is_assumed() -> None:
    config = {
        "components": [{"id": 5, "type": "chatbot"}, {"id": 6, "type": "textbox"}],
        "dependencies": [{"targets": [[6, "submit"]], "outputs": [5]}],
    }
    assert find_chat_endpoints(config) == ChatEndpoints(0, 1, 6)


def test_a_config_without_a_chat_gives_none() -> None:
    assert find_chat_endpoints({}) is None
    assert find_chat_endpoints({"components": [{"id": 1, "type": "chatbot"}]}) is None
    assert find_chat_endpoints({"components": "junk", "dependencies": [1, None]}) is None


def test_api_prefix_comes_from_the_config_when_stated() -> None:
    assert api_prefix({"api_prefix": "/api/"}) == "/api"
    assert api_prefix({}) == DEFAULT_API_PREFIX
