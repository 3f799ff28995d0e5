"""Deterministic fixes: import edits on source text, and the compiler-driven pass against
what the real Go compiler reports."""

from __future__ import annotations

import pytest
from conftest import needs_go

from agent.golang.fixes import (
    FIX_KINDS,
    FIX_NAMES,
    AppliedFix,
    add_imports,
    apply_fixes,
    fix_imports_source,
    parse_imports,
    remove_imports,
)
from agent.golang.typefixes import convert_values, use_unused_vars
from agent.tasks.harness import check_task
from agent.tasks.spec import TaskSpec
from tools.diagnostics import Diagnostic, Kind
from tools.gofmt import gofmt_source

TEST = ('import "testing"\n\n'
        'func TestF(t *testing.T) {\n\tif F() != "A-B 3" {\n\t\tt.Fatal(F())\n\t}\n}\n')


def _compile(solution: str):
    task = TaskSpec(id="fixes", prompt="p", tests=TEST)
    return check_task(task, {"solution.go": solution})


# -- import edits on text -----------------------------------------------------------------

def test_parse_imports_single_grouped_aliases():
    src = ('package x\n\nimport "fmt"\nimport (\n\tmr "math/rand"\n\t_ "embed"\n'
           '\t. "strings" // dot\n\t"os"\n)\n\nfunc F() {}\n')
    specs = parse_imports(src).specs
    assert [(s.name, s.path) for s in specs] == [
        (None, "fmt"), ("mr", "math/rand"), ("_", "embed"), (".", "strings"), (None, "os")]


def test_remove_imports_keeps_blank_and_dot_and_drops_empty_decls():
    src = ('package x\n\nimport "fmt"\n\nimport (\n\tmr "math/rand"\n\t_ "os"\n'
           '\t. "strings"\n\t"os" // trailing comment\n)\n\nfunc F() {}\n')
    out, removed = remove_imports(src, [("fmt", None), ("math/rand", "mr"), ("os", None),
                                        ("strings", None)])
    assert removed == ['"fmt"', 'mr "math/rand"', '"os"']
    assert out == 'package x\n\n\nimport (\n\t_ "os"\n\t. "strings"\n)\n\nfunc F() {}\n'


def test_remove_alias_only_when_the_alias_matches():
    src = 'package x\n\nimport (\n\tr "math/rand"\n\t"math/rand/v2"\n)\n'
    out, removed = remove_imports(src, [("math/rand", None)])
    assert removed == [] and out == src
    out, _ = remove_imports(src, [("math/rand", "r")])
    assert out == 'package x\n\nimport (\n\t"math/rand/v2"\n)\n'


def test_remove_whole_group():
    out, _ = remove_imports('package x\n\nimport (\n\t"fmt"\n)\n\nvar A = 1\n', [("fmt", None)])
    assert out == "package x\n\n\nvar A = 1\n"


def test_add_imports_in_every_layout():
    assert add_imports("package x\n\nfunc F() {}\n", ["strings"]) == (
        'package x\n\nimport "strings"\n\nfunc F() {}\n')
    assert add_imports("package x\n", ["strings", "sort"]) == (
        'package x\n\nimport (\n\t"sort"\n\t"strings"\n)\n')
    # No package clause (task authors and HumanEval-X prompts leave it out).
    assert add_imports("func F() {}\n", ["os"]) == 'import "os"\n\nfunc F() {}\n'
    assert add_imports('package x\n\nimport "fmt"\n\nvar A', ["os"]) == (
        'package x\n\nimport "fmt"\nimport "os"\n\nvar A')
    grouped = 'package x\n\nimport (\n    "fmt"\n    "strings"\n)\n'
    assert add_imports(grouped, ["os", "bytes", "unicode"]) == (
        'package x\n\nimport (\n    "bytes"\n    "fmt"\n    "os"\n    "strings"\n'
        '    "unicode"\n)\n')
    assert add_imports(grouped, ["fmt"]) == grouped  # already there


def test_source_pass_adds_and_removes_std_imports():
    src = ('package x\n\nimport (\n\t"fmt"\n\tmr "math/rand"\n\t_ "embed"\n'
           '\t"example.com/thing"\n)\n\n'
           'func F() string {\n\ts := "sort.Ints(x) in a string"\n'
           '\t// math.Pi in a comment\n\treturn strings.ToUpper(s) + utf8.RuneError.String()\n}\n')
    out, fixes = fix_imports_source(src, "f.go")
    assert [f.detail for f in fixes] == [
        'removed import "fmt"', 'removed import mr "math/rand"',
        'added import "strings"', 'added import "unicode/utf8"']
    assert all(f.file == "f.go" for f in fixes)
    imports = [(s.name, s.path) for s in parse_imports(out).specs]
    # blank imports and unknown third-party imports are kept; nothing for sort or math
    assert imports == [("_", "embed"), (None, "example.com/thing"), (None, "strings"),
                       (None, "unicode/utf8")]


def test_source_pass_respects_locals_named_like_packages():
    src = ("package x\n\nfunc F(strings []string) int {\n\tsort := len(strings)\n"
           "\treturn sort + strings.Count\n}\n")
    assert fix_imports_source(src) == (src, [])
    # a field or method called like a package is not a use of it
    src = "package x\n\nfunc F(v T) int { return v.math.Floor + v.sort() }\n"
    assert fix_imports_source(src) == (src, [])


def test_source_pass_keeps_imports_used_only_in_types():
    src = 'package x\n\nimport "sync"\n\ntype C struct{ mu sync.Mutex }\n'
    assert fix_imports_source(src) == (src, [])


@needs_go
def test_gofmt_source():
    assert gofmt_source("package x\nfunc  F( ) {\nreturn}\n") == (
        "package x\n\nfunc F() {\n\treturn\n}\n")
    assert gofmt_source("package x\nfunc {") is None


# -- the compiler-driven pass ---------------------------------------------------------------

BROKEN = """package sandbox

import (
	"fmt"
	mr "math/rand"
	_ "embed"
	"os"
)

func F() string {
	words := strings.Fields("a b")
	sort.Strings(words)
	return strings.ToUpper(strings.Join(words, "-")) + " " + strconv.Itoa(3)
}
"""


