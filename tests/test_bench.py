"""The bench library without a toolchain: pass@k, mode parsing, the results log, summaries."""

from __future__ import annotations

import json
from math import comb

import pytest

from agent.bench.config import BenchConfig, BenchError, Mode, parse_modes
from agent.bench.results import AttemptRecord, ResultsLog
from agent.bench.stats import pass_at_k, summarize
from agent.loop.trajectory import FeedbackMode, RoundRecord, RunResult, TokenUsage

# -- pass@k -------------------------------------------------------------------------------


@pytest.mark.parametrize("n, c, k, want", [
    (1, 0, 1, 0.0),
    (1, 1, 1, 1.0),
    (5, 0, 3, 0.0),
    (5, 5, 1, 1.0),
    (5, 1, 1, 0.2),  # 1 - 4/5
    (5, 2, 1, 0.4),
    (5, 1, 2, 0.4),  # 1 - C(4,2)/C(5,2) = 1 - 6/10
    (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    (10, 3, 5, 1 - 21 / 252),  # C(7,5)=21, C(10,5)=252
    (4, 2, 3, 1.0),  # n - c < k: every draw of 3 includes a pass
    (10, 1, 10, 1.0),
])
def test_pass_at_k_hand_computed(n, c, k, want):
    assert pass_at_k(n, c, k) == pytest.approx(want, abs=1e-15)


def test_pass_at_k_matches_the_papers_product_form_and_stays_stable_for_large_n():
    # Chen et al.'s numerically stable form: 1 - prod_{i=n-c+1}^{n} (1 - k/i)
    for n, c, k in [(20, 3, 1), (20, 3, 7), (200, 13, 100), (1000, 1, 1)]:
        prod = 1.0
        for i in range(n - c + 1, n + 1):
            prod *= 1 - k / i
        assert pass_at_k(n, c, k) == pytest.approx(1 - prod, rel=1e-12)
    # Where the naive float ratio of huge binomials would overflow.
    assert comb(2000, 1000) > 10**300
    assert pass_at_k(2000, 1, 1000) == pytest.approx(0.5)


@pytest.mark.parametrize("n, c, k", [(5, 6, 1), (5, 1, 0), (5, 1, 6), (0, 0, 1), (5, -1, 1)])
def test_pass_at_k_rejects_impossible_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


# -- modes --------------------------------------------------------------------------------

def test_parse_modes_canonical_order():
    assert parse_modes("sample, repair") == [Mode.repair, Mode.sample]
    assert parse_modes("single") == [Mode.single]
    with pytest.raises(BenchError, match="unknown mode 'pass'"):
        parse_modes("single,pass")
    with pytest.raises(BenchError, match="empty"):
        parse_modes(" , ")


# -- results log --------------------------------------------------------------------------

def _config(**kw) -> BenchConfig:
    base = dict(suite="s", tasks=["a", "b"], tasks_digest="x", modes=[Mode.single],
                backend="replay")
    return BenchConfig(**{**base, **kw})


def _result(task: str, solved: bool, rounds: list[tuple[int, bool]] | None = None,
            failure: str | None = None) -> RunResult:
    rounds = rounds or [(10, solved)]
    detail = [RoundRecord(round=i + 1, temperature=0.0, completion_tokens=t, passed=p,
                          model_seconds=0.5, check_seconds=1.0)
              for i, (t, p) in enumerate(rounds)]
    at = next((i + 1 for i, (_, p) in enumerate(rounds) if p), None)
    return RunResult(task=task, solved=solved, rounds=len(rounds), solved_at_round=at,
                     feedback=FeedbackMode.all, model="m", backend="replay",
                     tokens=TokenUsage(completion=sum(t for t, _ in rounds)),
                     first_failure=None if at == 1 else (failure or "test-failure"),
                     raw_solved_round1=at == 1, rounds_detail=detail, seconds=2.0,
                     stop_reason="tests pass" if solved else "round budget spent")


def _rec(cfg: BenchConfig, task: str, mode: Mode, solved: bool, sample: int = 0,
         **kw) -> AttemptRecord:
    return AttemptRecord(task=task, mode=mode, sample=sample, config=cfg.config_hash(),
                         result=_result(task, solved, **kw))


def test_results_log_drops_a_torn_last_line_and_never_duplicates(tmp_path):
    cfg = _config()
    path = tmp_path / "results.jsonl"
    log = ResultsLog(path)
    a = _rec(cfg, "a", Mode.single, True)
    assert log.append(a)
    assert not log.append(a)  # already recorded
    good = path.read_bytes()
    path.write_bytes(good + _rec(cfg, "b", Mode.single, False).line().encode()[:37])
    again = ResultsLog(path)
    assert list(again.records) == [a.key]
    assert path.read_bytes() == good  # rewritten cleanly, ready for the next append
    assert again.append(_rec(cfg, "b", Mode.single, False))
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x) for x in lines)


def test_results_log_whole_json_without_newline_is_still_torn(tmp_path):
    cfg = _config()
    path = tmp_path / "results.jsonl"
    path.write_text(_rec(cfg, "a", Mode.single, True).line().rstrip("\n"))
    assert ResultsLog(path).records == {}
    assert path.read_bytes() == b""


