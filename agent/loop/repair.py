"""The repair loop: generate → extract → cheap fixes → check → feed back, until solved or spent.

`RepairLoop(model, config, checker_factory=…, parser=…).run(problem)` is the one path
`solve`, `bench` and `fix` take. Each round ends the run by raising `RunEnded` with a typed
`StopReason`, or leaves the next request to the strategies (agent.loop.strategy).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NoReturn

from agent.golang import mutants, pitfalls, probe, trace, values
from agent.golang.extract import DEFAULT_FILE, Extraction, FormatError, extract_code
from agent.golang.feedback import summary_line
from agent.golang.fixes import CERTAIN_FIXES, FIX_KINDS, apply_fixes
from agent.golang.grounding import Grounder
from agent.golang.panics import explain as explain_panics
from agent.golang.signatures import mismatches
from agent.golang.source import splice_decls, split_decls
from agent.golang.typefacts import type_facts
from agent.loop.candidates import (
    Candidate,
    Held,
    batch_size,
    candidate_samplings,
    generate_batch,
)
from agent.loop.checker import Checker, Suite
from agent.loop.config import LoopConfig
from agent.loop.problem import Problem
from agent.loop.prompts import render
from agent.loop.stop import RunEnded, StopReason
from agent.loop.strategy import (
    MAX_AVOID,
    FailedLine,
    Outcome,
    Request,
    Restart,
    Strategy,
    answer_message,
    default_strategies,
    restart_request,
)
from agent.loop.trajectory import FeedbackMode, RoundRecord, RunResult, TokenUsage, Trajectory
from agent.models.base import Generation, Message, Model, ModelError, Sampling, bind
from tools.diagnostics import CheckResult, Kind
from tools.diagnostics import Outcome as TestOutcome
from tools.gofmt import gofmt_source

MAX_PROBE_LINES = 8  # calls that panicked or hung, shown after a probe
MUTANT_SECONDS = 60.0  # the most one answer's one-token search may take
MUTANT_STEPS = 2  # changes that may be chained, each making more tests pass
COMPILE_ONLY = "^$"  # a -run pattern matching no test: build and vet only
MISFIT_CHARS = 400  # a dropped one-token change longer than this is not quoted
# What a restart after a hidden-test failure is told: the fact, and the usual suspects.
HIDDEN_FAIL_NOTE = ("the code passed the tests shown but failed other tests of the task; "
                    "think about edge cases (empty or one-element input, zero, negative "
                    "and very large values, bounds, repeated elements, non-ASCII text)")

# (answer text, problem, the current files) → the files the answer proposes. The default
# reads whole files from fenced blocks; `fix` plugs in search/replace edits for large files.
AnswerParser = Callable[[str, Problem, dict[str, str]], Extraction]


def _task_checker(problem: Problem) -> Checker:
    from agent.tasks.harness import TaskHarness

    if problem.task is None:
        raise ValueError(f"{problem.id}: no checker given and no task to check against")
    return TaskHarness(problem.task)


class RepairLoop:
    """Drives one model through rounds on one problem at a time."""

    def __init__(
        self,
        model: Model,
        config: LoopConfig | None = None,
        *,
        checker_factory: Callable[[Problem], Checker] | None = None,
        parser: AnswerParser | None = None,
        on_event: Callable[[dict], None] | None = None,
        strategies: list[Strategy] | None = None,
    ) -> None:
        self.model = model
        self.config = config or LoopConfig()
        self.checker_factory = checker_factory or _task_checker
        self.parser = parser
        self.on_event = on_event
        self.strategies = strategies or default_strategies(self.config)
        self.grounder: Grounder | None = None

    # -- the loop ------------------------------------------------------------
    def run(self, problem: Problem, traj: Trajectory | None = None) -> RunResult:
        st = self._begin(problem, traj or Trajectory())
        try:
            self._search_given(st)
            for rnd in range(1, st.rounds_cap + 1):
                st.check_budget()
                if self.config.candidates > 1:
                    self._candidates_round(st, rnd)
                    continue
                gen = self._generate(st, rnd)
                ext = self._parse(st, rnd, gen)
                if ext is not None:
                    self._judge(st, rnd, ext)
            raise RunEnded(StopReason.rounds_spent)
        except RunEnded as end:
            st.result.stop_reason = end.reason
        finally:
            st.checker.close()
        st.result.tokens = st.usage
        st.result.seconds = time.monotonic() - st.start
        self._emit(st.traj, "result", result=st.result.public())
        return st.result

    # -- one round -----------------------------------------------------------
    def _begin(self, problem: Problem, traj: Trajectory) -> RunState:
        cfg = self.config
        mode = cfg.feedback or (FeedbackMode.visible if problem.visible_tests
                                else FeedbackMode.all)
        result = RunResult(task=problem.id, solved=False, rounds=0, feedback=mode,
                           model=self.model.name, backend=self.model.backend,
                           temperature=cfg.temperature, seed=cfg.seed)
        self._emit(traj, "start", task=problem.id, mode=mode.value, config=cfg.model_dump(),
                   model=self.model.name, backend=self.model.backend)
        budget = problem.budget
        return RunState(
            problem=problem, model=bind(self.model, problem), traj=traj, result=result,
            mode=mode,
            prompt=problem.messages[1],
            rounds_cap=min(cfg.max_rounds, budget.rounds or cfg.max_rounds),
            token_cap=min(x for x in (cfg.token_budget, budget.tokens, 10**12) if x),
            seconds_cap=min(x for x in (cfg.seconds_budget, budget.seconds, 1e12) if x),
            temperature=cfg.temperature, seed=cfg.seed,
            sampling=Sampling(max_tokens=cfg.max_tokens or size_max_tokens(problem),
                              stop=stop_sequences(problem),
                              repetition_penalty=cfg.repetition_penalty),
            checker=self.checker_factory(problem),
            current=dict(problem.files),
            taken=declared_names([*problem.visible_tests.values(),
                                  *problem.support_files.values()]),
        )

    def _request(self, st: RunState, rnd: int) -> tuple[list[Message], Sampling]:
        """This round's conversation and sampling (repair rounds sample a little)."""
        cfg = self.config
        messages = [st.problem.messages[0], st.prompt, *st.follow]
        if rnd > 1 and st.temperature < cfg.repair_temperature:
            st.temperature = cfg.repair_temperature
            st.seed += 1
        sampling = st.sampling.model_copy(update={
            "temperature": st.temperature, "seed": st.seed,
            "top_p": cfg.top_p if st.temperature else 1.0})
        return messages, sampling

    def _generate(self, st: RunState, rnd: int) -> Generation:
        """One model answer for this round; a model that fails ends the run."""
        messages, sampling = self._request(st, rnd)
        self._emit(st.traj, "request", round=rnd, messages=[m.model_dump() for m in messages],
                   sampling=sampling.model_dump())
        try:
            gen, spent = self._ask(st, rnd, messages, sampling, st.traj)
        except ModelError as exc:
            self._model_failed(st, rnd, exc)
        st.usage.add(gen.prompt_tokens, gen.cached_tokens, gen.completion_tokens)
        st.result.rounds = rnd
        st.rec = RoundRecord(round=rnd, temperature=st.temperature)
        _add_cost(st.rec, gen, spent)
        st.result.rounds_detail.append(st.rec)
        self._emit_response(st.traj, rnd, gen)
        return gen

    def _ask(self, st: RunState, rnd: int, messages: list[Message], sampling: Sampling,
             traj: Trajectory | Held, first: Generation | None = None
             ) -> tuple[Generation, Generation]:
        """An answer (`first`, if already generated) and what a retry of it cost: a model
        that opened with a test and was stopped before any code is asked again, in the
        same round, and let run on. Raises ModelError."""
        spent = Generation(text="")
        gen = first if first is not None else st.model.generate(messages, sampling)
        if rnd > 1 and self.config.lever("code-first") and _cut_before_code(
                gen, sampling, st.taken):
            # In a repair round an answer that opens with a test is the test the feedback
            # just quoted, and let run on the model writes the whole test file (the 0.5B
            # did so in most of the edit suite's failed rounds). Another sample that keeps
            # the stops costs a few tokens and usually starts with code.
            self._emit(traj, "resample_after_test", round=rnd, text=gen.text)
            st.usage.add(gen.prompt_tokens, gen.cached_tokens, gen.completion_tokens)
            spent = gen
            sampling = sampling.model_copy(update={
                "temperature": max(sampling.temperature, self.config.resample_temperature),
                "top_p": self.config.top_p, "seed": sampling.seed + 7919})
            gen = st.model.generate(messages, sampling)
        if _cut_before_code(gen, sampling, st.taken):
            self._emit(traj, "retry_without_stops", round=rnd, text=gen.text)
            st.usage.add(gen.prompt_tokens, gen.cached_tokens, gen.completion_tokens)
            spent = _plus(spent, gen)
            sampling = sampling.model_copy(
                update={"stop": [] if st.problem.multi_file else [FENCE_STOP]})
            gen = st.model.generate(messages, sampling)
        return gen, spent

    def _model_failed(self, st: RunState, rnd: int, exc: ModelError) -> NoReturn:
        st.result.error = str(exc)
        self._emit(st.traj, "error", round=rnd, message=str(exc))
        raise RunEnded(StopReason.model_error) from None

    def _emit_response(self, traj: Trajectory | Held, rnd: int, gen: Generation) -> None:
        self._emit(traj, "response", round=rnd, text=gen.text,
                   finish_reason=gen.finish_reason,
                   tokens={"prompt": gen.prompt_tokens, "cached": gen.cached_tokens,
                           "completion": gen.completion_tokens,
                           "drafted": gen.drafted_tokens, "accepted": gen.accepted_tokens},
                   seconds=round(gen.seconds, 3),
                   tokens_per_second=round(gen.tokens_per_second, 1))

    def _parse(self, st: RunState, rnd: int, gen: Generation) -> Extraction | None:
        """The files the answer proposes; a format error is fed back (None) instead."""
        got = self._extract(st, gen)
        if isinstance(got, FormatError):
            reason = self._format_error(st, rnd, gen, got)
            self._emit(st.traj, "format_error", round=rnd, message=reason)
            return None
        return got

    def _extract(self, st: RunState, gen: Generation) -> Extraction | FormatError:
        try:
            if self.parser is not None:
                return self.parser(gen.text, st.problem, st.current)
            return extract_code(gen.text, package=st.problem.package,
                                protected=frozenset(st.problem.support_files), taken=st.taken)
        except FormatError as exc:
            return exc

    def _format_reason(self, gen: Generation, exc: FormatError) -> str:
        reason = str(exc)
        if gen.finish_reason == "length":
            reason += (f" (the answer was cut off at the {gen.completion_tokens}-token limit"
                       " before its code was complete; write a shorter, complete answer)")
        return reason

    def _format_error(self, st: RunState, rnd: int, gen: Generation, exc: FormatError) -> str:
        """The round's answer had no usable code: tell the model why (the reason returned)."""
        rec = st.rec
        reason = self._format_reason(gen, exc)
        rec.format_error = True
        rec.failure = "format"
        rec.summary = f"format error: {exc}"
        if st.result.first_failure is None:
            st.result.first_failure = "format"
        st.history.append(f"round {rnd}: {rec.summary}")
        st.follow = [Message(role="assistant", content=gen.text[-1500:]),
                     Message(role="user", content=render(
                         "format_error", reason=reason, package=st.problem.package,
                         hint=st.problem.format_hint))]
        return reason

    def _judge(self, st: RunState, rnd: int, ext: Extraction) -> None:
        """Check the answer (fixing what needs no model); end the run, or set up the next."""
        ext, proposed = self._proposal(st, rnd, ext, st.traj)
        self._conclude(st, rnd, self._evaluate(st, rnd, ext, proposed, st.traj))

    def _proposal(self, st: RunState, rnd: int, ext: Extraction, traj: Trajectory | Held
                  ) -> tuple[Extraction, dict[str, str]]:
        """The answer as whole files: a local answer spliced back, the rest as they were."""
        if st.local is not None:
            ext = self._splice(st, rnd, ext, traj)
        return ext, self._solution_files(st.problem, ext)

    def _evaluate(self, st: RunState, rnd: int, ext: Extraction, proposed: dict[str, str],
                  traj: Trajectory | Held) -> Judged:
        """gofmt, check, the deterministic fixes, and the verdict on every test."""
        problem = st.problem
        files, fmt_done = self._gofmt(proposed)
        self._emit(traj, "extract", round=rnd, files=files, dropped=ext.dropped,
                   notes=ext.notes, fixes=fmt_done)

        suite = Suite.all if st.mode is FeedbackMode.all else Suite.visible
        run = COMPILE_ONLY if st.mode is FeedbackMode.compile else None
        t0 = time.monotonic()
        files, fb, raw, applied = self._check_with_fixes(
            st.checker, files, suite, run, traj, rnd, problem.goal)
        verdict = fb
        if fb.passed and (suite is not Suite.all or run is not None):
            verdict = st.checker.check(files, Suite.all)
            self._emit(traj, "check", round=rnd, suite="all", stage="verdict",
                       result=verdict.public())
        return Judged(ext=ext, proposed=proposed, files=files, raw=raw, fb=fb,
                      verdict=verdict, fixes=fmt_done + applied, applied=applied, run=run,
                      check_seconds=time.monotonic() - t0)

    def _conclude(self, st: RunState, rnd: int, j: Judged) -> None:
        """End the run on a verdict, or learn from the failure and ask again."""
        rec, result = st.rec, st.result
        if result.first_failure is None and not j.verdict.passed:
            # The raw answer's first problem; when only hidden tests failed, theirs.
            kind = j.raw.first_failure_kind() or j.verdict.first_failure_kind()
            result.first_failure = kind.value if kind else "test-failure"
        if self.config.lever("one-token") and not j.fb.passed:
            changed = self._one_token(st, rnd, j)
            if changed is not j and not changed.verdict.passed:
                # It passes the tests shown and fails the others: on one example, the
                # search finds changes fitted to it (`% 24` → `% 23`, a condition turned
                # round). The model's own code and its real failure say more than
                # "other tests fail", so the change is dropped.
                self._emit(st.traj, "one_token_dropped", round=rnd, change=st.rec.one_token)
                st.rec.one_token = None
                st.misfits = [_misfit(m, j.fb) for m in changed.changes
                              if len(m.before) + len(m.after) <= MISFIT_CHARS]
            else:
                j = changed
        st.current = j.proposed
        rec.dropped = j.ext.dropped
        rec.fixes = j.fixes
        rec.raw_passed = j.raw.passed
        rec.feedback_passed = j.fb.passed
        rec.check_seconds = j.check_seconds + rec.one_token_seconds
        rec.passed = j.verdict.passed
        result.files = j.files
        raw, fb, verdict = j.raw, j.fb, j.verdict
        if rnd == 1:
            result.raw_solved_round1 = raw.passed and verdict.passed and not j.applied
        if verdict.passed:
            result.solved = True
            result.solved_at_round = rnd
            rec.summary = "passed"
            raise RunEnded(StopReason.solved)
        if fb.passed:
            # The model has nothing left to act on: its feedback is all green.
            reason = StopReason.tests_fail if j.run else StopReason.hidden_tests_fail
            rec.failure = (verdict.first_failure_kind() or Kind.test_failure).value
            rec.summary = reason.value
            if rnd >= st.rounds_cap or not self.config.lever("hidden-resample"):
                raise RunEnded(reason)
            st.history.append(f"round {rnd}: {HIDDEN_FAIL_NOTE}")
            if (req := self._hidden_fail_request(st, rnd, j)) is not None:
                self._take(st, rnd, req)
                return
            # Asking it to repair code whose every visible check passes gets that code
            # back; a fresh sample, told only that other tests fail, may not fail them.
            self._emit(st.traj, "hidden_fail_resample", round=rnd)
            out = Outcome(rnd=rnd, ext=j.ext, files=j.files, feedback=fb, applied=j.applied,
                          facts=[], repeated=[], stuck=True)
            req = Restart(self.config).next_request(st, out)
            assert req is not None  # a stuck outcome always restarts
            self._take(st, rnd, req)
            return
        rec.failure = (fb.first_failure_kind() or Kind.test_failure).value
        rec.summary = summary_line(fb)
        st.history.append(f"round {rnd}: {rec.summary}")
        self._next(st, rnd, j.ext, j.files, fb, j.applied)

    def _one_token(self, st: RunState, rnd: int, j: Judged) -> Judged:
        """Code that builds and fails tests, tried with each small change the toolchain
        can name: a guard its panic calls for, then one-token changes to the lines the
        tests ran (`<` → `<=`, `n` → `n - 1`, `%v` → `%w`, …). The first change (or two
        chained) with which every test the loop may see passes is kept, as a fix is.
        Repair runs only (single shot stays one answer), once for each distinct code."""
        if st.rounds_cap < 2 or j.run is not None or not self._searchable(st, j.files, j.fb):
            return j
        found = self._search(st, rnd, j.files, j.fb)
        if found is None:
            return j
        files, fb, verdict, steps = found
        fixes = [f"one-token {m.text()}" for m in steps]
        return dataclasses.replace(j, files=files, fb=fb, verdict=verdict, changes=steps,
                                   fixes=[*j.fixes, *fixes], applied=[*j.applied, *fixes])

    def _search_given(self, st: RunState) -> None:
        """`fix`: the user's code searched as it stands, before the model is asked. A slip
        the toolchain can name is found in seconds, with no answer to wait for and no
        chance of a model rewriting what worked; what it finds ends the run as round 0."""
        given = st.problem.given
        if (given is None or not self.config.lever("one-token") or st.rounds_cap < 2
                or not self._searchable(st, st.current, given)):
            return
        found = self._search(st, 0, dict(st.current), given)
        if found is None or not found[2].passed:
            return
        files, _, _, steps = found
        fixes = [f"one-token {m.text()}" for m in steps]
        rec = st.rec  # round 0's: no answer, only the search
        rec.passed = rec.feedback_passed = True
        rec.fixes, rec.summary, rec.check_seconds = fixes, "passed", rec.one_token_seconds
        st.result.rounds_detail.append(rec)
        st.result.files = files
        st.result.solved = True
        st.result.solved_at_round = 0
        raise RunEnded(StopReason.solved)

    def _searchable(self, st: RunState, files: dict[str, str], fb: CheckResult) -> bool:
        """Code that builds and fails tests, not searched before (a copy is not again)."""
        if (st.mode is FeedbackMode.compile or not fb.built or not fb.failed_tests
                or any(d.kind in (Kind.compile, Kind.vet, Kind.limit)
                       for d in fb.diagnostics)):
            return False
        digest = _digest(files)
        if digest in st.mutated:
            return False
        st.mutated.add(digest)
        return True

    def _search(self, st: RunState, rnd: int, files: dict[str, str], fb: CheckResult
                ) -> tuple[dict[str, str], CheckResult, CheckResult,
                           tuple[mutants.Mutant, ...]] | None:
        """The one-token search on `files`: the files it passes with, their feedback
        check and verdict, and the changes made; None when no change passes."""
        suite = Suite.all if st.mode is FeedbackMode.all else Suite.visible
        t0 = time.monotonic()

        def late() -> bool:
            return time.monotonic() - t0 > MUTANT_SECONDS or st.spent() == "time"

        # Two slips need two changes: a change that makes more tests pass and none fail
        # is a step, and the search goes on from it; steps are kept only when they end
        # in a pass, so nothing but a passing answer is ever kept.
        steps: list[tuple[mutants.Mutant, CheckResult]] = []
        base, now, tried, candidates = files, fb, 0, 0
        while True:
            found = self._mutants(st, base, now, suite)
            candidates += len(found)
            passed = better = None
            for m in found:
                if late():
                    break
                tried += 1
                res = st.checker.check({**base, m.file: m.source}, suite)
                if res.passed:
                    passed = m, res
                    break
                if better is None and _gains(res, now):
                    better = m, res
            if passed is not None:
                steps.append(passed)
                break
            if better is None or len(steps) + 1 >= MUTANT_STEPS or late():
                steps = []
                break
            steps.append(better)
            base, now = {**base, better[0].file: better[0].source}, better[1]
        seconds = time.monotonic() - t0
        st.rec.one_token_seconds += seconds  # counted in the round's check seconds
        said = "; ".join(m.text() for m, _ in steps) or None
        self._emit(st.traj, "one_token", round=rnd, candidates=candidates, tried=tried,
                   kept=said, seconds=round(seconds, 3))
        if not steps:
            return None
        files = dict(files)
        for m, _ in steps:
            files[m.file] = m.source
        fb = steps[-1][1]
        verdict = fb
        if suite is not Suite.all:
            verdict = st.checker.check(files, Suite.all)
            self._emit(st.traj, "check", round=rnd, suite="all", stage="verdict",
                       result=verdict.public())
        st.rec.one_token = said
        return files, fb, verdict, tuple(m for m, _ in steps)

    def _mutants(self, st: RunState, files: dict[str, str], fb: CheckResult,
                 suite: Suite) -> list[mutants.Mutant]:
        """The changes to try on `files`: the guards its panics call for, then one-token
        changes to the lines the first failing test ran (a test that panicked writes no
        profile, so then the functions the diagnostics point into)."""
        own = {n: c for n, c in files.items()
               if n not in st.problem.support_files and n not in st.problem.visible_tests}
        test = fb.failed_tests[0].name.split("/")[0]
        cover = st.checker.check(files, suite, run=f"^{re.escape(test)}$", cover=True)
        spots = [(d.file, d.line) for d in fb.diagnostics if d.file and d.line]
        lines = trace.ran_lines(own, cover.coverage) or trace.enclosing_lines(own, spots)
        # A panic the test recovered from reads as its failure message, with no place.
        panics = [(d.file if d.kind is Kind.panic else None, d.line, d.message)
                  for d in fb.diagnostics]
        return [*mutants.guards(own, lines, panics), *mutants.mutants(own, lines)]

    def _hidden_fail_request(self, st: RunState, rnd: int, j: Judged) -> Request | None:
        """After the examples pass and other tests fail, what can be learned without the
        hidden tests: calls on edge inputs that panic or hang (`probe-edges`) and lines
        that break a Go rule such code often breaks (`go-pitfalls`). The next round
        shows them with the code; later fresh samples get them as facts. None when
        neither finds anything, or the model is known to copy: the task afresh."""
        problem = st.problem
        if problem.task is None:
            return None
        faults = self._probe_faults(st, rnd, j) if self.config.lever("probe-edges") else []
        found = (pitfalls.find(j.files, goal=problem.goal) if self.config.lever("go-pitfalls")
                 else [])
        if found:
            self._emit(st.traj, "pitfalls", round=rnd, lines=[p.text() for p in found])
        facts = [f"An earlier answer: {f}" for f in faults[:2]] + [
            f"Go rule: {p.why}" for p in found]
        for fact in facts:  # a fresh sample later may make the same mistake
            if fact in st.facts:
                st.facts.remove(fact)
            st.facts.append(fact)
        if not facts or st.copies:
            return None
        st.seen.update({_digest(j.files), _digest(j.proposed)})  # a copy of it is a copy
        prompt = render("hidden_fail", faults=faults[:MAX_PROBE_LINES],
                        pitfalls=[p.text() for p in found], multi_file=problem.multi_file)
        return Request(prompt=st.prompt,
                       follow=[answer_message(st, j.files), Message(role="user", content=prompt)],
                       event={"faults": len(faults), "pitfalls": len(found)})

    def _probe_faults(self, st: RunState, rnd: int, j: Judged) -> list[str]:
        """The task's functions called on edge inputs next to the example's: the calls
        that panicked or hung."""
        problem = st.problem
        pinned = "\n".join([problem.goal, *problem.files.values()])
        pr = probe.build(problem.package, pinned, problem.visible_tests, j.files)
        if pr is None:
            return []
        res = st.checker.check({**j.files, pr.file: pr.source}, Suite.visible,
                               run=f"^{pr.test}$")
        st.rec.check_seconds += res.seconds
        found = probe.read(pr, res)
        # Only faults: asked what the calls should return, the 1.5B got 9 of 20 GCD and
        # Caesar values wrong (README), so a value is no evidence against the code.
        faults = [f.line() for f in found if f.kind != "value"]
        self._emit(st.traj, "probe", round=rnd, calls=[c.text for c in pr.calls],
                   returned=[f.line() for f in found], faults=faults, built=res.built,
                   seconds=round(res.seconds, 3))
        return faults

    def _candidates_round(self, st: RunState, rnd: int) -> None:
        """Several answers to one request, each distinct one checked as a single answer
        would be; the best becomes the round's answer. Stops asking once one passes or
        the budget is spent; every answer's cost counts."""
        messages, base = self._request(st, rnd)
        samplings = candidate_samplings(base, self.config, rnd)
        self._emit(st.traj, "request", round=rnd, messages=[m.model_dump() for m in messages],
                   sampling=base.model_dump(), candidates=len(samplings))
        st.rec = RoundRecord(round=rnd, temperature=st.temperature)
        tried: list[Candidate] = []
        checked: dict[str, Candidate] = {}
        cut = None
        fresh: list[Message] | None = None  # the task asked afresh, once a candidate copied
        while len(tried) < len(samplings):
            if tried and (cut := st.spent()) is not None:
                break
            n = batch_size(st.model, len(samplings) - len(tried),
                           st.token_cap - st.usage.completion, base.max_tokens)
            batch = samplings[len(tried):len(tried) + n]
            asking = fresh or messages
            asked: list[Candidate] = []
            try:
                for sampling, first in zip(batch, generate_batch(st.model, asking, batch),
                                           strict=True):
                    held = Held()
                    if fresh is not None:  # the trajectory shows what this one was asked
                        self._emit(held, "request", round=rnd, sampling=sampling.model_dump(),
                                   messages=[m.model_dump() for m in fresh])
                    gen, spent = self._ask(st, rnd, asking, sampling, held, first)
                    if not tried and not asked:
                        st.result.rounds = rnd
                        st.result.rounds_detail.append(st.rec)
                    st.usage.add(gen.prompt_tokens, gen.cached_tokens, gen.completion_tokens)
                    _add_cost(st.rec, gen, spent)
                    self._emit_response(held, rnd, gen)
                    asked.append(Candidate(
                        index=len(tried) + len(asked), sampling=sampling, gen=gen, held=held,
                        tokens=gen.completion_tokens + spent.completion_tokens,
                        fresh=fresh is not None))
            except ModelError as exc:
                st.rec.candidates = len(tried) + len(asked)  # answered, and paid for
                self._model_failed(st, rnd, exc)
            for c in asked:
                tried.append(c)
                if cut is None:  # a candidate of this batch passed: the rest go unchecked
                    self._candidate(st, rnd, c, checked)
                    if c.judged is not None and c.judged.verdict.passed:
                        cut = "passed"
                    elif fresh is None and len(tried) < len(samplings) and (
                            (copied := self._copied(st, rnd, c)) or self._same_failure(st, rnd, c)):
                        fresh, samplings = self._ask_afresh(st, rnd, c, samplings, copied)
            if cut == "passed":
                break
        best = max(tried, key=Candidate.rank)
        for kind, data in best.held.events:
            self._emit(st.traj, kind, **data)
        st.rec.temperature = best.sampling.temperature
        st.rec.candidates, st.rec.chosen = len(tried), best.index
        st.rec.distinct = len({c.digest for c in tried})
        self._emit(st.traj, "candidates", round=rnd, chosen=best.index,
                   distinct=st.rec.distinct, stopped=cut,
                   candidates=[c.summary() for c in tried])
        if best.judged is None:
            assert isinstance(best.format_error, FormatError)
            self._format_error(st, rnd, best.gen, best.format_error)
            return
        seconds = sum(c.judged.check_seconds for c in checked.values() if c.judged)
        self._conclude(st, rnd, dataclasses.replace(best.judged, check_seconds=seconds))

    def _copied(self, st: RunState, rnd: int, c: Candidate) -> bool:
        """A repair candidate that handed back code already written (`switch-on-copy`),
        also when only what the fixes change differs: the 1.5B folded the fixes it was
        told about into a copy, and every candidate of the round wrote that copy."""
        return self.config.lever("switch-on-copy") and _is_copy(st, rnd, c)

    def _same_failure(self, st: RunState, rnd: int, c: Candidate) -> bool:
        """A repair candidate that fails exactly as the last round did, the same tests
        with the same messages (`switch-on-same`): in the 1.5B's logic runs, 17 of 20
        rounds after a trace copied or failed that way, while its wins came from fresh
        samples. A copy is `switch-on-copy`'s, so that each lever can be measured alone."""
        return (rnd > 1 and bool(st.follow) and self.config.lever("switch-on-same")
                and c.judged is not None and not c.judged.verdict.passed
                and st.last_sig is not None and c.judged.fb.signature() == st.last_sig
                and not _is_copy(st, rnd, c))

    def _ask_afresh(self, st: RunState, rnd: int, c: Candidate, samplings: list[Sampling],
                    copied: bool = True) -> tuple[list[Message], list[Sampling]]:
        """The rest of the round's candidates sample from the task, told what failed (the
        restart request), instead of asking again for a repair: measured on the 0.5B, a
        repair request answered with a copy was answered with the same copy by every
        candidate, at T=0.3, 0.5 and 0.7 alike. After a copy, later rounds resample too."""
        cfg = self.config
        if copied:
            self._copying(st, rnd)
        req = restart_request(st, cfg)
        self._emit(st.traj, "ask_afresh", round=rnd, after=c.index,
                   note=("a candidate copied earlier code" if copied else
                         "a candidate failed as the last round did")
                   + ": the rest sample from the task")
        left = [s.model_copy(update={
            "temperature": max(s.temperature, cfg.resample_temperature), "top_p": cfg.top_p})
            for s in samplings[c.index + 1:]]
        return [st.problem.messages[0], req.prompt], [*samplings[:c.index + 1], *left]

    def _copying(self, st: RunState, rnd: int) -> None:
        """The model answered a repair prompt with code it wrote before: with
        `--after-copy resample`, every later round is a fresh sample."""
        if self.config.after_copy == "resample" and not st.copies:
            st.copies = True
            self._emit(st.traj, "copies", round=rnd,
                       note="the model repeats earlier code: later rounds resample")

    def _candidate(self, st: RunState, rnd: int, c: Candidate,
                   checked: dict[str, Candidate]) -> None:
        """Parse and check one candidate (an answer seen before this round is not checked
        again), its events held back."""
        got = self._extract(st, c.gen)
        if isinstance(got, FormatError):
            c.format_error = got
            c.digest = "text:" + hashlib.sha256(c.gen.text.encode()).hexdigest()
            self._emit(c.held, "format_error", round=rnd,
                       message=self._format_reason(c.gen, got))
            return
        ext, proposed = self._proposal(st, rnd, got, c.held)
        c.digest = _digest(proposed)
        twin = checked.get(c.digest)
        if twin is not None:
            c.judged, c.progress, c.same_as = twin.judged, twin.progress, twin.index
            return
        c.judged = self._evaluate(st, rnd, ext, proposed, c.held)
        c.progress = progress(c.judged.fb)
        checked[c.digest] = c

    def _next(self, st: RunState, rnd: int, ext: Extraction, files: dict[str, str],
              fb: CheckResult, applied: list[str]) -> None:
        """What the round taught (facts, repeated lines, a copy), then the next request."""
        cfg = self.config
        st.local = None
        facts = [*st.misfits, *self._facts(st.problem, fb, files)]
        st.misfits = []
        for fact in facts:  # a fresh sample may repeat an earlier round's mistake
            if fact in st.facts:
                st.facts.remove(fact)
            st.facts.append(fact)
        repeated: list[FailedLine] = []
        if cfg.lever("repeat-lines"):
            now = failed_lines(fb, files)
            repeated = list({f.text: f for f in now if f.text in st.failed}.values())[:MAX_AVOID]
            for f in now:
                st.failed.pop(f.text, None)  # most recent last
                st.failed[f.text] = f
            if repeated:
                self._emit(st.traj, "repeated_lines", round=rnd,
                           lines=[f.text for f in repeated])
        sig, digest = fb.signature(), _digest(files)
        copied = digest in st.seen
        stuck = sig == st.last_sig or copied
        st.last_sig = sig
        st.seen.add(digest)
        if stuck:
            self._emit(st.traj, "stuck", round=rnd, action=cfg.on_stuck)
            if cfg.on_stuck == "stop":
                raise RunEnded(StopReason.stuck)
        if copied:
            self._copying(st, rnd)
        ran = (self._trace(st, rnd, files, fb) if not stuck and (
            cfg.lever("run-trace") or cfg.lever("run-values")) else None)
        out = Outcome(rnd=rnd, ext=ext, files=files, feedback=fb, applied=applied,
                      facts=facts, repeated=repeated, stuck=stuck, trace=ran)
        req: Request | None = next(
            (r for s in self.strategies if (r := s.next_request(st, out)) is not None), None)
        if req is None:  # every strategy passed: nothing more to ask
            raise RunEnded(StopReason.stuck)
        self._take(st, rnd, req)

    def _trace(self, st: RunState, rnd: int, files: dict[str, str], fb: CheckResult
               ) -> trace.Trace | None:
        """The first failing test run again under `-coverprofile`: which returns of the
        code it came back from, which lines never ran (`run-trace`); with `run-values`,
        in a copy that prints what each assignment set, the values before the failure
        (or the panic: a binary that panics writes no profile, but its prints are out)."""
        if rnd >= st.rounds_cap or not fb.built or st.mode is FeedbackMode.compile or any(
                d.kind in (Kind.compile, Kind.vet, Kind.timeout, Kind.limit)
                for d in fb.diagnostics):
            return None
        panicked = any(d.kind is Kind.panic for d in fb.diagnostics)
        if panicked and not self.config.lever("run-values"):
            return None
        test = next((t.name.split("/")[0] for t in fb.failed_tests), None)
        if test is None:
            return None
        suite = Suite.all if st.mode is FeedbackMode.all else Suite.visible
        run = f"^{re.escape(test)}$"
        own = {n: c for n, c in files.items() if n not in st.problem.support_files}
        shown: list[str] = []
        res = None
        if self.config.lever("run-values"):
            marked, placed = values.instrument(own)
            if placed:
                res = st.checker.check({**files, **marked}, suite, run=run, cover=True)
                st.rec.check_seconds += res.seconds
                if res.built:
                    shown = values.describe(own, values.read(res.log, test))
                else:  # our prints broke the build: trace the code as it is
                    res = None
        if res is None and panicked:
            return None
        if res is None:
            res = st.checker.check(files, suite, run=run, cover=True)
            st.rec.check_seconds += res.seconds
        found = None
        if self.config.lever("run-trace") and not panicked:
            found = trace.describe(own, res.coverage, test)
            self._emit(st.traj, "trace", round=rnd, test=test,
                       lines=found.lines() if found else [], seconds=round(res.seconds, 3))
        if self.config.lever("run-values"):
            self._emit(st.traj, "values", round=rnd, test=test, lines=shown)
        if shown:
            found = dataclasses.replace(found or trace.Trace(test=test, returned=[], unrun=[]),
                                        values=shown)
        return found

    def _take(self, st: RunState, rnd: int, req: Request) -> None:
        """The next round asks `req`."""
        st.prompt, st.follow, st.local = req.prompt, req.follow, req.local
        text = req.follow[-1].content if req.follow else req.prompt.content
        self._emit(st.traj, "feedback", round=rnd, text=text, **req.event)

    # -- helpers -------------------------------------------------------------
    def _emit(self, traj: Trajectory | Held, kind: str, **data: object) -> None:
        ev = traj.event(kind, **data)
        if self.on_event and not isinstance(traj, Held):  # held events are told when replayed
            self.on_event(ev)

    def _solution_files(self, problem: Problem, ext: Extraction) -> dict[str, str]:
        files = dict(problem.files)
        got = dict(ext.files)
        # One unnamed block answers the one starter file, whatever the model called it.
        if len(problem.files) == 1 and list(got) == [DEFAULT_FILE]:
            got = {next(iter(problem.files)): got[DEFAULT_FILE]}
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
                          run: str | None, traj: Trajectory | Held, rnd: int, spec: str
                          ) -> tuple[dict[str, str], CheckResult, CheckResult, list[str]]:
        """Check; while the compiler names problems a deterministic fix handles, fix them
        without a model call and check again. With never-worse, fixes are kept only when
        the check improves (all together, else the first kind of fix that does alone)."""
        result = raw = checker.check(files, suite, run=run)
        self._emit(traj, "check", round=rnd, suite=suite.value, stage="raw",
                   result=result.public())
        applied: list[str] = []
        enabled = [f for f in self.config.fixes if f in FIX_KINDS and f != "gofmt"]
        guard = self.config.lever("never-worse")
        for _ in range(3):
            if result.passed or not enabled or not any(
                    d.kind in (Kind.compile, Kind.vet) for d in result.diagnostics):
                break
            tries = [enabled]
            kept = None
            while tries:
                names = tries.pop(0)
                fixed, fixes = apply_fixes(files, result.diagnostics, names, spec=spec)
                if not fixes or fixed == files:
                    continue
                new = checker.check(fixed, suite, run=run)
                self._emit(traj, "check", round=rnd, suite=suite.value, stage="fixed",
                           result=new.public())
                # Some repairs take a few steps (`float64(a) + b`, then the result is
                # returned as an int; vet names one printf verb per call at a time): a
                # few more passes may get past where we started.
                for _ in range(3):
                    if not guard or progress(new) > progress(result):
                        break
                    fixed2, fixes2 = apply_fixes(fixed, new.diagnostics, names, spec=spec)
                    if not fixes2 or fixed2 == fixed:
                        break
                    new2 = checker.check(fixed2, suite, run=run)
                    self._emit(traj, "check", round=rnd, suite=suite.value,
                               stage="fixed", result=new2.public())
                    if progress(new2) < progress(new):
                        break
                    fixed, fixes, new = fixed2, fixes + fixes2, new2
                if not guard or progress(new) > progress(result) or (
                        all(f.name in CERTAIN_FIXES for f in fixes)
                        and progress(new)[0] >= progress(result)[0]):
                    kept = fixed, fixes, new
                    break
                self._emit(traj, "fix_rejected", round=rnd,
                           fixes=[f.model_dump() for f in fixes],
                           note="the check did not improve: fix not kept")
                if names is enabled:
                    # Together they did not help: one kind alone may.
                    kinds = list(dict.fromkeys(f.name for f in fixes))
                    tries += [[k] for k in kinds] if len(kinds) > 1 else []
            if kept is None:
                break
            files, fixes, result = kept
            applied += [f"{f.name} {f.file}: {f.detail}" for f in fixes]
            self._emit(traj, "fix", round=rnd, fixes=[f.model_dump() for f in fixes])
        return files, result, raw, applied

    def _splice(self, st: RunState, rnd: int, ext: Extraction, traj: Trajectory | Held
                ) -> Extraction:
        """A local answer put back into the file it repairs, by the declaration's name."""
        file, name, base = st.local or ("", "", {})
        if len(ext.files) != 1:
            return ext
        new = splice_decls(base[file], next(iter(ext.files.values())), name)
        if new is None:
            return ext  # a whole file after all: take it as one
        self._emit(traj, "splice", round=rnd, file=file, name=name)
        kept = {n: c for n, c in base.items() if n not in st.problem.visible_tests}
        return ext.model_copy(update={"files": {**kept, file: new}})

    def _facts(self, problem: Problem, fb: CheckResult, files: dict[str, str]) -> list[str]:
        """Grounding: what the standard library really has, for the names it lacks, and
        the task's own signatures where the code declares others; the Go idiom a type
        error calls for; what a runtime panic means; after a failing test, a line that
        breaks a Go rule whatever the task (`pitfalls.CERTAIN`)."""
        if fb.built and not any(d.kind is Kind.compile for d in fb.diagnostics):
            out = explain_panics(fb.diagnostics) if self.config.lever("explain-panics") else []
            if self.config.lever("go-pitfalls") and fb.failed_tests:
                out += [f"Go rule, {p.text()}"
                        for p in pitfalls.find(files, rules=pitfalls.CERTAIN)]
            return out
        out: list[str] = []
        if self.config.lever("signatures") and problem.task is not None:
            # A task's prompt and starter files pin what its tests call; a user's package
            # (fix) pins nothing: its own signature may be the bug.
            pinned = "\n".join([problem.goal, *problem.files.values()])
            messages = [d.message for d in fb.diagnostics if d.kind is Kind.compile]
            out += mismatches(pinned, {**problem.support_files, **files}, messages)
        if self.config.lever("grounding"):
            if self.grounder is None:
                self.grounder = Grounder()
            out += self.grounder.facts(fb.diagnostics, files)
        if self.config.lever("type-facts"):
            out += type_facts(fb.diagnostics, files)
        return out


