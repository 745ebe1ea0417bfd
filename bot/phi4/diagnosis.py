"""What the operator should do next about a backend failure: one line naming the setting.

`phi4bot check`, the bot's start-up check and its notices to admins all print `next_step`, so
the advice for each kind of failure is written once, here. It names settings, never their
values, so it is safe to log and to send. The advice is a `Sentence`: the terminal and the log
read its English, an admin reads it in their own language; setting names, addresses and
commands are values filled in, so no translation can change them.
"""

from __future__ import annotations

from bot.phi4.errors import (
    AccessDenied,
    BackendMisconfigured,
    BackendTimeout,
    ConnectionRefused,
    FailureClass,
    NoChatEndpoint,
    Phi4Error,
    QuotaExceeded,
    ServerNotFound,
    SpaceAsleep,
    SpaceNotFound,
    SpacePaused,
    UnknownModel,
)
from bot.phi4.settings import Phi4Settings
from bot.shared import Sentence

GUIDE = "Choose a model server"
"""The README section on model servers; its title is English in every language."""


def next_step(error: Phi4Error, settings: Phi4Settings) -> Sentence:
    """The one thing to do about `error`, with the README section that explains it."""
    if isinstance(error, BackendMisconfigured):
        return _with_guide(_fix_configuration(error, settings))
    if error.failure_class is FailureClass.REQUEST:
        return Sentence(
            "nothing to change in the configuration: this request cannot be answered as sent"
        )
    return _with_guide(_wait_or_move(error, settings))


def _with_guide(fix: Sentence) -> Sentence:
    return Sentence("{fix} (README: {section})", fix=fix, section=GUIDE)


def _url_setting(error: BackendMisconfigured, settings: Phi4Settings) -> str:
    """The variable holding the address that failed."""
    if error.where and error.where == settings.phi4_space_url:
        return "PHI4_SPACE_URL"
    return "OPENAI_BASE_URL"


def _fix_configuration(error: BackendMisconfigured, settings: Phi4Settings) -> Sentence:
    url_setting = _url_setting(error, settings)
    where = error.where or Sentence("the address in {setting}", setting=url_setting)
    if isinstance(error, ServerNotFound):
        return Sentence(
            "the host name in {setting} does not resolve: correct the address, "
            "or let this machine reach the internet",
            setting=url_setting,
        )
    if isinstance(error, ConnectionRefused):
        return Sentence(
            "nothing listens there: start the model server (vLLM, Ollama), "
            "or set {setting} to the address it listens on",
            setting=url_setting,
        )
    if isinstance(error, AccessDenied):
        return _fix_access(url_setting, settings)
    if isinstance(error, UnknownModel):
        return _fix_model(error, settings)
    if isinstance(error, NoChatEndpoint):
        return Sentence(
            "{where} is not an OpenAI-compatible API: set {setting} to its root, ending in /v1",
            where=where,
            setting=url_setting,
        )
    if isinstance(error, SpaceNotFound):
        return Sentence(
            "no Gradio Space answers at {where}: correct PHI4_SPACE_URL, or duplicate the "
            "Space to your account and set PHI4_SPACE_URL to the copy",
            where=where,
        )
    if isinstance(error, SpacePaused):
        return Sentence(
            "the Space is paused by its owner: duplicate the Space, then set PHI4_SPACE_URL "
            "to the copy and HF_TOKEN to your token"
        )
    return Sentence(
        "check {setting} and the settings beside it with `phi4bot check`", setting=url_setting
    )


def _fix_access(url_setting: str, settings: Phi4Settings) -> Sentence:
    if url_setting == "PHI4_SPACE_URL":
        if settings.hf_token is None:
            return Sentence("the Space refused access: set HF_TOKEN to a token that can read it")
        return Sentence(
            "the Space refused HF_TOKEN: set a token of an account that can read the Space"
        )
    if settings.openai_api_key is None:
        return Sentence("the server wants an API key: set OPENAI_API_KEY")
    return Sentence("the server refused OPENAI_API_KEY: set a key it accepts")


def _fix_model(error: UnknownModel, settings: Phi4Settings) -> Sentence:
    setting = "PHI4_MODEL"
    if error.model and error.model == settings.openai_vision_model:
        setting = "PHI4_VISION_MODEL"
    elif error.model and error.model == settings.openai_speech_model:
        setting = "PHI4_SPEECH_MODEL"
    if error.served:
        shown = ", ".join(error.served[:8]) + (", ..." if len(error.served) > 8 else "")
        return Sentence(
            "the model `{model}` is not served here: the server lists {shown}; "
            "set {setting} to one of them",
            model=error.model,
            shown=shown,
            setting=setting,
        )
    return Sentence(
        "the model `{model}` is not served here: set {setting} to a model the "
        "server serves (`phi4bot check` lists them)",
        model=error.model,
        setting=setting,
    )


def _wait_or_move(error: Phi4Error, settings: Phi4Settings) -> Sentence:
    """Transient failures: what helps other than waiting."""
    on_space = settings.backend_chain[-1] == "space"  # a chain's error is its last backend's
    if isinstance(error, SpaceAsleep):
        return Sentence(
            "the Space is asleep: open {url} once in a browser to wake "
            "it, or set HF_TOKEN and use your own duplicate",
            url=settings.phi4_space_url,
        )
    if isinstance(error, QuotaExceeded):
        if on_space and settings.hf_token is None:
            return Sentence(
                "the Space is out of GPU quota for anonymous callers: set HF_TOKEN to use "
                "your own ZeroGPU quota, or duplicate the Space"
            )
        if on_space:
            return Sentence("the Space's GPU quota is used up: wait, or duplicate the Space")
        return Sentence(
            "the server is rate-limiting or overloaded: wait, or use a key with a higher limit"
        )
    if isinstance(error, BackendTimeout):
        return Sentence(
            "the server did not answer in time: it may be overloaded or still starting; "
            "raise PHI4_CONNECT_TIMEOUT or PHI4BOT_STREAM_TIMEOUT if it is just slow"
        )
    return Sentence(
        "the server failed for now: wait a minute; if it lasts, choose another model server"
    )