@needs_go
def test_compiler_driven_fixes_make_it_build_and_pass():
    first = _compile(BROKEN)
    assert not first.built
    messages = {d.message for d in first.diagnostics}
    assert '"math/rand" imported as mr and not used' in messages
    assert "undefined: strings" in messages
    files = {"solution.go": BROKEN, "other.go": "package sandbox\n"}
    fixed, fixes = apply_fixes(files, first.diagnostics)
    assert fixed["other.go"] is files["other.go"]  # unchanged files are the same object
    assert {(f.name, f.detail) for f in fixes} == {
        ("unused-imports", 'removed import "fmt"'),
        ("unused-imports", 'removed import mr "math/rand"'),
        ("unused-imports", 'removed import "os"'),
        ("missing-imports", 'added import "sort"'),
        ("missing-imports", 'added import "strconv"'),
        ("missing-imports", 'added import "strings"'),
    }
    assert all(f.file == "solution.go" for f in fixes)
    assert '_ "embed"' in fixed["solution.go"]
    assert _compile(fixed["solution.go"]).passed


@needs_go
def test_undefined_function_named_like_a_package_gets_no_import():
    src = ("package sandbox\n\nfunc F() string {\n\txs := []int{2, 1}\n\tsort(xs)\n"
           '\treturn "A-B 3"\n}\n')
    result = _compile(src)
    assert "undefined: sort" in {d.message for d in result.diagnostics}
    fixed, fixes = apply_fixes({"solution.go": src}, result.diagnostics,
                               ["unused-imports", "missing-imports"])
    assert fixes == [] and fixed["solution.go"] is src


def test_apply_fixes_switches_and_matching():
    src = 'package x\n\nimport "os"\n\nfunc  F() {}\n'
    diags = [Diagnostic(file="./pkg/a.go", line=3, column=8, message='"os" imported and not used',
                        kind=Kind.compile)]
    # the diagnostic's path names the file by its full relative path
    fixed, fixes = apply_fixes({"pkg/a.go": src}, diags, ["unused-imports"])
    assert fixes == [AppliedFix(name="unused-imports", file="pkg/a.go",
                                detail='removed import "os"')]
    assert fixed["pkg/a.go"] == "package x\n\n\nfunc  F() {}\n"
    # disabled: nothing happens
    fixed, fixes = apply_fixes({"pkg/a.go": src}, diags, ["missing-imports"])
    assert fixes == [] and fixed == {"pkg/a.go": src}
    with pytest.raises(ValueError, match="unknown fix"):
        apply_fixes({}, [], ["gofmt", "magic"])
    assert FIX_KINDS == ("gofmt", "unused-imports", "missing-imports", "unused-decls",
                         "unused-vars", "conversions", "printf", "extra-results",
                         "value-forms", "call-forms", "name-clash", "spec-declarations")
    # The loop's levers share the switch; apply_fixes accepts and ignores them.
    assert FIX_NAMES[len(FIX_KINDS):] == ("never-worse", "grounding", "signatures",
                                          "repeat-lines", "code-first", "hidden-resample",
                                          "spread", "switch-on-copy", "explain-panics",
                                          "probe-edges", "go-pitfalls", "run-trace",
                                          "type-facts", "rewrite-body", "switch-on-same",
                                          "run-values", "one-token")
    assert FIX_NAMES[:len(FIX_KINDS)] == FIX_KINDS
    assert apply_fixes({"pkg/a.go": src}, diags, ["grounding"]) == ({"pkg/a.go": src}, [])


@needs_go
def test_gofmt_fix_is_recorded_only_when_it_changes_something():
    messy = "package x\nfunc  F() {}\n"
    fixed, fixes = apply_fixes({"a.go": messy, "b.go": "package x\n", "c.go": "func {"}, [])
    assert [f.file for f in fixes] == ["a.go"] and fixes[0].name == "gofmt"
    assert fixed["a.go"] == "package x\n\nfunc F() {}\n"
    assert fixed["c.go"] == "func {"  # unparsable: left alone


PASSING_TEST = ('import "testing"\n\nfunc TestCheck(t *testing.T) {\n'
                '\tif Check(1) != nil || Check(9) == nil {\n\t\tt.Fatal("Check")\n\t}\n}\n')


@needs_go
def test_spec_declarations_fill_in_what_the_prompt_declares():
    from agent.golang.fixes import apply_fixes, spec_declarations

    spec = ("Use these:\n\n    var ErrEmpty = errors.New(\"empty\")\n    const Limit = 3\n"
            "    type Celsius float64\n    type Box struct { /* your fields */ }\n")
    decls = spec_declarations(spec)
    assert set(decls) == {"ErrEmpty", "Limit", "Celsius"}
    src = ("package sandbox\n\nfunc Check(n int) error {\n\tif n > Limit {\n"
           "\t\treturn ErrEmpty\n\t}\n\treturn nil\n}\n")
    result = check_task(TaskSpec(id="t", prompt=spec, tests=PASSING_TEST), {"solution.go": src})
    fixed, fixes = apply_fixes({"solution.go": src}, result.diagnostics, spec=spec)
    assert [f.name for f in fixes if f.name != "gofmt"] == ["spec-declarations"] * 2
    assert 'var ErrEmpty = errors.New("empty")' in fixed["solution.go"]
    # The next pass adds the import the declaration needs.
    again = check_task(TaskSpec(id="t", prompt=spec, tests=PASSING_TEST), fixed)
    fixed2, fixes2 = apply_fixes(fixed, again.diagnostics, spec=spec)
    assert any(f.detail == 'added import "errors"' for f in fixes2)
    assert check_task(TaskSpec(id="t", prompt=spec, tests=PASSING_TEST), fixed2).passed


UNUSED_VARS_SRC = """package sandbox

import "fmt"

func Count(s string, m map[string]int) int {
	total := 0
	spare := len(s) * 2
	for i, c := range s {
		if c == 'a' {
			total++
		}
	}
	if v, ok := m[s]; ok {
		total += 10
	} else if w, ok := m["é"]; ok {
		total += 20
	}
	f := func() int {
		return 1
	}
	var (
		unusedInBlock int
		two           = 2
	)
	total += two
	return total
}

func Kind(x any) string {
	switch v := x.(type) {
	case int:
		return "int"
	}
	return "other"
}
"""


