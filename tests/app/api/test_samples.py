"""GET /samples and runs of a sample by id, from a manifest made in a temporary folder."""

from __future__ import annotations

import json

import pytest

from app.schemas import SampleList

from ..conftest import API, encode, photo


@pytest.fixture
def sample_client(make_client, tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "cat.png").write_bytes(encode(photo(32, 32, seed=7)))
    (samples / "seven.png").write_bytes(encode(photo(28, 28, seed=8).convert("L")))
    manifest = {
        "samples": [
            {
                "id": "cifar10-cat-1",
                "dataset": "cifar10",
                "label": "cat",
                "label_index": 3,
                "file": "cat.png",
                "source_index": 12,
            },
            {
                "id": "mnist-7-1",
                "dataset": "mnist",
                "label": "7",
                "label_index": 7,
                "file": "seven.png",
                "source_index": 0,
            },
            {
                "id": "escape",
                "dataset": "mnist",
                "label": "x",
                "label_index": 0,
                "file": "../../etc/passwd",
                "source_index": 0,
            },
        ]
    }
    (samples / "manifest.json").write_text(json.dumps(manifest))
    return make_client(static_dir=tmp_path)


def test_list_and_filter(sample_client):
    body = sample_client.get(f"{API}/samples").json()
    SampleList.model_validate(body)
    assert body["samples"][0] == {
        "id": "cifar10-cat-1",
        "dataset": "cifar10",
        "label": "cat",
        "label_index": 3,
        "url": "/static/samples/cat.png",
    }
    mnist = sample_client.get(f"{API}/samples?dataset=mnist").json()["samples"]
    assert [s["id"] for s in mnist] == ["mnist-7-1", "escape"]
    assert sample_client.get(f"{API}/samples?dataset=imagenet").json() == {"samples": []}
    assert sample_client.get("/static/samples/cat.png").status_code == 200


def test_run_a_sample_by_id(sample_client):
    response = sample_client.post(f"{API}/models/tiny-vgg/runs", data={"sample": "cifar10-cat-1"})
    assert response.status_code == 201 and response.json()["model_id"] == "tiny-vgg"
    # The same sample again, as multipart this time: the same run.
    again = sample_client.post(
        f"{API}/models/tiny-vgg/runs", files={"sample": (None, "cifar10-cat-1")}
    )
    assert again.json()["run_id"] == response.json()["run_id"] and again.json()["reused"] is True
    digit = sample_client.post(f"{API}/models/lenet5/runs", data={"sample": "mnist-7-1"})
    assert digit.status_code == 201 and digit.json()["input"]["shape"] == [1, 32, 32]


@pytest.mark.parametrize("sample", ["cifar10-dog-9", "escape", ""])
def test_unknown_or_unsafe_sample(sample_client, sample):
    response = sample_client.post(f"{API}/models/tiny-vgg/runs", data={"sample": sample})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == (
        "missing_image" if sample == "" else "unknown_sample"
    )


def test_no_manifest_means_no_samples(make_client, tmp_path):
    client = make_client(static_dir=tmp_path)
    assert client.get(f"{API}/samples").json() == {"samples": []}
