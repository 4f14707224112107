"""The image build references only files that exist, runs as non-root, and serves every process the manifests run."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"


def test_every_copied_path_exists() -> None:
    copies = re.findall(r"^COPY (?!--from)(.+?) (\S+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert copies
    for sources, _ in copies:
        for source in sources.split():
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_runtime_stage_is_pinned_and_non_root() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert bases and all(re.search(r":\d+\.\d+\.\d+", b) for b in bases), bases
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001", runtime, flags=re.MULTILINE)
    assert "uv==" in text and "--frozen" in text


def test_the_base_image_takes_the_latest_known_311_patch() -> None:
    """Issue 15, finding 11: 3.11.7 lacked two years of security fixes. 3.11.18 is the newest 3.11 patch published
    as an official image when this was written; raise the floor when a newer one ships."""
    bases = re.findall(r"^FROM python:(\d+)\.(\d+)\.(\d+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert bases and {(int(a), int(b)) for a, b, _ in bases} == {(3, 11)}
    assert all(int(patch) >= 18 for _, _, patch in bases), bases


def test_every_manifest_command_is_a_module_of_the_image() -> None:
    modules = set()
    for path in (ROOT / "deploy" / "k8s" / "base").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Deployment":
                command = doc["spec"]["template"]["spec"]["containers"][0]["command"]
                assert command[:2] == ["python", "-m"]
                modules.add(command[2])
    assert len(modules) == 11
    for module in modules:
        package, *rest = module.split(".")
        base = next(ROOT.glob(f"**/src/{package}"), None)
        assert base is not None, module
        target = base.joinpath(*rest)
        assert target.with_suffix(".py").exists() or (target / "__main__.py").exists(), module
