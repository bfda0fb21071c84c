"""Where the test models live (all inside the repository)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
MLPERF = MODELS / "mlperf_tiny"
OPS_FIXTURES = ROOT / "tests" / "models" / "ops"
MLPERF_INT8 = {
    "vww": MLPERF / "vww_96_int8.tflite",
    "kws": MLPERF / "kws_ref_model.tflite",
    "resnet": MLPERF / "pretrainedResnet_quant.tflite",
    "ad": MLPERF / "ad01_int8.tflite",
}
MLPERF_FLOAT = {
    "vww": MLPERF / "vww_96_float.tflite",
    "kws": MLPERF / "kws_ref_model_float32.tflite",
    "resnet": MLPERF / "pretrainedResnet.tflite",
    "ad": MLPERF / "ad01_fp32.tflite",
}
