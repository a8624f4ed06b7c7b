"""--out never reaches the workspace: exports refuse folders that hold it, the workspace's own files, roots and
the home folder, and --force only ever replaces what an earlier export wrote (real TinyDB files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlearn import cli, datasets
from agentlearn.feedback import export, labels
from agentlearn.paths import EXPORT_MARKER
from tests.seed import ME, SUITE


def _store_files(ws) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in ws.settings.home.rglob("*") if p.is_file()}


@pytest.fixture
def labeled(seeded):
    labels.submit_label(seeded, "tr0bad", "carol", "fail", score=1, comment="wrong tool")
    return seeded


def test_hf_export_with_force_never_deletes_a_folder_that_holds_the_workspace(labeled, tmp_path, monkeypatch):
    home = labeled.settings.home
    before = _store_files(labeled)
    assert len(before) > 3
    fake_user_home = tmp_path / "user"
    fake_user_home.mkdir()
    (fake_user_home / "notes.txt").write_text("mine")
    monkeypatch.setenv("HOME", str(fake_user_home))
    for out in (tmp_path, home, home.parent.parent, home / "adapters" / "x", home / "store", fake_user_home,
                Path("/")):
        assert cli.main(["labels", "export", "--format", "hf", "--out", str(out), "--force"]) == 2, out
        assert _store_files(labeled) == before, out
    assert (fake_user_home / "notes.txt").read_text() == "mine"


def test_force_replaces_only_an_earlier_export(labeled, tmp_path, capsys):
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "cat.jpg").write_bytes(b"\xff\xd8")
    assert cli.main(["labels", "export", "--format", "hf", "--out", str(mine), "--force"]) == 2
    assert "no export wrote it" in capsys.readouterr().err
    assert (mine / "cat.jpg").exists()
    made, n = export.write(labeled, "hf", tmp_path / "set", who=ME)
    assert (made / EXPORT_MARKER).is_file()
    (made / "stale.txt").write_text("from the earlier export")
    again, n_again = export.write(labeled, "hf", made, force=True, who=ME)  # an earlier export: replaced whole
    assert again == made and n_again == n and (made / EXPORT_MARKER).is_file() and not (made / "stale.txt").exists()
    assert not list(tmp_path.glob(".set.*"))  # no scratch folders left beside it
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export.write(labeled, "hf", empty, who=ME)[0] == empty.resolve()  # an empty folder needs no --force


def test_file_exports_refuse_workspace_files_and_replace_only_their_own_kind(labeled, tmp_path):
    home = labeled.settings.home
    (home / "adapters").mkdir(exist_ok=True)
    kept = home / "adapters" / "notes.jsonl"
    kept.write_text("keep")
    for out in (kept, home / "new.jsonl", home):
        with pytest.raises(ValueError, match="workspace"):
            datasets.export(labeled, "grpo", SUITE, out_path=out, force=True)
        with pytest.raises(ValueError, match="workspace"):
            export.write(labeled, "jsonl", out, force=True, who=ME)
    assert kept.read_text() == "keep"
    other = tmp_path / "report.txt"
    other.write_text("keep")
    with pytest.raises(ValueError, match=r"only a file ending in \.jsonl"):
        export.write(labeled, "jsonl", other, force=True, who=ME)
    assert other.read_text() == "keep"
    inside = home / "exports" / "mine.jsonl"  # the workspace's own export folders take outputs
    assert datasets.export(labeled, "grpo", SUITE, out_path=inside).path == str(inside.resolve())
