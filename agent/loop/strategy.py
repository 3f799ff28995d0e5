"""What to ask next, once a round has failed: the loop's one place for repair strategies.

Each strategy looks at how the round went and either returns the next request or passes.
The loop tries them in order: ask anew for a function the failing tests call that is
still as the model was given it, restart when the model is stuck or copying itself, repair
one function when the problem sits in one, else repair the whole file. A new way to ask
(several candidates, fill-in-the-middle) is one more class here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from agent.golang.extract import Extraction, fence_files
from agent.golang.feedback import render_feedback
from agent.golang.source import Decl, enclosing_decl, split_decls, without_body
from agent.golang.trace import Trace
from agent.loop.prompts import render
from agent.loop.trajectory import FeedbackMode
from agent.models.base import Message
from tools.diagnostics import CheckResult, Kind

if TYPE_CHECKING:
    from agent.loop.config import LoopConfig
    from agent.loop.repair import RunState

MAX_AVOID = 4  # facts and failed lines carried into a prompt


@dataclass(frozen=True)
class FailedLine:
    line: int
    text: str
    why: str


@dataclass
class Outcome:
    """One failed round, as the strategies see it."""

    rnd: int
    ext: Extraction
    files: dict[str, str]  # the checked files (after the deterministic fixes)
    feedback: CheckResult  # the check the model is told about
    applied: list[str]  # the deterministic fixes this round kept
    facts: list[str]  # grounding: what the standard library really has
    repeated: list[FailedLine]  # lines that failed before and came back
    stuck: bool  # the same failure again, or code seen before
    trace: Trace | None = None  # where the failing test went (run-trace)


@dataclass
class Request:
    """The next round's conversation after the system message."""

    prompt: Message  # the task, or a restart prompt
    follow: list[Message] = field(default_factory=list)  # answer + feedback after it
    local: tuple[str, str, dict[str, str]] | None = None  # (file, function, files) asked for
    event: dict = field(default_factory=dict)  # extra fields of the `feedback` event


class Strategy(Protocol):
    def next_request(self, st: RunState, out: Outcome) -> Request | None: ...


def answer_message(st: RunState, files: dict[str, str]) -> Message:
    """The model's last answer as it stands after the fixes, support files left out."""
    shown = {n: c for n, c in files.items() if n not in st.problem.support_files}
    return Message(role="assistant", content=fence_files(shown))


def _feedback_text(st: RunState, out: Outcome) -> tuple[str, int]:
    # Test sources give failures their lines and inputs; hidden ones only in `all` mode.
    tests = dict(st.problem.visible_tests)
    if st.mode is FeedbackMode.all:
        tests.update(st.problem.hidden_tests)
    return render_feedback(out.feedback, {**out.files, **tests})


@dataclass
class Restart:
    """Small models copy the code they are shown: start again from the task, hotter,
    told only what failed before."""

    config: LoopConfig

    def next_request(self, st: RunState, out: Outcome) -> Request | None:
        if not (out.stuck or st.copies):
            return None
        cfg = self.config
        st.temperature = max(st.temperature, cfg.resample_temperature)
        st.seed += 1009
        return restart_request(st, cfg)


def restart_request(st: RunState, cfg: LoopConfig) -> Request:
    """The task again, with what failed so far: the history, facts and failed lines."""
    prompt = Message(role="user", content=render(
        "restart", task_prompt=st.problem.messages[1].content,
        history=st.history[-cfg.history:], facts=st.facts[-MAX_AVOID:],
        avoid=list(st.failed.values())[-MAX_AVOID:]))
    return Request(prompt=prompt)


LEFT_OUT = "(body left out: write it)"


@dataclass
class RewriteFunction:
    """A function a failing test calls, still exactly as it was given (fix's files, a
    task's starting files) after a round: ask for it anew with its body left out, so that
    it cannot be handed back. Measured on the 0.5B in `fix`: every candidate of a round,
    greedy and at T=0.7 alike, answered with the user's file unchanged, and the restart
    request shows that same file again (`rewrite-body`)."""

    config: LoopConfig

    def next_request(self, st: RunState, out: Outcome) -> Request | None:
        fb = out.feedback
        if (not self.config.lever("rewrite-body") or not fb.built or not fb.failed_tests
                or any(d.kind in (Kind.compile, Kind.vet) for d in fb.diagnostics)):
            return None
        target = _unchanged_callee(st, out)
        if target is None:
            return None
        file, decl = target
        blank = without_body(decl, LEFT_OUT)
        if blank is None:
            return None
        # Once: a model that writes the given body again without seeing it gets the usual
        # repair next, with its code and the failure in view.
        st.rewritten.add(decl.name)
        files = {n: c for n, c in out.files.items() if n not in st.problem.support_files}
        files[file] = files[file].replace(decl.text, blank, 1)
        text, _ = _feedback_text(st, out)
        name = decl.name.split(".")[-1]
        goal = render("rewrite", brief=st.problem.brief or st.problem.goal, feedback=text,
                      facts=out.facts, name=name, file=file,
                      tests=len({t.name.split("/")[0] for t in fb.failed_tests}))
        prompt = Message(role="user", content=render(
            "task", package=st.problem.package, prompt=goal, files=files,
            support_files=st.problem.support_files, visible_tests=None))
        return Request(prompt=prompt, local=(file, decl.name, out.files),
                       event={"rewrite": decl.name})