@dataclass
class Judged:
    """One answer checked: what a round is concluded from."""

    ext: Extraction
    proposed: dict[str, str]  # the files as the answer proposes them, before any fix
    files: dict[str, str]  # as checked last, the kept fixes applied
    raw: CheckResult  # the answer as proposed
    fb: CheckResult  # the check the model is told about
    verdict: CheckResult  # every test
    fixes: list[str]  # gofmt's and the kept deterministic fixes
    applied: list[str]  # the kept deterministic fixes
    run: str | None  # the -run pattern (compile-only feedback)
    check_seconds: float
    changes: tuple[mutants.Mutant, ...] = ()  # the one-token search's, when it kept some


def _misfit(m: mutants.Mutant, fb: CheckResult) -> str:
    """A dropped one-token change as what it does tell: where the example goes wrong."""
    test = fb.failed_tests[0].name.split("/")[0] if fb.failed_tests else "the failing test"
    before, after = " ".join(m.before.split()), " ".join(m.after.split())
    return (f"`{before}` is where {test}'s input goes wrong: with `{after}` in its place "
            f"{test} passes, but other tests of the task fail. That line needs another "
            f"fix, one right for every input the task allows.")


def _gains(res: CheckResult, before: CheckResult) -> bool:
    """Whether `res` passes every test `before` passed, and more."""
    was = {t.name for t in before.tests if t.outcome is TestOutcome.passed}
    now = {t.name for t in res.tests if t.outcome is TestOutcome.passed}
    return res.built and was < now


