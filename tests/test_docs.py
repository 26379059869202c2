"""The README's and docs' code runs as written.

* Every ```python block of README.md and docs/*.md is executed (in a fresh namespace, in a
  temporary directory), except those another test runs with checks of its own (``COVERED``).
* Blocks fenced as ```console (shell) or ```py (Python) are sketches over the reader's own files
  or cluster (``cell.npz``, ``recordings/``, a scheduler address) and are not run; everything
  else is.
* Every documented shell command that starts with ``ctsnn`` (in ```bash blocks, plain ```
  blocks and indented blocks) is run through bash as written, the commands of one page in order
  in one directory (a later command may read an earlier one's output), with ``ctsnn`` and
  ``python`` resolving to this checkout under the running interpreter. Each must exit 0 and
  write every file it names with ``-o``/``--output``/``--plot``.

Commands before ``ctsnn`` in a chain (``python3 -m venv ... && pip install ...``) are setup for a
fresh machine and are not run here. Benchmarks named in docs/performance.md take minutes and
are not run by the tests.
"""
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))

# python blocks run elsewhere with assertions on their results: (page, section heading) -> test
COVERED = {("README.md", "Speed"): "tests/test_examples.py::test_readme_speed_snippet_runs"}
# shell commands slower than ~10 s on a 2-core machine (stage 2 of .ci/run): page -> reason
SLOW_PAGES = {"fitting.md": "fits the CA1 recording (tens of seconds)"}


def _blocks(path: Path):
    """(language, heading, text) of the fenced and indented code blocks of a Markdown page."""
    out, heading, lines = [], "", path.read_text().splitlines()
    k = 0
    while k < len(lines):
        line = lines[k]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        m = re.match(r"^```(\w*)\s*$", line)
        if m:
            end = next(j for j in range(k + 1, len(lines)) if lines[j].startswith("```"))
            out.append((m.group(1) or "text", heading, "\n".join(lines[k + 1:end])))
            k = end + 1
            continue
        if line.startswith("    ") and (k == 0 or not lines[k - 1].strip()) and line.strip().startswith("ctsnn "):
            end = k
            while end < len(lines) and lines[end].startswith("    "):
                end += 1
            out.append(("indented", heading, "\n".join(x[4:] for x in lines[k:end])))
            k = end
            continue
        k += 1
    return out


def _python_blocks():
    for page in PAGES:
        for n, (lang, heading, text) in enumerate(_blocks(page)):
            if lang == "python":
                yield pytest.param(page, heading, text, id=f"{page.name}-{n}-{heading}")


def _commands(text: str):
    """The ``ctsnn ...`` commands of a shell block: continuation lines joined, chains split at
    ``&&``, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        for part in line.split("&&"):
            part = part.strip()
            if part.startswith("ctsnn "):
                out.append(part.split("  #")[0].split(" # ")[0].strip())
    return out


def _shell_pages():
    for page in PAGES:
        cmds = [c for lang, _h, text in _blocks(page) if lang in ("bash", "sh", "text", "indented")
                for c in _commands(text)]
        if cmds:
            marks = [pytest.mark.slow] if page.name in SLOW_PAGES else []
            yield pytest.param(page, cmds, id=page.name, marks=marks)


def test_the_pages_have_code():
    """The extraction finds what the pages hold (a parser that finds nothing tests nothing)."""
    assert len(list(_python_blocks())) >= 2
    pages = {p.values[0].name: p.values[1] for p in _shell_pages()}
    assert {"README.md", "plotting.md", "fitting.md"} <= set(pages)
    assert pages["README.md"][0].startswith("ctsnn simulate --model lif")
    assert any(c.startswith("ctsnn fit ") for c in pages["fitting.md"])


@pytest.mark.parametrize("page,heading,code", list(_python_blocks()))
def test_python_block_runs(page, heading, code, tmp_path, monkeypatch):
    if (page.name, heading) in COVERED:
        pytest.skip(f"run with checks by {COVERED[page.name, heading]}")
    monkeypatch.chdir(tmp_path)
    import torch
    dtype = torch.get_default_dtype()
    try:
        exec(compile(code, f"{page.name} ({heading})", "exec"), {"__name__": "__doc__"})
    finally:
        torch.set_default_dtype(dtype)


def _shims(bin_dir: Path) -> dict:
    """``ctsnn`` and ``python`` on PATH, both this interpreter with this checkout first."""
    bin_dir.mkdir()
    for name, body in (("ctsnn", f'exec "{sys.executable}" -m ctsnn "$@"\n'),
                       ("python", f'exec "{sys.executable}" "$@"\n')):
        p = bin_dir / name
        p.write_text("#!/bin/sh\n" + body)
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", MPLBACKEND="Agg",
                PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _outputs(cmd: str):
    words = shlex.split(cmd)
    return [words[k + 1] for k, w in enumerate(words[:-1]) if w in ("-o", "--output", "--plot")]


@pytest.mark.parametrize("page,commands", list(_shell_pages()))
def test_documented_commands_run(page, commands, tmp_path):
    env = _shims(tmp_path / "bin")
    work = tmp_path / "work"
    work.mkdir()
    for cmd in commands:
        res = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True,
                             timeout=900)
        assert res.returncode == 0, f"{page.name}: {cmd}\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
        for out in _outputs(cmd):
            assert (work / out).is_file() and (work / out).stat().st_size > 0, f"{cmd}: no {out}"


def test_slow_list_names_existing_tests():
    """Every entry of tests/conftest.py's SLOW names a test function that exists (a renamed test
    would otherwise fall back into the fast stage unnoticed)."""
    from conftest import SLOW
    for node in SLOW:
        path, _, name = node.partition("::")
        func = name.split("[", 1)[0]
        src = ROOT / path
        assert src.is_file(), node
        assert re.search(rf"^def {re.escape(func)}\(", src.read_text(), re.M), node
