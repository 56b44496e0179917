"""Build hook: compile the optional Cython fast paths (analyzer/_fast*.pyx) into the wheel.

hatchling runs this for ``pip install .`` (a wheel: the compiled modules are built in a
temporary folder and put into the wheel) and ``pip install -e .`` (an editable install: they
are built next to their sources, where the editable install imports them from). Cython and
setuptools come from ``[build-system] requires``; the C compiler is the system's.

The modules only repeat the common case of the per-packet work (see analyzer/accel.py): the
package works without them, several times slower. So a failed compilation is a warning, not
an error, unless WS_ANALYZER_REQUIRE_ACCEL=1 is set (scripts/test sets it: CI must measure
and test what users get).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

DIRECTIVES = {
    "language_level": "3",
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
}


class FastPathsHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        sources = sorted((root / "analyzer").glob("_fast*.pyx"))
        if not sources:
            return
        try:
            built = self._compile(root, sources, inplace=version == "editable")
        except Exception as exc:  # noqa: BLE001 - any failure: fall back to pure Python
            if os.environ.get("WS_ANALYZER_REQUIRE_ACCEL", "") not in ("", "0"):
                raise
            print(
                f"ws-analyzer: the compiled fast paths were not built ({exc}); the package "
                "works without them, several times slower on packet captures",
                file=sys.stderr,
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        for path in built:
            build_data["force_include"][str(path)] = f"analyzer/{path.name}"

    def _compile(self, root: Path, sources: list[Path], *, inplace: bool) -> list[Path]:
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext

        extensions = [
            Extension(
                f"analyzer.{src.stem}",
                [str(src.relative_to(root))],
                extra_compile_args=["-O2"],
            )
            for src in sources
        ]
        cwd = os.getcwd()
        os.chdir(root)
        work = Path(tempfile.mkdtemp(prefix="ws-analyzer-build-"))
        try:
            modules = cythonize(
                extensions,
                compiler_directives=DIRECTIVES,
                build_dir=str(work / "c"),
                quiet=True,
            )
            dist = Distribution({"name": "ws-analyzer", "ext_modules": modules})
            cmd = build_ext(dist)
            cmd.build_temp = str(work / "temp")
            cmd.build_lib = str(work / "lib")
            cmd.inplace = inplace
            cmd.ensure_finalized()
            cmd.run()
            if inplace:
                return []
            out = Path(self.directory) / ".fast-paths"
            out.mkdir(parents=True, exist_ok=True)
            built = []
            for lib in (work / "lib" / "analyzer").iterdir():
                target = out / lib.name
                shutil.copy2(lib, target)
                built.append(target)
            return built
        finally:
            os.chdir(cwd)
            shutil.rmtree(work, ignore_errors=True)
