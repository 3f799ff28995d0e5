"""A built wheel carries the prompt templates and bundled suites, not just the code.

An editable install reads prompts/ and benchmarks/ from the checkout, so it hides a
missing package-data entry; this builds a real wheel, installs it into a bare directory
and imports from there, with the checkout out of sight.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Signs that pip could not *fetch* the build backend (no index, no network), as opposed
# to a broken project: only these make a wheel impossible here, and only they skip.
_OFFLINE_SIGNS = ("Could not find a version that satisfies", "No matching distribution",
                  "Failed to establish a new connection", "Network is unreachable",
                  "Temporary failure in name resolution")


def _pip(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, installed with --target into a bare directory (no dependencies)."""
    tmp = tmp_path_factory.mktemp("wheel")
    # Isolated first: it builds with the backend pyproject.toml asks for, exactly as a
    # user's `pip install .` does. Without isolation the venv's own setuptools is used,
    # which may be older than the project needs.
    attempts = [
        ["wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(ROOT)],
        ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"),
         str(ROOT)],
    ]
    failures: list[str] = []
    for argv in attempts:
        proc = _pip(*argv, cwd=tmp)
        if proc.returncode == 0:
            break
        failures.append(f"pip {' '.join(argv[:4])}: {(proc.stderr or proc.stdout)[-1500:]}")
    else:
        if any(sign in failures[0] for sign in _OFFLINE_SIGNS):
            pytest.skip("cannot build a wheel offline: pip could not fetch the build "
                        "backend and the local one failed:\n" + "\n".join(failures))
        pytest.fail("building the wheel failed:\n" + "\n".join(failures))
    wheels = sorted((tmp / "dist").glob("guild_agent-*.whl"))
    assert len(wheels) == 1, wheels
    site = tmp / "site"
    proc = _pip("install", "--no-deps", "-q", "--target", str(site), str(wheels[0]), cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return site


def _run_isolated(site: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The venv's site-packages stay visible (pydantic, click …: --no-deps skipped them),
    # but the checkout must not be: the editable install's path hook is bypassed by
    # putting the wheel's copy first and running from outside the repository.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)


def test_wheel_carries_prompts_and_suites(installed: Path, tmp_path: Path) -> None:
    code = """
        import json
        from importlib import resources

        import agent, benchmarks, prompts
        import tools.guard

        def files(root):
            out = []
            stack = [root]
            while stack:
                node = stack.pop()
                for child in node.iterdir():
                    (stack.append(child) if child.is_dir() else out.append(child))
            return out

        print(json.dumps({
            "agent": agent.__file__,
            "prompts": prompts.__file__,
            "templates": sorted(p.name for p in files(resources.files("prompts"))
                                if p.name.endswith(".j2")),
            "suites": sorted(str(p) for p in files(resources.files("benchmarks"))
                             if p.name.endswith((".yaml", ".yml"))),
            "guard_source": str(tools.guard.SOURCE) if tools.guard.SOURCE.is_file() else None,
        }))
    """
    proc = _run_isolated(installed, code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    import json

    found = json.loads(proc.stdout)
    # Imported from the wheel, not from the checkout.
    assert found["agent"].startswith(str(installed)), found["agent"]
    assert found["prompts"].startswith(str(installed)), found["prompts"]
    # Every template in the source tree made it into the wheel.
    expected = sorted(p.name for p in (ROOT / "prompts").glob("*.j2"))
    assert expected, "the checkout has no prompts/*.j2 templates"
    assert found["templates"] == expected
    assert found["suites"], "no bundled suite YAML in the wheel"
    assert any("/suite/" in s for s in found["suites"]), found["suites"]
    # The write guard's Go source, built on first use.
    assert (found["guard_source"] or "").startswith(str(installed)), found["guard_source"]


def test_wheel_cli_imports_and_runs(installed: Path, tmp_path: Path) -> None:
    code = """
        import sys
        from click.testing import CliRunner

        import agent.cli
        from agent.cli import main

        assert agent.cli.__file__.startswith(sys.argv[1]), agent.cli.__file__
        result = CliRunner().invoke(main, ["--version"])
        print(result.output.strip())
        sys.exit(result.exit_code)
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(installed)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(installed)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("guild-agent, version ")
