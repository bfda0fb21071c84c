"""Convolutions in place in blocks of R output rows per kernel call (tvm_mixq.codegen.inplace): the
schedule never overwrites an input byte a later block reads, R = 1 is the row-by-row schedule, the
generated blocks are bit-exact with the reference on the host (strides 2, 3x3 windows with padding,
depthwise and conv, 8/4/2-bit tensors, a last partial block), and the emitter grows R only while the
arena stays within what rows of one gave (or ``arena_limit``)."""
from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from paths import MLPERF_INT8
from tvm_mixq.codegen import emitter, generate_c, run_host
from tvm_mixq.codegen.inplace import OUT_ROWS, PAD_TOP, WINDOW, row_schedule
from tvm_mixq.emu import tools_available
from tvm_mixq.graph import ConvAttrs, Graph, Op, QuantParams, Tensor
from tvm_mixq.kernellib import layout
from tvm_mixq.reader import read_tflite
from tvm_mixq.reference.interpreter import Interpreter, ReferenceOptions

REF = ReferenceOptions(tflite_float_fc=False)


def _layer(ih, iw, cin, cout, kh, sh, pt, dh, ib=8, ob=8):
    oh = (ih + 2 * pt - ((kh - 1) * dh + 1)) // sh + 1
    return SimpleNamespace(template="conv", p={
        "in_dims": {"n": 1, "h": ih, "w": iw, "c": cin}, "filter_dims": {"h": kh, "w": kh},
        "out_dims": {"n": 1, "h": oh, "w": iw, "c": cout}, "bits": (ib, 8, ob), "stride": (sh, sh),
        "dilation": (dh, dh), "padding": (pt, pt)})


def _simulate(layer, rs) -> None:
    """Run ``rs`` as the template does on labelled bytes: every block must read exactly the input rows
    its output rows need (the kernel maps row ``y0 + k`` to window rows ``k * sh - pad + ky * dh``,
    rows outside the window being padding), read them intact, write its rows to free ring rows, and
    every output row must land at its place."""
    p = layer.p
    i, o = p["in_dims"], p["out_dims"]
    sh, dh, kh, pt = p["stride"][0], p["dilation"][0], p["filter_dims"]["h"], p["padding"][0]
    inb, outb = rs.in_row_bytes, rs.out_row_bytes
    buf = np.full(max(inb * i["h"], outb * o["h"]), -1, np.int64)
    buf[:inb * i["h"]] = np.arange(inb * i["h"])  # input byte k holds k
    ring = [None] * rs.ring_rows  # output row held by each ring row
    assert rs.ring_rows % rs.block == 0
    flushed, y0 = 0, 0
    for b, (start, rows, pad, n, fl) in enumerate(rs.table.tolist()):
        assert 1 <= n <= rs.block and (n == rs.block or b == len(rs.table) - 1)
        assert rows >= 1 and start + rows <= i["h"]
        for k in range(n):
            for ky in range(kh):
                absolute = (y0 + k) * sh - pt + ky * dh
                rel = k * sh - pad + ky * dh
                if 0 <= rel < rows:
                    assert start + rel == absolute
                    lo = absolute * inb
                    np.testing.assert_array_equal(buf[lo:lo + inb], np.arange(lo, lo + inb))  # still input
                else:
                    assert not 0 <= absolute < i["h"]  # padding exactly where the layer pads
        slot = (b % rs.slots) * rs.block
        for k in range(n):
            assert ring[slot + k] is None or ring[slot + k] < flushed  # never over a pending row
            ring[slot + k] = y0 + k
            assert rs.ring_row(y0 + k) == slot + k
        for j in range(flushed, fl):
            assert ring[rs.ring_row(j)] == j
            buf[j * outb:(j + 1) * outb] = -2 - j
        flushed, y0 = fl, y0 + n
    assert flushed == y0 == o["h"]
    for j in range(o["h"]):
        assert (buf[j * outb:(j + 1) * outb] == -2 - j).all()