@needs_go
def test_unused_vars_are_marked_used_after_their_declaration():
    task = TaskSpec(id="t", prompt="p", tests=(
        'import "testing"\n\nfunc TestCount(t *testing.T) {\n'
        '\tif got := Count("banana", nil); got != 3 {\n\t\tt.Fatalf("got %d", got)\n\t}\n}\n'))
    before = check_task(task, {"solution.go": UNUSED_VARS_SRC})
    unused = sorted(d.message for d in before.diagnostics if "declared and not used" in
                    d.message)
    assert len(unused) >= 6, unused
    fixed, fixes = apply_fixes({"solution.go": UNUSED_VARS_SRC}, before.diagnostics)
    names = [f.detail.split()[0] for f in fixes if f.name == "unused-vars"]
    # The type-switch binding has no statement to follow: left for the model.
    assert sorted(names) == sorted(["spare", "i", "v", "w", "f", "unusedInBlock"])
    assert "unused-imports" in [f.name for f in fixes]  # same pass, positions intact
    after = check_task(task, fixed)
    left = [d.message for d in after.diagnostics if d.kind.value == "compile"]
    assert left == ["v declared and not used"], left  # only the type switch's v
    src = fixed["solution.go"]
    assert "\tspare := len(s) * 2\n\t_ = spare\n" in src
    assert "for i, c := range s {\n\t\t_ = i\n" in src
    assert "} else if w, ok := m[\"é\"]; ok {\n\t\t_ = w\n" in src
    assert "\t\treturn 1\n\t}\n\t_ = f\n" in src


UNUSED_DECLS_SRC = """package sandbox

import "strings"

func Initials(name string) string {
	var out []rune
	count := 0
	var label string
	var ready = false
	buf := []byte{}
	n := len(name)
	var ptr *int = nil
	var spare int = 7 // seven
	for _, w := range strings.Fields(name) {
		out = append(out, []rune(w)[0])
	}
	return string(out)
}

func Other() int {
	other := 1
	return 0
}

func Shadow() int {
	x := 1
	if true {
		x := 2
		return x
	}
	return 0
}
"""


@needs_go
def test_unused_declarations_that_do_nothing_are_removed_not_silenced():
    task = TaskSpec(id="t", prompt="p", tests=(
        'import "testing"\n\nfunc TestI(t *testing.T) {\n'
        '\tif Initials("ada lovelace") != "al" {\n\t\tt.Fatal("x")\n\t}\n}\n'))
    before = check_task(task, {"solution.go": UNUSED_DECLS_SRC})
    fixed, fixes = apply_fixes({"solution.go": UNUSED_DECLS_SRC}, before.diagnostics)
    removed = sorted(f.detail.split()[0] for f in fixes if f.name == "unused-decls")
    silenced = sorted(f.detail.split()[0] for f in fixes if f.name == "unused-vars")
    # A plain value, a zero value, an empty literal, a typed nil: the line goes.
    assert removed == ["buf", "count", "label", "other", "ptr", "ready", "spare"]
    # A call (`len`) may matter; a name used twice in the file (x) is not provably one
    # variable: those keep their line and are marked used.
    assert silenced == ["n", "x"]
    src = fixed["solution.go"]
    assert "count := 0" not in src and "var label string" not in src
    assert "\tn := len(name)\n\t_ = n\n" in src
    assert not [d for d in check_task(task, fixed).diagnostics if d.kind is Kind.compile]
    # Off: the old way for every one of them.
    _, fixes = apply_fixes({"solution.go": UNUSED_DECLS_SRC}, before.diagnostics,
                           [f for f in FIX_KINDS if f != "unused-decls"])
    assert not [f for f in fixes if f.name == "unused-decls"]


def test_unused_var_at_a_wrong_position_is_left_alone():
    src = "package x\n\nfunc F() {\n\ta := 1\n}\n"
    assert use_unused_vars(src, [(4, 2, "b")]) == (src, [])
    assert use_unused_vars(src, [(40, 2, "a")]) == (src, [])
    new, done = use_unused_vars("package x\n\nfunc F() { a := 1 }\n", [(3, 12, "a")])
    assert done == ["a"] and "a := 1 ; _ = a; }" in new


CONVERSIONS_SRC = """package sandbox

type Acc struct{ bal int }

func (a *Acc) Balance() int { return a.bal }

type Pair struct{ v int64 }

func Score(s string, a *Acc) (int, int64, Pair) {
	var n int
	for _, c := range s {
		n = c
	}
	var b byte = 'x'
	var total int = a.Balance
	return int(b) + total, n, Pair{v: b}
}

func Offset(c rune) int { return c - 'a' }

func Name(a *Acc) string { return a.bal }
"""


@needs_go
def test_conversions_the_compiler_names_are_applied():
    task = TaskSpec(id="t", prompt="p", tests=(
        'import "testing"\n\nfunc TestOffset(t *testing.T) {\n'
        '\tif Offset(\'c\') != 2 {\n\t\tt.Fatal("Offset")\n\t}\n}\n'))
    before = check_task(task, {"solution.go": CONVERSIONS_SRC})
    fixed, fixes = apply_fixes({"solution.go": CONVERSIONS_SRC}, before.diagnostics)
    done = sorted(f.detail for f in fixes if f.name == "conversions")
    assert done == sorted(["c → int(c)", "a.Balance → a.Balance()", "n → int64(n)",
                           "b → int64(b)", "c - 'a' → int(c - 'a')"])
    src = fixed["solution.go"]
    assert "return int(c - 'a')" in src and "var total int = a.Balance()" in src
    after = check_task(task, fixed)
    # An int is no string: no conversion is guessed for that one.
    assert [d.message for d in after.diagnostics if d.kind.value == "compile"] == [
        "cannot use a.bal (variable of type int) as string value in return statement"]


def test_conversion_is_applied_only_where_the_expression_is():
    src = "package x\n\nfunc F(c rune) int { return c }\n"
    new, done = convert_values(src, [(3, 29, "c", "int(c)")])
    assert done == ["c → int(c)"] and "return int(c)" in new
    assert convert_values(src, [(3, 22, "c", "int(c)")]) == (src, [])


