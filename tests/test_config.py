"""Config files, environment variables and their precedence, through the real CLI.

`guild-agent config --json ARGS` shows what a command given ARGS would use and where each
value came from; the precedence table is checked value by value through it, and a real
`solve` run shows the files are read by the commands themselves.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from agent.cli import main
from agent.models import DEFAULT_MODEL, default_backend

ENV_NAMES = ("GUILD_AGENT_BACKEND", "GUILD_AGENT_MODEL", "GUILD_AGENT_BASE_URL",
             "GUILD_AGENT_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY",
             "GUILD_AGENT_PROBE_PORTS")


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A project folder (cwd) and a private user config folder; no settings in the env."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    # HOME stays: the Go build cache lives under it, and a cold one makes `solve` slow.
    xdg = tmp_path / "xdg"
    project = tmp_path / "project"
    for d in (xdg / "guild-agent", project):
        d.mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.chdir(project)
    return {"project": project / "guild-agent.toml",
            "user": xdg / "guild-agent" / "config.toml", "dir": project}


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def settings(*args: str, env: dict[str, str] | None = None) -> dict[str, dict]:
    res = run("config", "--json", "--no-probe", *args, env=env)
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    return {r["key"]: r for r in obj["settings"]}


# Each layer's value per key; None: the layer cannot set it (no such env var; a project
# file may not hold a secret).
LAYERS = ["flag", "env", "project", "user", "default"]
VALUES: dict[str, dict[str, object]] = {
    "backend": {"flag": "oracle", "env": "openai", "project": "replay", "user": "mlx"},
    "model": {"flag": "m-flag", "env": "m-env", "project": "m-project", "user": "m-user"},
    "base_url": {"flag": "http://127.0.0.1:9/flag", "env": "http://127.0.0.1:9/env",
                 "project": "http://127.0.0.1:9/project", "user": "http://127.0.0.1:9/user"},
    "api_key": {"flag": "k-flag", "env": "k-env", "project": None, "user": "k-user"},
    "max_rounds": {"flag": 2, "env": None, "project": 3, "user": 6},
    "temperature": {"flag": 0.5, "env": None, "project": 0.25, "user": 0.75},
}
ENV_OF = {"backend": "GUILD_AGENT_BACKEND", "model": "GUILD_AGENT_MODEL",
          "base_url": "GUILD_AGENT_BASE_URL", "api_key": "GUILD_AGENT_API_KEY"}
FLAG_OF = {"model": "--model", "base_url": "--base-url", "api_key": "--api-key",
           "max_rounds": "--max-rounds", "backend": "--backend",
           "temperature": "--temperature"}


def _toml(values: dict[str, object], dash: bool) -> str:
    lines = []
    for key, value in values.items():
        name = key.replace("_", "-") if dash else key
        lines.append(f"{name} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("strongest", LAYERS)
def test_precedence_value_by_value(place, strongest: str) -> None:
    """Layers from `strongest` down are set; each key shows the strongest that sets it."""
    active = LAYERS[LAYERS.index(strongest):]
    args: list[str] = []
    env: dict[str, str] = {}
    if "flag" in active:
        for key, flag in FLAG_OF.items():
            args += [flag, str(VALUES[key]["flag"])]
    if "env" in active:
        env = {ENV_OF[k]: str(v["env"]) for k, v in VALUES.items() if k in ENV_OF}
    if "project" in active:  # dashes in one file, underscores in the other: both work
        place["project"].write_text(_toml(
            {k: v["project"] for k, v in VALUES.items() if v["project"] is not None},
            dash=True))
    if "user" in active:
        place["user"].write_text(_toml({k: v["user"] for k, v in VALUES.items()},
                                       dash=False))
    got = settings("solve", *args, env=env)
    for key, by_layer in VALUES.items():
        layer = next((lay for lay in active if lay == "default" or by_layer.get(lay)
                      is not None), "default")
        row = got[key]
        want_source = {
            "flag": "flag",
            "env": f"env {ENV_OF.get(key)}",
            "project": f"project file {place['project']}",
            "user": f"user file {place['user']}",
        }.get(layer)
        if layer == "default":
            defaults = {"backend": default_backend(), "model": DEFAULT_MODEL,
                        "base_url": None, "api_key": None, "max_rounds": 4,
                        "temperature": 0.0}
            assert row["value"] == defaults[key], (key, row)
            assert row["source"].startswith("default"), (key, row)
            continue
        want = by_layer[layer]
        shown = "(set, hidden)" if key == "api_key" else want
        assert row["value"] == shown, (strongest, key, row)
        assert row["source"] == want_source, (strongest, key, row)


def test_sections_beat_the_top_and_reach_their_command_only(place) -> None:
    place["project"].write_text(
        "max_rounds = 3\nseed = 11\n[solve]\nmax_rounds = 9\n[bench]\nseed = 12\n"
        "[bench.run]\nsamples = 7\n[bench.verify]\nworkers = 3\n")
    solve = settings("solve")
    assert solve["max_rounds"]["value"] == 9 and solve["seed"]["value"] == 11
    bench = settings("bench")
    assert bench["max_rounds"]["value"] == 3
    assert bench["seed"]["value"] == 12 and bench["samples"]["value"] == 7
    verify = settings("bench", "verify")
    assert verify["workers"]["value"] == 3
    assert verify["workers"]["source"] == f"project file {place['project']}"


def test_project_file_is_found_in_a_parent_folder(place) -> None:
    place["project"].write_text("max_rounds = 8\n")
    deep = place["dir"] / "a" / "b"
    deep.mkdir(parents=True)
    os.chdir(deep)
    assert settings("solve")["max_rounds"]["value"] == 8


def test_relative_xdg_config_home_is_ignored(place, monkeypatch) -> None:
    # XDG says a relative value is invalid: the default ~/.config is used instead.
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(place["dir"].parent / "home"))
    home_cfg = Path(os.environ["HOME"]) / ".config" / "guild-agent" / "config.toml"
    home_cfg.parent.mkdir(parents=True)
    home_cfg.write_text("max_rounds = 5\n")
    row = settings("solve")["max_rounds"]
    assert row["value"] == 5 and row["source"] == f"user file {home_cfg}"


def test_openai_env_applies_to_the_openai_backend_only(place) -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/openai-env", "OPENAI_API_KEY": "sk-o"}
    # Not openai: OPENAI_BASE_URL (set for some other tool) changes nothing.
    plain = settings("solve", "--backend", "llama-cpp", env=env)
    assert plain["base_url"]["value"] is None and plain["backend"]["value"] == "llama-cpp"
    # openai: it beats the files, like any environment variable…
    place["project"].write_text('base_url = "http://127.0.0.1:9/project"\n')
    got = settings("solve", "--backend", "openai", env=env)
    assert got["base_url"]["value"] == "http://127.0.0.1:9/openai-env"
    assert got["base_url"]["source"] == "env OPENAI_BASE_URL"
    assert got["api_key"]["source"] == "env OPENAI_API_KEY"
    # …but not GUILD_AGENT_* or a flag.
    got = settings("solve", "--backend", "openai", "--api-key", "k",
                   env={**env, "GUILD_AGENT_BASE_URL": "http://127.0.0.1:9/ours"})
    assert got["base_url"]["source"] == "env GUILD_AGENT_BASE_URL"
    assert got["api_key"]["source"] == "flag"


def test_a_server_implies_the_openai_backend(place) -> None:
    got = settings("solve", "--base-url", "http://127.0.0.1:9/v1", "--model", "my-id")
    assert got["backend"]["value"] == "openai"
    assert got["backend"]["source"] == "implied by base_url (flag)"
    assert got["model"]["value"] == "my-id"
    got = settings("solve", "--model", "ollama:qwen2.5-coder:1.5b")
    assert got["backend"]["value"] == "openai"
    assert got["base_url"]["value"] == "http://127.0.0.1:11434"


def test_config_table_names_files_and_hides_the_key(place) -> None:
    place["user"].write_text('api_key = "sk-secret-value"\nmodel = "from-user"\n')
    res = run("config", "--no-probe")
    assert res.exit_code == 0, res.output
    assert "sk-secret-value" not in res.output
    assert "(set, hidden)" in res.output and "from-user" in res.output
    assert "user file" in res.output and "project file: none" in res.output


def test_bench_section_reaches_a_real_bench_path_and_fix(place) -> None:
    place["project"].write_text("[fix]\nblock_lines = 40\n")
    assert settings("fix")["block_lines"]["value"] == 40
    assert "block_lines" not in settings("solve")


BAD_FILES = [
    ("modle = 'x'\n", "modle: unknown key"),
    ("[solve]\nmax_roundz = 3\n", "solve.max_roundz: unknown key"),
    ("[nosuch]\nmodel = 'x'\n", "nosuch: unknown section"),
    ("max_rounds = 0\n", "max_rounds: Invalid value"),
    ("max_rounds = 'many'\n", "max_rounds: Invalid value"),
    ("backend = 'gpt'\n", "backend: Invalid value"),
    ("model = ['a', 'b']\n", "model: one value, not a list"),
    ("verbose = 'yes'\n", "verbose: true or false"),
    ("api_key = 'sk-1'\n", "api_key: not allowed in a project file"),
    ("[fix]\nyes = true\n", "fix.yes: not allowed in a project file"),
    ("out = '/tmp/elsewhere'\n", "out: not allowed in a project file"),
    ("base_url = 'https://collector.example/v1'\n", "may only name a server on this machine"),
    ("max_rounds = \n", "not valid TOML"),
]


@pytest.mark.parametrize("text,message", BAD_FILES)
def test_bad_project_file_is_one_line_exit_2(place, text: str, message: str) -> None:
    place["project"].write_text(text)
    res = run("solve", "task.yaml")
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert str(place["project"]) in lines[0] and message in lines[0], lines[0]
    assert "Traceback" not in res.output


def test_user_file_may_hold_what_a_project_file_may_not(place) -> None:
    place["user"].write_text("api_key = 'sk-1'\nbase_url = 'https://remote.example/v1'\n"
                             "[fix]\nyes = true\n")
    got = settings("solve")
    assert got["base_url"]["value"] == "https://remote.example/v1"
    assert settings("fix")["yes"]["value"] is True


def test_bad_user_file_and_non_utf8_name_the_file(place) -> None:
    place["user"].write_bytes(b"model = '\xff\xfe'\n")
    res = run("models", "--no-probe")
    assert res.exit_code == 2
    assert str(place["user"]) in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_a_folder_named_like_the_file_is_not_read(place) -> None:
    place["project"].mkdir()
    assert settings("solve")["max_rounds"]["source"] == "default"


def test_version_and_help_ignore_a_broken_file(place) -> None:
    place["project"].write_text("nonsense = 1\n")
    assert run("--version").exit_code == 0
    assert run("--help").exit_code == 0


GOOD = "```go\npackage sandbox\n\nfunc Clamp(x, lo, hi int) int {\n\tif x < lo {\n\t\treturn lo\n\t}\n\tif x > hi {\n\t\treturn hi\n\t}\n\treturn x\n}\n```"  # noqa: E501
WRONG = "```go\npackage sandbox\n\nfunc Clamp(x, lo, hi int) int {\n\treturn x\n}\n```"

TASK = {
    "id": "clamp",
    "prompt": "Write func Clamp(x, lo, hi int) int that limits x to [lo, hi].",
    "tests": 'import "testing"\n\nfunc TestClamp(t *testing.T) {\n\tif Clamp(5, 0, 3) != 3 '
             '|| Clamp(-1, 0, 3) != 0 || Clamp(2, 0, 3) != 2 {\n\t\tt.Fatal("wrong")\n\t}\n}\n',
}


def test_solve_reads_the_project_file(place) -> None:
    """A real run: the file in a parent folder names the replay script (a path relative to
    the file) and the round limit; the flag-less command uses both."""
    (place["dir"] / "replay.yaml").write_text(yaml.safe_dump({"responses": [WRONG] * 5}))
    place["project"].write_text('replay = "replay.yaml"\n[solve]\nmax_rounds = 2\n')
    work = place["dir"] / "tasks"
    work.mkdir()
    (work / "clamp.yaml").write_text(yaml.safe_dump(TASK))
    os.chdir(work)
    res = run("solve", "clamp.yaml", "--out", str(place["dir"] / "run"), "--json")
    assert res.exit_code == 1, res.output
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["backend"] == "replay" and result["rounds"] == 2
    # The flag still wins over the file.
    res = run("solve", "clamp.yaml", "--max-rounds", "1", "--out",
              str(place["dir"] / "run1"), "--json")
    assert json.loads(res.stdout.strip().splitlines()[-1])["rounds"] == 1


def test_fix_defaults_to_the_model_that_fixes(place) -> None:
    # Chosen by the edit-suite measurement (README); other commands keep the small one.
    assert settings("fix", "--backend", "llama-cpp")["model"]["value"] == "qwen2.5-coder-1.5b"
    assert settings("solve", "--backend", "llama-cpp")["model"]["value"] == (
        "qwen2.5-coder-0.5b")
    assert settings("bench", "--backend", "llama-cpp")["model"]["value"] == (
        "qwen2.5-coder-0.5b")
    got = settings("fix", "--backend", "llama-cpp", "--model", "qwen2.5-coder-0.5b")
    assert got["model"]["value"] == "qwen2.5-coder-0.5b" and got["model"]["source"] == "flag"
