"""Tasks: the task spec, suite importers, the task harness (a Checker) and suite verification."""