MISMATCH_SRC = """package sandbox

func Shift(r rune, k int) rune {
	r = r + k
	return r
}

func Code(n int, c rune) int {
	n = n + (c - 'a') * 26
	x := n*2 + c
	return n + x
}

func Ratio(a int, b float64) bool { return a < b }
"""


@needs_go
def test_mismatched_numeric_operands_are_converted_without_truncating():
    task = TaskSpec(id="t", prompt="p", tests=(
        'import "testing"\n\nfunc TestShift(t *testing.T) {\n'
        "\tif Shift('a', 2) != 'c' || Code(1, 'b') != 179 || !Ratio(1, 1.5) {\n"
        '\t\tt.Fatal("wrong")\n\t}\n}\n'))
    before = check_task(task, {"solution.go": MISMATCH_SRC})
    assert sum("mismatched types" in d.message for d in before.diagnostics) == 4
    fixed, fixes = apply_fixes({"solution.go": MISMATCH_SRC}, before.diagnostics)
    src = fixed["solution.go"]
    assert "r = r + rune(k)" in src
    assert "n = n + int((c-'a')*26)" in src  # the whole right operand, not just `26`
    assert "x := n*2 + int(c)" in src  # matched despite gofmt's spacing
    # Reported at `b`, matched from `a`; the int becomes the float, never the reverse.
    assert "return float64(a) < b" in src
    assert len([f for f in fixes if f.name == "conversions"]) == 4
    after = check_task(task, fixed)
    assert after.passed, after.diagnostics


TEXT_MISMATCH_SRC = """package sandbox

func Build(rs []rune, b byte) string {
	s := ""
	for _, r := range rs {
		s += r
	}
	t := s + b
	if s == b {
		return ""
	}
	return t
}

func Back(r rune, s string) rune {
	r += s
	return r
}
"""


@needs_go
def test_a_character_meeting_text_becomes_a_one_character_string():
    task = TaskSpec(id="t", prompt="p", tests=(
        'import "testing"\n\nfunc TestBuild(t *testing.T) {\n'
        '\tif Build([]rune("ab"), \'c\') != "abc" {\n\t\tt.Fatal("wrong")\n\t}\n}\n'))
    before = check_task(task, {"solution.go": TEXT_MISMATCH_SRC})
    assert sum("mismatched types string and" in d.message for d in before.diagnostics) == 3
    fixed, fixes = apply_fixes({"solution.go": TEXT_MISMATCH_SRC}, before.diagnostics)
    assert len([f for f in fixes if f.name == "conversions"]) == 3
    src = fixed["solution.go"]
    assert "s += string(r)" in src and "t := s + string(b)" in src
    assert "if s == string(b) {" in src
    # A rune variable cannot hold text: no conversion is guessed there.
    assert "r += s" in src
    after = check_task(task, fixed)
    assert [d.message for d in after.diagnostics if d.kind.value == "compile"] == [
        "invalid operation: r += s (mismatched types rune and string)"]


EXTRA_SRC = """package sandbox

import "strconv"

var va = strconv.Atoi("10")

func Sum(a, b string) int {
	x := strconv.Atoi(a)
	var y int
	y = strconv.Atoi(b) // the second value
	return x + y + va
}
"""


@needs_go
def test_a_second_result_left_out_is_taken_as_blank():
    task = TaskSpec(id="t", prompt="p", tests=(
        'import "testing"\n\nfunc TestSum(t *testing.T) {\n'
        '\tif Sum("1", "2") != 13 {\n\t\tt.Fatal("wrong")\n\t}\n}\n'))
    files = {"solution.go": EXTRA_SRC}
    before = check_task(task, files)
    assert len(before.diagnostics) == 3  # two wordings, both placed at the call
    fixed, fixes = apply_fixes(files, before.diagnostics)
    src = fixed["solution.go"]
    assert "var va, _ = strconv.Atoi" in src and "x, _ := strconv.Atoi(a)" in src
    assert "y, _ = strconv.Atoi(b) // the second value" in src
    assert next(f.detail for f in fixes if f.name == "extra-results") == (
        "va → va, _ (the second result dropped)")
    assert check_task(task, fixed).passed
    # Switched off, nothing is guessed; nor where the call is not a lone name's value.
    assert apply_fixes(files, before.diagnostics,
                       [f for f in FIX_KINDS if f != "extra-results"])[0] == files
    other = {"solution.go": EXTRA_SRC.replace("x := strconv.Atoi(a)",
                                              "x := 1 + strconv.Atoi(a)")}
    diags = check_task(task, other).diagnostics
    fixed, _ = apply_fixes(other, diags, [f for f in FIX_KINDS if f != "call-forms"])
    assert "x := 1 + strconv.Atoi(a)" in fixed["solution.go"]
    # There call-forms takes the call on a line of its own.
    fixed, _ = apply_fixes(other, diags)
    assert "\tv, _ := strconv.Atoi(a)\n\tx := 1 + v\n" in fixed["solution.go"]
    # A lone call whose arguments run over lines is still all of the value.
    split = {"solution.go": EXTRA_SRC.replace("x := strconv.Atoi(a)",
                                              "x := strconv.Atoi(\n\t\ta,\n\t)")}
    fixed, _ = apply_fixes(split, check_task(task, split).diagnostics)
    assert "x, _ := strconv.Atoi(\n\t\ta,\n\t)" in fixed["solution.go"]
    assert check_task(task, fixed).passed


PRINTF_SRC = """package sandbox

import "fmt"

func Label(name string, n int, fill rune, x float64) string {
	return fmt.Sprintf("%s:%s|%-4d|%s|%.2f", name, fill, name, n, n) + fmt.Sprint(x)
}
"""


