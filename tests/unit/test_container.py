"""The container image, checked without building it: its install and start commands are run
here, in a fresh virtual environment, exactly as the Dockerfile runs them.

No image registry is needed: the Dockerfile is read, its `pip install` is run on a copy of
what its `COPY` lines take, its `CMD` is started against the fake Telegram with its `ENV`,
and its `HEALTHCHECK` command is run against that process.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from tests.e2e.bot_process import TOKEN
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
Instruction = tuple[str, str]


def instructions(path: Path) -> list[Instruction]:
    """The Dockerfile as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        found.append((keyword.upper(), rest.strip()))
        pending = ""
    return found


DOCKERFILE = instructions(ROOT / "Dockerfile")


def last(keyword: str) -> str:
    return [args for key, args in DOCKERFILE if key == keyword][-1]


def image_env() -> dict[str, str]:
    """The run stage's ENV, as `KEY=value` pairs."""
    stages = [i for i, (key, _) in enumerate(DOCKERFILE) if key == "FROM"]
    env: dict[str, str] = {}
    for key, args in DOCKERFILE[stages[-1] :]:
        if key == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def test_the_image_is_multi_stage_slim_non_root_with_data_under_a_volume() -> None:
    bases = [args for key, args in DOCKERFILE if key == "FROM"]
    assert len(bases) >= 2, "a build stage and a run stage"
    assert all("slim" in base for base in bases)
    assert last("USER") not in ("root", "0")
    assert json.loads(last("VOLUME")) == ["/data"]
    assert image_env()["DATABASE_URL"] == "sqlite:////data/phi4bot.db"
    assert "/healthz" in last("HEALTHCHECK")
    assert json.loads(last("CMD")) == ["phi4bot", "run"]


def test_no_secret_is_baked_into_the_image() -> None:
    secret_names = ("TOKEN", "KEY", "SECRET", "PASSWORD")
    assert not [name for name in image_env() if any(s in name for s in secret_names)]
    copied = [args for key, args in DOCKERFILE if key == "COPY" and "--from" not in args]
    assert not any(".env" in args for args in copied)
    ignored = [
        line for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] not in "#"
    ]
    assert ignored[0] == "*", "everything is left out of the build context..."
    allowed = {line[1:].rstrip("/") for line in ignored if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "bot", "storage"}, "...but the sources"


def test_compose_runs_the_bot_with_postgres_and_vllm_behind_profiles() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert "profiles" not in services["bot"]
    assert services["bot"]["build"] == "."
    assert any(v.endswith(":/data") for v in services["bot"]["volumes"])
    assert services["postgres"]["profiles"] == ["postgres"]
    assert services["vllm"]["profiles"] == ["vllm"]
    vllm = " ".join(services["vllm"]["command"])
    for flag in ("--enable-lora", "speech=", "vision=", "--trust-remote-code"):
        assert flag in vllm
    devices = services["vllm"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    text = (ROOT / "compose.yaml").read_text()
    assert TOKEN not in text and "sk-" not in text


def fresh_venv(where: Path) -> Path:
    """A new virtual environment whose dependencies are the test suite's own.

    The suite's installed packages (all but phi4bot itself) are linked into a directory the
    new environment sees, so `pip install .` finds them installed and needs no index; the
    project itself is built and installed from scratch.
    """
    subprocess.run([sys.executable, "-m", "venv", str(where / "venv")], check=True)
    ours = Path(sysconfig.get_paths()["purelib"])
    deps = where / "deps"
    deps.mkdir()
    for entry in ours.iterdir():
        name = entry.name
        if name.startswith(("phi4bot", "__editable__", "_virtualenv", "pip")) or name in (
            "bot",
            "storage",
        ):
            continue
        (deps / name).symlink_to(entry)
    venv = where / "venv"
    (site_packages(venv) / "suite-deps.pth").write_text(f"{deps}\n")
    return venv


def site_packages(venv: Path) -> Path:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return venv / "lib" / version / "site-packages"


def build_context(where: Path) -> Path:
    """What the build stage's COPY lines take from the repository."""
    context = where / "src"
    context.mkdir()
    for key, args in DOCKERFILE:
        if key != "COPY" or "--from" in args:
            continue
        *sources, _ = args.split()
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(
                    origin, context / source, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy(origin, context / source)
    return context


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(300)
async def test_the_image_install_and_start_commands_work_in_a_fresh_venv(tmp_path: Path) -> None:
    install = next(a for k, a in DOCKERFILE if k == "RUN" and "pip install" in a)
    pip, *pip_args = shlex.split(install)
    assert pip == "/opt/phi4bot/bin/pip" and pip_args == ["install", "."]
    venv = fresh_venv(tmp_path)
    context = build_context(tmp_path)
    installed = await asyncio.create_subprocess_exec(
        str(venv / "bin" / "pip"),
        *pip_args,
        cwd=context,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = await installed.communicate()
    assert installed.returncode == 0, output.decode(errors="replace")[-3000:]
    assert (site_packages(venv) / "bot" / "ops" / "server.py").exists(), "every package is in"
    assert list((site_packages(venv) / "bot" / "shared" / "locale").glob("*/LC_MESSAGES/*.mo"))

    port = free_port()
    workdir = tmp_path / "data"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHI4", "OPENAI", "HF_"))}
    env.update(image_env())
    env["PATH"] = f"{venv / 'bin'}:{os.environ['PATH']}"
    async with (
        FakeTelegram(token=TOKEN, bot_username="phi4_test_bot") as tg,
        FakeOpenAIServer() as model,
    ):
        env.update(
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=tg.url,
            PHI4_BACKEND="openai",
            OPENAI_BASE_URL=model.base_url,
            DATABASE_URL=f"sqlite:///{workdir / 'phi4bot.db'}",  # /data in the image
            PHI4BOT_METRICS_HOST="127.0.0.1",
            PHI4BOT_METRICS_PORT=str(port),
        )
        command = json.loads(last("CMD"))
        log = (tmp_path / "bot.log").open("wb")
        bot = await asyncio.create_subprocess_exec(
            *command,
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        try:
            healthcheck = json.loads(last("HEALTHCHECK").split(" CMD ", 1)[1])
            assert healthcheck[0] == "python"
            healthcheck[0] = str(venv / "bin" / "python")
            healthy = False
            for _ in range(150):
                probe = await asyncio.create_subprocess_exec(
                    *healthcheck, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                if await probe.wait() == 0:
                    healthy = True
                    break
                assert bot.returncode is None, (tmp_path / "bot.log").read_text()
                await asyncio.sleep(0.2)
            assert healthy, (tmp_path / "bot.log").read_text()
            alice = tg.private_user(42, "Alice")
            tg.send_text(alice.chat, alice, "Hello?")
            await tg.wait_until(lambda: tg.text_of(42) == model.answer, timeout=20)
        finally:
            if bot.returncode is None:
                bot.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(bot.wait(), 30)
            log.close()
        assert code == 0
    assert "/bot" + TOKEN not in (tmp_path / "bot.log").read_text()
