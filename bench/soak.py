"""Soak: half an hour of mixed chat traffic with injected faults, compressed into minutes.

Run from the repo root: `.venv/bin/python -m bench.soak [--minutes 2] [--workdir DIR] [--seed 1]`.

The real `phi4bot run` process serves 8 private chats and 3 groups of 3 people on the fake
Telegram (Telegram's default flood limits) with the fake OpenAI server as its model; all on
127.0.0.1. People behave like people, 15 times faster: each sends a message, waits for the
bot's reaction (at most 30 s), thinks, and sends the next. Private messages are text,
photos (`make_png`) and voice notes (`make_ogg_opus`), with /new, /retry and /stop now and
then, and sometimes a second message while an answer streams; group messages mention the
bot (in text or a photo caption) or use /ask, with /new.
While they talk, Telegram fails calls with 502s and dropped connections, the model answers
503/500, stalls (PHI4BOT_STREAM_TIMEOUT=3), breaks off mid-stream, and once the bot is
SIGKILLed and started again. getUpdates is never faulted.

Every answer carries its question's tag: the model answers `start tNNNN ... end tNNNN`
(voice notes are told apart by the pitch of their tone). Each user message is then judged
by what the bot sent in reply to it (Telegram's reply_to): a complete answer, an answer
cut by /stop, an error reply, or — for messages sent before the kill — the restart notice.
A message with none of these is lost; one with two replies or more was answered twice.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import io
import itertools
import random
import re
import statistics
import sys
import tempfile
import time
import wave
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    BOT_USERNAME,
    ProcFigures,
    StampedOpenAIServer,
    Table,
    bot_env,
    last_user_parts,
    last_user_text,
    mib,
    proc_figures,
    start_bot,
    stop_bot,
    verdict,
    wait_for,
)
from bot.media import decode_audio_to_wav
from tests.e2e.bot_process import TOKEN, BotProcess
from tests.fakes.telegram import BotMessage, Chat, FakeTelegram, User
from tests.media_factory import make_ogg_opus, make_png

COMPRESSION = 15  # 2 minutes of this traffic stand for 30 minutes of real traffic
PRIVATE_USERS = 8
GROUPS = 3
GROUP_MEMBERS = 3
THINK_PRIVATE = 60.0  # real-life seconds between one person's messages, mean
THINK_GROUP = 150.0
WAIT = 30.0  # a person waits at most this long for the bot's reaction
DRAIN = 15.0  # after the traffic, seconds left for the last reactions
STREAM_TIMEOUT = 3.0
KILL_AT = 0.3  # fraction of the run when the bot is SIGKILLed
CHUNK_SIZE, CHUNK_DELAY = 8, 0.02  # ~400 characters a second
VOICE_PITCHES = 40  # voice note k is a tone of 300 + 25 k Hz (tags reused after 40 notes)
SETTLE = 2.0  # seconds watched after the last reaction, for late duplicates
GROWTH_LIMIT = (0.05, 3 * 1024)  # RSS grew if the last third is 5 % and 3 MiB above the first
TURNS = frozenset({"text", "photo", "voice", "ask"})  # the rest are commands
ANSWERED = TURNS | {"retry"}  # what the model answers, and a restart notice may speak for
TAG = re.compile(r"\b(t\d{4})\b")
START = re.compile(r"start (t\d{4})")
HEAD = "start t0000"
RESTARTED = "I was restarted before I finished"
STOPPED = "Stopped"
WORDS = "model stream chunk answer budget pacing telegram message photo voice group".split()

TELEGRAM_FAULTS: list[tuple[str, Callable[[FakeTelegram], None]]] = [
    ("502 ×2 on sendMessage", lambda tg: tg.fail_next(2, 502, method="sendMessage")),
    ("reset on editMessageText", lambda tg: tg.reset_next(1, method="editMessageText")),
    ("502 ×2 on editMessageText", lambda tg: tg.fail_next(2, 502, method="editMessageText")),
    ("reset on sendMessage", lambda tg: tg.reset_next(1, method="sendMessage")),
    ("502 on a file download", lambda tg: tg.fail_next(1, 502, method="download")),
]
# (kind, after how many chunks) of the fake OpenAI server's `fail_next`
BACKEND_FAULTS: list[tuple[str, int]] = [
    ("503", 1),
    ("stall", 3),
    ("500", 1),
    ("error-event", 3),
    ("drop", 3),
]


def answer_text(tag: str, long: bool) -> str:
    """The model's answer to the question tagged `tag` (its length depends on the tag)."""
    rng = random.Random(tag)
    size = rng.randint(2500, 3500) if long else rng.choice([rng.randint(150, 1200)] * 11 + [5000])
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < size:
        word = rng.choice(WORDS)
        words.append(f"**{word}**" if rng.random() < 0.03 else word)
    return f"start {tag}. {' '.join(words)}. end {tag}."


