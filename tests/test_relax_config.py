"""mixq.* PassContext options: registration through the C++ shim, typed options, the parsers."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tvm_mixq.options import OPTION_SPECS, MixqOptions, OptionError, parse_pass_config, valid_keys_text

ROOT = Path(__file__).resolve().parents[1]


def _run_fresh(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with the repository on the path."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          cwd=str(ROOT), timeout=300)


def test_fresh_process_accepts_registered_key_and_refuses_bogus_and_wrong_types() -> None:
    proc = _run_fresh("""
        import tvm_mixq
        import tvm
        with tvm.transform.PassContext(config={"mixq.sram_limit_kb": 64}):
            print("VALUE", tvm.transform.PassContext.current().config["mixq.sram_limit_kb"])
        try:
            tvm.transform.PassContext(config={"mixq.bogus": 1})
        except AttributeError as exc:
            print("UNKNOWN", exc)
        for bad in ({"mixq.sram_limit_kb": "64"}, {"mixq.enable": 3}, {"mixq.bits": 8}):
            try:
                tvm.transform.PassContext(config=bad)
                print("ACCEPTED", bad)
            except TypeError as exc:
                print("REFUSED", str(exc).splitlines()[0])
    """)
    assert proc.returncode == 0, proc.stderr
    assert "VALUE 64" in proc.stdout
    unknown = next(line for line in proc.stdout.splitlines() if line.startswith("UNKNOWN"))
    assert "mixq.bogus" in unknown
    for spec in OPTION_SPECS:  # TVM lists every registered key, ours included
        assert spec.key in unknown
    assert "ACCEPTED" not in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REFUSED")]
    assert len(lines) == 3
    assert "mixq.sram_limit_kb expects int" in lines[0] and "got str '64'" in lines[0]
    assert "mixq.enable expects bool" in lines[1]
    for line in lines:
        assert "Valid mixq keys:" in line and "mixq.patch_grid (str)" in line


def test_fresh_process_tvm_imported_first() -> None:
    proc = _run_fresh("""
        import tvm
        import tvm_mixq
        tvm.transform.PassContext(config={"mixq.bits": "8,4", "mixq.enable": True})
        keys = [k for k in tvm.transform.PassContext.list_configs() if k.startswith("mixq.")]
        print(sorted(keys))
    """)
    assert proc.returncode == 0, proc.stderr
    assert all(spec.key in proc.stdout for spec in OPTION_SPECS)


def test_import_tvm_mixq_does_not_import_tvm() -> None:
    proc = _run_fresh("""
        import sys
        import tvm_mixq
        from tvm_mixq.options import MixqOptions
        MixqOptions()
        print("TVM_LOADED", "tvm" in sys.modules)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "TVM_LOADED False" in proc.stdout


@pytest.mark.slow
def test_shim_builds_into_cache_when_missing(tmp_path: Path) -> None:
    """The lazy fallback: an empty cache and no library in the package still works."""
    code = """
        import tvm_mixq.relax.shim as shim
        from pathlib import Path
        pkg = Path(shim.__file__).parent / shim.library_name()
        if pkg.exists():
            # the package copy (setup.py build) wins; check the cache build directly instead
            built = shim.build_shim(shim.cache_dir())
        else:
            built = shim.shim_path()
        print("BUILT", built)
        import tvm
        import tvm_mixq.relax.config
        tvm.transform.PassContext(config={"mixq.lambda": 0.25})
        print("OK")
    """
    env_code = f"import os; os.environ['MIXQ_CACHE_DIR'] = {str(tmp_path)!r}\n" + textwrap.dedent(code)
    proc = _run_fresh(env_code)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout
    assert list(tmp_path.glob("libmixq_config_*.so"))


# -- in-process: typed options ------------------------------------------------------------------


def test_defaults_and_conversions() -> None:
    opts = MixqOptions()
    assert opts.enable and opts.bits == (8, 4, 2) and opts.patch_grid == "auto" and opts.target == "cortex-m7"
    opts = MixqOptions.from_config({"mixq.bits": "4, 8", "mixq.patch_grid": "3x2", "mixq.channel_split": "4",
                                    "mixq.patch_stage_end": "12", "mixq.target": "c -mcpu=cortex-m4",
                                    "mixq.enable": 0, "other.key": 1})
    assert opts.bits == (8, 4)
    assert opts.patch_grid == (3, 2)
    assert opts.channel_split == 4
    assert opts.patch_stage_end == 12
    assert opts.target == "cortex-m4"
    assert opts.plain_int8 and opts.min_bits == 8
    assert MixqOptions().cost_model == "auto" and MixqOptions().cost_budget == 0.0
    assert MixqOptions.from_strings(["mixq.cost_budget=0.667"]).cost_budget == pytest.approx(0.667)


