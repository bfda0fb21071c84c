"""Kernel library, Cortex-M DSP path: cross-compiled with -Wall -Wextra -Werror and run on the
emulated core (QEMU mps2-an500, Cortex-M7; mps2-an386, Cortex-M4 with --runslow), every output
compared in the firmware with the oracle's (tvm_mixq.kernellib.firmware).

The host cannot execute the DSP path (no __ARM_FEATURE_DSP), so this is where the packed-SIMD
kernels (W4A4 spacing-11 lanes, W2A2 spacing-12 lanes, widen-to-16 SMLAD, depthwise
SMLABB/SMLATT, the average pool's SIMD channel sums) are checked bit for bit.
"""
import subprocess

import numpy as np
import pytest

from tvm_mixq.kernellib import build, cases, firmware, layout

toolchain = pytest.importorskip("tvm_mixq.emu.toolchain")
pytestmark = pytest.mark.skipif(toolchain.tools_available() is not None,
                                reason=f"needs arm-none-eabi-gcc and qemu-system-arm: {toolchain.tools_available()}")


def _dsp_cases(seed: int, per_variant: int) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for op in cases.CONV_OPS:
        for bits in cases.BIT_TRIPLES:
            out += [cases.random_conv_case(rng, op, bits, max_hw=6, max_c=12) for _ in range(per_variant)]
    # the fast im2col paths (channels a multiple of 4 / 8), packed kernels (>= 8 pixels), padding
    for bits in [(8, 8, 8), (4, 4, 4), (2, 2, 2), (4, 4, 8), (2, 2, 4), (8, 2, 2), (2, 4, 8)]:
        for cin in (8, 16, 24):
            case = cases.random_conv_case(rng, "conv2d", bits, max_hw=6, max_c=12, mode="random")
            case.x = cases._values(rng, (1, 6, 5, cin), *layout.act_range(bits[0]), "random")
            case.w = cases._values(rng, (6, 3, 3, cin), *layout.weight_range(bits[1]), "random")
            case.padding, case.stride, case.dilation = (1, 1, 1, 1), (1, 1), (1, 1)
            case.bias, case.multiplier, case.shift = cases._requant(
                rng, cases.ops.conv2d_accumulate(case.x, case.x_zp, case.w, (1, 1), (1, 1, 1, 1)), bits[2], False)
            out.append(case)
    # depthwise groups of 4 channels (ch_mult 1, pixels on byte boundaries): every bitwidth, a channel
    # tail, outputs starting mid-byte (6 channels at 2 bits), padding on every side, stride 2
    for i, bits in enumerate(cases.BIT_TRIPLES):
        cin = (8, 12, 6, 20)[i % 4]
        mode = ("random", "max", "min", "random")[i % 4]
        case = cases.random_conv_case(rng, "depthwise", bits, max_hw=6, max_c=12, mode="random")
        case.x = cases._values(rng, (1, 5, 6, cin), *layout.act_range(bits[0]), mode)
        case.w = cases._values(rng, (1, 3, 3, cin), *layout.weight_range(bits[1]), mode)
        case.x_zp = int(rng.integers(*layout.act_range(bits[0]), endpoint=True))
        case.padding, case.dilation, case.depth_multiplier = (1, 1, 1, 1), (1, 1), 1
        case.stride = (1, 1) if i % 3 else (2, 2)
        case.bias, case.multiplier, case.shift = cases._requant(
            rng, cases.ops.depthwise_conv2d_accumulate(case.x, case.x_zp, case.w, case.stride, case.padding,
                                                       (1, 1), 1), bits[2], i % 2 == 0)
        case.qmin, case.qmax = layout.act_range(bits[2])
        out.append(case)
    # reductions longer than one A2W2 extraction chunk (448) and than the W4A4 assembly loop (544)
    for bits, k in [((2, 2, 2), 480), ((4, 4, 4), 480), ((4, 4, 4), 640), ((2, 2, 8), 1000)]:
        x = cases._values(rng, (1, 3, 3, k), *layout.act_range(bits[0]), "max")
        w = cases._values(rng, (4, 1, 1, k), *layout.weight_range(bits[1]), "min")
        case = cases.ConvCase("pointwise", bits, x, 0, w, None)
        case.bias, case.multiplier, case.shift = cases._requant(
            rng, cases.ops.conv2d_accumulate(x, 0, w), bits[2], False)
        case.qmin, case.qmax = layout.act_range(bits[2])
        out.append(case)
    return out