def test_blocks_never_overwrite_input_still_read() -> None:
    checked = 0
    for ih, iw, cin, cout, kh, sh, pt, dh, ib, ob in itertools.product(
            [1, 5, 13, 25], [3], [8, 64], [4, 64], [1, 3, 5], [1, 2, 3], [0, 1, 2], [1, 2], [8, 2], [8, 2]):
        if pt >= kh or (ih + 2 * pt - ((kh - 1) * dh + 1)) < 0:
            continue
        layer = _layer(ih, iw, cin, cout, kh, sh, pt, dh, ib, ob)
        one = row_schedule(layer, None)
        if one is None:
            continue
        assert (one.table[:, OUT_ROWS] == 1).all() and one.block == 1
        for r in range(1, layer.p["out_dims"]["h"] + 1):
            rs = row_schedule(layer, None, r)
            if rs is None:
                continue
            assert rs.block == r
            _simulate(layer, rs)
            checked += 1
    assert checked > 1000


def test_row_by_row_is_blocks_of_one() -> None:
    """R = 1 is today's schedule: KWS-like depthwise 3x3 (25 x 5 x 64) keeps two rows in the ring, a
    pointwise one row; a block of 3 rows of the depthwise needs two slots (six rows)."""
    dw = _layer(25, 5, 64, 64, 3, 1, 1, 1)
    one = row_schedule(dw, None)
    assert one.ring_rows == 2 and one.table.shape == (25, 5)
    assert one.table[0].tolist() == [0, 2, 1, 1, 0] and one.table[1].tolist() == [0, 3, 0, 1, 1]
    assert one.table[-1].tolist() == [23, 2, 0, 1, 25]
    three = row_schedule(dw, None, 3)
    assert three.table.shape == (9, 5) and three.ring_rows == 6 and three.slots == 2
    assert three.table[0].tolist() == [0, 4, 1, 3, 2]  # rows 0..2 from input rows 0..3; row 2 reads input row 3
    assert three.table[-1].tolist() == [23, 2, 0, 1, 25]  # the last block: one row
    pw = _layer(25, 5, 64, 64, 1, 1, 0, 1)
    assert row_schedule(pw, None).ring_rows == 1
    assert row_schedule(pw, None, 4).ring_rows == 4


# ---- generated code, bit-exact on the host ------------------------------------------------------


def _q(scale, zp=0, axis=0) -> QuantParams:
    s = np.atleast_1d(np.asarray(scale, np.float32))
    return QuantParams(scale=s, zero_point=np.zeros(s.size, np.int64) + int(zp), axis=axis)


SCALES = (11.2, 2.82, 0.631, 0.141, 0.00178)  # of a0, a1, a2, a3, output: the most distinct values


