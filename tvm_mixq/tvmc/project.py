"""``tvmc micro create-project | build | flash``: firmware projects around a compiled model.

Templates (:data:`TEMPLATES`):

=================  ===========================================================================
host               a program for the machine running the tools (reads inputs from files; the
                   generated C with the portable kernel paths); ``microtvm_templates/host``
qemu_cortex_m4     bare-metal firmware for QEMU ``mps2-an386`` (Cortex-M4, DSP paths)
qemu_cortex_m7     bare-metal firmware for QEMU ``mps2-an500`` (Cortex-M7, DSP paths); both use
                   the startup, semihosting and instruction counter of
                   ``microtvm_templates/qemu_cortex_m``
export             the model, runtime and kernel sources in the layout of
                   :func:`tvm_mixq.codegen.export.export_model` with its Make and CMake fragments
                   (``microtvm_templates/export``), for an existing firmware tree (no device)
=================  ===========================================================================

A project directory holds ``mixq_project.json`` (template, core, model API, build lists), the
extracted archive in ``model/`` (and ``model.tar``; export: the export layout ``model/``,
``runtime/``, ``kernels/``), ``src/`` (the template's main), ``harness/`` (QEMU), a ``Makefile``
that builds the same artefact standalone, and after ``build`` the artefact in ``build/``. QEMU
projects are checked against the board's memory (``template.json`` of
``microtvm_templates/qemu_cortex_m*``, or ``mixq.sram_limit_kb``) before anything is built.
Every ``src/main.c`` comes from ``microtvm_templates``: the host program of ``host/main.c.j2``
and the firmware of ``qemu_cortex_m*/main.c.j2`` (the one ``mixq deploy`` builds) in its
``files`` input mode, which reads inputs and writes outputs through semihosting files at run time,
so one flashed image serves every ``tvmc run``; its per-layer counters are the harness's
``mixq_fw_profile.h``. The project ``Makefile`` and ``README.md`` come from this package's
``templates/``. ``tvmc micro build`` compiles in Python with an object cache shared by projects
(``$MIXQ_BUILD_DIR/tvmc``), so only the model source is compiled again for a new model; ``flash``
stages the firmware for the emulator in ``flash/``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import jinja2

from ..errors import MixqError
from .mlf import GENERATOR, MlfArchive, extract_mlf, read_mlf

log = logging.getLogger(__name__)

REPO_DIR = Path(__file__).resolve().parents[2]
TEMPLATES_ROOT = REPO_DIR / "microtvm_templates"
#: The project Makefile and README (the mains are in TEMPLATES_ROOT).
OWN_TEMPLATES = Path(__file__).resolve().parent / "templates"
PROJECT_FILE = "mixq_project.json"
PROJECT_VERSION = 1
HOST_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-O2")


class ProjectError(MixqError):
    """A project directory, template, option or build step the user can act on."""


@dataclass(frozen=True)
class Template:
    """One project template: its kind (``host``, ``qemu`` or ``export``) and options."""

    name: str
    kind: str
    core: Optional[str]  # the core it runs on; None: any (host programs run the portable C)
    options: Mapping[str, str] = field(default_factory=dict)  # option -> default
    help: str = ""


TEMPLATES: dict[str, Template] = {
    "host": Template("host", "host", None, {"cc": "gcc", "timeout": "600"},
                     "program for this machine (portable C)"),
    "qemu_cortex_m4": Template("qemu_cortex_m4", "qemu", "cortex-m4", {"timeout": "600"},
                               "QEMU mps2-an386 firmware, Cortex-M4"),
    "qemu_cortex_m7": Template("qemu_cortex_m7", "qemu", "cortex-m7", {"timeout": "600"},
                               "QEMU mps2-an500 firmware, Cortex-M7"),
    "export": Template("export", "export", None, {"cc": ""},
                       "sources + Make and CMake fragments for an existing firmware tree"),
}


@dataclass
class Project:
    """A project directory and its ``mixq_project.json``."""

    path: Path
    info: dict[str, Any]

    @property
    def template(self) -> Template:
        return TEMPLATES[self.info["template"]]

    @property
    def core(self) -> str:
        return str(self.info["core"])

    @property
    def options(self) -> dict[str, str]:
        return dict(self.info["options"])

    @property
    def artefact(self) -> Path:
        return self.path / self.info["artefact"]

    def save(self) -> None:
        tmp = self.path / f".{PROJECT_FILE}.tmp"
        tmp.write_text(json.dumps(self.info, indent=2) + "\n")
        os.replace(tmp, self.path / PROJECT_FILE)


# ---------------------------------------------------------------------------------------------
# helpers


def template_names() -> list[str]:
    return list(TEMPLATES)


def get_template(name: str) -> Template:
    t = TEMPLATES.get(name)
    if t is None:
        raise ProjectError(f"unknown template {name!r}: choose one of {', '.join(TEMPLATES)}")
    return t


def parse_project_options(template: Template, items: Sequence[str]) -> dict[str, str]:
    """``key=value`` strings -> the template's options (defaults filled in)."""
    opts = dict(template.options)
    for item in items or ():
        if "=" not in item:
            raise ProjectError(f"--project-option {item!r} is not of the form key=value")
        key, value = (s.strip() for s in item.split("=", 1))
        if key not in template.options:
            valid = ", ".join(f"{k} (default {v!r})" for k, v in template.options.items()) or "none"
            raise ProjectError(f"template {template.name} has no option {key!r}; valid options: {valid}")
        opts[key] = value
    if "timeout" in opts:
        try:
            if float(opts["timeout"]) <= 0:
                raise ValueError
        except ValueError:
            raise ProjectError(f"--project-option timeout={opts['timeout']!r}: expected seconds > 0") from None
    return opts