def _plus(a: Generation, b: Generation) -> Generation:
    """What two answers cost together (their text does not matter here)."""
    return Generation(
        text="", prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        cached_tokens=a.cached_tokens + b.cached_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        prompt_seconds=a.prompt_seconds + b.prompt_seconds,
        generation_seconds=a.generation_seconds + b.generation_seconds,
        drafted_tokens=a.drafted_tokens + b.drafted_tokens,
        accepted_tokens=a.accepted_tokens + b.accepted_tokens)


def _add_cost(rec: RoundRecord, *gens: Generation) -> None:
    for g in gens:
        rec.completion_tokens += g.completion_tokens
        rec.prompt_tokens += g.prompt_tokens
        rec.cached_tokens += g.cached_tokens
        rec.drafted_tokens += g.drafted_tokens
        rec.accepted_tokens += g.accepted_tokens
        rec.model_seconds += g.seconds


@dataclass
class RunState:
    """Everything one run carries from round to round."""

    problem: Problem
    model: Model  # bound to the problem (the oracle answers with its task's reference)
    traj: Trajectory
    result: RunResult
    mode: FeedbackMode
    prompt: Message  # the task, or a restart prompt once the loop got stuck
    rounds_cap: int
    token_cap: int
    seconds_cap: float
    temperature: float
    seed: int
    sampling: Sampling  # the fixed parts: max tokens, stops, repetition penalty
    checker: Checker
    current: dict[str, str]  # the files as last proposed, before fixes
    taken: frozenset[str]  # names the fixed files the model saw declare
    follow: list[Message] = field(default_factory=list)  # answer + feedback after the task
    history: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    mutated: set[str] = field(default_factory=set)  # digests one-token changes were tried on
    misfits: list[str] = field(default_factory=list)  # dropped changes, said as facts next
    last_sig: str | None = None
    copies: bool = False  # the model answered a repair prompt with code it wrote before
    rewritten: set[str] = field(default_factory=set)  # functions asked for anew (rewrite-body)
    failed: dict[str, FailedLine] = field(default_factory=dict)  # line text → why it failed
    local: tuple[str, str, dict[str, str]] | None = None  # (file, name, files) asked for
    facts: list[str] = field(default_factory=list)  # grounding facts so far, oldest first
    usage: TokenUsage = field(default_factory=TokenUsage)
    start: float = field(default_factory=time.monotonic)
    rec: RoundRecord = field(  # the current round's record
        default_factory=lambda: RoundRecord(round=0, temperature=0.0))

    def check_budget(self) -> None:
        if (reason := self.spent()) is not None:
            raise RunEnded(StopReason.tokens_spent if reason == "tokens"
                           else StopReason.time_spent)

    def spent(self) -> str | None:
        """Which budget is used up ("tokens", "time"), if one is."""
        if self.usage.completion >= self.token_cap:
            return "tokens"
        if time.monotonic() - self.start >= self.seconds_cap:
            return "time"
        return None


