"""Runs each notebook in notebooks/ top to bottom with nbclient, on small budgets.

The kernel is this interpreter (a kernel spec written to a temp folder runs
sys.executable), so the notebooks see the same tfmeta as the tests.
TFMETA_NOTEBOOK_STEPS shrinks their training budgets.
"""

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL_NAME = "tfmeta-tests"


@pytest.fixture(scope="module")
def kernel_spec_manager(tmp_path_factory):
    kernels = tmp_path_factory.mktemp("kernels")
    spec_dir = kernels / KERNEL_NAME
    spec_dir.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tfmeta tests",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)


def run_notebook(name, kernel_spec_manager, tmp_path, monkeypatch, steps=5):
    monkeypatch.setenv("TFMETA_NOTEBOOK_STEPS", str(steps))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    manager = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_spec_manager)
    client = NotebookClient(notebook, km=manager, timeout=120,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return notebook


def outputs_text(notebook):
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", ""))
            texts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


def test_notebooks_are_committed_without_outputs():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


def test_notebooks_use_only_the_public_api():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        source = path.read_text()
        assert "tfmeta.cli" not in source and "tfmeta.learners." not in source, path.name
        assert "from tfmeta." not in source and "._" not in source, path.name


def test_quickstart_sinusoid_maml(kernel_spec_manager, tmp_path, monkeypatch):
    notebook = run_notebook("quickstart_sinusoid_maml.ipynb", kernel_spec_manager, tmp_path,
                            monkeypatch)
    assert "query MSE on 100 new tasks" in outputs_text(notebook)


def test_export_and_serve(kernel_spec_manager, tmp_path, monkeypatch):
    notebook = run_notebook("export_and_serve.ipynb", kernel_spec_manager, tmp_path, monkeypatch)
    text = outputs_text(notebook)
    assert "MSE of the served model" in text
    difference = float(text.split("max |served - in-process| =")[1].split()[0])
    assert difference < 1e-4


def test_your_own_images(kernel_spec_manager, tmp_path, monkeypatch):
    monkeypatch.setenv("TFMETA_CACHE_DIR", str(tmp_path / "cache"))
    notebook = run_notebook("your_own_images.ipynb", kernel_spec_manager, tmp_path, monkeypatch)
    text = outputs_text(notebook)
    assert "20 classes, 400 images" in text
    low, high = (float(v) for v in text.split("pixel range: ")[1].split()[0:3:2])
    assert 0.0 <= low < 0.2 and 0.8 < high <= 1.0
    assert "3-way 1-shot accuracy on unseen classes" in text


@pytest.mark.slow
def test_omniglot_protonet(kernel_spec_manager, tmp_path, monkeypatch):
    data_dir = os.environ.get("TFMETA_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "omniglot").is_dir():
        pytest.skip("Omniglot notebook: TFMETA_DATA_DIR with omniglot/ is not set "
                    "(CI sets it to ../shared/data)")
    notebook = run_notebook("omniglot_protonet.ipynb", kernel_spec_manager, tmp_path,
                            monkeypatch, steps=3)
    assert "5-way 1-shot accuracy" in outputs_text(notebook)


def test_few_shot_intent_detection(kernel_spec_manager, tmp_path, monkeypatch):
    data_dir = os.environ.get("TFMETA_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "intent" / "banking77").is_dir():
        pytest.skip("intent notebook: TFMETA_DATA_DIR with intent/banking77 is not set "
                    "(CI sets it to ../shared/data)")
    notebook = run_notebook("few_shot_intent_detection.ipynb", kernel_spec_manager, tmp_path,
                            monkeypatch)
    text = outputs_text(notebook)
    assert "5-way 1-shot accuracy" in text and "5-way 5-shot accuracy" in text
    difference = float(text.split("max |served - predict| =")[1].split()[0])
    assert difference < 1e-4
    assert text.count(" -> ") == 3


def test_robot_arm_one_demonstration(kernel_spec_manager, tmp_path, monkeypatch):
    monkeypatch.setenv("TFMETA_CACHE_DIR", str(tmp_path / "cache"))
    notebook = run_notebook("robot_arm_one_demonstration.ipynb", kernel_spec_manager, tmp_path,
                            monkeypatch)
    text = outputs_text(notebook)
    assert "largest goal slot the learner sees: 0.0" in text
    assert text.count("(95% Wilson, 3 rollouts, 1-shot, reach-v3 ML1, own starts)") == 2
    assert "rendered a 480x480 frame" in text or "No rendered frame" in text


@pytest.mark.slow  # about 80 s on the shared 2-core machine, more with Tiny ImageNet decoded
def test_few_shot_on_device(kernel_spec_manager, tmp_path, monkeypatch):
    data_dir = os.environ.get("TFMETA_DATA_DIR")
    if not data_dir or not all((Path(data_dir) / name).is_dir()
                               for name in ("omniglot", "tiny_imagenet")):
        pytest.skip("device notebook: TFMETA_DATA_DIR with omniglot/ and tiny_imagenet/ is "
                    "not set (CI sets it to ../shared/data)")
    monkeypatch.setenv("TFMETA_CACHE_DIR", str(tmp_path / "cache"))
    notebook = run_notebook("few_shot_on_device.ipynb", kernel_spec_manager, tmp_path,
                            monkeypatch)
    text = outputs_text(notebook)
    assert "5-way 1-shot accuracy in the interpreter" in text
    assert float(text.split("max |interpreter - TensorFlow| =")[1].split()[0]) < 1e-4
    assert "Tiny ImageNet 5-way 1-shot accuracy in the interpreter" in text
    photos = text.split("max |interpreter - TensorFlow| on photos =")[1].split()[0]
    assert float(photos) < 1e-4
