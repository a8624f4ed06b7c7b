"""Label export on real TinyDB files: labels, preferences and corrections with their run and task, as JSONL,
CSV and a Hugging Face datasets folder; from the library and from the CLI."""

from __future__ import annotations

import csv
import io
import json

import pytest

from agentlearn import cli
from agentlearn.feedback import corrections, export, labels
from storage.records import Preference, ToolCall
from tests.seed import ME, SUITE


@pytest.fixture
def judged(seeded):
    labels.submit_label(seeded, "tr0bad", "carol", "fail", score=1, comment="wrong tool", categories=["wrong tool"])
    seeded.repo.put(Preference(task_id=f"{SUITE}:t0", prompt=[], response_a="A text", response_b="B text",
                               trajectory_a="tr0ok", trajectory_b="tr0bad", choice="A", annotator="dave"))
    corrections.save(seeded, "tr0bad", "carol", ToolCall(name="reset_password", arguments={"username": "akhan"}),
                     note="right tool")
    return seeded


def test_rows_carry_the_run_and_the_task(judged):
    found = export.rows(judged)
    by = {(r["record"], r["person"]): r for r in found}
    assert {r["record"] for r in found} == {"label", "preference", "correction"}
    lab = by[("label", "carol")]
    assert (lab["verdict"], lab["categories"], lab["trajectory_id"], lab["task_id"]) == (
        "fail", ["wrong tool"], "tr0bad", f"{SUITE}:t0")
    assert lab["request"] == "I forgot my password, user akhan, email me."
    assert lab["expected_call"] == {"name": "reset_password", "arguments": {"username": "akhan", "delivery": "email"}}
    assert lab["tool_call"]["name"] == "create_ticket" and lab["verifier_success"] is False
    pref = by[("preference", "dave")]
    assert (pref["choice"], pref["suite"], pref["request"]) == ("A", SUITE, lab["request"])
    fix = by[("correction", "carol")]
    assert fix["corrected_call"] == {"name": "reset_password", "arguments": {"username": "akhan"}}
    assert fix["output"].startswith("<tool_call>") and fix["note"] == "right tool"
    assert export.rows(judged, suite="other") == []
    assert {r["record"] for r in export.rows(judged, kinds=["corrections"])} == {"correction"}
    with pytest.raises(ValueError, match="unknown record kind"):
        export.rows(judged, kinds=["votes"])


def test_jsonl_csv_and_hf_formats_read_back(judged, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secretsecret")
    judged.repo.put(Preference(task_id=f"{SUITE}:t2", prompt=[], response_a="hf_secretsecret", response_b="x",
                               choice="B", annotator="erin"))
    found = export.rows(judged)
    lines = [json.loads(x) for x in export.to_jsonl(found).decode().splitlines()]
    assert len(lines) == len(found) == 5 and "hf_secretsecret" not in export.to_jsonl(found).decode()
    table = list(csv.DictReader(io.StringIO(export.to_csv(found).decode())))
    assert len(table) == 5 and json.loads(table[0]["expected_call"])["name"] == "reset_password"
    path, n = export.write(judged, "hf", tmp_path / "hfset", who=ME)
    from datasets import load_from_disk

    ds = load_from_disk(str(path))
    assert sorted(ds) == ["corrections", "labels", "preferences"] and n == 5
    carol = [r for r in ds["labels"] if r["person"] == "carol"][0]
    assert carol["verdict"] == "fail" and json.loads(carol["categories"]) == ["wrong tool"]
    assert len(ds["preferences"]) == 2 and "[redacted]" in ds["preferences"]["response_a"]
    with pytest.raises(ValueError, match="exists and is not empty; pass --force"):
        export.write(judged, "hf", path, who=ME)
    with pytest.raises(ValueError, match="inside the workspace"):
        export.write(judged, "jsonl", judged.settings.store_dir / "x.jsonl", who=ME)
    default, _ = export.write(judged, "csv", who=ME)
    assert default.parent == (judged.settings.home / "label-exports").resolve() and default.suffix == ".csv"


def test_nothing_to_export_says_so(ws):
    with pytest.raises(ValueError, match="nothing to export"):
        export.write(ws, "jsonl", who=ME)


def test_cli_labels_export(judged, tmp_path, capsys):
    out = tmp_path / "labels.jsonl"
    assert cli.main(["labels", "export", "--format", "jsonl", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"format": "jsonl", "path": str(out.resolve()), "rows": 4}
    assert len(out.read_text().splitlines()) == 4
    assert cli.main(["labels", "export", "--format", "csv", "--out", str(tmp_path / "c.csv"),
                     "--kinds", "corrections"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 1
    assert cli.main(["labels", "export", "--format", "jsonl", "--out", str(out)]) != 0
    assert "pass --force" in capsys.readouterr().err