def _unchanged_callee(st: RunState, out: Outcome) -> tuple[str, Decl] | None:
    """The function to ask for anew, among those still exactly as the model was given
    them and not asked for before: the one a failure points into (a panic's line), else
    one the failing tests' output names (`Pop() = 0, false`), else, when the answer
    changed nothing at all, the first the failing tests call (when it changed something,
    such as adding the method a task asks for, an unnamed given function is no suspect)."""
    given: dict[str, tuple[str, Decl]] = {}
    for file, src in out.files.items():
        if file in st.problem.support_files or file not in st.problem.files:
            continue
        before = {d.name: d.text for d in split_decls(st.problem.files[file])}
        for d in split_decls(src):
            if (d.kind == "func" and d.name and before.get(d.name) == d.text
                    and d.name not in st.rewritten):
                given.setdefault(d.name.split(".")[-1], (file, d))
    if not given:
        return None
    for d in out.feedback.diagnostics:
        if d.file not in out.files or not d.line:
            continue
        at = enclosing_decl(out.files[d.file], d.line)
        hit = given.get(at.name.split(".")[-1]) if at is not None and at.name else None
        if hit is not None and at is not None and hit[1].text == at.text:
            return hit
    failing = out.feedback.failed_tests
    said = [m[1] for t in failing for m in _CALL_RE.finditer(t.output)]
    if (hit := next((given[n] for n in said if n in given), None)) is not None:
        return hit
    editable = {n: c for n, c in out.files.items() if n not in st.problem.support_files}
    if any(st.problem.files.get(n) != c for n, c in editable.items()):
        return None
    tests = dict(st.problem.visible_tests)
    if st.mode is FeedbackMode.all:
        tests.update(st.problem.hidden_tests)
    names = {t.name.split("/")[0] for t in failing}
    called = [m[1] for src in tests.values() for d in split_decls(src)
              if d.kind == "func" and d.name in names for m in _CALL_RE.finditer(d.text)]
    return next((given[n] for n in called if n in given), None)


_CALL_RE = re.compile(r"\b([A-Za-z_]\w*)\s*\(")


@dataclass
class RepairFunction:
    """Every compile or vet problem sits in one function: ask for that function only, to
    be spliced back by name (a model cannot answer it with the old file)."""

    config: LoopConfig

    def next_request(self, st: RunState, out: Outcome) -> Request | None:
        target = self._target(st, out.feedback, out.files)
        if target is None:
            return None
        text, count = _feedback_text(st, out)
        prompt = render("local_repair", feedback=text, problem_count=count, facts=out.facts,
                        repeated=out.repeated, name=target[1])
        return Request(prompt=st.prompt,
                       follow=[answer_message(st, out.files), Message(role="user", content=prompt)],
                       local=(target[0], target[1], out.files), event={"local": target[1]})

    def _target(self, st: RunState, fb: CheckResult, files: dict[str, str]
                ) -> tuple[str, str] | None:
        if not self.config.local_repair or st.problem.multi_file:
            return None
        spots = {(d.file, d.line) for d in fb.diagnostics}
        if not spots or any(d.kind not in (Kind.compile, Kind.vet) for d in fb.diagnostics):
            return None
        names = set()
        for file, line in spots:
            if file not in files or not line or file in st.problem.support_files:
                return None
            decl = enclosing_decl(files[file], line)
            if decl is None or decl.kind != "func" or not decl.name:
                return None
            names.add((file, decl.name))
        return next(iter(names)) if len(names) == 1 else None


@dataclass
class RepairFile:
    """The default: the code as it stands, what the toolchain said, fix it."""

    config: LoopConfig

    def next_request(self, st: RunState, out: Outcome) -> Request | None:
        text, count = _feedback_text(st, out)
        prompt = render("repair", history=st.history[-self.config.history - 1:-1],
                        moved_aside=out.ext.dropped, applied_fixes=out.applied,
                        feedback=text, problem_count=count, multi_file=st.problem.multi_file,
                        facts=out.facts, repeated=out.repeated, trace=out.trace)
        return Request(prompt=st.prompt,
                       follow=[answer_message(st, out.files), Message(role="user", content=prompt)])



StrategyFactory = Callable[["LoopConfig"], list[Strategy]]


def default_strategies(config: LoopConfig) -> list[Strategy]:
    return [RewriteFunction(config), Restart(config), RepairFunction(config),
            RepairFile(config)]
