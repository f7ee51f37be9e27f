"""numba's disk cache and kernels that inline another module's numba code (`models.kernel_cache`)."""
import sys
import textwrap
from pathlib import Path

from fresh_interpreter import run_isolated

from backends.emulator import kernels
from models import fixed_kernel, fixed_point, kernel_cache, lif_kernel

_DEP = """
import numba

@numba.njit(cache=True, inline="always")
def step(x):
    return x + {increment}
"""

_USER = """
import numba
from pkg import dep{extra_import}

@numba.njit(cache=True)
def kernel(x):
    return dep.step(x) * 10
{extra}
"""


def _package(tmp_path, increment: int) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "dep.py").write_text(textwrap.dedent(_DEP.format(increment=increment)))
    if not (pkg / "watched.py").exists():  # written once: their own files never change
        (pkg / "watched.py").write_text(_USER.format(
            extra_import="\nfrom models import kernel_cache",
            extra="kernel_cache.depend_on(globals(), dep.__file__)\n"))
        (pkg / "unwatched.py").write_text(_USER.format(extra_import="", extra=""))


def _kernel_of(tmp_path, module: str) -> int:
    code, out, err = run_isolated([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
                                                       f"from pkg import {module}; print({module}.kernel(1))"])
    assert code == 0, err
    return int(out.strip())


def test_a_kernel_that_inlines_another_modules_function_recompiles_when_only_that_module_changes(tmp_path,
                                                                                               monkeypatch):
    """numba keys a cached kernel on its own file: a kernel whose module calls
    `kernel_cache.depend_on` compiles the new code; the unwatched one keeps running the old inlined
    code (numba 0.68's behaviour, the reason for the module: the day this fails, numba tracks it)."""
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)  # the caches beside the sources, in tmp_path
    _package(tmp_path, increment=1)
    assert _kernel_of(tmp_path, "watched") == 20 and _kernel_of(tmp_path, "unwatched") == 20  # both cached
    _package(tmp_path, increment=2)  # only dep.py changes
    assert _kernel_of(tmp_path, "watched") == 30
    assert _kernel_of(tmp_path, "unwatched") == 20  # stale


def test_an_unchanged_dependency_keeps_the_compiled_kernels(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    _package(tmp_path, increment=1)
    _kernel_of(tmp_path, "watched")
    stamp = next((tmp_path / "pkg" / "__pycache__").glob("pkg.watched.depends"))
    before = stamp.stat().st_mtime_ns
    assert _kernel_of(tmp_path, "watched") == 20
    assert stamp.stat().st_mtime_ns == before  # not emptied again


def test_the_project_kernels_that_inline_lif_int_or_read_fixed_point_constants_declare_those_files():
    """The emulator's kernels and the training scan inline `models.fixed_kernel.lif_int`, whose
    constants come from `models.fixed_point`: each module's digest file is written beside its cache."""
    for module, sources in ((kernels, (fixed_kernel.__file__, fixed_point.__file__)),
                            (lif_kernel, (fixed_kernel.__file__, fixed_point.__file__)),
                            (fixed_kernel, (fixed_point.__file__,))):
        cache = next(kernel_cache._caches(vars(module)))
        stamp = Path(cache.cache_path) / f"{module.__name__}.depends"
        assert stamp.read_text() == kernel_cache._digest(sources), module.__name__