def test_cross_compile_has_simd():
    """The library cross-compiles warning-free (-Wall -Wextra -Werror -Ofast) for Cortex-M7, and
    the packed W2A2 path uses SMLAD on rotated weight words. The objects are cached by content
    and shared with the QEMU check below."""
    objs = toolchain.compile_objects(build.kernel_sources(), "cortex-m7",
                                     build.default_build_dir() / "obj-cortex-m7", include_dirs=build.include_dirs())
    pointwise = next(o for o in objs if o.stem.startswith("mixq_pointwise"))
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(pointwise)], capture_output=True, text=True).stdout
    body = dis.split("<mixq_pointwise_a2w2o2>:")[1].split("\n\n")[0]
    assert "smlad" in body and "ror" in body


def test_cross_compile_unoptimized_takes_the_portable_path(tmp_path):
    """A debug build (-O0) of a firmware tree compiles the library warning-free: the DSP path's
    inline assembly needs the optimizer, so -O0 selects the portable path (no SMLAD emitted)."""
    objs = build.cross_compile(tmp_path, cpu="cortex-m4", opt="-O0")
    assert len(objs) == len(build.kernel_sources())
    pointwise = next(o for o in objs if o.stem.startswith("mixq_pointwise"))
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(pointwise)], capture_output=True, text=True).stdout
    assert "mixq_pointwise_a2w2o2" in dis and "smlad" not in dis


@pytest.mark.slow
def test_cross_compile_cortex_m4_o2(tmp_path):
    assert len(build.cross_compile(tmp_path, cpu="cortex-m4", opt="-O2")) == len(build.kernel_sources())


@pytest.mark.parametrize("target", ["cortex-m7", pytest.param("cortex-m4", marks=pytest.mark.slow)])
def test_dsp_path_bit_exact_in_qemu(tmp_path, target):
    cs = _dsp_cases(seed=3 if target == "cortex-m7" else 4, per_variant=1)
    results, raw = firmware.run_cases(cs, target, tmp_path)
    assert raw.values.get("dsp") == 1, "firmware built without the DSP path"
    bad = [r.name for r in results if not r.ok]
    assert not bad, f"{len(bad)} mismatching cases, first {bad[:5]}; exit {raw.exit_code}"
    assert raw.exit_code == 0


@pytest.mark.parametrize("target", ["cortex-m7", pytest.param("cortex-m4", marks=pytest.mark.slow)])
def test_avgpool_blocks_bit_exact_in_qemu(tmp_path, target):
    """The average pool's channel blocks on the DSP path (SXTAB16 lanes at 8 bits, byte lanes of
    masked words at 4 and 2 bits flushed into 16-bit lanes; kernels/src/mixq_eltwise_core.h): every
    width pair, block / word / element channels, padding, every requantization form, windows past
    each accumulator's bound (cases.pool_block_cases)."""
    _, problems = firmware.check_in_qemu(cases.pool_block_cases(7 if target == "cortex-m7" else 8, big=True),
                                         target, tmp_path)
    assert not problems, f"{len(problems)} problems, first {problems[:4]}"


@pytest.mark.parametrize("target", ["cortex-m7", pytest.param("cortex-m4", marks=pytest.mark.slow)])
def test_add_fast_path_bit_exact_in_qemu(tmp_path, target):
    """The add's fast path (groups of four, SMMLAR scaling of 8-bit inputs with shift 0 or negative,
    tables of sub-byte inputs) and its element tail, every bitwidth triple (cases.add_fast_cases)."""
    _, problems = firmware.check_in_qemu(cases.add_fast_cases(9 if target == "cortex-m7" else 10), target, tmp_path)
    assert not problems, f"{len(problems)} problems, first {problems[:4]}"
