"""The Model Library Format-like archive: round trip, refusal of foreign or hostile archives."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from tvm_mixq.tvmc.mlf import GENERATOR, MlfError, extract_mlf, is_mlf, read_mlf, write_mlf

META = {"model_name": "m", "prefix": "mixq_m", "target": {"core": "cortex-m7"}, "build": {"sources": []},
        "io": {"inputs": [], "outputs": []}}


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_round_trip(tmp_path):
    src = tmp_path / "a.c"
    src.write_text("int a;\n")
    out = write_mlf(tmp_path / "m.tar", {"codegen/host/src/a.c": src, "src/plan.json": "{}", "x.bin": b"\x00\x01"},
                    META)
    archive = read_mlf(out)
    assert archive.metadata["generator"] == GENERATOR
    assert archive.model_name == "m" and archive.core == "cortex-m7"
    assert sorted(archive.members) == ["codegen/host/src/a.c", "metadata.json", "src/plan.json", "x.bin"]
    dest = extract_mlf(archive, tmp_path / "x")
    assert (dest / "codegen/host/src/a.c").read_text() == "int a;\n"
    assert (dest / "x.bin").read_bytes() == b"\x00\x01"
    assert not list(tmp_path.glob(".m.tar.*"))  # no temporary left behind


def test_write_refuses_names_outside_the_root(tmp_path):
    with pytest.raises(MlfError):
        write_mlf(tmp_path / "m.tar", {"../evil.c": "x"}, META)
    assert not (tmp_path / "m.tar").exists()


def test_foreign_archives_refused(tmp_path):
    (tmp_path / "plain.txt").write_text("not a tar")
    with pytest.raises(MlfError, match="not a readable tar"):
        read_mlf(tmp_path / "plain.txt")
    with pytest.raises(MlfError, match="no such file"):
        read_mlf(tmp_path / "missing.tar")
    no_meta = _tar(tmp_path / "nometa.tar", {"a.c": b"x"})
    with pytest.raises(MlfError, match="no metadata.json"):
        read_mlf(no_meta)
    tvm_mlf = _tar(tmp_path / "tvm.tar", {"metadata.json": json.dumps({"version": 7}).encode()})
    with pytest.raises(MlfError, match="not written by tvmc compile"):
        read_mlf(tvm_mlf)
    bad_json = _tar(tmp_path / "bad.tar", {"metadata.json": b"{"})
    with pytest.raises(MlfError, match="not JSON"):
        read_mlf(bad_json)
    assert not is_mlf(tvm_mlf)


def test_extract_refuses_traversal(tmp_path):
    meta = dict(META, generator=GENERATOR, mlf_version=1)
    evil = _tar(tmp_path / "evil.tar", {"metadata.json": json.dumps(meta).encode(), "../../outside.c": b"x"})
    archive = read_mlf(evil)
    with pytest.raises(MlfError, match="outside the archive root"):
        extract_mlf(archive, tmp_path / "dest")
    assert not (tmp_path / "outside.c").exists()