def _env(*dirs: Path) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


def _check_fresh_dir(path: Path, force: bool) -> None:
    if path.exists() and not path.is_dir():
        raise ProjectError(f"{path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()):
        if not force:
            raise ProjectError(f"{path} exists and is not empty; use --force to replace a project there")
        if not (path / PROJECT_FILE).is_file():
            raise ProjectError(f"{path} is not empty and holds no {PROJECT_FILE}: not a tvmc project, "
                               "refusing to delete it even with --force")
        shutil.rmtree(path)


def load_project(path: Path | str, template: Optional[str] = None) -> Project:
    """Read ``path/mixq_project.json``; ``template`` (tvmc's PLATFORM argument) must match."""
    p = Path(path).resolve()
    f = p / PROJECT_FILE
    if not f.is_file():
        raise ProjectError(f"{p} is not a project directory (no {PROJECT_FILE}); create one with "
                           "tvmc micro create-project")
    try:
        info = json.loads(f.read_text())
    except (ValueError, OSError) as exc:
        raise ProjectError(f"{f}: unreadable ({exc})") from None
    if not isinstance(info, dict) or info.get("generator") != GENERATOR or info.get("template") not in TEMPLATES:
        raise ProjectError(f"{f} was not written by tvmc micro create-project")
    if template is not None and template != info["template"]:
        raise ProjectError(f"{p} is a {info['template']} project, not {template}")
    return Project(p, info)


# ---------------------------------------------------------------------------------------------
# create-project


def _io_context(archive: MlfArchive) -> dict[str, Any]:
    meta = archive.metadata
    prefix = meta["prefix"]
    inputs = meta["io"]["inputs"]
    shape = inputs[0]["shape"]
    # in0: the first input's row geometry, for the host template's streamed-input build
    in0 = {"w": shape[2] if len(shape) == 4 else 1, "c": shape[-1], "bits": inputs[0]["bits"]}
    return {"prefix": prefix, "macro": prefix.upper(), "inputs": inputs, "outputs": meta["io"]["outputs"],
            "in0": in0}


def create_project(path: Path | str, mlf: Path | str, template_name: str,
                   options: Sequence[str] = (), force: bool = False) -> Project:
    """Create a project from a ``tvmc compile`` archive (see the module docstring).

    Raises
    ------
    ProjectError, MlfError
        Unknown template or option, a core mismatch (an archive compiled for cortex-m4 in a
        cortex-m7 project), a non-empty directory without ``force``, or a bad archive.
    """
    template = get_template(template_name)
    opts = parse_project_options(template, options)
    archive = read_mlf(mlf)
    core = archive.core
    if template.core is not None and core != template.core:
        raise ProjectError(f"{archive.path} was compiled for {core}; template {template.name} runs {template.core}: "
                           f"compile with --target \"c -mcpu={template.core}\"")
    if template.kind == "qemu":
        _check_fit(archive, template.core or core)
    dest = Path(path)
    _check_fresh_dir(dest, force)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        return _populate(dest, archive, template, opts)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _export_name(mlf_name: str) -> str:
    """Archive member -> its place in the export layout (model/, runtime/, kernels/)."""
    for prefix, to in (("codegen/host/src/", "model/"), ("codegen/host/include/", "model/"),
                       ("runtime/mixq_rt/", "runtime/"), ("runtime/kernels/", "kernels/")):
        if mlf_name.startswith(prefix):
            return to + mlf_name[len(prefix):]
    return ""


def _export_layout(dest: Path, archive: MlfArchive) -> tuple[list[str], list[str]]:
    """Lay the archive's sources out as :func:`tvm_mixq.codegen.export.export_model` does and copy
    its Make and CMake fragments; returns (sources, include dirs), project-relative."""
    from ..codegen.export import EXPORT_TEMPLATE_DIR

    staged = dest / "model.mlf"
    for member in archive.members:
        target = _export_name(member)
        if target:
            (dest / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(staged / member, dest / target)
    for name in ("mixq_model.mk", "mixq_model.cmake"):
        shutil.copyfile(EXPORT_TEMPLATE_DIR / name, dest / name)
    shutil.copyfile(staged / "metadata.json", dest / "metadata.json")
    shutil.rmtree(staged)
    build = archive.metadata["build"]
    sources = [_export_name(s) for s in build["sources"]]
    include_dirs = list(dict.fromkeys(_export_name(d + "/x")[:-2] for d in build["include_dirs"]))
    return sources, include_dirs


def _check_fit(archive: MlfArchive, core: str) -> None:
    """The arena and constants against the board's memory, before anything is built."""
    from types import SimpleNamespace

    from ..codegen.firmware import check_fit, device_memory

    meta = archive.metadata
    limit_kb = int(meta.get("mixq_options", {}).get("mixq.sram_limit_kb") or 0)
    memory = device_memory(core, limit_kb * 1024 or None)
    check_fit(SimpleNamespace(name=meta["model_name"], arena_size=int(meta["memory"]["arena_size_bytes"]),
                              const_bytes=int(meta["flash"]["constant_bytes"])), memory)


def _device_cflags(core: str) -> list[str]:
    """C flags of a Cortex-M project: the emulator's firmware flags (:mod:`tvm_mixq.emu`)."""
    from ..emu import OPT_FLAGS, get_target
    from ..emu.toolchain import WARNING_FLAGS

    return [*get_target(core).cpu_flags, *OPT_FLAGS, *WARNING_FLAGS, "-ffunction-sections", "-fdata-sections"]


def _populate(dest: Path, archive: MlfArchive, template: Template, opts: dict[str, str]) -> Project:
    extract_mlf(archive, dest / ("model.mlf" if template.kind == "export" else "model"))
    shutil.copyfile(archive.path, dest / "model.tar")
    meta = archive.metadata
    build = meta["build"]
    ctx = _io_context(archive)
    sources = [f"model/{s}" for s in build["sources"]]
    include_dirs = [f"model/{d}" for d in build["include_dirs"]]
    info: dict[str, Any] = {
        "generator": GENERATOR, "project_version": PROJECT_VERSION, "template": template.name,
        "kind": template.kind, "core": template.core or ("host" if template.kind == "host" else archive.core),
        "options": opts, "model": {"name": meta["model_name"], "prefix": ctx["prefix"], "header": build["header"],
                                   "source_archive": str(archive.path.resolve())},
        "io": meta["io"], "memory": meta["memory"], "flash": meta["flash"], "libs": build.get("libs", []),
        "sources": sources, "include_dirs": include_dirs, "defines": dict(build.get("defines", {})),
        "flashed": None, "built": None, "profile_header": None, "ldflags": [], "machine": None,
    }
    if template.kind == "host":
        (dest / "src").mkdir()
        env = _env(TEMPLATES_ROOT / "host")
        (dest / "src" / "main.c").write_text(env.get_template("main.c.j2").render(m=ctx))
        info["sources"] = ["src/main.c"] + sources
        info["artefact"] = f"build/{ctx['prefix']}_host"
        info["cflags"] = list(HOST_CFLAGS)
    elif template.kind == "qemu":
        from ..codegen.firmware import template_dir
        from ..emu import HARNESS_DIR, get_target
        from ..emu.targets import HARNESS_SOURCES

        tgt = get_target(template.core or "")
        harness = dest / "harness"
        harness.mkdir()
        for f in sorted(HARNESS_DIR.iterdir()):
            if f.suffix in (".c", ".h", ".ld") and f.name != "test_loop.c":
                shutil.copyfile(f, harness / f.name)
        (dest / "src").mkdir()
        env = _env(TEMPLATES_ROOT, template_dir(tgt.name))
        (dest / "src" / "main.c").write_text(env.get_template("main.c.j2").render(
            m=ctx, io_mode="files", target=tgt.name, board=tgt.machine))
        info["sources"] = ["src/main.c"] + [f"harness/{s}" for s in HARNESS_SOURCES] + sources
        info["include_dirs"] = ["harness"] + include_dirs
        info["machine"] = tgt.machine
        info["cflags"] = _device_cflags(tgt.name)
        info["profile_header"] = "harness/mixq_fw_profile.h"
        info["ldflags"] = [*tgt.cpu_flags, f"-Tharness/{tgt.linker_script}", "-Lharness", "-nostartfiles",
                           "--specs=nano.specs", "-Wl,--gc-sections"]
        info["artefact"] = "build/firmware.elf"
    else:  # export
        sources, include_dirs = _export_layout(dest, archive)
        info["sources"], info["include_dirs"] = sources, include_dirs
        info["model"]["header"] = f"model/{Path(build['header']).name}"
        info["artefact"] = "build/libmixq_model.a"
        info["cflags"] = list(HOST_CFLAGS) if info["core"] == "host" else _device_cflags(info["core"])
    project = Project(dest, info)
    _write_build_files(project)
    project.save()
    log.info("created %s project in %s", template.name, dest)
    return project


def _write_build_files(project: Project) -> None:
    env = _env(OWN_TEMPLATES)
    info = project.info
    ctx = {"info": info, "template": project.template, "model": info["model"]}
    (project.path / "Makefile").write_text(env.get_template("Makefile.j2").render(**ctx))
    (project.path / "README.md").write_text(env.get_template("README.md.j2").render(**ctx))


# ---------------------------------------------------------------------------------------------
# build


def _compiler(project: Project) -> tuple[str, str]:
    """(C compiler, archiver) of a project."""
    if project.core == "host":
        cc = project.options.get("cc") or "gcc"
        ar = "ar"
    else:
        cc, ar = "arm-none-eabi-gcc", "arm-none-eabi-ar"
    for tool in (cc, ar):
        if shutil.which(tool) is None:
            pkg = " (Debian: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)" if "arm-none" in tool else ""
            raise ProjectError(f"{tool} not found on PATH{pkg}")
    return cc, ar


def _cache_dir(core: str) -> Path:
    from ..kernellib.build import default_build_dir

    return default_build_dir().parent / "tvmc" / core


def _first_lines(text: str, limit: int = 8) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "; ".join(lines[:limit]) + (" ..." if len(lines) > limit else "")


def _is_library(rel: str) -> bool:
    """Project-relative path of a library source or header directory (not the model's, not main's)."""
    return rel.startswith(("model/runtime/", "harness", "runtime/", "kernels/"))


def _compile(project: Project, cc: str) -> list[Path]:
    """Objects of every project source, cached by a hash of compiler, flags, source and headers."""
    root = project.path
    info = project.info
    flags = list(info["cflags"]) + [f"-D{k}" if v is None else f"-D{k}={v}" for k, v in info["defines"].items()]
    incs = [f"-I{root / d}" for d in info["include_dirs"]]
    # Library sources (kernels, runtime, harness) see only the library headers: their objects are
    # shared by every project of the core; the model and main also depend on the model's headers.
    shared = hashlib.sha256((cc + " " + " ".join(flags)).encode())
    model_dirs = [d for d in info["include_dirs"] if not _is_library(d)]
    for d in info["include_dirs"]:
        if _is_library(d):
            for h in sorted((root / d).glob("*.h")):
                shared.update(h.name.encode() + h.read_bytes())
    full = shared.copy()
    for d in model_dirs:
        for h in sorted((root / d).glob("*.h")):
            full.update(h.name.encode() + h.read_bytes())
    cache = _cache_dir(project.core)
    cache.mkdir(parents=True, exist_ok=True)
    objects = []
    for rel in info["sources"]:
        src = root / rel
        extra = []
        if info.get("profile_header") and rel.startswith("model/codegen/"):
            extra = ["-include", str(root / info["profile_header"])]
        digest = (shared if _is_library(rel) else full).copy()
        digest.update(" ".join(extra[:1]).encode() + src.read_bytes())
        obj = cache / f"{src.stem}-{digest.hexdigest()[:16]}.o"
        if not obj.exists():
            tmp = obj.with_name(f"{obj.name}.tmp{os.getpid()}")
            cmd = [cc, *flags, *incs, *extra, "-c", str(src), "-o", str(tmp)]
            log.info("compiling %s", rel)
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
            if proc.returncode != 0:
                if tmp.exists():
                    tmp.unlink()
                raise ProjectError(f"{cc} failed on {rel}: {_first_lines(proc.stderr or proc.stdout)}")
            os.replace(tmp, obj)
        objects.append(obj)
    return objects


def _size(elf: Path) -> Optional[dict[str, int]]:
    tool = shutil.which("arm-none-eabi-size")
    if tool is None:
        return None
    proc = subprocess.run([tool, "-A", str(elf)], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    sections: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])
    flash = sum(v for k, v in sections.items() if k in (".isr_vector", ".text", ".ARM.exidx", ".data"))
    ram = sum(v for k, v in sections.items() if k in (".data", ".bss"))
    return {"flash_bytes": flash, "static_ram_bytes": ram, "stack_bytes": sections.get(".stack", 0)}


def build_project(path: Path | str, template: Optional[str] = None, force: bool = False) -> Project:
    """Compile and link the project's artefact into ``build/`` (``force``: clean ``build/`` first)."""
    project = load_project(path, template)
    cc, ar = _compiler(project)
    build_dir = project.path / "build"
    if force and build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(exist_ok=True)
    objects = _compile(project, cc)
    out = project.artefact
    tmp = out.with_name(out.name + ".tmp")
    kind = project.template.kind
    if kind == "export":
        if tmp.exists():
            tmp.unlink()
        cmd = [ar, "rcs", str(tmp), *map(str, objects)]
    elif kind == "host":
        cmd = [cc, *map(str, objects), *[f"-l{lib}" for lib in project.info["libs"]], "-o", str(tmp)]
    else:
        cmd = [cc, *project.info["ldflags"], *map(str, objects), *[f"-l{lib}" for lib in project.info["libs"]],
               "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=project.path)
    if proc.returncode != 0:
        raise ProjectError(f"linking {out.name} failed: {_first_lines(proc.stderr or proc.stdout)}")
    os.replace(tmp, out)
    built: dict[str, Any] = {"artefact": project.info["artefact"],
                             "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}
    if kind == "qemu":
        size = _size(out)
        if size:
            built.update(size)
    project.info["built"] = built
    project.save()
    return project


# ---------------------------------------------------------------------------------------------
# flash


def flash_project(path: Path | str, template: Optional[str] = None) -> tuple[Project, str]:
    """Stage the built firmware for the emulator (QEMU); a no-op for host projects.

    Returns the project and a one-line message for the user.
    """
    project = load_project(path, template)
    kind = project.template.kind
    if kind == "export":
        raise ProjectError("an export project has no device to flash: add its sources to your firmware "
                           "(mixq_model.mk or mixq_model.cmake)")
    if not project.artefact.is_file():
        raise ProjectError(f"{project.path} is not built: run tvmc micro build {project.path}")
    sha = hashlib.sha256(project.artefact.read_bytes()).hexdigest()
    if (project.info.get("built") or {}).get("sha256") != sha:  # built with make: record it
        project.info["built"] = {"artefact": project.info["artefact"], "sha256": sha, "by": "make"}
        project.save()
    if kind == "host":
        return project, "host project: nothing to flash, tvmc run executes build/ directly"
    staged = project.path / "flash" / "firmware.elf"
    staged.parent.mkdir(exist_ok=True)
    shutil.copyfile(project.artefact, staged)
    project.info["flashed"] = {"image": "flash/firmware.elf", "machine": project.info["machine"],
                               "sha256": project.info["built"]["sha256"]}
    project.save()
    return project, f"staged {staged} for qemu-system-arm -M {project.info['machine']}"
