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


def test_saving_in_jupyter_updates_the_lab(maker, tmp_path):
    """A real Jupyter server with Jupytext's extension: save the notebook, the .py follows."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    shutil.copy(ROOT / "jupytext.toml", maker.root / "jupytext.toml")
    (maker.root / "notebooks").mkdir()
    lab = maker.lab("demo", source=canonical(lab_source()))
    assert CliRunner().invoke(main, ["--root", str(maker.root), "sync"]).exit_code == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser", "--ip", "127.0.0.1", "--port", str(port),
         "--IdentityProvider.token=t", f"--ServerApp.root_dir={maker.root}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api/contents/notebooks/demo.ipynb?token=t"
    try:
        for _ in range(120):
            try:
                model = json.load(urllib.request.urlopen(url, timeout=2))
                break
            except OSError:
                time.sleep(0.25)
        else:
            raise AssertionError("Jupyter server did not start")
        model["content"]["cells"][-1]["source"] = "print('saved in Jupyter')"
        body = json.dumps({"type": "notebook", "format": "json", "content": model["content"]}).encode()
        request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": "application/json"})
        assert urllib.request.urlopen(request, timeout=10).status == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    assert "print('saved in Jupyter')" in lab.read_text(encoding="utf-8")