@needs_go
def test_printf_verbs_vet_rejects_become_the_ones_that_print_the_value():
    task = TaskSpec(id="t", prompt="p", tests=(
        'import "testing"\n\nfunc TestLabel(t *testing.T) {\n'
        '\tif Label("a", 3, \'-\', 1) == "" {\n\t\tt.Fatal("Label")\n\t}\n}\n'))
    files = {"solution.go": PRINTF_SRC}
    before = check_task(task, files)
    assert before.diagnostics and all(d.kind.value == "vet" for d in before.diagnostics)
    assert apply_fixes(files, before.diagnostics, [f for f in FIX_KINDS if f != "printf"]
                       ) == (files, [])
    done, result = [], before
    for _ in range(4):  # vet names one verb per call at a time
        files, fixes = apply_fixes(files, result.diagnostics)
        if not fixes:
            break
        done += [f.detail for f in fixes if f.name == "printf"]
        result = check_task(task, files)
    # A rune given to %s is a character; anything else prints as its value. %.2f on an
    # int keeps its verb: %.2v would pad an integer with zeros.
    assert done == ["%s → %c for fill (rune)", "%-4d → %-4v for name (string)",
                    "%s → %v for n (int)"]
    assert 'fmt.Sprintf("%s:%c|%-4v|%v|%.2f", name, fill, name, n, n)' in files["solution.go"]
    assert [d.message for d in result.diagnostics] == [
        "fmt.Sprintf format %.2f has arg n of wrong type int"]


ARITY_SRC = """package sandbox

import "fmt"

func Center(s string, fill rune, left int) string {
	return fmt.Sprintf("%s%s", s[:left], fill, s[left:])
}

func Triple(a, b, c int) string {
	return fmt.Sprintf("%d", a, b, c) + fmt.Sprintf("%d-%d", a, b, c)
}
"""


@needs_go
def test_a_verbs_only_format_given_more_values_prints_them_all():
    task = TaskSpec(id="t", prompt="p", tests=(
        'import "testing"\n\nfunc TestCenter(t *testing.T) {\n'
        '\tif got := Center("ab", \'*\', 1); got != "a*b" {\n\t\tt.Fatal(got)\n\t}\n}\n'))
    files = {"solution.go": ARITY_SRC}
    before = check_task(task, files)
    assert [d.message for d in before.diagnostics] == [
        "fmt.Sprintf format %s has arg fill of wrong type rune",
        "fmt.Sprintf call needs 1 arg but has 3 args",
        "fmt.Sprintf call needs 2 args but has 3 args"]
    fixed, fixes = apply_fixes(files, before.diagnostics)
    src = fixed["solution.go"]
    # The verb fixed and the missing one added in one edit: vet would name the missing
    # one next, and never-worse would see one fault traded for another.
    assert 'fmt.Sprintf("%s%c%v", s[:left], fill, s[left:])' in src
    assert 'fmt.Sprintf("%d%v%v", a, b, c)' in src
    # With text between the verbs, where the extra value goes is a guess: left.
    assert 'fmt.Sprintf("%d-%d", a, b, c)' in src
    assert [f.detail for f in fixes if f.name == "printf"] == [
        '%s → %c for fill (rune); "%s%s" given 3 values → "%s%s%v"',
        '"%d" given 3 values → "%d%v%v"']
    after = check_task(task, fixed)
    assert [d.message for d in after.diagnostics] == [
        "fmt.Sprintf call needs 2 args but has 3 args"]
    assert apply_fixes(files, before.diagnostics, [f for f in FIX_KINDS if f != "printf"]
                       ) == (files, [])


@needs_go
def test_the_loop_fixes_printf_verbs_one_vet_report_at_a_time():
    from agent.loop.config import LoopConfig
    from agent.loop.problem import problem_from_task
    from agent.loop.repair import RepairLoop
    from agent.loop.trajectory import Trajectory
    from agent.models.replay import ReplayModel

    task = TaskSpec(id="frame", prompt="Write `Frame(s string, fill rune) string`.", tests=(
        'import "testing"\n\nfunc TestFrame(t *testing.T) {\n'
        '\tif got := Frame("ab", \'*\'); got != "*ab*" {\n\t\tt.Fatalf("got %q", got)\n'
        '\t}\n}\n'))
    answer = ('```go\npackage sandbox\n\nimport "fmt"\n\nfunc Frame(s string, fill rune) '
              'string {\n\treturn fmt.Sprintf("%s%s%s", fill, s, fill)\n}\n```\n')
    result = RepairLoop(ReplayModel([answer]), LoopConfig(max_rounds=1)).run(
        problem_from_task(task), Trajectory())
    assert result.solved
    assert result.rounds_detail[0].fixes == [
        "printf solution.go: %s → %c for fill (rune)",
        "printf solution.go: %s → %c for fill (rune)"]


POINTER_SRC = """package sandbox

type Shape interface{ Area() float64 }

type Rect struct{ W, H float64 }

func (r *Rect) Area() float64 {
	r.W *= 1
	return r.W * r.H
}

func make2() Rect { return Rect{W: 1, H: 1} }

func Shapes() []Shape {
	r := Rect{W: 1, H: 2}
	var s Shape = r
	return []Shape{Rect{W: 2, H: 3}, s}
}

func Made() Shape { return make2() }
"""
SHAPES_TEST = (
    'import "testing"\n\nfunc TestShapes(t *testing.T) {\n'
    '\tif got := Shapes()[0].Area(); got != 6 {\n\t\tt.Fatal(got)\n\t}\n'
    '\tvar s Shape = Rect{W: 1, H: 1}\n\t_ = s\n}\n')


@needs_go
def test_a_value_whose_method_has_a_pointer_receiver_is_given_by_address():
    # Area writes through its receiver: it keeps the pointer, and each use in our file
    # gets `&`; a call's result has no address, and the test file is not ours to edit.
    task = TaskSpec(id="t", prompt="p", tests=SHAPES_TEST)
    before = check_task(task, {"solution.go": POINTER_SRC})
    fixed, fixes = apply_fixes({"solution.go": POINTER_SRC}, before.diagnostics)
    assert sorted(f.detail for f in fixes if f.name == "conversions") == [
        "Rect{…} → &Rect{…} (Area has a pointer receiver)",
        "r → &r (Area has a pointer receiver)"]
    src = fixed["solution.go"]
    assert "var s Shape = &r" in src and "return []Shape{&Rect{W: 2, H: 3}, s}" in src
    after = check_task(task, fixed)
    assert sorted(d.message.split(":")[0] for d in after.diagnostics) == [
        "cannot use Rect{…} (value of struct type Rect) as Shape value in variable declaration",
        "cannot use make2() (value of struct type Rect) as Shape value in return statement"]
    _, off = apply_fixes({"solution.go": POINTER_SRC}, before.diagnostics,
                         [f for f in FIX_KINDS if f != "conversions"])
    assert not [f for f in off if "pointer receiver" in f.detail]


