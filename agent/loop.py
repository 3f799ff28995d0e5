"""The repair loop: generate → extract → cheap fixes → check → feed back, until solved or spent."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from agent.extract import DEFAULT_FILE, Extraction, FormatError, extract_code
from agent.feedback import render_feedback, summary_line
from agent.fixes import FIX_NAMES, apply_fixes, gofmt_source
from agent.harness import VISIBLE_TEST, Suite, TaskHarness
from agent.models.base import Generation, Message, Model, ModelError, Sampling
from agent.prompts import render
from agent.task import TaskSpec
from agent.trajectory import FeedbackMode, RoundRecord, RunResult, TokenUsage, Trajectory
from tools.diagnostics import CheckResult, Kind

COMPILE_ONLY = "^$"  # a -run pattern matching no test: build and vet only


class Checker(Protocol):
    def check(self, solution: dict[str, str], suite: Suite = Suite.all, *,
              run: str | None = None) -> CheckResult: ...

    def close(self) -> None: ...


# (answer text, task, the current files) → the files the answer proposes. The default reads
# whole files from fenced blocks; `fix` plugs in search/replace edits for large files.
AnswerParser = Callable[[str, TaskSpec, dict[str, str]], Extraction]


class LoopConfig(BaseModel):
    max_rounds: int = Field(default=4, ge=1)
    feedback: FeedbackMode | None = None  # None: visible when the task has visible tests
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    seed: int = 0
    max_tokens: int | None = Field(default=None, ge=16)  # None: sized to the task
    repetition_penalty: float | None = 1.05
    fixes: list[str] = Field(default_factory=lambda: list(FIX_NAMES))
    on_stuck: Literal["resample", "stop"] = "resample"
    resample_temperature: float = 0.7
    # Greedy repair rounds tend to copy the code they are shown verbatim; a little
    # sampling breaks that while staying close to the model's best answer.
    repair_temperature: float = Field(default=0.3, ge=0.0)
    history: int = 3  # earlier rounds summarised in the repair prompt
    token_budget: int | None = None  # completion tokens for the whole task
    seconds_budget: float | None = None

    def mode_for(self, task: TaskSpec) -> FeedbackMode:
        if self.feedback is not None:
            return self.feedback
        return FeedbackMode.visible if task.visible_tests else FeedbackMode.all


def size_max_tokens(task: TaskSpec) -> int:
    """Room for a complete answer, but not for thousands of tokens of degenerate repetition."""
    chars = len(task.prompt) + sum(len(v) for v in task.files.values())
    return int(min(2048, max(768, chars / 3.5 * 1.5 + 512)))


FENCE_STOP = "\n```\n"
_TEST_STOPS = ("\nfunc Test", "\nfunc Example")


def _cut_before_code(gen: Generation, sampling: Sampling) -> bool:
    """A test stop fired before the answer declared anything but imports."""
    if gen.finish_reason != "stop" or not any(s in sampling.stop for s in _TEST_STOPS):
        return False
    if gen.text.count("```") != 1:  # a fence opened and never closed: cut mid-block
        return False
    body = re.sub(r"(?s)import\s*\(.*?\)|import\s+\S+", "", gen.text)
    return re.search(r"^\s*(func|type|var|const)\b", body, re.M) is None


def stop_sequences(task: TaskSpec, multi: bool) -> list[str]:
    """Where an answer is over: small models follow the code with tests, a main function
    and explanations; cutting there saves tokens and the degenerate repetition that
    often follows. The extractor copes with the unclosed fence this leaves."""
    # At most four: OpenAI-compatible servers often refuse more.
    stops = list(_TEST_STOPS)
    if task.package != "main":
        stops.append("\nfunc main(")
    if not multi:
        stops.append(FENCE_STOP)
    return stops


def _fence(files: dict[str, str]) -> str:
    if len(files) == 1:
        return f"```go\n{next(iter(files.values())).rstrip()}\n```"
    return "\n\n".join(f"```go\n// file: {n}\n{c.rstrip()}\n```" for n, c in files.items())


def _digest(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + " ".join(files[name].split()).encode() + b"\0")
    return h.hexdigest()


class RepairLoop:
    """Drives one model through rounds on one task at a time."""

    def __init__(
        self,
        model: Model,
        config: LoopConfig | None = None,
        *,
        checker_factory: Callable[[TaskSpec], Checker] | None = None,
        on_event: Callable[[dict], None] | None = None,
        answer_parser: AnswerParser | None = None,
    ) -> None:
        self.model = model
        self.answer_parser = answer_parser
        self.config = config or LoopConfig()
        self.checker_factory = checker_factory or (lambda t: TaskHarness(t))
        self.on_event = on_event

    # -- helpers -------------------------------------------------------------
    def _emit(self, traj: Trajectory, kind: str, **data: object) -> None:
        ev = traj.event(kind, **data)
        if self.on_event:
            self.on_event(ev)

    def _solution_files(self, task: TaskSpec, ext: Extraction) -> dict[str, str]:
        files = {n: task.with_package(c) for n, c in task.files.items()}
        got = dict(ext.files)
        # One unnamed block answers the one starter file, whatever the model called it.
        if len(task.files) == 1 and list(got) == [DEFAULT_FILE]:
            got = {next(iter(task.files)): got[DEFAULT_FILE]}
        files.update(got)
        return files

    def _gofmt(self, files: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        if "gofmt" not in self.config.fixes:
            return files, []
        out, done = {}, []
        for name, src in files.items():
            fmt = gofmt_source(src)
            out[name] = fmt if fmt is not None else src
            if fmt is not None and fmt != src:
                done.append(f"gofmt {name}")
        return out, done

    def _check_with_fixes(self, checker: Checker, files: dict[str, str], suite: Suite,
                          run: str | None, traj: Trajectory, rnd: int, spec: str
                          ) -> tuple[dict[str, str], CheckResult, CheckResult, list[str]]:
        """Check; while the compiler names import problems, fix them without a model call."""
        result = raw = checker.check(files, suite, run=run)
        self._emit(traj, "check", round=rnd, suite=suite.value, stage="raw",
                   result=result.public())
        applied: list[str] = []
        enabled = [f for f in self.config.fixes if f != "gofmt"]
        for _ in range(3):
            if result.passed or not enabled or not any(
                    d.kind is Kind.compile for d in result.diagnostics):
                break
            fixed, fixes = apply_fixes(files, result.diagnostics, enabled, spec=spec)
            if not fixes or fixed == files:
                break
            files = fixed
            applied += [f"{f.name} {f.file}: {f.detail}" for f in fixes]
            self._emit(traj, "fix", round=rnd, fixes=[f.model_dump() for f in fixes])
            result = checker.check(files, suite, run=run)
            self._emit(traj, "check", round=rnd, suite=suite.value, stage="fixed",
                       result=result.public())
        return files, result, raw, applied

    # -- the loop ------------------------------------------------------------
    def run(self, task: TaskSpec, traj: Trajectory | None = None) -> RunResult:
        cfg = self.config
        traj = traj or Trajectory()
        mode = cfg.mode_for(task)
        rounds_cap = min(cfg.max_rounds, task.budget.rounds or cfg.max_rounds)
        token_cap = min(x for x in (cfg.token_budget, task.budget.tokens, 10**12) if x)
        seconds_cap = min(x for x in (cfg.seconds_budget, task.budget.seconds, 1e12) if x)
        multi = len(task.files) > 1 or len(task.reference_files) > 1
        result = RunResult(task=task.id, solved=False, rounds=0, feedback=mode,
                           model=self.model.name, backend=self.model.backend,
                           temperature=cfg.temperature, seed=cfg.seed)
        usage = TokenUsage()
        start = time.monotonic()
        self._emit(traj, "start", task=task.id, mode=mode.value, config=cfg.model_dump(),
                   model=self.model.name, backend=self.model.backend)
        base = [
            Message(role="system", content=render("system", package=task.package,
                                                  multi_file=multi)),
            Message(role="user", content=render(
                "task", package=task.package, prompt=task.prompt, files=task.files,
                support_files=task.support_files,
                visible_tests=task.visible_tests)),
        ]
        task_msg = base[1]  # replaced by a restart prompt when the loop gets stuck
        follow: list[Message] = []
        history: list[str] = []
        seen: set[str] = set()
        last_sig: str | None = None
        temperature = cfg.temperature
        seed = cfg.seed
        max_tokens = cfg.max_tokens or size_max_tokens(task)
        stop = stop_sequences(task, multi)
        visible_src = {VISIBLE_TEST: task.visible_test_file()} if task.visible_tests else {}
        checker = self.checker_factory(task)
        current = {n: task.with_package(c) for n, c in task.files.items()}
        self.model.start(task)
        try:
            for rnd in range(1, rounds_cap + 1):
                if usage.completion >= token_cap:
                    result.stop_reason = "token budget spent"
                    break
                if time.monotonic() - start >= seconds_cap:
                    result.stop_reason = "time budget spent"
                    break
                messages = [base[0], task_msg, *follow]
                if rnd > 1 and temperature < cfg.repair_temperature:
                    temperature = cfg.repair_temperature
                    seed += 1
                sampling = Sampling(temperature=temperature, top_p=cfg.top_p if temperature
                                    else 1.0, seed=seed, max_tokens=max_tokens, stop=stop,
                                    repetition_penalty=cfg.repetition_penalty)
                self._emit(traj, "request", round=rnd, messages=[m.model_dump() for m in
                                                                  messages],
                           sampling=sampling.model_dump())
                try:
                    gen: Generation = self.model.generate(messages, sampling)
                    if _cut_before_code(gen, sampling):
                        # The model opened with a test and the stop sequence ended it
                        # before any code: ask again in the same round, letting it run on.
                        self._emit(traj, "retry_without_stops", round=rnd, text=gen.text)
                        usage.add(gen.prompt_tokens, gen.cached_tokens,
                                  gen.completion_tokens)
                        sampling = sampling.model_copy(
                            update={"stop": [] if multi else [FENCE_STOP]})
                        gen = self.model.generate(messages, sampling)
                except ModelError as exc:
                    result.error = str(exc)
                    result.stop_reason = "model error"
                    self._emit(traj, "error", round=rnd, message=str(exc))
                    break
                usage.add(gen.prompt_tokens, gen.cached_tokens, gen.completion_tokens)
                result.rounds = rnd
                rec = RoundRecord(round=rnd, temperature=temperature,
                                  completion_tokens=gen.completion_tokens,
                                  prompt_tokens=gen.prompt_tokens,
                                  cached_tokens=gen.cached_tokens, model_seconds=gen.seconds)
                result.rounds_detail.append(rec)
                self._emit(traj, "response", round=rnd, text=gen.text,
                           finish_reason=gen.finish_reason,
                           tokens={"prompt": gen.prompt_tokens, "cached": gen.cached_tokens,
                                   "completion": gen.completion_tokens},
                           seconds=round(gen.seconds, 3),
                           tokens_per_second=round(gen.tokens_per_second, 1))
                try:
                    if self.answer_parser is not None:
                        ext = self.answer_parser(gen.text, task, current)
                    else:
                        ext = extract_code(gen.text, package=task.package,
                                           protected=frozenset(task.support_files))
                except FormatError as exc:
                    rec.format_error = True
                    rec.failure = "format"
                    rec.summary = f"format error: {exc}"
                    if result.first_failure is None:
                        result.first_failure = "format"
                    history.append(f"round {rnd}: {rec.summary}")
                    follow = [Message(role="assistant", content=gen.text[-1500:]),
                              Message(role="user", content=render(
                                  "format_error", reason=str(exc), package=task.package))]
                    self._emit(traj, "format_error", round=rnd, message=str(exc))
                    continue
                files = self._solution_files(task, ext)
                current = files
                files, fmt_done = self._gofmt(files)
                rec.dropped = ext.dropped
                self._emit(traj, "extract", round=rnd, files=files, dropped=ext.dropped,
                           notes=ext.notes, fixes=fmt_done)

                suite = Suite.all if mode is FeedbackMode.all else Suite.visible
                run = COMPILE_ONLY if mode is FeedbackMode.compile else None
                t0 = time.monotonic()
                files, fb, raw, applied = self._check_with_fixes(
                    checker, files, suite, run, traj, rnd, task.prompt)
                rec.fixes = fmt_done + applied
                rec.raw_passed = raw.passed
                rec.feedback_passed = fb.passed
                verdict = fb
                if fb.passed and (suite is not Suite.all or run is not None):
                    verdict = checker.check(files, Suite.all)
                    self._emit(traj, "check", round=rnd, suite="all", stage="verdict",
                               result=verdict.public())
                rec.check_seconds = time.monotonic() - t0
                rec.passed = verdict.passed
                result.files = files
                if rnd == 1:
                    result.raw_solved_round1 = raw.passed and verdict.passed and not applied
                if result.first_failure is None and not verdict.passed:
                    # The raw answer's first problem; when only hidden tests failed, theirs.
                    kind = raw.first_failure_kind() or verdict.first_failure_kind()
                    result.first_failure = kind.value if kind else "test-failure"
                if verdict.passed:
                    result.solved = True
                    result.solved_at_round = rnd
                    result.stop_reason = "tests pass"
                    rec.summary = "passed"
                    break
                if fb.passed:
                    # The model has nothing left to act on: its feedback is all green.
                    result.stop_reason = ("builds, but tests fail" if run else
                                          "visible tests pass, hidden tests fail")
                    rec.failure = (verdict.first_failure_kind() or Kind.test_failure).value
                    rec.summary = result.stop_reason
                    break
                rec.failure = (fb.first_failure_kind() or Kind.test_failure).value
                rec.summary = summary_line(fb)
                text, count = render_feedback(fb, {**files, **visible_src})
                sig = fb.signature()
                digest = _digest(files)
                stuck = sig == last_sig or digest in seen
                last_sig = sig
                seen.add(digest)
                history.append(f"round {rnd}: {rec.summary}")
                if stuck:
                    self._emit(traj, "stuck", round=rnd, action=cfg.on_stuck)
                    if cfg.on_stuck == "stop":
                        result.stop_reason = "stuck: same failure again"
                        break
                    # Small models copy the code they are shown: a stuck conversation
                    # restarts from the task, hotter, told only what failed before.
                    temperature = max(temperature, cfg.resample_temperature)
                    seed += 1009
                    task_msg = Message(role="user", content=render(
                        "restart", task_prompt=base[1].content,
                        history=history[-cfg.history:]))
                    follow = []
                    self._emit(traj, "feedback", round=rnd, text=task_msg.content)
                    continue
                prompt = render("repair", history=history[-cfg.history - 1:-1],
                                moved_aside=ext.dropped, applied_fixes=applied,
                                feedback=text, problem_count=count, multi_file=multi)
                follow = [Message(role="assistant", content=_fence(
                    {n: c for n, c in files.items() if n not in task.support_files})),
                    Message(role="user", content=prompt)]
                self._emit(traj, "feedback", round=rnd, text=prompt)
            else:
                result.stop_reason = result.stop_reason or "round budget spent"
        finally:
            checker.close()
        result.tokens = usage
        result.seconds = time.monotonic() - start
        self._emit(traj, "result", result=result.public())
        return result