# -- what the loop asks of a model's answer ---------------------------------------------

FENCE_STOP = "\n```\n"
_TEST_STOPS = ("\nfunc Test", "\nfunc Example")
_DECL_RE = re.compile(r"^[ \t]*(?:func[ \t]*(?:\([ \t]*(?:\w+[ \t]+)?\*?[ \t]*(?P<recv>\w+)"
                      r"[^)\n]*\)[ \t]*)?|type[ \t]+|var[ \t]+|const[ \t]+)(?P<name>\w+)?", re.M)


def size_max_tokens(problem: Problem) -> int:
    """Room for a complete answer, but not for thousands of tokens of degenerate repetition."""
    return int(min(2048, max(768, problem.answer_chars / 3.5 * 1.5 + 512)))


def stop_sequences(problem: Problem) -> list[str]:
    """Where an answer is over: small models follow the code with tests, a main function
    and explanations; cutting there saves tokens and the degenerate repetition that
    often follows. The extractor copes with the unclosed fence this leaves."""
    # At most four: OpenAI-compatible servers often refuse more.
    stops = list(_TEST_STOPS)
    if problem.package != "main":
        stops.append("\nfunc main(")
    if not problem.multi_file:
        stops.append(FENCE_STOP)
    return stops


def _cut_before_code(gen: Generation, sampling: Sampling,
                     taken: frozenset[str] = frozenset()) -> bool:
    """A test stop fired before the answer declared anything but imports and copies of
    what the provided files declare (`taken`: small models often open by re-typing the
    visible test's helper types)."""
    if gen.finish_reason != "stop" or not any(s in sampling.stop for s in _TEST_STOPS):
        return False
    if gen.text.count("```") != 1:  # a fence opened and never closed: cut mid-block
        return False
    body = re.sub(r"(?s)import\s*\(.*?\)|import\s+\S+", "", gen.text)
    return all(m["name"] in taken or m["recv"] in taken or f"{m['recv']}.{m['name']}" in taken
               for m in _DECL_RE.finditer(body))


