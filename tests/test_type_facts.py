"""`type-facts`: the Go idiom a type error calls for, from the real compiler's messages; and
the text conversions the `conversions` fix now makes (a rune as a string, a string as its
bytes, `"a"` compared with a rune)."""

from __future__ import annotations

import pytest
from conftest import Recorder, needs_go

from agent.golang.fixes import FIX_NAMES, apply_fixes
from agent.golang.typefacts import MAX_TYPE_FACTS, type_facts, zero_value
from agent.loop.config import LoopConfig
from agent.loop.problem import problem_from_task
from agent.loop.repair import RepairLoop
from agent.loop.trajectory import Trajectory
from agent.tasks.harness import check_task
from agent.tasks.spec import TaskSpec

pytestmark = needs_go

EMPTY = TaskSpec(id="g", prompt="p", tests='import "testing"\n\nfunc TestG(t *testing.T) {}\n')


def _src(body: str) -> str:
    return "package sandbox\n\n" + body.strip() + "\n"


def _compiles(body: str) -> bool:
    res = check_task(EMPTY, {"solution.go": _src(body)})
    return res.passed


def _facts(body: str) -> list[str]:
    src = _src(body)
    res = check_task(EMPTY, {"solution.go": src})
    assert not res.passed, "the broken snippet must not compile"
    return type_facts(res.diagnostics, {"solution.go": src})