def test_round_trip_through_config() -> None:
    opts = MixqOptions(bits=(8, 2), patch_grid=(4, 4), lambda_=0.3, channel_split=2, sram_limit_kb=96)
    assert MixqOptions.from_config(opts.to_config()) == opts
    assert opts.sram_limit_bytes == 96 * 1024
    assert "mixq.patch_grid=4x4" in opts.describe()


@pytest.mark.parametrize("config, fragment", [
    ({"mixq.bits": "8,3"}, "bitwidths must be drawn from"),
    ({"mixq.bits": "4,2"}, "must include 8"),
    ({"mixq.lambda": 1.5}, "within [0, 1]"),
    ({"mixq.outlier_k": 0.0}, "> 0"),
    ({"mixq.patch_grid": "3by3"}, "NxM"),
    ({"mixq.channel_split": "many"}, "slice count"),
    ({"mixq.cost_model": "cycles"}, "auto, bitops, measured"),
    ({"mixq.cost_budget": 1.5}, "fraction of the int8 cost"),
    ({"mixq.cost_budget": "fast"}, "expected a float"),
    ({"mixq.target": "cortex-a53"}, "unknown target"),
    ({"mixq.sram_limit_kb": -1}, ">= 0"),
])
def test_bad_values_are_refused(config: dict, fragment: str) -> None:
    with pytest.raises(OptionError, match=None) as info:
        MixqOptions.from_config(config)
    assert fragment in str(info.value)
    assert list(config)[0] in str(info.value)


def test_unknown_key_lists_valid_keys_and_suggests() -> None:
    with pytest.raises(OptionError) as info:
        MixqOptions.from_config({"mixq.sram_limit": 64})
    message = str(info.value)
    assert "did you mean mixq.sram_limit_kb" in message
    assert valid_keys_text() in message


def test_parse_pass_config_strings() -> None:
    config = parse_pass_config(["mixq.enable=0", "mixq.bits=8,4", "mixq.lambda=0.25", "mixq.sram_limit_kb=0x40",
                                "mixq.stream_input=yes", "mixq.patch_grid=2x2", "mixq.bits=8"])
    assert config == {"mixq.enable": False, "mixq.bits": "8", "mixq.lambda": 0.25, "mixq.sram_limit_kb": 64,
                      "mixq.stream_input": True, "mixq.patch_grid": "2x2"}
    assert MixqOptions.from_strings(["mixq.bits=8,2"]).bits == (8, 2)


@pytest.mark.parametrize("item, fragment", [
    ("mixq.enable", "KEY=VALUE"),
    ("mixq.enable=maybe", "expected a bool"),
    ("mixq.sram_limit_kb=lots", "expected an int"),
    ("mixq.bogus=1", "unknown option mixq.bogus"),
    ("tirx.noalias=1", "not a mixq option"),
    ("mixq.bits=16", "bitwidths must be drawn from"),
])
def test_parse_pass_config_errors(item: str, fragment: str) -> None:
    with pytest.raises(OptionError) as info:
        parse_pass_config([item])
    assert fragment in str(info.value)


# -- in-process: the TVM side -------------------------------------------------------------------


def test_pass_context_helper_checks_first() -> None:
    import tvm

    from tvm_mixq.relax.config import options_from_context, parse_pass_configs, pass_context

    with pass_context({"mixq.bits": "8,4"}, options=MixqOptions(lambda_=0.75)):
        opts = options_from_context()
        assert opts.bits == (8, 4) and opts.lambda_ == 0.75
    with pytest.raises(OptionError, match="unknown option mixq.bogus"):
        pass_context({"mixq.bogus": 1})
    with pytest.raises(OptionError, match="mixq.sram_limit_kb expects int"):
        pass_context({"mixq.sram_limit_kb": "64"})
    with pytest.raises(OptionError, match="within"):
        pass_context({"mixq.lambda": 2.0})
    with pytest.raises(OptionError, match="Invalid config option 'nomixq.key'"):
        pass_context({"nomixq.key": 1})
    config = parse_pass_configs(["mixq.enable=0", "tirx.noalias=1", "relax.FuseOps.max_depth=4"])
    assert config == {"mixq.enable": False, "tirx.noalias": True, "relax.FuseOps.max_depth": 4}
    with tvm.transform.PassContext(config=config):
        assert not options_from_context().enable
    with pytest.raises(OptionError, match="unknown pass config"):
        parse_pass_configs(["tirx.bogus=1"])


def test_options_from_context_validates_values() -> None:
    import tvm

    from tvm_mixq.relax.config import options_from_context

    with tvm.transform.PassContext(config={"mixq.bits": "8,5"}):  # right type, bad value: TVM accepts it
        with pytest.raises(OptionError, match="mixq.bits"):
            options_from_context()
