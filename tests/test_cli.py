import json

import pytest

from mio.cli import main


def test_info_shows_resolved_config_and_backends(capsys):
    assert main(["info", "--set", "talker.backend=piper", "--set", "render.width=256"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["talker"]["backend"] == "piper" and out["config"]["render"]["width"] == 256
    assert "hibari" in out["backends"]["talker"] and "anny" in out["backends"]["render"]


def test_bad_options_fail_with_a_clear_message_and_no_traceback(capsys, tmp_path):
    assert main(["say", "hi", "--set", "render.widht=3"]) == 2
    assert "unknown config key 'render.widht'" in capsys.readouterr().err
    assert main(["say", "hi", "--set", "talker.backend=nope"]) == 2
    assert "choose one of" in capsys.readouterr().err
    assert main(["say", "hi", "--character", "nobody"]) == 2
    assert "known characters" in capsys.readouterr().err
    assert main(["info", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_chat_in_the_terminal_records_video(tmp_path):
    """`mio chat` on the real backends: two typed lines, /quit, and the recording plays."""
    import subprocess
    import sys

    import av

    out = tmp_path / "chat.mp4"
    proc = subprocess.run(
        [sys.executable, "-m", "mio.cli", "chat", "--record", str(out)],
        input="Hello Mio!\n\n/quit\n", capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    from mio.core.config import MioConfig
    from mio.thinker.persona import load_character

    name = load_character(MioConfig().character).name
    lines = [line for line in proc.stdout.splitlines() if line.startswith(f"{name}:")]
    assert len(lines) >= 2  # the greeting and at least one clause of the reply
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames > 25 and c.streams.audio


def test_story_memory_lists_whose_memories_are_kept_and_forgets_one_user(tmp_path, monkeypatch, capsys):
    from mio.thinker.memory.embed import HashEmbedder
    from mio.thinker.memory.episodic import EpisodicStore

    monkeypatch.setenv("MIO_MEMORY_DIR", str(tmp_path))
    assert main(["story", "memory"]) == 0
    assert "no episodic memories" in capsys.readouterr().out
    store = EpisodicStore(tmp_path / "episodic-hash.sqlite", HashEmbedder())
    for user, line in (("guest", "I like boats."), ("guest", "My name is Ada."), ("bob", "Hello.")):
        store.add(user, "nemo", f"s-{user}", "user", line)
    store.close()
    assert main(["story", "memory"]) == 0
    out = capsys.readouterr().out
    assert "guest" in out and "2 lines in   1 sessions" in out and "bob" in out
    assert main(["story", "memory", "--forget", "guest"]) == 0
    assert "forgot 2 memories of 'guest'" in capsys.readouterr().out
    assert main(["story", "memory"]) == 0
    out = capsys.readouterr().out
    assert "guest" not in out and "bob" in out