@needs_go
def test_a_method_that_changes_nothing_through_its_pointer_is_declared_on_the_value():
    # Read-only Area: declared on Rect, every use compiles, the test file's own included.
    reader = POINTER_SRC.replace("\tr.W *= 1\n", "")
    task = TaskSpec(id="t", prompt="p", tests=SHAPES_TEST)
    before = check_task(task, {"solution.go": reader})
    assert any("_test.go" in (d.file or "") for d in before.diagnostics)
    fixed, fixes = apply_fixes({"solution.go": reader}, before.diagnostics)
    assert [f.detail for f in fixes if f.name == "conversions"] == [
        "func (r *Rect) Area → func (r Rect) Area (it changes nothing through r)"]
    assert "func (r Rect) Area() float64 {" in fixed["solution.go"]
    assert check_task(task, fixed).passed


def test_a_receiver_is_kept_when_the_method_may_write_through_it():
    from agent.golang.typefixes import receiver_edits
    from tools.diagnostics import Diagnostic, Kind

    def edits(body: str, lock: bool = False) -> list[str]:
        typ = "type T struct{ n int" + ("; mu sync.Mutex" if lock else "") + " }\n\n"
        msg = ("cannot use T{} (value of struct type T) as I value in return statement: "
               "T does not implement I (method M has pointer receiver)")
        d = Diagnostic(file="x_test.go", line=1, column=1, message=msg, kind=Kind.compile)
        return [e.detail for e in receiver_edits(
            f"package p\n\n{typ}func (t *T) M() int {{ {body} }}\n", [d])]

    assert edits("return t.n * 2")  # read only; * is multiplication here
    assert edits('return len(fmt.Sprint(t.n, t.n))')  # commas inside a call
    for writes in ("t.n = 1; return 0", "t.n++; return 0", "t.n += 2; return 0",
                   "t.n, t.n = 1, 2; return 0", "return *t", "p := &t.n; return *p",
                   "return t.other()", "return use(t)"):
        assert edits(writes) == [], writes
    assert edits("return t.n", lock=True) == []  # a copied lock is no lock
    # A result type's braces are not the body: the write after them still counts.
    typ = "type T struct{ n int }\n\n"
    msg = ("cannot use T{} (value of struct type T) as I value in return statement: "
           "T does not implement I (method M has pointer receiver)")
    d = Diagnostic(file="x_test.go", line=1, column=1, message=msg, kind=Kind.compile)
    assert receiver_edits(f"package p\n\n{typ}func (t *T) M() interface{{}} "
                          "{ t.n = 1; return nil }\n", [d]) == []
    assert receiver_edits(f"package p\n\n{typ}func (t *T) M() interface{{}} "
                          "{ return t.n }\n", [d])


FORMS_SRC = """package sandbox

import (
	"fmt"
	"strings"
)

const digits = map[rune]int{'a': 1, 'b': 2}

const (
	sep   = ","
	names = []string{"x", "y"}
)

func F(n int, out *[]int) string {
	const local = map[string]int{"a": 1}
	var parts [2]string
	parts[0], parts[1] = names[0], names[1]
	var b strings.Builder
	b.WriteString("ab")
	rs := []rune{}
	rs = append(rs, fmt.Sprintf("%d", n))
	bs := []byte{}
	bs = append(bs, parts[1])
	out = append(out, len(b), digits['b'], local["a"])
	return strings.Join(parts, sep) + string(rs) + string(bs)
}
"""
FORMS_TEST = ('import "testing"\n\nfunc TestF(t *testing.T) {\n\tvar xs []int\n'
              '\tif got := F(7, &xs); got != "x,y7y" || len(xs) != 3 || xs[0] != 2 {\n'
              '\t\tt.Fatal(got, xs)\n\t}\n}\n')


@needs_go
def test_values_in_a_form_go_rejects_take_the_form_it_accepts():
    task = TaskSpec(id="t", prompt="p", tests=FORMS_TEST)
    files = {"solution.go": FORMS_SRC}
    before = check_task(task, files)
    assert not before.passed and len(before.diagnostics) == 7
    fixed, fixes = apply_fixes(files, before.diagnostics)
    # The compiler names the pointer appended to only once the rest of its line is
    # fixed: a second pass, as the loop makes.
    middle = check_task(task, fixed)
    assert [d.message.split(";")[0] for d in middle.diagnostics] == [
        "invalid append: argument must be a slice"]
    fixed, more = apply_fixes(fixed, middle.diagnostics)
    fixes += more
    src = fixed["solution.go"]
    for want in ("var digits = map", "var (\n\tsep", "\tvar local = map",
                 "append(rs, []rune(fmt.Sprintf(\"%d\", n))...)", "append(bs, parts[1]...)",
                 "*out = append(*out, b.Len(),", "strings.Join(parts[:], sep)"):
        assert want in src, want
    assert {f.name for f in fixes} == {"value-forms"}
    assert "len(b) → b.Len()" in [f.detail for f in fixes]
    assert check_task(task, fixed).passed
    # Switched off, nothing changes.
    assert apply_fixes(files, before.diagnostics,
                       [f for f in FIX_KINDS if f != "value-forms"])[0] == files


@needs_go
def test_value_forms_leave_what_has_a_second_reading():
    # A block leaning on iota stays const (var cannot repeat a spec); a string appended
    # among other values cannot be spread in its place.
    src = FORMS_SRC.replace('\tsep   = ","\n', '\tsep   = ","\n\tfirst = iota\n').replace(
        'rs = append(rs, fmt.Sprintf("%d", n))', "rs = append(rs, 'x', fmt.Sprintf(\"%d\", n))")
    task = TaskSpec(id="t", prompt="p", tests=FORMS_TEST)
    files = {"solution.go": src}
    fixed, _ = apply_fixes(files, check_task(task, files).diagnostics)
    out = fixed["solution.go"]
    assert "const (\n\tsep" in out and "var digits = map" in out
    assert "rs = append(rs, 'x', fmt.Sprintf(\"%d\", n))" in out