def subbyte_graph(seed: int = 0, scales=SCALES, every_output: bool = False) -> Graph:
    """int8 [1,13,6,8] -> conv 3x3 s2 SAME a8w8o4 (8 -> 16, 7 rows) -> depthwise 3x3 SAME a4w4o4 ->
    depthwise 3x3 s2 SAME a4w2o2 (4 rows) -> conv 3x3 SAME a2w2o2 -> 1x1 a2w4o8 (16 -> 8) -> int8."""
    rng = np.random.default_rng(seed)
    tensors: list[Tensor] = []

    def add(name, shape, dtype="int8", quant=None, data=None, bits=8, signed=True) -> int:
        tensors.append(Tensor(len(tensors), name, shape, dtype, quant, data, bits, signed))
        return len(tensors) - 1

    def weights(name, shape, bits, axis):
        lo, hi = layout.weight_range(bits)
        n = shape[axis]
        return add(name, shape, quant=_q(list(rng.uniform(0.01, 0.05, n)), 0, axis),
                   data=rng.integers(lo, hi + 1, size=shape).astype(np.int8), bits=bits)

    def bias(name, n, amp):
        return add(name, (n,), "int32", data=rng.integers(-amp, amp + 1, size=n).astype(np.int32))

    x = add("input", (1, 13, 6, 8), quant=_q(0.05, -3))
    a0 = add("a0", (1, 7, 3, 16), quant=_q(scales[0], 8), bits=4, signed=False)
    a1 = add("a1", (1, 7, 3, 16), quant=_q(scales[1], 8), bits=4, signed=False)
    a2 = add("a2", (1, 4, 2, 16), quant=_q(scales[2], 2), bits=2, signed=False)
    a3 = add("a3", (1, 4, 2, 16), quant=_q(scales[3], 2), bits=2, signed=False)
    y = add("output", (1, 4, 2, 8), quant=_q(scales[4], -4))
    ops = [
        Op(0, "CONV_2D", [x, weights("w0", (16, 3, 3, 8), 8, 0), bias("b0", 16, 300)], [a0],
           ConvAttrs(stride=(2, 2), padding="SAME")),
        Op(1, "DEPTHWISE_CONV_2D", [a0, weights("w1", (1, 3, 3, 16), 4, 3), bias("b1", 16, 20)], [a1],
           ConvAttrs(padding="SAME", depth_multiplier=1)),
        Op(2, "DEPTHWISE_CONV_2D", [a1, weights("w2", (1, 3, 3, 16), 2, 3), bias("b2", 16, 5)], [a2],
           ConvAttrs(stride=(2, 2), padding="SAME", depth_multiplier=1)),
        Op(3, "CONV_2D", [a2, weights("w3", (16, 3, 3, 16), 2, 0), bias("b3", 16, 10)], [a3],
           ConvAttrs(padding="SAME")),
        Op(4, "CONV_2D", [a3, weights("w4", (8, 1, 1, 16), 4, 0), bias("b4", 8, 5)], [y], ConvAttrs(padding="VALID")),
    ]
    return Graph(tensors, ops, [x], [a0, a1, a2, a3, y] if every_output else [y], name="inplace_blocks")


def _check_block_scratch(model, graph) -> None:
    """The scratch placed for an in-place layer covers what the kernel library asks for each block's
    call (its window rows, padding and output rows; get_buffer_size does not grow with the rows)."""
    from tvm_mixq.codegen.layers import uses_w4_lanes
    from tvm_mixq.kernellib.lib import KernelLib

    lib = KernelLib()
    for la in model.layers:
        if la.template != "rows_conv":
            continue
        p = la.p
        i, f = p["in_dims"], p["filter_dims"]
        w_shape = graph.tensors[la.op.inputs[1]].shape
        eff_h, eff_w = (f["h"] - 1) * p["dilation"][0] + 1, (f["w"] - 1) * p["dilation"][1] + 1
        right = max(0, (p["out_dims"]["w"] - 1) * p["stride"][1] + eff_w - i["w"] - p["padding"][1])
        for start, rows, pad, n, _ in la.rows.table.tolist():
            bottom = max(0, (n - 1) * p["stride"][0] + eff_h - rows - pad)
            need = lib.scratch_bytes(p["kernel"], p["bits"], (1, rows, i["w"], i["c"]), w_shape, p["stride"],
                                     (pad, bottom, p["padding"][1], right), p["dilation"], lanes=uses_w4_lanes(p))
            assert 0 <= need <= la.scratch


def _force_blocks(block: int):
    """A ``_select_rows`` keeping every row schedule, in blocks of ``block`` rows where possible."""
    def select(layers, place_all, arena, by_tensor, arena_limit, graph):
        for la in layers:
            if la.rows is not None:
                la.rows = row_schedule(la, graph, block) or la.rows
        return place_all()
    return select


@pytest.mark.parametrize("block", [1, 2, 3])
def test_blocks_bit_exact_on_host(block: int, tmp_path: Path, monkeypatch) -> None:
    graph = subbyte_graph()
    monkeypatch.setattr(emitter, "_select_rows", _force_blocks(block))
    model = generate_c(graph, tmp_path, name=f"blocks{block}")
    rows = {la.op.index: la.rows for la in model.layers if la.template == "rows_conv"}
    assert {0, 1, 2, 3} <= set(rows)  # the conv s2, both depthwise and the 3x3 conv run in place
    assert {graph.tensors[graph.ops[i].inputs[0]].bits for i in rows} == {8, 4, 2}
    if block > 1:
        assert any(rs.block == block for rs in rows.values())
        # a last partial block (7 output rows in blocks of 2 or 3)
        assert any(rs.out_rows % block and rs.table[-1, OUT_ROWS] == rs.out_rows % block for rs in rows.values())
        assert any(rs.table[0, PAD_TOP] > 0 and rs.table[0, WINDOW] > 2 for rs in rows.values())
    _check_block_scratch(model, graph)
    x = [np.random.default_rng(5).integers(-128, 128, size=(3, 13, 6, 8)).astype(np.int8)]
    expected = Interpreter(graph, REF).run(x)[0]
    assert len(np.unique(expected)) > 40  # outputs are not saturated
    assert len(np.unique(expected[:, :, :, 0])) > 12  # and vary across rows and samples
    np.testing.assert_array_equal(run_host(model, x)[0], expected)


