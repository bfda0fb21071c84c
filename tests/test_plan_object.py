"""The plan object: JSON view, summary, channel slices."""
from __future__ import annotations

import json

from test_schedule_graphs import mixed_stage_graph
from tvm_mixq.plan import ChannelSplit, Plan
from tvm_mixq.schedule import plan_memory


def _plan() -> Plan:
    return plan_memory(mixed_stage_graph(), {"mixq.patch_stage_end": 5, "mixq.patch_grid": "2x2",
                                             "mixq.channel_split": 3})


def test_to_json_round_trip() -> None:
    plan = _plan()
    d = json.loads(plan.to_json())
    assert d["peak_sram_bytes"] == plan.peak
    assert d["patch_stage"]["grid"] == [2, 2]
    assert len(d["patch_stage"]["patches"]) == 4
    assert d["channel_splits"][0]["factor"] == 3
    assert d["memory"]["mode"] == "input counted"
    assert len(d["memory"]["timeline"]) == len(plan.steps)
    assert all(b["offset"] >= 0 for b in d["memory"]["buffers"])
    assert d["macs"] >= d["baseline_macs"]
    assert set(d["precision"]) and all(v["bits"] == 8 for v in d["precision"].values())


def test_summary_names_the_decisions() -> None:
    plan = _plan()
    text = plan.summary()
    assert f"{plan.peak:,} B" in text
    assert "grid 2x2" in text
    assert "3 slices" in text
    assert "input counted" in text


def test_channel_slices_cover_channels() -> None:
    c = ChannelSplit([1, 2, 3], 1, [2], 3, [10, 11], channels=50, factor=6, accumulator_bytes=0)
    sl = c.slices()
    assert len(sl) == 6 and sl[0][0] == 0 and sl[-1][1] == 50
    assert all(a[1] == b[0] for a, b in zip(sl, sl[1:]))
    assert max(b - a for a, b in sl) - min(b - a for a, b in sl) <= 1


def test_steps_mark_loops() -> None:
    plan = _plan()
    loops = {s.loop for s in plan.steps}
    assert "patch" in loops
    assert any(l and l.startswith("slice:") for l in loops)
    assert any(s.action == "requantize" for s in plan.steps)


def test_buffer_lookups() -> None:
    plan = _plan()
    mem = plan.memory
    stage = plan.patch_stage
    assert mem.buffer_of(stage.split_tensor).kind == "tensor"
    inner = plan.graph.ops[stage.ops[0]].outputs[0]
    assert mem.buffer_of(inner).kind == "tile"
    chain = plan.channel_splits[0]
    assert mem.buffer_of(chain.tensors[0]).kind == "slice"
    acc = mem.accumulator_of(chain.consumer)
    assert acc.size == chain.accumulator_bytes
    out = mem.buffer_of(plan.graph.ops[chain.consumer].outputs[0])
    assert out.offset == acc.offset  # requantized over its own accumulator
    conv_steps = [s for s in plan.steps if plan.graph.ops[s.op].kind == "CONV_2D" and s.action == "patch"]
    assert any(mem.scratch_of(s.index) is not None for s in conv_steps)
