"""Code extraction from real-looking model output."""

from __future__ import annotations

import pytest

from agent.golang.extract import FormatError, extract_code


def one(text: str, package: str = "sandbox") -> str:
    files = extract_code(text, package=package).files
    assert list(files) == ["solution.go"]
    return files["solution.go"]


def test_fence_with_and_without_language_tag():
    assert "func A()" in one("```go\npackage x\nfunc A() {}\n```")
    assert "func A()" in one("```\npackage x\nfunc A() {}\n```")
    assert "func A()" in one("```golang\nfunc A() {}\n```")


def test_prose_around_code_is_ignored():
    src = one("Sure! Here:\n\n```go\nfunc A() int { return 1 }\n```\n\nThis returns 1.")
    assert src.startswith("package sandbox\n")
    assert "Sure" not in src and "returns 1." not in src


def test_missing_closing_fence_and_repetition():
    text = "```go\npackage sandbox\n\nfunc A() int {\n\treturn 1\n}\n" + "// again\n" * 40
    ext = extract_code(text, package="sandbox")
    assert "closed an unterminated code fence" in ext.notes
    assert ext.files["solution.go"].count("// again") <= 1


def test_truncated_last_function_is_dropped():
    text = "```go\nfunc A() int {\n\treturn 1\n}\n\nfunc B() int {\n\tfor {\n"
    src = one(text)
    assert "func A" in src and "func B" not in src


def test_package_main_and_stray_main_are_normalised():
    ext = extract_code('```go\npackage main\n\nimport "fmt"\n\nfunc A() int { return 1 }\n\n'
                       'func main() {\n\tfmt.Println(A())\n}\n```', package="shapes")
    src = ext.files["solution.go"]
    assert src.startswith("package shapes")
    assert "func main" not in src and "func main" in ext.dropped


def test_main_kept_when_main_package_asked():
    src = one("```go\npackage main\n\nfunc main() {}\n```", package="main")
    assert "func main()" in src


def test_model_written_tests_are_moved_aside():
    ext = extract_code('```go\npackage sandbox\n\nimport "testing"\n\nfunc A() int { return 1 }\n'
                       '\nfunc TestA(t *testing.T) {\n\tif A() != 1 {\n\t\tt.Fatal("x")\n\t}\n}\n'
                       '```\n\n```go\n// file: a_test.go\npackage sandbox\n```',
                       package="sandbox")
    src = ext.files["solution.go"]
    assert "TestA" not in src and '"testing"' not in src
    assert "func TestA" in ext.dropped
    assert any("a_test.go" in d for d in ext.dropped)


def test_several_named_files():
    text = ("**queue.go**\n```go\npackage q\n\ntype Q struct{}\n```\n\n"
            "```go\n// file: stack.go\npackage q\n\ntype S struct{}\n```\n")
    files = extract_code(text, package="q").files
    assert set(files) == {"queue.go", "stack.go"}
    assert "type S" in files["stack.go"]


def test_later_block_replaces_an_earlier_definition():
    text = ("```go\nfunc A() int { return 1 }\n```\nOops, fixed:\n"
            "```go\nfunc A() int { return 2 }\n```")
    src = one(text)
    assert "return 2" in src and "return 1" not in src


def test_unfenced_code():
    assert "func A" in one("package sandbox\n\nfunc A() int {\n\treturn 1\n}\nDone.")


def test_braces_inside_strings_and_comments():
    src = one('```go\nfunc A() string {\n\t// }\n\treturn "}{" + `}`\n}\n\nfunc B() {}\n```')
    assert "func B" in src and 'return "}{"' in src


def test_protected_and_test_files_refused():
    ext = extract_code("```go\n// file: types.go\npackage p\ntype T int\n```\n"
                       "```go\n// file: impl.go\npackage p\nfunc F() T { return 0 }\n```",
                       package="p", protected=frozenset({"types.go"}))
    assert list(ext.files) == ["impl.go"]


@pytest.mark.parametrize("text", ["", "no code here", "```python\nprint(1)\n```",
                                  "```go\nfunc TestOnly(t *testing.T) {}\n```"])
def test_nothing_usable_is_a_format_error(text):
    with pytest.raises(FormatError):
        extract_code(text, package="sandbox")


def test_line_numbers_copied_from_feedback_are_removed():
    text = ("```go\n    1 | package sandbox\n    2 | \n>   3 | func A() int {\n"
            "      | ^\n    4 | \treturn 1\n    5 | }\n```")
    ext = extract_code(text, package="sandbox")
    assert "func A() int {\n\treturn 1\n}" in ext.files["solution.go"]
    assert "|" not in ext.files["solution.go"]
    assert any("line-number" in n for n in ext.notes)


def test_junk_after_a_finished_function_does_not_swallow_it():
    text = ("```go\nfunc A() int {\n\treturn 1\n}\n\n// B does things\n"
            "   24 | \tfor i := range s {\n   25 | \t\tif x {\n")
    ext = extract_code(text, package="sandbox")
    assert "func A() int {\n\treturn 1\n}" in ext.files["solution.go"]
    assert "24 |" not in ext.files["solution.go"]


def test_copies_of_names_the_provided_files_declare_are_moved_aside():
    text = ("```go\npackage sandbox\n\ntype recorder struct{ w []string }\n\n"
            "func (r *recorder) Write(p []byte) (int, error) { return len(p), nil }\n\n"
            "type Stack struct{ xs []int }\n\n"
            "func (s *Stack) Push(x int) { s.xs = append(s.xs, x) }\n```\n")
    ext = extract_code(text, package="sandbox",
                       taken=frozenset({"recorder", "recorder.Write", "Stack.helper"}))
    src = ext.files["solution.go"]
    assert "type recorder" not in src and "func (r *recorder)" not in src
    # A test's method on a solution type does not make the type itself taken.
    assert "type Stack struct" in src and "func (s *Stack) Push" in src
    assert ext.dropped == ["type recorder (declared by the provided files)",
                           "func recorder.Write (declared by the provided files)"]


def test_fences_inside_a_numbered_list_are_dedented():
    text = ("Here is the plan:\n\n1. **The type:**\n   ```go\n   package sandbox\n\n"
            "   type Store struct {\n   \titems map[string]int\n   }\n   ```\n\n"
            "2. **The constructor:**\n   ```go\n   package sandbox\n\n"
            "   func NewStore() *Store {\n   \treturn &Store{items: map[string]int{}}\n"
            "   }\n   ```\n")
    ext = extract_code(text, package="sandbox")
    src = ext.files["solution.go"]
    assert "type Store struct {\n\titems map[string]int\n}" in src
    assert "func NewStore() *Store {\n\treturn &Store{items: map[string]int{}}\n}" in src