JOIN_SRC = """package sandbox

func Rotate(xs []int, k int) []int {
	if len(xs) == 0 {
		return xs
	}
	k %= len(xs)
	return xs[k:] + xs[:k]
}

func Wrap(words, pre []string) []string {
	out := pre + words + pre
	out += []string{"."}
	return out
}

func Pad(s string, n int) []rune {
	padded := make([]rune, n)
	for i := range padded {
		padded[i] = '*'
	}
	copy(padded[1:], s)
	return padded
}
"""
JOIN_TEST = ('import (\n\t"slices"\n\t"testing"\n)\n\nfunc TestJoin(t *testing.T) {\n'
             '\txs := []int{1, 2, 3, 4}\n'
             '\tif got := Rotate(xs[:3], 1); !slices.Equal(got, []int{2, 3, 1}) {\n'
             '\t\tt.Fatal(got)\n\t}\n'
             '\tif xs[3] != 4 {\n\t\tt.Fatal("Rotate wrote past its input", xs)\n\t}\n'
             '\tgot := Wrap([]string{"a"}, []string{"<"})\n'
             '\tif !slices.Equal(got, []string{"<", "a", "<", "."}) {\n\t\tt.Fatal(got)\n\t}\n'
             '\tif p := string(Pad("é", 3)); p != "*é*" {\n\t\tt.Fatal(p)\n\t}\n}\n')


@needs_go
def test_slices_joined_with_plus_are_concatenated_and_a_string_copied_as_runes():
    task = TaskSpec(id="t", prompt="p", tests=JOIN_TEST)
    files = {"solution.go": JOIN_SRC}
    fixes = []
    # The compiler names one `+` of a chain at a time: passes, as the loop makes them.
    for _ in range(3):
        res = check_task(task, files)
        if res.passed:
            break
        files, more = apply_fixes(files, res.diagnostics)
        fixes += more
    src = files["solution.go"]
    for want in ('import "slices"', "return slices.Concat(xs[k:], xs[:k])",
                 "out := slices.Concat(slices.Concat(pre, words), pre)",
                 'out = slices.Concat(out, []string{"."})', "copy(padded[1:], []rune(s))"):
        assert want in src, want
    assert {f.name for f in fixes} == {"value-forms"}
    assert check_task(task, files).passed
    # Switched off, nothing changes.
    first = check_task(task, {"solution.go": JOIN_SRC})
    assert apply_fixes({"solution.go": JOIN_SRC}, first.diagnostics,
                       [f for f in FIX_KINDS if f != "value-forms"])[0] == {
                           "solution.go": JOIN_SRC}


@needs_go
def test_a_plus_the_line_does_not_pin_down_is_left():
    # Two sums on one line start with the named operand: which is meant is a guess.
    src = JOIN_SRC.replace("return xs[k:] + xs[:k]",
                           "return append(xs[k:] + xs[:k], xs[k:] + xs[:1]...)")
    task = TaskSpec(id="t", prompt="p", tests=JOIN_TEST)
    files = {"solution.go": src}
    fixed, _ = apply_fixes(files, check_task(task, files).diagnostics)
    out = fixed["solution.go"]
    assert "append(xs[k:]+xs[:k], xs[k:]+xs[:1]...)" in out  # gofmt's spacing
    assert "slices.Concat(pre, words)" in out  # the line with one such sum is fixed


CALLS_SRC = """package sandbox

import "errors"

func min(x, y int) int {
	if x < y {
		return x
	}
	return y
}

func Smallest(a, b, c int, err error) (int, error) {
	if err != nil {
		return 0, errors.Wrap(err, "bad 100%")
	}
	if a < 0 {
		return 0, errors.Wrapf(errors.New("neg"), "a is %d", a)
	}
	if b < 0 {
		return 0, errors.Errorf("b is %d", b)
	}
	return min(a, b, c) + min(a, min(b, c), c, 0), nil
}
"""
CALLS_TEST = ('import (\n\t"errors"\n\t"testing"\n)\n\nfunc TestSmallest(t *testing.T) {\n'
              '\tif got, err := Smallest(5, 3, 4, nil); got != 3 || err != nil {\n'
              '\t\tt.Fatal(got, err)\n\t}\n'
              '\tbase := errors.New("io")\n'
              '\tif _, err := Smallest(1, 1, 1, base); !errors.Is(err, base) || '
              'err.Error() != "bad 100%: io" {\n\t\tt.Fatal(err)\n\t}\n'
              '\tif _, err := Smallest(-2, 1, 1, nil); err == nil || '
              'err.Error() != "a is -2: neg" {\n'
              '\t\tt.Fatal(err)\n\t}\n'
              '\tif _, err := Smallest(1, -1, 1, nil); err == nil || err.Error() != "b is -1" {\n'
              '\t\tt.Fatal(err)\n\t}\n}\n')


@needs_go
def test_calls_in_a_form_go_lacks_take_the_standard_form():
    task = TaskSpec(id="t", prompt="p", tests=CALLS_TEST)
    files = {"solution.go": CALLS_SRC}
    before = check_task(task, files)
    assert not before.passed and len(before.diagnostics) == 5
    fixed, fixes = apply_fixes(files, before.diagnostics)
    src = fixed["solution.go"]
    for want in ('fmt.Errorf("bad 100%%: %w", err)',
                 'fmt.Errorf("a is %d: %w", a, errors.New("neg"))', 'fmt.Errorf("b is %d", b)',
                 "min(min(a, b), c) + min(min(min(a, min(b, c)), c), 0)", 'import "fmt"'):
        assert want in src, want
    assert {f.name for f in fixes} == {"call-forms"}
    assert check_task(task, fixed).passed
    # With no other use left, `errors` goes in the same pass (never-worse judges one check).
    only = CALLS_SRC.replace('errors.New("neg")', "err")
    fixed, _ = apply_fixes({"solution.go": only},
                           check_task(task, {"solution.go": only}).diagnostics)
    assert '"errors"' not in fixed["solution.go"] and '"fmt"' in fixed["solution.go"]
    # Switched off, nothing changes.
    assert apply_fixes(files, before.diagnostics,
                       [f for f in FIX_KINDS if f not in ("call-forms", "gofmt")])[0] == files


