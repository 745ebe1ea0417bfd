"""README is checked against the code: its settings, commands and architecture cannot drift.

Every setting the bot reads has a line in README's configuration table and every variable
README names is read by something; every command README shows exists (in the CLI or as a
chat command); the architecture picture lists exactly the packages there are, in the order
of the import-linter layers, each described by the first line of its own docstring.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest
from pydantic.fields import FieldInfo

from bot.cli import _parser
from bot.config import Settings
from bot.telegram.commands import COMMAND_HANDLERS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
VARIABLE = re.compile(r"`((?:PHI4BOT|PHI4|OPENAI|TELEGRAM|DATABASE|LOG|HF)_[A-Z0-9_]+)")
# Variables README names that the bot itself does not read, and who reads them.
READ_ELSEWHERE = ("tests", "bench", ".ci", "Makefile", "Dockerfile", "compose.yaml")


def section(title: str) -> str:
    """The text of README's `## title` section, up to the next section of that level."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def settings_names() -> set[str]:
    fields: dict[str, FieldInfo] = Settings.model_fields
    return {str(field.alias) for field in fields.values() if field.alias}


def test_every_setting_has_a_line_in_the_configuration_table() -> None:
    table_lines = [line for line in section("Configuration").splitlines() if line.startswith("|")]
    documented = {name for line in table_lines for name in VARIABLE.findall(line.split("|")[1])}
    missing = settings_names() - documented
    assert not missing, f"settings with no line in README's configuration table: {missing}"


def test_every_variable_readme_names_is_read_by_something() -> None:
    named = set(VARIABLE.findall(README))
    elsewhere = "\n".join(
        path.read_text(errors="replace")
        for place in READ_ELSEWHERE
        for path in ([ROOT / place] if (ROOT / place).is_file() else (ROOT / place).rglob("*"))
        if path.is_file() and path.suffix in ("", ".py", ".yaml", ".sh")
    )
    unknown = {name for name in named - settings_names() if name not in elsewhere}
    assert not unknown, f"README names variables nothing reads: {unknown}"


def cli_commands() -> set[str]:
    """`phi4bot` sub-commands, nested ones as 'db copy'."""
    found: set[str] = set()

    def walk(parser: object, prefix: str) -> None:
        for action in getattr(parser, "_actions", []):
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                for name, sub in choices.items():
                    found.add(f"{prefix}{name}")
                    walk(sub, f"{prefix}{name} ")

    walk(_parser(), "")
    return found


def test_every_phi4bot_command_in_readme_exists() -> None:
    shown = {
        " ".join(words)
        for match in re.findall(r"phi4bot((?: [a-z]+)+)", README)
        for words in [match.split()]
    }
    commands = cli_commands()
    unknown = {
        text
        for text in shown
        if not any(text == c or text.startswith(c + " ") for c in commands)
        and text.split()[0] in {c.split()[0] for c in commands} | {"run", "chat", "check", "db"}
    }
    assert not unknown, f"README shows phi4bot commands that do not exist: {unknown}"
    for command in commands:
        assert f"phi4bot {command}" in README, f"README never shows `phi4bot {command}`"


def test_every_chat_command_in_the_commands_section_exists() -> None:
    handled = {name for handler in COMMAND_HANDLERS for name in handler.commands}
    table = section("Commands")
    shown = set(re.findall(r"`/([a-z_]+)", table))
    assert shown <= handled, f"README lists chat commands the bot lacks: {shown - handled}"
    assert handled <= shown, f"chat commands README does not list: {handled - shown}"


def layered_packages() -> list[str]:
    """Every package under bot/ and storage/, top layer first (import-linter's order), each
    followed by its sub-packages."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    layers = next(
        c["layers"] for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"
    )
    order = [name.strip() for layer in layers for name in layer.split("|")]
    packages = sorted(
        ".".join(path.parent.relative_to(ROOT).parts)
        for root in ("bot", "storage")
        for path in (ROOT / root).rglob("__init__.py")
    )

    def rank(package: str) -> tuple[int, str]:
        top = next((i for i, name in enumerate(order) if package.startswith(name)), len(order))
        return top, package

    return [p for p in sorted(packages, key=rank) if p != "bot"]


def docstring_line(package: str) -> str:
    init = ROOT.joinpath(*package.split("."), "__init__.py")
    docstring = ast.get_docstring(ast.parse(init.read_text()))
    assert docstring, f"{package} has no docstring"
    return docstring.splitlines()[0]


def architecture_block() -> str:
    packages = layered_packages()
    width = max(len(p) for p in packages) + 2
    return "\n".join(
        f"{package.replace('.', '/') + '/':<{width}} {docstring_line(package)}"
        for package in packages
    )


def test_the_architecture_picture_is_the_packages_and_their_docstrings() -> None:
    match = re.search(r"^## How it works\n.*?```\n(.*?)```", README, re.M | re.S)
    assert match, "README's 'How it works' has no picture of the packages"
    expected = architecture_block()
    if match.group(1).strip() != expected:
        pytest.fail(f"README's package picture should read:\n```\n{expected}\n```")
