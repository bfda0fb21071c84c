"""A Model Library Format-like archive: what ``tvmc compile --output-format mlf`` writes.

Layout (TVM's MLF directories where they apply)::

    metadata.json                       model, target, pass config, memory plan, layers, files
    codegen/host/src/<prefix>.c         the generated model (constants, arena, invoke)
    codegen/host/include/<prefix>.h     its API
    runtime/mixq_rt/                    the C runtime of the ops outside the kernel library
    runtime/kernels/{include,src,generated}/   the kernel library sources
    src/plan.json                       the deployment plan (tvm_mixq.plan.Plan.to_dict)
    src/relax.txt                       the Relax module after the mixq passes (TVMScript)
    src/precision.json                  the mixed-precision search, when it ran
    report/index.html (+ PNGs)          the deployment report (tvm_mixq.report), Cortex-M targets

``metadata.json`` names every source, header directory and define a build needs
(``build`` key), so the project generator reads the archive without knowing the layout.
:func:`write_mlf` writes atomically; :func:`read_mlf` checks that the archive is one of ours and
:func:`extract_mlf` refuses members that would land outside the target directory.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Union

from ..errors import MixqError

#: ``metadata.json`` keys that identify an archive written by this driver.
GENERATOR = "tvm_mixq.tvmc"
MLF_VERSION = 1

Content = Union[bytes, str, Path]


class MlfError(MixqError):
    """An archive that is missing, unreadable, or not written by ``tvmc compile``."""


@dataclass
class MlfArchive:
    """An archive read by :func:`read_mlf`: its path, ``metadata.json`` and member names."""

    path: Path
    metadata: dict[str, Any]
    members: list[str]

    @property
    def model_name(self) -> str:
        return str(self.metadata["model_name"])

    @property
    def core(self) -> str:
        return str(self.metadata["target"]["core"])


def _safe_member(name: str) -> str:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise MlfError(f"archive member {name!r} is outside the archive root")
    return str(p)


def write_mlf(path: Union[str, Path], files: Mapping[str, Content], metadata: Mapping[str, Any]) -> Path:
    """Write ``files`` (archive name -> bytes, text or a file to copy) and ``metadata.json``.

    The tar is written next to ``path`` and moved into place once complete.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(metadata)
    meta.setdefault("generator", GENERATOR)
    meta.setdefault("mlf_version", MLF_VERSION)
    entries: dict[str, bytes] = {"metadata.json": (json.dumps(meta, indent=2, sort_keys=False) + "\n").encode()}
    for name, content in files.items():
        name = _safe_member(name)
        if isinstance(content, Path):
            entries[name] = content.read_bytes()
        elif isinstance(content, str):
            entries[name] = content.encode()
        else:
            entries[name] = bytes(content)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    now = int(time.time())
    try:
        with tarfile.open(tmp, "w") as tar:
            for name in sorted(entries):
                data = entries[name]
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                info.mtime = now
                tar.addfile(info, io.BytesIO(data))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def is_mlf(path: Union[str, Path]) -> bool:
    """True when ``path`` is an archive written by :func:`write_mlf`."""
    try:
        read_mlf(path)
    except MlfError:
        return False
    return True


def read_mlf(path: Union[str, Path]) -> MlfArchive:
    """Open an archive and check its ``metadata.json``.

    Raises
    ------
    MlfError
        Missing file, not a tar, no ``metadata.json``, or metadata from another tool.
    """
    p = Path(path)
    if not p.is_file():
        raise MlfError(f"{p}: no such file (expected the .tar written by tvmc compile --output-format mlf)")
    try:
        with tarfile.open(p, "r") as tar:
            members = tar.getnames()
            try:
                f = tar.extractfile("metadata.json")
            except KeyError:
                f = None
            if f is None:
                raise MlfError(f"{p}: not a Model Library Format archive (no metadata.json)")
            raw = f.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise MlfError(f"{p}: not a readable tar archive ({exc})") from None
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MlfError(f"{p}: metadata.json is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("generator") != GENERATOR:
        raise MlfError(f"{p}: metadata.json was not written by tvmc compile of tvm_mixq (no generator "
                       f"{GENERATOR!r}); TVM's own MLF archives hold no mixq model")
    if meta.get("mlf_version") != MLF_VERSION:
        raise MlfError(f"{p}: archive format version {meta.get('mlf_version')!r}, this driver reads {MLF_VERSION}")
    for key in ("model_name", "target", "build", "io"):
        if key not in meta:
            raise MlfError(f"{p}: metadata.json lacks {key!r}")
    return MlfArchive(p, meta, members)


def extract_mlf(archive: MlfArchive, dest: Union[str, Path]) -> Path:
    """Extract every regular file of ``archive`` under ``dest`` (created)."""
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    with tarfile.open(archive.path, "r") as tar:
        for member in tar.getmembers():
            if member.isdir():
                continue
            if not member.isfile():
                raise MlfError(f"{archive.path}: member {member.name!r} is not a regular file")
            name = _safe_member(member.name)
            target = (out / name).resolve()
            if root not in target.parents:
                raise MlfError(f"{archive.path}: member {member.name!r} is outside the archive root")
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            target.write_bytes(src.read())
    return out
