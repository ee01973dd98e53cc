"""`kiosk images build` keeps what is current: a second build of the same inputs rebuilds nothing."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from pipelines.images import archive
from pipelines.images._buildah import Buildah, find_tools
from pipelines.images.build import build_all
from tests.fixtures.tools import require_tool


def test_images_build_twice_is_a_no_op(tmp_path: Path) -> None:
    for tool in ("buildah", "mmdebstrap", "runc", "busybox", "gcc"):
        require_tool(tool)
    first = build_all(only={"pause"}, output=tmp_path)
    second = build_all(only={"pause"}, output=tmp_path)
    assert [r.rebuilt for r in first] == [True] and [r.rebuilt for r in second] == [False]
    entry = archive.read_index(tmp_path)["pause"]
    with tarfile.open(tmp_path / entry["archive"]) as layout:
        member = layout.extractfile("index.json")
        assert member is not None
        (manifest,) = json.load(member)["manifests"]
    assert manifest["digest"] == entry["digest"] == first[0].digest
    assert manifest["annotations"]["io.containerd.image.name"] == entry["reference"] == "registry.k8s.io/pause:3.10"


def test_images_build_changed_input_rebuilds(tmp_path: Path) -> None:
    for tool in ("buildah", "mmdebstrap", "runc", "busybox", "gcc"):
        require_tool(tool)
    build_all(only={"pause"}, output=tmp_path)
    buildah = Buildah(tools=find_tools())
    before = buildah.image_id("registry.k8s.io/pause:3.10")
    (tmp_path / "stamps" / "pause").write_text("an older recipe's stamp")
    (again,) = build_all(only={"pause"}, output=tmp_path)
    assert again.rebuilt
    after = buildah.image_id("registry.k8s.io/pause:3.10")
    assert before != after and not buildah.exists(before), "the replaced image is removed"
