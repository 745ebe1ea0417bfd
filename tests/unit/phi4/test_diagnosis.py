"""next_step: one piece of advice per failure, translated for admins without losing a name.

The terminal and the log print the English; an admin reads it in their language. Whatever a
translation rewords, the settings, addresses, model names and commands it names must read
exactly as in English, or the advice could no longer be followed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.config import Settings
from bot.phi4.diagnosis import next_step
from bot.phi4.errors import (
    AccessDenied,
    BackendMisconfigured,
    BackendTimeout,
    BackendUnavailable,
    ConnectionRefused,
    MediaNotSupported,
    NoChatEndpoint,
    Phi4Error,
    QuotaExceeded,
    ServerNotFound,
    SpaceAsleep,
    SpaceNotFound,
    SpacePaused,
    UnknownModel,
)
from bot.shared import translate

SPACE = "https://someone-phi-4-multimodal.hf.space"
SERVER = "http://127.0.0.1:8000/v1"
OPENAI: dict[str, Any] = {"PHI4_BACKEND": "openai", "OPENAI_BASE_URL": SERVER}
ON_SPACE: dict[str, Any] = {"PHI4_BACKEND": "space", "PHI4_SPACE_URL": SPACE}

CASES: list[tuple[Phi4Error, dict[str, Any]]] = [
    (ServerNotFound("no such host", where=SERVER), OPENAI),
    (ConnectionRefused("refused", where=SERVER), OPENAI),
    (AccessDenied("401", where=SERVER), OPENAI),
    (AccessDenied("401", where=SERVER), OPENAI | {"OPENAI_API_KEY": "sk-key"}),
    (AccessDenied("403", where=SPACE), ON_SPACE),
    (AccessDenied("403", where=SPACE), ON_SPACE | {"HF_TOKEN": "hf_token"}),
    (UnknownModel("404", where=SERVER, model="phi-9", served=("phi-4", "llama")), OPENAI),
    (UnknownModel("404", where=SERVER, model="phi-9"), OPENAI),
    (NoChatEndpoint("404", where=SERVER), OPENAI),
    (NoChatEndpoint("404"), OPENAI),
    (SpaceNotFound("404", where=SPACE), ON_SPACE),
    (SpacePaused("paused", where=SPACE), ON_SPACE),
    (BackendMisconfigured("odd", where=SERVER), OPENAI),
    (SpaceAsleep("asleep"), ON_SPACE),
    (QuotaExceeded("429"), ON_SPACE),
    (QuotaExceeded("429"), ON_SPACE | {"HF_TOKEN": "hf_token"}),
    (QuotaExceeded("429"), OPENAI),
    (BackendTimeout("slow"), OPENAI),
    (BackendUnavailable("502"), OPENAI),
    (MediaNotSupported("no images"), OPENAI),
]

NAMES = re.compile(r"`[^`]+`|https?://[\w.:/-]*[\w/]|\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|/v1\b|README")
"""What a translation must keep: code, addresses, setting names and the README's name."""


@pytest.mark.parametrize(("error", "env"), CASES, ids=lambda case: type(case).__name__)
def test_every_next_step_reads_in_russian_with_the_same_names(
    error: Phi4Error, env: dict[str, Any]
) -> None:
    advice = next_step(error, Settings(_env_file=None, **env))
    russian = translate(advice, "ru")
    assert russian != str(advice)
    assert not re.search(r"\b(the|set|or|and|to)\b", russian), russian
    assert sorted(NAMES.findall(russian)) == sorted(NAMES.findall(advice)), russian


def test_the_english_advice_names_the_setting_and_the_readme_section() -> None:
    advice = next_step(
        ConnectionRefused("refused", where=SERVER), Settings(_env_file=None, **OPENAI)
    )
    assert advice == (
        "nothing listens there: start the model server (vLLM, Ollama), or set "
        "OPENAI_BASE_URL to the address it listens on (README: Choose a model server)"
    )