def declared_names(sources: Iterable[str]) -> frozenset[str]:
    """Top-level names the given Go files declare (methods as `Type.Method`)."""
    return frozenset(d.name for src in sources for d in split_decls(src)
                     if d.kind in ("func", "type", "var", "const") and d.name)


def progress(result: CheckResult) -> tuple[int, int]:
    """How far a check got, for comparing two versions of one answer: the later stage
    (compile < vet < tests < pass) wins, then fewer problems at that stage."""
    if result.passed:
        return (3, 0)
    kinds = [d.kind for d in result.diagnostics]
    if not result.built or Kind.compile in kinds or Kind.toolchain in kinds:
        return (0, -sum(k in (Kind.compile, Kind.toolchain) for k in kinds))
    if Kind.vet in kinds:
        return (1, -kinds.count(Kind.vet))
    return (2, -max(len(kinds), len(result.failed_tests)))


def failed_lines(result: CheckResult, files: dict[str, str]) -> list[FailedLine]:
    """The solution lines the compiler or vet rejected, with the first line of why."""
    out: list[FailedLine] = []
    for d in result.diagnostics:
        if d.kind not in (Kind.compile, Kind.vet) or not d.line or d.file not in files:
            continue
        if d.file.endswith("_test.go"):
            continue
        lines = files[d.file].splitlines()
        if d.line <= len(lines) and (text := lines[d.line - 1].strip()) and len(text) > 3:
            out.append(FailedLine(d.line, text[:160], d.message.splitlines()[0][:200]))
    return out


def _is_copy(st: RunState, rnd: int, c: Candidate) -> bool:
    """A repair candidate that hands back code already written, also when only what the
    deterministic fixes change differs."""
    return (rnd > 1 and bool(st.follow) and c.judged is not None
            and (c.digest in st.seen or _digest(c.judged.files) in st.seen))


def _digest(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + " ".join(files[name].split()).encode() + b"\0")
    return h.hexdigest()
