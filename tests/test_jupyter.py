"""The Jupyter round trip: lab .py -> .ipynb -> .py is unchanged, and `studylog sync`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jupytext
from click.testing import CliRunner

from conftest import lab_source
from studylog.cli import main

ROOT = Path(__file__).resolve().parent.parent


def canonical(source: str) -> str:
    """A lab as Jupytext writes it (what `studylog sync` leaves in labs/)."""
    return jupytext.writes(jupytext.reads(source, fmt="py:percent"), fmt="py:percent")


def test_round_trip_is_identity_for_every_lab(maker):
    sources = [lab_source(), lab_source(title="Math $x^2$", body="# comment\nx = [1, 2]\n\n\nprint(x)")]
    sources += [p.read_text(encoding="utf-8") for p in sorted((ROOT / "labs").glob("*.py"))]
    for source in sources:
        text = canonical(source)
        notebook = jupytext.reads(text, fmt="py:percent")
        as_ipynb = jupytext.writes(notebook, fmt="ipynb")
        back = jupytext.writes(jupytext.reads(as_ipynb, fmt="ipynb"), fmt="py:percent")
        assert back == text


def test_sync_creates_then_follows_the_edited_side(maker):
    shutil.copy(ROOT / "jupytext.toml", maker.root / "jupytext.toml")
    (maker.root / "notebooks").mkdir()
    lab = maker.lab("demo", source=canonical(lab_source()))
    runner = CliRunner()
    first = runner.invoke(main, ["--root", str(maker.root), "sync"])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == "demo: created notebooks/demo.ipynb"
    assert lab.read_text(encoding="utf-8") == canonical(lab_source())
    again = runner.invoke(main, ["--root", str(maker.root), "sync"])
    assert again.output.strip() == "demo: in sync"

    notebook_path = maker.root / "notebooks" / "demo.ipynb"
    notebook = json.loads(notebook_path.read_text(encoding="utf-8"))
    notebook["cells"][-1]["source"] = "print('edited in Jupyter')"
    notebook["cells"][-1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "kept\n"}]
    notebook_path.write_text(json.dumps(notebook), encoding="utf-8")
    edited = runner.invoke(main, ["--root", str(maker.root), "sync"])
    assert "updated labs/demo.py from notebooks/demo.ipynb" in edited.output
    assert "print('edited in Jupyter')" in lab.read_text(encoding="utf-8")
    assert "kept" in notebook_path.read_text(encoding="utf-8")