# (broken code, words its fact must hold, the code written as the fact says: it compiles)
CASES = {
    "string used as a rune": (
        'import "unicode"\nfunc F(s string) rune { w := s[:1]; return unicode.ToUpper(w) }',
        ["`w` is a string", "[]rune(s)[i]", "single quotes"],
        'import "unicode"\nfunc F(s string) rune { return unicode.ToUpper([]rune(s)[0]) }'),
    "string literal used as a rune": (
        'func F(s string) rune { var r rune; r = "ab"; return r }',
        ["is a string", "single"],
        "func F(s string) rune { var r rune; r = 'a'; return r }"),
    "int used as a string": (
        "func F(n int) string { return n }",
        ["strconv.Itoa(n)", "fmt.Sprint(n)"],
        'import "strconv"\nfunc F(n int) string { return strconv.Itoa(n) }'),
    "int64 used as a string": (
        "func F(n int64) string { return n }",
        ["strconv.FormatInt(int64(n), 10)"],
        'import "strconv"\nfunc F(n int64) string { return strconv.FormatInt(int64(n), 10) }'),
    "float used as a string": (
        "func F(x float64) string { return x }",
        ["strconv.FormatFloat(x, 'f', -1, 64)"],
        'import "strconv"\nfunc F(x float64) string {\n'
        "\treturn strconv.FormatFloat(x, 'f', -1, 64)\n}"),
    "string used as an int": (
        "func F(s string) int { return s }",
        ["`n, err := strconv.Atoi(s)`"],
        'import "strconv"\nfunc F(s string) int { n, err := strconv.Atoi(s); if err != nil '
        "{ return 0 }; return n }"),
    "string converted to int64": (
        "func F(s string) int64 { return int64(s) }",
        ["no conversion from text", "`n, err := strconv.ParseInt(s, 10, 64)`"],
        'import "strconv"\nfunc F(s string) int64 { n, err := strconv.ParseInt(s, 10, 64); '
        "if err != nil { return 0 }; return n }"),
    "string converted to float64": (
        "func F(s string) float64 { return float64(s) }",
        ["`x, err := strconv.ParseFloat(s, 64)`"],
        'import "strconv"\nfunc F(s string) float64 { x, err := strconv.ParseFloat(s, 64); '
        "if err != nil { return 0 }; return x }"),
    "string converted to uint8": (
        "func F(s string) uint8 { return uint8(s) }",
        ["`n, err := strconv.ParseUint(s, 10, 8)`"],
        'import "strconv"\nfunc F(s string) uint8 { n, err := strconv.ParseUint(s, 10, 8); '
        "if err != nil { return 0 }; return uint8(n) }"),
    "two results in an expression": (
        'import "strconv"\nfunc F(s string) int { return strconv.Atoi(s) + 1 }',
        ["returns 2 values (int, error)", "`v, err := strconv.Atoi(s)`", "check err"],
        'import "strconv"\nfunc F(s string) int { v, err := strconv.Atoi(s); if err != nil '
        "{ return 0 }; return v + 1 }"),
    "too few results returned": (
        "func F(s string) (int, error) { return 1 }",
        ["results are (int, error)", "exactly 2 values", "`return 0, nil`"],
        "func F(s string) (int, error) { return 0, nil }"),
    "too many results returned": (
        "func F(s string) []string { return nil, nil }",
        ["results are ([]string)", "exactly 1 value ", "`return nil`"],
        "func F(s string) []string { return nil }"),
    "nil as a string": (
        "func F(s string) (string, error) { return nil, nil }",
        ['zero value is `""`', 'return "", err'],
        'func F(s string) (string, error) { var err error; return "", err }'),
    "several characters in single quotes": (
        "func F(s string) bool { return s == 'ab' }",
        ["double quotes"],
        'func F(s string) bool { return s == "ab" }'),
    "slices added": (
        "func F(a, b []int) []int { return a + b }",
        ["`append(a, b...)`"],
        "func F(a, b []int) []int { return append(a, b...) }"),
    "maps compared": (
        "func F(a, b map[string]int) bool { return a == b }",
        ["`maps.Equal(a, b)`"],
        'import "maps"\nfunc F(a, b map[string]int) bool { return maps.Equal(a, b) }'),
    "slices compared": (
        "func F(a, b []int) bool { return a == b }",
        ["`slices.Equal(a, b)`"],
        'import "slices"\nfunc F(a, b []int) bool { return slices.Equal(a, b) }'),
    "a call with no result used as a value": (
        'import "sort"\nfunc F(a []int) []int { return sort.Ints(a) }',
        ["`sort.Ints(a)` returns nothing", "line of its own"],
        'import "sort"\nfunc F(a []int) []int { sort.Ints(a); return a }'),
    "text plus a number": (
        "func F(s string, n int) string { return s + n }",
        ["strconv.Itoa(n)"],
        'import "strconv"\nfunc F(s string, n int) string { return s + strconv.Itoa(n) }'),
    "a string's byte changed in place": (
        "func F(s string) string { s[0] = 'a'; return s }",
        ["cannot be changed in place", "`b := []byte(s)`", "`s = string(b)`"],
        "func F(s string) string { b := []byte(s); b[0] = 'a'; s = string(b); return s }"),
    "a method with a pointer receiver": (
        "type S interface{ Area() float64 }\ntype R struct{}\n"
        "func (r *R) Area() float64 { return 0 }\nfunc F() S { return R{} }",
        ["method Area has a pointer receiver", "`func (x R) Area…`", "&R{…}"],
        "type S interface{ Area() float64 }\ntype R struct{}\n"
        "func (r R) Area() float64 { return 0 }\nfunc F() S { return R{} }"),
    "a missing method": (
        "type S interface{ Area() float64 }\ntype R struct{}\nfunc F() S { return R{} }",
        ["R has no method Area", "`func (x R) Area…`"],
        "type S interface{ Area() float64 }\ntype R struct{}\n"
        "func (x R) Area() float64 { return 0 }\nfunc F() S { return R{} }"),
    "a method of the wrong type": (
        "type S interface{ Area() float64 }\ntype R struct{}\n"
        "func (r R) Area() int { return 0 }\nfunc F() S { return R{} }",
        ["`Area() float64`, not `Area() int`"],
        "type S interface{ Area() float64 }\ntype R struct{}\n"
        "func (r R) Area() float64 { return 0 }\nfunc F() S { return R{} }"),
    "a slice expression assigned to": (
        "func F(a, b []int) { a[1:] = b }",
        ["`copy(dst[i:], src)`"],
        "func F(a, b []int) { copy(a[1:], b) }"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_type_error_gets_its_idiom_and_the_idiom_compiles(name):
    broken, words, written = CASES[name]
    facts = _facts(broken)
    assert len(facts) == 1, facts
    for w in words:
        assert w in facts[0], (w, facts[0])
    assert _compiles(written), written


def test_errors_with_no_idiom_to_give_get_no_fact():
    # The element types say nothing a model could act on beyond the message itself.
    assert _facts("func F(a []int) [][]int { return a }") == []
    assert _facts("type T struct{}\nfunc F() int { return T{} }") == []


def test_a_long_expression_is_described_not_quoted_and_facts_are_capped():
    long = "strconv.Atoi(strings.Repeat(s, 3) + strings.ToUpper(s) + strings.TrimSpace(s))"
    facts = _facts('import (\n"strconv"\n"strings"\n)\n'
                   f"func F(s string) int {{ return {long} + 1 }}")
    assert facts and facts[0].startswith("that call returns 2 values")
    assert "`v, err := …`" in facts[0]
    many = _facts("func F(s string, n int, a, b []int) (int, error) {\n"
                  "\tx := s + n\n\ty := a + b\n\t_, _ = x, y\n\treturn 1\n}\n"
                  "func G(a, b map[int]int) bool { return a == b }")
    assert len(many) == MAX_TYPE_FACTS


def test_zero_values():
    assert [zero_value(t) for t in ("int", "string", "bool", "error", "*T", "[]int",
                                    "map[string]int", "Point", "float64")] == [
        "0", '""', "false", "nil", "nil", "nil", "nil", "Point{}", "0"]


# -- the conversions fix: text and its characters ------------------------------------------

FIXED = {
    "a rune passed as a string": (
        'import "strings"\nfunc F(r rune) string { return strings.Repeat(r, 2) }',
        "strings.Repeat(string(r), 2)"),
    "a byte assigned to a string": (
        "func F(s string) string { var t string; t = s[0]; return t }",
        "t = string(s[0])"),
    "runes returned as a string": (
        "func F(s string) string { r := []rune(s); return r }",
        "return string(r)"),
    "a string passed as bytes": (
        'import "bytes"\nfunc F(s string) bool { return bytes.HasPrefix(s, []byte("a")) }',
        "bytes.HasPrefix([]byte(s), []byte(\"a\"))"),
    "a rune as a map key of strings": (
        "func F(s string) map[string]int {\n\tm := map[string]int{}\n"
        "\tfor _, r := range s {\n\t\tm[r]++\n\t}\n\treturn m\n}",
        "m[string(r)]++"),
    "a rune compared with a one-character string": (
        'func F(s string) int {\n\tn := 0\n\tfor _, r := range s {\n\t\tif r == "a" {\n'
        "\t\t\tn++\n\t\t}\n\t}\n\treturn n\n}",
        "if r == 'a' {"),
    "a byte compared with a newline string": (
        'func F(s string) bool { return len(s) > 0 && s[0] == "\\n" }',
        "s[0] == '\\n'"),
    "a one-character string stored in a rune": (
        'func F() rune { var r rune; r = "x"; return r }',
        "r = 'x'"),
}


@pytest.mark.parametrize("name", list(FIXED))
def test_text_conversions_are_made_where_the_compiler_points(name):
    broken, want = FIXED[name]
    src = _src(broken)
    res = check_task(EMPTY, {"solution.go": src})
    assert not res.passed
    fixed, applied = apply_fixes({"solution.go": src}, res.diagnostics, FIX_NAMES)
    assert want in fixed["solution.go"], fixed["solution.go"]
    assert [a.name for a in applied].count("conversions") >= 1
    assert check_task(EMPTY, fixed).passed, fixed["solution.go"]


def test_a_string_of_several_characters_compared_with_a_rune_is_left_alone():
    src = _src('func F(r rune) bool { return r == "ab" }')
    res = check_task(EMPTY, {"solution.go": src})
    fixed, applied = apply_fixes({"solution.go": src}, res.diagnostics, FIX_NAMES)
    assert fixed["solution.go"] == src and applied == []


# -- in the loop ---------------------------------------------------------------------------

PARSE = TaskSpec(
    id="parse_plus",
    prompt="Write `Next(s string) int` returning the decimal number in s plus one (0 when "
           "s is not a number).",
    tests=('import "testing"\n\nfunc TestNext(t *testing.T) {\n'
           '\tif got := Next("41"); got != 42 {\n\t\tt.Fatalf("got %d", got)\n\t}\n}\n'),
)
BAD = ('```go\npackage sandbox\n\nimport "strconv"\n\n'
       "func Next(s string) int {\n\treturn strconv.Atoi(s) + 1\n}\n```\n")
GOOD = ('```go\npackage sandbox\n\nimport "strconv"\n\nfunc Next(s string) int {\n'
        "\tn, err := strconv.Atoi(s)\n\tif err != nil {\n\t\treturn 0\n\t}\n"
        "\treturn n + 1\n}\n```\n")


def _loop(responses: list[str], off: tuple[str, ...] = ()):
    model = Recorder(responses)
    config = LoopConfig(fixes=[f for f in FIX_NAMES if f not in off])
    result = RepairLoop(model, config).run(problem_from_task(PARSE), Trajectory())
    return result, model


def test_the_repair_request_states_the_idiom_and_the_lever_switches_it_off():
    # call-forms would take the call apart before any request (the test below): off, so
    # the answer reaches the model as written.
    result, model = _loop([BAD, GOOD], off=("call-forms",))
    assert result.solved
    prompt = model.prompts[1][-1].content
    assert "Facts from the task and the Go documentation:" in prompt
    assert "`strconv.Atoi(s)` returns 2 values (int, error)" in prompt
    assert "`v, err := strconv.Atoi(s)`" in prompt
    _, model = _loop([BAD, GOOD], off=("call-forms", "type-facts"))
    assert "returns 2 values" not in model.prompts[1][-1].content


def test_call_forms_builds_the_two_value_call_before_any_request():
    result, model = _loop([BAD, GOOD])
    assert result.solved and result.solved_at_round == 1 and len(model.prompts) == 1
    assert any("call-forms" in f for f in result.rounds_detail[0].fixes)
