"""Finding the chat functions' numbers in a Gradio Space's `/config`, so duplicates just work.

The public Phi-4 Space adds a message with function 10 and streams the answer with function 11,
both fired by component 8 (its multimodal textbox). A duplicated or updated Space may number
them differently, and Gradio publishes its dependency table at `GET /config`. The heuristic:

1. the *add* function is the first dependency triggered by `submit` of a `multimodaltextbox`
   (else of any `textbox`) that writes a `chatbot`; its trigger component is the `trigger_id`;
2. the *answer* function is the first dependency chained after it (`trigger_after`) that writes
   a `chatbot`, preferring generators; failing that, the dependency numbered right after it;
3. when no add function is found, the public Space's numbers are used.

`read_setup` gathers everything a client takes from `/config`, the Gradio version included
(it decides the shape of chat messages, see `turn`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bot.phi4.space.turn import MessageShape, message_shape
from bot.phi4.space.zerogpu import space_id_from_url

DEFAULT_API_PREFIX = "/gradio_api"


@dataclass(frozen=True, slots=True)
class ChatEndpoints:
    """The numbers a turn sends: `add_fn` via `/run/predict`, `answer_fn` via `/queue/join`."""

    add_fn: int
    answer_fn: int
    trigger_id: int


PUBLIC_SPACE_ENDPOINTS = ChatEndpoints(add_fn=10, answer_fn=11, trigger_id=8)


@dataclass(frozen=True, slots=True)
class SpaceSetup:
    """What `/config` told: function numbers, API prefix, Space id, Gradio version."""

    endpoints: ChatEndpoints
    prefix: str
    space_id: str | None
    version: str | None = None
    is_gradio: bool = True

    @property
    def shape(self) -> MessageShape:
        return message_shape(self.version)


def read_setup(
    config: Mapping[str, Any] | None,
    root: str,
    *,
    fn_index: int | None = None,
    trigger_id: int | None = None,
) -> SpaceSetup:
    """The setup a `/config` answer gives (None: not a Gradio config), explicit numbers winning.

    `fn_index` is the answer function; the add function is taken to be the one before it.
    """
    found = find_chat_endpoints(config or {}) or PUBLIC_SPACE_ENDPOINTS
    if fn_index is not None:
        found = ChatEndpoints(fn_index - 1, fn_index, found.trigger_id)
    if trigger_id is not None:
        found = ChatEndpoints(found.add_fn, found.answer_fn, trigger_id)
    space_id = (config or {}).get("space_id")
    version = (config or {}).get("version")
    return SpaceSetup(
        endpoints=found,
        prefix=api_prefix(config) if config else DEFAULT_API_PREFIX,
        space_id=space_id if isinstance(space_id, str) and space_id else space_id_from_url(root),
        version=str(version) if version else None,
        is_gradio=config is not None,
    )


def find_chat_endpoints(config: Mapping[str, Any]) -> ChatEndpoints | None:
    """Apply the module's heuristic to a `/config` answer; None when it does not fit."""
    types = _component_types(config)
    chatbots = {cid for cid, kind in types.items() if kind == "chatbot"}
    if not chatbots:
        return None
    deps = list(_dependencies(config))
    for box_type in ("multimodaltextbox", "textbox"):
        for fn, dep in deps:
            trigger = _submit_trigger(dep, types, box_type)
            if trigger is not None and chatbots & set(_ids(dep.get("outputs"))):
                return ChatEndpoints(fn, _answer_after(fn, deps, chatbots), trigger)
    return None


def api_prefix(config: Mapping[str, Any]) -> str:
    """Gradio 5 states where its API lives; older configs do not, and use the default."""
    prefix = config.get("api_prefix")
    if isinstance(prefix, str) and prefix.startswith("/"):
        return prefix.rstrip("/")
    return DEFAULT_API_PREFIX


def _answer_after(
    add_fn: int, deps: list[tuple[int, Mapping[str, Any]]], chatbots: set[int]
) -> int:
    chained = [
        (fn, dep)
        for fn, dep in deps
        if dep.get("trigger_after") == add_fn and chatbots & set(_ids(dep.get("outputs")))
    ]
    generators = [fn for fn, dep in chained if _is_generator(dep)]
    if generators:
        return generators[0]
    if chained:
        return chained[0][0]
    return add_fn + 1


def _is_generator(dep: Mapping[str, Any]) -> bool:
    types = dep.get("types")
    return isinstance(types, Mapping) and bool(types.get("generator"))


def _submit_trigger(dep: Mapping[str, Any], types: Mapping[int, str], box_type: str) -> int | None:
    targets = dep.get("targets")
    if not isinstance(targets, list):
        return None
    for target in targets:
        if isinstance(target, (list, tuple)) and len(target) == 2 and target[1] == "submit":
            block = target[0]
            if isinstance(block, int) and types.get(block) == box_type:
                return block
    return None


def _component_types(config: Mapping[str, Any]) -> dict[int, str]:
    components = config.get("components")
    if not isinstance(components, list):
        return {}
    return {
        c["id"]: str(c.get("type", ""))
        for c in components
        if isinstance(c, Mapping) and isinstance(c.get("id"), int)
    }


def _dependencies(config: Mapping[str, Any]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Each dependency with its fn_index: its `id` in Gradio 4+, else its place in the list."""
    deps = config.get("dependencies")
    if not isinstance(deps, list):
        return
    for position, dep in enumerate(deps):
        if isinstance(dep, Mapping):
            fn = dep.get("id")
            yield (fn if isinstance(fn, int) else position), dep


def _ids(values: Any) -> list[int]:
    return [v for v in values if isinstance(v, int)] if isinstance(values, list) else []
