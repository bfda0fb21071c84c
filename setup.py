"""tvm-mixq: mixed-precision, patch-based, channel-split deployment of int8 TFLite models on Cortex-M."""
from setuptools import find_packages, setup

setup(
    name="tvm_mixq",
    version="0.1.0",
    description="TVM and TFLite Micro extension: patch-based, channel-split, mixed-precision int8/4/2 "
    "inference for Cortex-M microcontrollers",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["tvm_mixq", "tvm_mixq.*"]),
    include_package_data=True,
    install_requires=[
        "apache-tvm==0.27.0.post1",
        "numpy>=1.26",
        "tflite>=2.18",
        "flatbuffers>=24.3",
        "ai-edge-litert>=2.3",
        "tflite-micro>=0.dev20260000",
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