@needs_go
def test_call_forms_leave_what_has_a_second_reading():
    # A format known only at run time has no literal to extend; a two-parameter function
    # of two types is no fold; a method (a selector) is not the file's function.
    src = CALLS_SRC.replace('"a is %d", a', "format, a").replace(
        "func Smallest(a, b, c int, err error)", "var format = \"%d\"\n\n"
        "func Smallest(a, b, c int, err error)")
    src = src.replace("func min(x, y int) int", "func min(x int, y int64) int").replace(
        "return y\n", "return int(y)\n")
    task = TaskSpec(id="t", prompt="p", tests=CALLS_TEST)
    files = {"solution.go": src}
    fixed, fixes = apply_fixes(files, check_task(task, files).diagnostics)
    out = fixed["solution.go"]
    assert "errors.Wrapf(errors.New(\"neg\"), format, a)" in out
    assert "min(a, b, c)" in out
    assert 'fmt.Errorf("bad 100%%: %w", err)' in out  # the rest is still fixed
    assert [f.detail.split(" ")[0] for f in fixes if f.name == "call-forms"] == [
        "errors.Wrap(…)", "errors.Errorf"]


CLASH_SRC = """package sandbox

type State string

type Order struct {
	ID, Count int
	State     State
	Notes     []string
}

func NewOrder() *Order {
	return &Order{ID: 1, State: "created"}
}

func (o *Order) State() State {
	return o.State
}

func (o *Order) Pay() {
	if o.State == "created" {
		o.State = "paid"
		o.Notes = append(o.Notes, string(o.State))
	}
}
"""
CLASH_TEST = ('import "testing"\n\nfunc TestOrder(t *testing.T) {\n\to := NewOrder()\n'
              '\to.Pay()\n\tif o.State() != "paid" || len(o.Notes) != 1 {\n'
              '\t\tt.Fatal(o.State(), o.Notes)\n\t}\n}\n')


@needs_go
def test_a_field_named_like_its_getter_takes_the_lower_case_name():
    task = TaskSpec(id="t", prompt="p", tests=CLASH_TEST)
    files = {"solution.go": CLASH_SRC}
    before = check_task(task, files)
    assert not before.passed and before.diagnostics
    fixed, fixes = apply_fixes(files, before.diagnostics)
    src = fixed["solution.go"]
    for want in ("\tstate     State\n", "&Order{ID: 1, state: \"created\"}",
                 "func (o *Order) State() State {\n\treturn o.state\n",
                 'if o.state == "created" {\n\t\to.state = "paid"', "string(o.state)"):
        assert want in src, want
    assert {f.name for f in fixes} == {"name-clash"}
    assert check_task(task, fixed).passed
    # Switched off, the field keeps its name (other fixes may still act on the uses).
    off, fixes = apply_fixes(files, before.diagnostics,
                             [f for f in FIX_KINDS if f != "name-clash"])
    assert "name-clash" not in {f.name for f in fixes}
    assert "\tState     State\n" in off["solution.go"]


@needs_go
def test_a_name_clash_with_a_second_reading_is_left():
    # Another struct with a State field makes `x.State` ambiguous; a `state` already in
    # the file would be shadowed or clash in turn.
    task = TaskSpec(id="t", prompt="p", tests=CLASH_TEST)
    for src in (CLASH_SRC + "\ntype Log struct {\n\tState State\n}\n",
                CLASH_SRC + "\nvar state = 1\n"):
        files = {"solution.go": src}
        _, fixes = apply_fixes(files, check_task(task, files).diagnostics)
        assert "name-clash" not in {f.name for f in fixes}


TWO_SRC = """package sandbox

import "strconv"

func Sum(parts []string) int {
	total := 0
	for _, p := range parts {
		total += strconv.Atoi(p)
	}
	first := strconv.Atoi(parts[0]) * 10
	return total + first
}

func Pairs(parts []string) []int {
	var out []int
	for i := 0; i < len(parts); i++ {
		out = append(out, strconv.Atoi(parts[i]), strconv.Atoi(parts[i]))
	}
	return out
}
"""
TWO_TEST = ('import "testing"\n\nfunc TestSum(t *testing.T) {\n'
            '\tif got := Sum([]string{"1", "2"}); got != 13 {\n\t\tt.Fatal(got)\n\t}\n'
            '\tif got := Pairs([]string{"4"}); len(got) != 2 || got[1] != 4 {\n'
            '\t\tt.Fatal(got)\n\t}\n}\n')


@needs_go
def test_a_two_value_call_used_as_one_is_taken_on_its_own_line():
    task = TaskSpec(id="t", prompt="p", tests=TWO_TEST)
    files = {"solution.go": TWO_SRC}
    before = check_task(task, files)
    # The compiler names one error a line: the append's second call on a second pass.
    assert not before.passed and len(before.diagnostics) == 3
    fixed, fixes = apply_fixes(files, before.diagnostics)
    fixed, more = apply_fixes(fixed, check_task(task, fixed).diagnostics)
    fixes += more
    src = fixed["solution.go"]
    for want in ("\t\tv, _ := strconv.Atoi(p)\n\t\ttotal += v\n",
                 "\tv2, _ := strconv.Atoi(parts[0])\n\tfirst := v2 * 10\n",
                 "\t\tv3, _ := strconv.Atoi(parts[i])\n\t\tv4, _ := strconv.Atoi(parts[i])\n"
                 "\t\tout = append(out, v3, v4)\n"):
        assert want in src, want
    assert {f.name for f in fixes} == {"call-forms"}
    assert check_task(task, fixed).passed
    # A loop header runs its condition every time round: no line to put the call on.
    loop = TWO_SRC.replace("i < len(parts)", "i < strconv.Atoi(parts[0])")
    out, _ = apply_fixes({"solution.go": loop},
                         check_task(task, {"solution.go": loop}).diagnostics)
    assert "i < strconv.Atoi(parts[0])" in out["solution.go"]