def test_results_log_refuses_corruption_in_the_middle(tmp_path):
    cfg = _config()
    path = tmp_path / "results.jsonl"
    path.write_text("{broken\n" + _rec(cfg, "a", Mode.single, True).line())
    with pytest.raises(BenchError, match="line 1 is corrupt"):
        ResultsLog(path)


def test_records_carry_no_files():
    cfg = _config()
    rec = _rec(cfg, "a", Mode.single, True)
    rec.result.files = {"solution.go": "package x"}
    assert "files" not in json.loads(rec.line())["result"]


# -- summary ------------------------------------------------------------------------------

def test_summary_is_order_independent_and_counts_each_mode():
    cfg = _config(tasks=["a", "b", "c"], modes=[Mode.single, Mode.repair, Mode.sample],
                  samples=3, max_rounds=3)
    recs = [
        _rec(cfg, "a", Mode.single, True),
        _rec(cfg, "b", Mode.single, False, failure="compile"),
        _rec(cfg, "c", Mode.single, False),
        _rec(cfg, "a", Mode.repair, True),
        _rec(cfg, "b", Mode.repair, True, rounds=[(10, False), (20, False), (30, True)],
             failure="compile"),
        _rec(cfg, "c", Mode.repair, False, rounds=[(10, False)] * 3),
        *[_rec(cfg, "a", Mode.sample, True, sample=i) for i in range(3)],
        _rec(cfg, "b", Mode.sample, True, sample=0),
        _rec(cfg, "b", Mode.sample, False, sample=1),
        _rec(cfg, "b", Mode.sample, False, sample=2),
        *[_rec(cfg, "c", Mode.sample, False, sample=i) for i in range(3)],
    ]
    s = summarize(cfg, recs)
    assert s.complete and s.attempts_done == s.attempts_planned == 15
    single, repair, sample = (s.modes[m] for m in ("single", "repair", "sample"))
    assert (single.tasks, single.solved, single.raw_solved) == (3, 1, 1)
    assert single.first_failures == {"compile": 1, "test-failure": 1}
    assert repair.solved == 2 and repair.solved_by_round == {1: 1, 2: 1, 3: 2}
    assert [p.completion_tokens for p in repair.budget_curve] == [30, 60, 100]
    assert repair.completion_tokens == 10 + 60 + 30
    assert repair.stop_reasons == {"tests pass": 2, "round budget spent": 1}
    assert sample.solved == 2 and sample.pass_rate == pytest.approx(2 / 3)
    assert sample.pass_at_k == pytest.approx({1: (1 + 1 / 3) / 3, 2: (1 + 2 / 3) / 3,
                                              3: 2 / 3})
    assert [p.completion_tokens for p in sample.budget_curve] == [30, 60, 90]
    assert s.per_task[1].modes["repair"].solved_at_round == 3
    assert s.per_task[1].modes["sample"].samples_solved == 1
    assert summarize(cfg, list(reversed(recs))) == s


def test_summary_of_a_partial_run_counts_only_whole_tasks():
    cfg = _config(modes=[Mode.sample], samples=2)
    s = summarize(cfg, [_rec(cfg, "a", Mode.sample, True, sample=0)])
    assert not s.complete and s.modes["sample"].tasks == 0
    other = _config(modes=[Mode.sample], samples=3)  # another config's lines are ignored
    s2 = summarize(cfg, [_rec(other, "a", Mode.single, True)])
    assert s2.attempts_done == 0


def test_report_tables_and_a_note_when_matplotlib_is_missing(tmp_path, monkeypatch):
    import sys

    from agent.bench.report import write_report

    cfg = _config(modes=[Mode.single, Mode.repair], max_rounds=2)
    recs = [_rec(cfg, "a", Mode.single, True), _rec(cfg, "b", Mode.single, False),
            _rec(cfg, "a", Mode.repair, True),
            _rec(cfg, "b", Mode.repair, True, rounds=[(10, False), (10, True)])]
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    write_report(tmp_path, summarize(cfg, recs))
    text = (tmp_path / "report.md").read_text()
    assert "plot skipped: matplotlib is not installed" in text
    assert not (tmp_path / "plot.png").exists()
    assert "| 2 | 2 | 100.0% | 30 |" in text  # repair: solved by round 2, tokens to there
    assert "| single | 20 | 3.0 | 1 | — |" in text  # equal budget, no sampling run
    assert "## Why attempts stopped" in text
    assert "| mode | round budget spent | tests pass |" in text
    assert "| single | 1 | 1 |" in text and "| repair | 0 | 2 |" in text


def test_after_copy_reaches_the_loop_the_hash_and_the_reproducing_command():
    default, repair = _config(modes=[Mode.repair]), _config(modes=[Mode.repair],
                                                           after_copy="repair")
    assert default.loop_config(Mode.repair, 0).after_copy == "resample"
    assert repair.loop_config(Mode.repair, 0).after_copy == "repair"
    assert default.config_hash() != repair.config_hash()
    assert "--after-copy" not in default.command()
    assert "--after-copy repair" in repair.command()
