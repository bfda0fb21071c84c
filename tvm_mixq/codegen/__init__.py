"""C code generation of a model: layer classes per op (:mod:`.layers`), the static arena
(:mod:`.arena`), the Jinja2 emitter (:mod:`.emitter`) and the host build (:mod:`.host`); the small
C runtime of the ops the kernel library lacks lives in ``runtime/``."""
from .emitter import GeneratedModel, generate_c, include_dirs, kernel_sources, runtime_sources
from .host import build_host, run_host
from .layers import CodegenError, make_layer

__all__ = ["CodegenError", "GeneratedModel", "build_host", "generate_c", "include_dirs", "kernel_sources",
           "make_layer", "run_host", "runtime_sources"]