def begins_answer(text: str) -> bool:
    """Whether `text` is an answer's head shown before its tag is complete ("start t01")."""
    shown = text[: len(HEAD)]
    return START.fullmatch(shown + HEAD[len(shown) :]) is not None


def tone_pitch(wav: bytes) -> float:
    """The frequency of a WAV's sine tone, from its zero crossings (edges left out)."""
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        samples = array.array("h", reader.readframes(reader.getnframes()))
    samples = samples[rate // 10 : -rate // 10]
    crossings = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    return crossings / 2 / (len(samples) / rate)


@dataclass
class Sent:
    """One message a person sent, and what it asked for."""

    kind: str  # text, photo, voice, ask, new, retry, stop
    chat_id: int
    message_id: int
    at: float
    tag: str | None = None
    target: Sent | None = None  # /stop: the turn it stops


@dataclass
class Person:
    user: User
    chat: Chat
    group: bool


@dataclass
class Soak:
    tg: FakeTelegram
    model: StampedOpenAIServer
    workdir: Path
    rng: random.Random
    env: dict[str, str] = field(default_factory=dict)
    bot: BotProcess | None = None
    sent: list[Sent] = field(default_factory=list)
    voices: dict[int, str] = field(default_factory=dict)  # pitch index -> tag
    voice_notes: list[bytes] = field(default_factory=list)
    pitches: list[float] = field(default_factory=list)  # as heard after the bot's decoding
    voice_count: int = 0
    long_tags: set[str] = field(default_factory=set)
    serial: int = 0
    killed_at: float | None = None
    restarted_in: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    memory: list[tuple[float, int, ProcFigures]] = field(default_factory=list)
    generation: int = 0
    peak_hwm: int = 0

    # -- the model's side ---------------------------------------------------------------

    def tag_of(self, body: dict[str, Any]) -> str:
        found = TAG.search(last_user_text(body))
        if found:
            return found.group(1)
        for part in last_user_parts(body):
            if part.get("type") == "input_audio":
                pitch = tone_pitch(base64.b64decode(part["input_audio"]["data"]))
                index = min(range(len(self.pitches)), key=lambda k: abs(self.pitches[k] - pitch))
                return self.voices.get(index, "t????")
        return "t????"

    def reply(self, body: dict[str, Any]) -> str:
        tag = self.tag_of(body)
        return answer_text(tag, tag in self.long_tags)

    # -- the people's side --------------------------------------------------------------

    def next_tag(self) -> str:
        self.serial += 1
        return f"t{self.serial:04d}"

    def record(self, kind: str, person: Person, message: dict[str, Any], **extra: Any) -> Sent:
        sent = Sent(kind, person.chat.id, message["message_id"], time.monotonic(), **extra)
        self.sent.append(sent)
        return sent

    def send_turn(self, person: Person, *, long: bool = False) -> Sent:
        tag, mention = self.next_tag(), f"@{BOT_USERNAME} " if person.group else ""
        if long:
            self.long_tags.add(tag)
        roll = self.rng.random()
        if roll < 0.12:
            colour = tuple(self.rng.randrange(256) for _ in range(3))
            picture = make_png(64, 48, colour)  # type: ignore[arg-type]
            caption = f"{mention}{tag} what is in this picture?"
            message = self.tg.send_photo(person.chat, person.user, picture, caption=caption)
            return self.record("photo", person, message, tag=tag)
        if roll < 0.24 and not person.group:
            index = self.voice_count % VOICE_PITCHES
            self.voice_count += 1
            self.voices[index] = tag
            note = self.voice_notes[index]
            message = self.tg.send_voice(person.chat, person.user, note, duration=2)
            return self.record("voice", person, message, tag=tag)
        if roll < 0.30 and person.group:
            text = f"/ask@{BOT_USERNAME} {tag} what do you think?"
            message = self.tg.send_text(person.chat, person.user, text)
            return self.record("ask", person, message, tag=tag)
        words = " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(3, 12)))
        text = f"{mention}{tag} tell me about {words}" + (" at length" if long else "")
        message = self.tg.send_text(person.chat, person.user, text)
        return self.record("text", person, message, tag=tag)

    def command(self, person: Person, name: str, **extra: Any) -> Sent:
        suffix = f"@{BOT_USERNAME}" if person.group else ""
        message = self.tg.send_text(person.chat, person.user, f"/{name}{suffix}")
        return self.record(name, person, message, **extra)

    async def wait_settled(self, sent: Sent) -> None:
        await wait_for(self.tg, lambda: self.settled(sent), timeout=WAIT, recheck=1.0)

    async def wait_shown(self, sent: Sent) -> None:
        """Until the bot shows something for `sent` (an answer begins, or an outcome)."""
        await wait_for(self.tg, lambda: self.replies(sent) or self.settled(sent), timeout=WAIT)

    async def act(self, person: Person) -> None:
        roll = self.rng.random()
        if roll < 0.04:
            await self.wait_settled(self.command(person, "new"))
        elif roll < 0.09 and not person.group:
            await self.wait_settled(self.command(person, "retry"))
        elif roll < 0.14 and not person.group:
            turn = self.send_turn(person, long=True)
            await self.wait_shown(turn)
            if not self.settled(turn):
                await self.wait_settled(self.command(person, "stop", target=turn))
        elif roll < 0.19 and not person.group:  # impatient: a second message meanwhile
            turn = self.send_turn(person)
            await self.wait_shown(turn)
            follow_up = self.send_turn(person)
            await self.wait_settled(turn)
            await self.wait_settled(follow_up)
        else:
            await self.wait_settled(self.send_turn(person))

    async def live(self, person: Person, until: float) -> None:
        mean = (THINK_GROUP if person.group else THINK_PRIVATE) / COMPRESSION
        await asyncio.sleep(self.rng.uniform(0, mean))  # people do not all start at once
        while time.monotonic() < until:
            await self.act(person)
            think = min(4 * mean, max(0.3, self.rng.expovariate(1 / mean)))
            await asyncio.sleep(think)  # the person's pause, part of the traffic model

    # -- faults ---------------------------------------------------------------------------

    async def inject_faults(self, start: float, until: float) -> None:
        count = len(TELEGRAM_FAULTS) + len(BACKEND_FAULTS)
        step = (until - start) / (count + 1)
        for number in range(count):
            await asyncio.sleep(max(0.0, start + (number + 1) * step - time.monotonic()))
            if number % 2 == 0:
                name, inject = TELEGRAM_FAULTS[(number // 2) % len(TELEGRAM_FAULTS)]
                inject(self.tg)
                self.faults[f"telegram: {name}"] += 1
            else:
                name, after = BACKEND_FAULTS[(number // 2) % len(BACKEND_FAULTS)]
                self.model.fail_next(name, after=after)
                self.faults[f"model: {name}"] += 1

    async def crash_and_restart(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        assert self.bot is not None and self.bot.proc is not None
        figures = proc_figures(self.bot.proc.pid)
        if figures:
            self.peak_hwm = max(self.peak_hwm, figures.hwm_kib)
        await self.bot.kill()
        self.killed_at = time.monotonic()
        self.faults["SIGKILL of the bot"] += 1
        self.generation += 1
        self.bot = await start_bot(self.tg, self.env, self.workdir)
        self.restarted_in = time.monotonic() - self.killed_at

    async def sample_memory(self) -> None:
        while True:
            if self.bot is not None and self.bot.proc is not None and self.bot.running:
                figures = proc_figures(self.bot.proc.pid)
                if figures is not None:
                    self.memory.append((time.monotonic(), self.generation, figures))
                    self.peak_hwm = max(self.peak_hwm, figures.hwm_kib)
            await asyncio.sleep(1.0)  # the sampling period

    # -- judging ----------------------------------------------------------------------

    def replies(self, sent: Sent) -> list[BotMessage]:
        return [m for m in self.tg.messages(sent.chat_id) if m.reply_to == sent.message_id]

    def settled(self, sent: Sent) -> bool:
        return self.outcome(sent) not in (None, "partial")

    def outcome(self, sent: Sent) -> str | None:
        """answered, stopped, error, notice, reply (a command's answer), partial or None."""
        direct = self.direct_outcome(sent)
        if direct in (None, "partial") and sent.kind in ANSWERED and self.notice_covers(sent):
            return "notice"
        return direct

    def direct_outcome(self, sent: Sent) -> str | None:
        """The outcome from the bot's replies to `sent` alone, restart notices left aside.

        Answers are one paragraph, so anything after a blank line is a note the bot
        appended: "⏹ Stopped." or the sentence of an error.
        """
        replies = self.replies(sent)
        if sent.kind == "stop":
            if replies:
                return "reply"
            stopped = sent.target and any(STOPPED in m.text for m in self.replies(sent.target))
            return "reply" if stopped else None  # the stopped answer is its reaction
        if sent.kind == "new":
            return "reply" if replies else None
        partial = False
        for message in replies:
            head = message.text.partition("\n\n")[0]
            started = START.search(head)
            if started is None and not begins_answer(head):
                return "error" if sent.kind != "retry" else "reply"
            text = self.whole_answer(sent.chat_id, message)
            if started is not None and f"end {started.group(1)}" in text:
                return "answered"
            note = text.partition("\n\n")[2]
            if note:
                return "stopped" if STOPPED in note else "error"
            partial = True
        return "partial" if partial else None

    def whole_answer(self, chat_id: int, first: BotMessage) -> str:
        """The text of an answer's first message and the continuation messages after it."""
        texts = [first.text]
        for message in self.tg.messages(chat_id):
            if message.message_id <= first.message_id or RESTARTED in message.text:
                continue
            if message.reply_to is not None:
                break
            texts.append(message.text)
        return "\n".join(texts)

    def notice_covers(self, sent: Sent) -> bool:
        """Whether a restart notice speaks for this turn (sent before the kill).

        A notice replying to a partial answer covers that answer's turn. A notice replying
        to nothing (the answer had shown nothing yet, or had not started) covers one turn:
        the earliest one of the chat still without an outcome, which is the one the
        conversation was busy with when the bot died.
        """
        killed_at = self.killed_at
        if killed_at is None or sent.at > killed_at:
            return False
        messages = self.tg.messages(sent.chat_id)
        by_reply, anonymous = set(), 0
        for notice in (m for m in messages if RESTARTED in m.text):
            if notice.reply_to is None:
                anonymous += 1
                continue
            earlier = [m for m in messages if m.message_id <= notice.reply_to and m.reply_to]
            if earlier:
                by_reply.add(earlier[-1].reply_to)
        if sent.message_id in by_reply:
            return True
        waiting = [
            s
            for s in self.sent
            if s.chat_id == sent.chat_id
            and s.kind in ANSWERED
            and s.at <= killed_at
            and s.message_id not in by_reply
            and self.direct_outcome(s) in (None, "partial")
        ]
        return sent in waiting[:anonymous]


async def soak(minutes: float, seed: int, workdir: Path) -> tuple[Table, list[str]]:
    rng = random.Random(seed)
    async with (
        FakeTelegram(token=TOKEN, bot_username=BOT_USERNAME) as tg,
        StampedOpenAIServer(lambda body: None) as model,
    ):
        run = Soak(tg, model, workdir, rng)
        model.chunk_size, model.chunk_delay, model.reply = CHUNK_SIZE, CHUNK_DELAY, run.reply
        run.voice_notes = [make_ogg_opus(1.5, 300 + 25 * k) for k in range(VOICE_PITCHES)]
        run.pitches = [  # Opus shifts some tones a little: learn what the model will hear
            tone_pitch(decode_audio_to_wav(note, max_seconds=10).wav) for note in run.voice_notes
        ]
        run.env = bot_env(tg, model, workdir, PHI4BOT_STREAM_TIMEOUT=str(STREAM_TIMEOUT))
        run.bot = await start_bot(tg, run.env, workdir)
        people = []
        for number in range(PRIVATE_USERS):
            user = tg.private_user(40_001 + number, f"Person{number + 1}")
            assert user.chat is not None
            people.append(Person(user, user.chat, group=False))
        for number in range(GROUPS):
            group = tg.group(title=f"Group {number + 1}")
            for member in range(GROUP_MEMBERS):
                user = tg.private_user(50_001 + 10 * number + member, f"Member{member + 1}")
                people.append(Person(user, group, group=True))

        start = time.monotonic()
        until = start + minutes * 60
        sampler = asyncio.create_task(run.sample_memory())
        background = [
            asyncio.create_task(run.inject_faults(start, until)),
            asyncio.create_task(run.crash_and_restart(start + KILL_AT * (until - start))),
        ]
        await asyncio.gather(*(run.live(person, until) for person in people), *background)
        traffic_end = time.monotonic()
        await wait_for(tg, lambda: all(run.settled(s) for s in run.sent), timeout=DRAIN)
        await asyncio.sleep(SETTLE)  # late duplicates would show up now
        sampler.cancel()
        assert run.bot is not None and run.bot.proc is not None
        last = proc_figures(run.bot.proc.pid)
        if last:
            run.peak_hwm = max(run.peak_hwm, last.hwm_kib)
        exit_code = await stop_bot(run.bot)
        log = (workdir / "bot.log").read_text(errors="replace")
        return report(run, minutes, traffic_end - start, exit_code, log)


def report(
    run: Soak, minutes: float, seconds: float, exit_code: int | None, log: str
) -> tuple[Table, list[str]]:
    outcomes = {id(s): run.outcome(s) for s in run.sent}
    kinds = Counter(s.kind for s in run.sent)
    by_outcome = Counter(outcomes.values())
    unanswered = [s for s in run.sent if outcomes[id(s)] in (None, "partial")]
    lost = [s for s in unanswered if s.kind in TURNS]
    ignored = [s for s in unanswered if s.kind not in TURNS]
    doubled = [s for s in run.sent if len(run.replies(s)) > 1]
    table = Table(
        f"Soak: {minutes:g} min of traffic (≈ {minutes * COMPRESSION:.0f} min at real pace), "
        f"{PRIVATE_USERS} private chats, {GROUPS} groups of {GROUP_MEMBERS}"
    )
    kinds_text = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    table.add("user messages sent", f"{len(run.sent)}")
    table.add("  by kind", kinds_text)
    table.add("answered in full", str(by_outcome["answered"]))
    table.add("answers cut by /stop", str(by_outcome["stopped"]))
    table.add("error replies", str(by_outcome["error"]))
    errors = Counter(
        error_line(run, s) for s in run.sent if outcomes[id(s)] == "error" and run.replies(s)
    )
    for line, count in errors.most_common():
        table.add(f"  {line}", str(count))
    table.add("covered by the restart notice", str(by_outcome["notice"]))
    table.add("commands answered or done (/new, /retry, /stop)", str(by_outcome["reply"]))
    table.add("lost turns (no answer, error or notice)", str(len(lost)), "0", not lost)
    partial = sum(1 for s in lost if outcomes[id(s)] == "partial")
    table.add("  of which left with a partial answer", str(partial))
    table.add("commands that got no reaction", str(len(ignored)))
    table.add("answered twice (2+ replies)", str(len(doubled)), "0", not doubled)
    table.add("429s served", str(run.tg.stats.flood_429), "0", run.tg.stats.flood_429 == 0)
    table.add(
        "Telegram requests (flood-counted)", str(sum(map(len, run.tg.stats.chat_requests.values())))
    )
    table.add("model requests", str(len(run.model.chat_requests)))
    for name, count in run.faults.items():
        table.add(f"fault injected: {name}", f"×{count}")
    table.add("bot back after SIGKILL in", f"{run.restarted_in:.1f} s")
    table.add("bot peak memory (VmHWM)", mib(run.peak_hwm))
    table.add(*memory_growth(run))
    table.add("ERROR records of the bot's own loggers", str(log.count(" ERROR bot.")))
    table.add("traffic time", f"{seconds:.0f} s")
    table.add(
        "stopped by SIGTERM at the end",
        "exit 0" if exit_code == 0 else f"exit {exit_code}",
        "exit 0",
        exit_code == 0,
    )
    details = [describe(run, s, outcomes[id(s)]) for s in unanswered[:10]]
    details += [describe(run, s, "answered twice") for s in doubled[:10]]
    return table, details


def error_line(run: Soak, sent: Sent) -> str:
    """The error sentence a turn got, shortened: the note after an answer, or the reply."""
    text = run.replies(sent)[0].text
    answer, _, note = text.rpartition("\n\n")
    text = note if answer else text
    return text if len(text) <= 60 else text[:59] + "…"


def memory_growth(run: Soak) -> tuple[str, str, str, bool | None]:
    """RSS of the longest-lived process: median of its first third against its last third
    (the middle third is shown too, to tell a warm-up step from steady growth)."""
    generations = Counter(generation for _, generation, _ in run.memory)
    if not generations:
        return ("RSS medians by thirds", "n/a", "no growth", None)
    longest = generations.most_common(1)[0][0]
    rss = [f.rss_kib for _, g, f in run.memory if g == longest]
    third = max(1, len(rss) // 3)
    first, last = statistics.median(rss[:third]), statistics.median(rss[-third:])
    middle = statistics.median(rss[third:-third] or rss)
    share, floor = GROWTH_LIMIT
    grew = last - first > max(share * first, floor)
    label = "after the restart" if longest else "before the kill"
    return (
        f"RSS medians by thirds ({label}, {len(rss)} samples)",
        f"{first / 1024:.1f} / {middle / 1024:.1f} / {last / 1024:.1f} MiB",
        "last <= first + max(5 %, 3 MiB)",
        not grew,
    )


def describe(run: Soak, sent: Sent, verdict: str | None) -> str:
    texts = [m.text[:60] + ("…" if len(m.text) > 60 else "") for m in run.replies(sent)]
    kill = f", {sent.at - run.killed_at:+.2f} s from the kill" if run.killed_at else ""
    asked = sum(1 for r in run.model.chat_requests if run.tag_of(r.json) == sent.tag)
    return (
        f"{verdict or 'lost'}: {sent.kind} {sent.tag or ''} in chat {sent.chat_id} "
        f"(message {sent.message_id}{kill}; model asked {asked}×): replies {texts}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes", type=float, default=2.0, help="traffic time (default 2, at most 30)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the traffic")
    parser.add_argument(
        "--workdir", type=Path, help="keep the bot's database and log here (default: temporary)"
    )
    args = parser.parse_args()
    minutes = min(30.0, max(0.5, args.minutes))
    with tempfile.TemporaryDirectory(prefix="phi4bot-soak-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            table, details = asyncio.run(soak(minutes, args.seed, workdir))
        except RuntimeError as exc:  # the bot could not start: nothing was measured
            print(f"soak not run: {exc}")
            return verdict([], ["soak"])
    table.print()
    for line in details:
        print(line)
    return verdict([row.metric for row in table.misses()])


if __name__ == "__main__":
    sys.exit(main())
