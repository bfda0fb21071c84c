"""tvmc target strings: the spellings tvmc took, and the ones the driver refuses."""
from __future__ import annotations

import pytest

from tvm_mixq.tvmc.target import TargetError, parse_target


@pytest.mark.parametrize("text, extra, core", [
    ("c -mcpu=cortex-m7", None, "cortex-m7"),
    ("c -mcpu=cortex-m4", None, "cortex-m4"),
    ("c", None, "host"),
    ("llvm", None, "host"),
    ("  c   -keys=arm_cpu -mcpu=cortex-m7 ", None, "cortex-m7"),
    ("mixq, c -mcpu=cortex-m4", None, "cortex-m4"),
    ("c", {"mcpu": "cortex-m7"}, "cortex-m7"),
    ("c -mcpu=cortex-m4", {"mcpu": "cortex-m7"}, "cortex-m7"),  # the flag wins, as in tvmc
    ("c", {"mcpu": None, "model": None}, "host"),
])
def test_accepted(text, extra, core):
    t = parse_target(text, extra)
    assert t.core == core
    assert t.is_host == (core == "host")
    assert t.to_dict()["core"] == core


def test_attributes_kept():
    t = parse_target("mixq, c -keys=arm_cpu -mcpu=cortex-m7 -model=mps2")
    assert t.kind == "c"
    assert t.byoc == ("mixq",)
    assert dict(t.attrs) == {"keys": "arm_cpu", "mcpu": "cortex-m7", "model": "mps2"}


@pytest.mark.parametrize("text, extra, needle", [
    ("", None, "empty --target"),
    ("cuda", None, "unsupported target kind 'cuda'"),
    ("c -mcpu=cortex-m55", None, "unsupported -mcpu=cortex-m55"),
    ("c -mcpu=cortex-m3", None, "cortex-m4 or cortex-m7"),
    ("c -bogus=1", None, "unknown attribute -bogus"),
    ("c mcpu", None, "cannot read 'mcpu'"),
    ("c -mcpu=", None, "-mcpu has no value"),
    ("cmsis-nn, c -mcpu=cortex-m7", None, "unsupported BYOC target 'cmsis-nn'"),
    ("c,", None, "empty entry"),
    ("c -mcpu='cortex-m7", None, "quotation"),
    ("c", {"foo": "x"}, "--target-c-foo"),
])
def test_refused(text, extra, needle):
    with pytest.raises(TargetError) as exc:
        parse_target(text, extra)
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)
