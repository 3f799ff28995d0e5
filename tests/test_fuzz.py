"""Property tests on everything that parses untrusted text: nothing escapes as a traceback.

Task files come from users, event streams from programs the model wrote, code blocks
from the model itself. Each parser may reject its input only with its own error type.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.tasks.spec import TaskError, load_task
from tools.runner import parse_test_json
from tools.sandbox import ProcResult

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# -- task loading ----------------------------------------------------------------------

_KEYS = ["id", "prompt", "tests", "tests_file", "package", "visible_tests",
         "visible_tests_file", "files", "support_files", "reference", "reference_file",
         "reference_files", "go_mod", "budget", "race", "test_timeout", "tags", "require",
         "go", "module", "replace", "rounds", "tokens", "seconds", "bogus"]

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                     st.floats(allow_nan=True), st.text(max_size=40),
                     st.sampled_from(["", "..", "/etc/passwd", "~", "main", "sandbox",
                                      "no/such/file.go", "package x", "1.24", "-1"]))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(max_size=8)), inner,
                        max_size=5)),
    max_leaves=20)
_tasks = st.dictionaries(st.sampled_from(_KEYS), _values, max_size=10)


def _load(content: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"task{suffix}"
        p.write_bytes(content)
        try:
            load_task(p)
        except TaskError as exc:
            msg = str(exc)
            assert (msg and "\n" not in msg.strip()) or "YAML" in msg, msg


@FUZZ
@given(content=st.binary(max_size=400), suffix=st.sampled_from([".yaml", ".yml", ".json"]))
def test_task_loading_random_bytes(content: bytes, suffix: str) -> None:
    _load(content, suffix)


@FUZZ
@given(data=st.one_of(_tasks, _values), as_json=st.booleans())
def test_task_loading_structured_garbage(data: Any, as_json: bool) -> None:
    if as_json:
        text = json.dumps(data, allow_nan=True)
        _load(text.encode(), ".json")
    else:
        _load(yaml.safe_dump(data, allow_unicode=True).encode(), ".yaml")


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list("ab:{}[]-&*!|>'\"#%@`\n\t ?,.\\")),
                    max_size=120))
def test_task_loading_yaml_punctuation(text: str) -> None:
    _load(text.encode(), ".yaml")


# -- diagnostics parsing ----------------------------------------------------------------

_ACTIONS = ["start", "run", "output", "pass", "fail", "skip", "pause", "cont", "bench",
            "build-output", "build-fail", None, 7, "PASS"]
_OUTPUTS = ["panic: boom\n", "\tfoo.go:3 +0x1\n", "x.go:1:2: bad\n", "--- FAIL: TestX\n",
            "panic: test timed out after 1s\n", "    x_test.go:9: nope\n", "# sandbox\n",
            "goroutine 1 [running]:\n", "\t/abs/path/x.go:12 +0x2\n", "", "\x00\xff",
            "    x_test.go:9: \n", "        \tError Trace:\t/abs/x_test.go:9\n",
            "        \tError:      \tNot equal: \n", "        \t            \texpected: 1\n",
            "        \tDiff:\n"]


def _event(wrong_types: bool) -> st.SearchStrategy[dict[str, Any]]:
    """A test2json event; `wrong_types` also puts numbers, lists and null in its fields."""
    def field(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        junk = st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=2))
        return st.one_of(s, junk) if wrong_types else s

    actions = _ACTIONS if wrong_types else [a for a in _ACTIONS if isinstance(a, str)]
    return st.fixed_dictionaries(
        {"Action": st.sampled_from(actions)},
        optional={
            "Test": field(st.one_of(st.sampled_from(["TestA", "TestA/sub", "TestB", ""]),
                                    st.text(max_size=8))),
            "Output": field(st.one_of(st.sampled_from(_OUTPUTS), st.text(max_size=60))),
            "Elapsed": field(st.one_of(st.floats(allow_nan=True), st.integers(0, 10**6))),
            "OutputType": field(st.sampled_from(["error", "error-continue", "frame"])),
            "FailedBuild": field(st.text(max_size=6)),
            "Package": st.text(max_size=6),
        })


def _lines(wrong_types: bool) -> st.SearchStrategy[str]:
    return st.one_of(
        _event(wrong_types).map(json.dumps),
        st.sampled_from(_OUTPUTS + ["{", "{}", "[1,2]", '{"Action":', "null", "ok  \tx\t0.1s"]),
        st.text(max_size=80),
    )


def _check_stream(lines: list[str], exit_code: int | None, timed_out: bool,
                  truncated: bool, expected: list[str] | None, cut: int) -> None:
    raw = "\n".join(lines).encode("utf-8", errors="surrogatepass")
    if truncated and cut:  # a stream cut mid-line, as the output cap leaves it
        raw = raw[:-cut]
    proc = ProcResult(exit_code=exit_code, output=raw, seconds=0.1, timed_out=timed_out,
                      output_truncated=truncated)
    result = parse_test_json(proc, Path("/tmp/ws/src"), 5.0, expected)
    # A result built from garbage may never claim a pass the events do not support.
    if result.passed:
        assert exit_code == 0 and not timed_out and not truncated


_stream_args = {
    "exit_code": st.one_of(st.none(), st.integers(-64, 255)),
    "timed_out": st.booleans(), "truncated": st.booleans(),
    "expected": st.one_of(st.none(), st.lists(st.sampled_from(["TestA", "TestB", "TestC"]))),
    "cut": st.integers(0, 50),
}


@FUZZ
@given(lines=st.lists(_lines(False), max_size=30), **_stream_args)
def test_parse_test_json_never_raises(lines: list[str], exit_code: int | None,
                                      timed_out: bool, truncated: bool,
                                      expected: list[str] | None, cut: int) -> None:
    _check_stream(lines, exit_code, timed_out, truncated, expected, cut)


@FUZZ
@given(lines=st.lists(_lines(True), max_size=30), **_stream_args)
def test_parse_test_json_wrong_field_types(lines: list[str], exit_code: int | None,
                                           timed_out: bool, truncated: bool,
                                           expected: list[str] | None, cut: int) -> None:
    _check_stream(lines, exit_code, timed_out, truncated, expected, cut)


@FUZZ
@given(raw=st.binary(max_size=2000))
def test_parse_test_json_random_bytes(raw: bytes) -> None:
    parse_test_json(ProcResult(exit_code=1, output=raw, seconds=0.0), Path("/w"), 1.0, ["TestA"])


# -- code extraction ---------------------------------------------------------------------

try:
    from agent.golang.extract import FormatError, extract_code
except ImportError:  # pragma: no cover - written by another part of the project
    extract_code = None  # type: ignore[assignment]

needs_extract = pytest.mark.skipif(extract_code is None, reason="agent.golang.extract not present")

_GO_BITS = ["```go\n", "```\n", "~~~\n", "```golang solution.go\n", "package main\n",
            "package sandbox\n", "func F() int {\n", "}\n", "return 1\n", "import \"fmt\"\n",
            "import (\n\"os\"\n)\n", "func TestX(t *testing.T) {}\n", "func main() {}\n",
            "type T struct{}\n", "// x_test.go\n", "`", "{", "\"", "/*", "*/", "\n",
            "var x = `\n", "const c = 1\n", "x.go:\n", "Here is the code:\n"]


@needs_extract
@FUZZ
@given(parts=st.lists(st.one_of(st.sampled_from(_GO_BITS), st.text(max_size=20)),
                      max_size=40),
       package=st.sampled_from(["sandbox", "main", "p"]))
def test_extract_code_only_raises_format_error(parts: list[str], package: str) -> None:
    try:
        ex = extract_code("".join(parts), package=package)
    except FormatError:
        return
    for name, content in ex.files.items():
        assert name.endswith(".go") and not name.endswith("_test.go")
        assert f"package {package}" in content


@needs_extract
@FUZZ
@given(text=st.text(max_size=600))
def test_extract_code_random_text(text: str) -> None:
    with contextlib.suppress(FormatError):
        extract_code(text, package="sandbox")
