"""`bench/stacks.py` files each sample of a `py-spy --subprocesses` profile under its process."""

from __future__ import annotations

from bench import stacks

_SERVER = "process 100:\"python3 -m connector.cli serve\";thread (0x1): \"MainThread\""
_WRITER = "process 101:\"python3 -c from multiprocessing.forkserver import main\";thread (0x2)"
PROFILE = "\n".join([
    f"{_SERVER};run (asyncio/runners.py:118);receive (connector/ingest/process.py:275) 7",
    f"{_WRITER};main (multiprocessing/forkserver.py:274);_child (connector/ingest/process.py:171)"
    ";serve (connector/ingest/process.py:160);write (connector/ingest/apply.py:36) 5",
]) + "\n"


def test_the_writer_child_is_its_own_group_and_the_server_side_is_not(tmp_path, capsys):
    path = tmp_path / "profile.txt"
    path.write_text(PROFILE)
    stacks.summarise(str(path), top=5)
    out = capsys.readouterr().out
    assert "== ingest writer process: 5 samples" in out
    assert "== event loop thread: 7 samples" in out