# ---- how large a block the emitter takes ---------------------------------------------------------


def _blocks(model) -> dict[int, int]:
    return {la.op.index: la.rows.block for la in model.layers if la.template == "rows_conv"}


def test_blocks_grow_while_the_arena_allows(tmp_path: Path, monkeypatch) -> None:
    """KWS int8 (25 x 5 x 64 maps): without a limit the pointwise layers take blocks of rows (their
    ring grows where the arena has room) and the arena stays what rows of one give; the depthwise
    layers sit at the arena's peak and stay row by row, until ``arena_limit`` leaves them room."""
    graph = read_tflite(MLPERF_INT8["kws"])
    whole = generate_c(graph, tmp_path / "whole", in_place=False)
    with monkeypatch.context() as m:
        m.setattr(emitter, "_block_sizes", lambda rows: [])
        ones = generate_c(graph, tmp_path / "ones")
    assert set(_blocks(ones).values()) == {1} and ones.arena_size < whole.arena_size
    free = generate_c(graph, tmp_path / "free")
    assert set(_blocks(free)) == set(_blocks(ones))
    assert free.arena_size <= ones.arena_size
    assert max(_blocks(free).values()) > 1  # R > 1 where the arena allows
    dw = {la.op.index for la in free.layers if la.template == "rows_conv" and la.p["kernel"] == "depthwise"}
    assert dw and all(_blocks(free)[i] == 1 for i in dw)  # no room at the peak: R = 1
    tight = generate_c(graph, tmp_path / "tight", arena_limit=ones.arena_size)
    assert _blocks(tight) == _blocks(free) and tight.arena_size <= ones.arena_size
    limit = (ones.arena_size + whole.arena_size) // 2
    roomy = generate_c(graph, tmp_path / "roomy", arena_limit=limit)
    assert roomy.arena_size <= limit
    assert any(_blocks(roomy).get(i, 0) > 1 for i in dw)
    x = [np.random.default_rng(2).integers(-128, 128, size=(2,) + graph.tensors[graph.inputs[0]].shape[1:])
         .astype(np.int8)]
    expected = Interpreter(graph, REF).run(x)[0]
    for model in (free, roomy):
        _check_block_scratch(model, graph)
        np.testing.assert_array_equal(run_host(model, x)[0], expected)


@pytest.mark.skipif(tools_available() is not None, reason="needs arm-none-eabi-gcc and qemu-system-arm")
def test_blocks_bit_exact_on_m7(tmp_path: Path, monkeypatch) -> None:
    """The DSP paths (packed sub-byte im2col rows, depthwise passes) on blocks of 3 rows."""
    from tvm_mixq.codegen.firmware import build_firmware, run_firmware

    graph = subbyte_graph()
    monkeypatch.setattr(emitter, "_select_rows", _force_blocks(3))
    model = generate_c(graph, tmp_path, name="blocks3")
    assert any(la.template == "rows_conv" and la.rows.block == 3 for la in model.layers)
    x = np.random.default_rng(5).integers(-128, 128, size=(2, 13, 6, 8)).astype(np.int8)
    expected = Interpreter(graph, REF).run([x])[0]
    fw = build_firmware(model, "cortex-m7", [[x[s:s + 1] for s in range(2)]], [[expected[s:s + 1] for s in range(2)]])
    run = run_firmware(fw, len(model.layers))
    assert run.passed, run.console[-400:]
