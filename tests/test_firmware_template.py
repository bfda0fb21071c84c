"""One QEMU firmware template (microtvm_templates/qemu_cortex_m{4,7}/main.c.j2) serves both
``mixq deploy`` (samples and expected outputs embedded, the default) and ``tvmc micro
create-project`` (inputs and outputs through semihosting files, ``io_mode="files"``)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from paths import OPS_FIXTURES
from tvm_mixq.codegen.emitter import template_env
from tvm_mixq.codegen.firmware import TEMPLATES_ROOT, template_dir
from tvm_mixq.tvmc.compiler import compile_model
from tvm_mixq.tvmc.project import OWN_TEMPLATES, create_project
from tvm_mixq.tvmc.target import parse_target

SMALL = OPS_FIXTURES / "conv_flatten_fc_softmax.tflite"
ARM_GCC = shutil.which("arm-none-eabi-gcc")


def _syntax_check(project_dir: Path, info: dict, main_c: Path) -> None:
    """Compile ``main_c`` as the project compiles its main (flags, includes), without linking."""
    cmd = [ARM_GCC, *info["cflags"], *[f"-I{project_dir / d}" for d in info["include_dirs"]],
           "-fsyntax-only", str(main_c)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_tvmc_keeps_no_firmware_template_of_its_own():
    assert sorted(p.name for p in OWN_TEMPLATES.iterdir()) == ["Makefile.j2", "README.md.j2"]


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m7"])
def test_one_template_two_input_modes(tmp_path, core):
    tar = compile_model(SMALL, parse_target(f"c -mcpu={core}"), tmp_path / "m.tar", ["mixq.enable=0"]).output
    proj = create_project(tmp_path / "p", tar, f"qemu_{core.replace('-', '_')}")
    info = proj.info
    files_main = (proj.path / "src" / "main.c").read_text()
    # files mode: semihosting files and per-sample counts, nothing embedded
    assert "mixq_file_open(input_files[i], 0)" in files_main and "@mixq count invoke.<s>" in files_main
    assert "expected_0" not in files_main and "SAMPLES" in files_main
    assert f"({core}, board {info['machine']})" in files_main
    # the harness's profiling hooks, not a header of the project's own
    assert info["profile_header"] == "harness/mixq_fw_profile.h"
    assert (proj.path / info["profile_header"]).is_file()
    assert sorted(p.name for p in (proj.path / "src").iterdir()) == ["main.c"]
    assert "-include harness/mixq_fw_profile.h" in (proj.path / "Makefile").read_text()

    # embedded mode: exactly the context mixq deploy passes (no io_mode), rendered from the same
    # template against the same model header
    io = info["io"]
    samples = 2
    data = {"inputs": [[[s] * t["nbytes"] for s in range(samples)] for t in io["inputs"]],
            "outputs": [[[s] * t["nbytes"] for s in range(samples)] for t in io["outputs"]]}
    env = template_env((TEMPLATES_ROOT, template_dir(core)))
    prefix = info["model"]["prefix"]
    embedded = env.get_template("main.c.j2").render(
        m={"prefix": prefix, "macro": prefix.upper(), "inputs": io["inputs"], "outputs": io["outputs"]},
        data=data, samples=samples, target=core, board=info["machine"])
    assert "mixq_file_open" not in embedded and "@mixq count total" in embedded
    assert f"static const uint8_t expected_0[SAMPLES][{io['outputs'][0]['nbytes']}]" in embedded
    assert [f'"sample.{s}",' in embedded for s in range(samples + 1)] == [True] * samples + [False]

    if ARM_GCC is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    emb_c = tmp_path / "embedded_main.c"
    emb_c.write_text(embedded)
    for main_c in (proj.path / "src" / "main.c", emb_c):
        _syntax_check(proj.path, info, main_c)
