"""Model registry: pull (network mocked; never touches the Hub) and list_local completeness checks."""
from __future__ import annotations

import json

import huggingface_hub
import pytest
from huggingface_hub import errors as hf_errors

from audiostory_core.errors import CheckpointError
from audiostory_core.models import hub


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DUBKIT_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path / "models"


def fake_download(calls):
    def snapshot_download(repo_id, revision=None, local_dir=None, allow_patterns=None, **_):
        calls.append((repo_id, allow_patterns))
        spec = next(s for s in hub.REGISTRY.values() if s.repo_id == repo_id)
        for f in spec.files:
            (hub.Path(local_dir) / f).write_text("{}")
        return local_dir
    return snapshot_download


def test_registry_names_and_default_dir(models_dir):
    assert {"audiostory-3b", "tangoflux", "flan-t5-large", "qwen2.5-3b-instruct", "clip-vit-b-32"} <= set(hub.REGISTRY)
    assert hub.REGISTRY["tangoflux"].repo_id == "declare-lab/TangoFlux"
    assert hub.local_path("tangoflux") == models_dir / "tangoflux"
    with pytest.raises(CheckpointError, match="unknown model 'tango'.*known models: audiostory-3b"):
        hub.pull("tango")


def test_pull_downloads_once_and_list_local_reports_complete(models_dir, monkeypatch):
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download(calls))
    path = hub.pull("tangoflux")
    assert path == models_dir / "tangoflux" and (path / "tangoflux.safetensors").is_file()
    assert calls == [("declare-lab/TangoFlux", ["config.json", "*.safetensors", "*.md"])]
    assert hub.pull("tangoflux") == path and len(calls) == 1  # complete copies are not fetched again
    [entry] = hub.list_local()
    assert (entry.name, entry.known, entry.complete, entry.missing) == ("tangoflux", True, True, [])


def test_offline_pull_says_what_to_do(models_dir, monkeypatch):
    def offline(**_):
        raise hf_errors.OfflineModeIsEnabled("offline")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(CheckpointError, match=r"no network.*dubkit models pull flan-t5-large.*model\.safetensors"):
        hub.pull("flan-t5-large")


def test_download_missing_files_is_an_error(models_dir, monkeypatch):
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda **_: None)  # fetched nothing
    with pytest.raises(CheckpointError, match="lacks config.yaml, pytorch_model.bin"):
        hub.pull("audiostory-3b", dest=models_dir / "elsewhere")


def test_list_local_flags_incomplete_and_unknown_folders(models_dir):
    qwen = models_dir / "qwen2.5-3b-instruct"
    qwen.mkdir(parents=True)
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "model-00001-of-00002.safetensors"):
        (qwen / f).write_text("x")
    (qwen / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    (models_dir / "my-finetune").mkdir()
    (models_dir / "my-finetune" / "w.bin").write_bytes(b"1234")
    found = {m.name: m for m in hub.list_local()}
    assert found["qwen2.5-3b-instruct"].known and not found["qwen2.5-3b-instruct"].complete
    assert found["qwen2.5-3b-instruct"].missing == ["model-00002-of-00002.safetensors"]
    assert not found["my-finetune"].known and found["my-finetune"].size_bytes == 4
    assert [m.name for m in hub.list_local()] == ["qwen2.5-3b-instruct", "my-finetune"]
    assert hub.list_local(models_dir / "absent") == []
