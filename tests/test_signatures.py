"""The signatures a task pins, read from prose, code blocks and Go source alike."""

from __future__ import annotations

from agent.golang.signatures import declared, mismatches

TASK = """Implement these:

    func Split(s string, n int) (head, tail string)
    func (q *Queue[T]) Push(v T)

```go
func Merge[T cmp.Ordered](a, b []T) []T {
	// your code
}
func Visit(f func(int) bool, xs ...int) (n int, err error)
func Done() chan struct{}
func main() {
```
Then func Helper returns (a value) of some kind, and TestSplit checks it.
"""


def test_declarations_are_read_by_their_types():
    sigs = declared(TASK)
    assert sorted(sigs) == ["Done", "Merge", "Queue.Push", "Split", "Visit", "main"]
    assert sigs["Split"].shape == "(string, int) (string, string)"
    assert sigs["Split"].text == "func Split(s string, n int) (head, tail string)"
    assert sigs["Queue.Push"].shape == "(T) ()"
    assert sigs["Merge"].shape == "[T cmp.Ordered]([]T, []T) ([]T)"
    assert sigs["Merge"].text == "func Merge[T cmp.Ordered](a, b []T) []T"
    assert sigs["Visit"].shape == "(func(int)bool, ...int) (int, error)"
    assert sigs["Done"].shape == "() (chan struct{})"


def test_only_a_different_type_or_a_missing_function_is_a_fact():
    same = ("package x\n\nfunc Split(str string, k int) (string, string) { return \"\", \"\" }\n"
            "func (queue *Queue[T]) Push(item T) {}\n")
    assert mismatches(TASK, {"x.go": same}, ["undefined: Merge"]) == [
        "The task declares `func Merge[T cmp.Ordered](a, b []T) []T`, and your code does "
        "not define Merge: the tests call it by that name and signature."]
    # Not called undefined by the compiler (another file may hold it): no fact; nor for
    # `main`, which a task may show only as an example.
    assert mismatches(TASK, {"x.go": same}, ["undefined: main"]) == []
    wrong = same.replace("(string, string)", "[]string").replace("\"\", \"\"", "nil")
    (fact,) = mismatches(TASK, {"x.go": wrong, "x_test.go": "func Split() {}"}, [])
    assert fact.startswith("The task declares `func Split(s string, n int) (head, tail "
                           "string)`; x.go declares `func Split(str string, k int) []string`.")


def test_prose_is_not_a_declaration():
    assert declared("The func returns (a value), and func F is called (once) twice.") == {}
    assert declared("func F(a int) is nice") == {}
