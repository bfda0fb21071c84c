"""A tvmc-compatible driver: TVM 0.27 on PyPI has no ``tvmc`` and no microTVM, so the project
supplies the parts of them its users work with.

* :mod:`.target`   -- TVM target strings as tvmc took them (``c -mcpu=cortex-m7``);
* :mod:`.compiler` -- ``tvmc compile``: Relax import, the mixq passes, the C emitter, the archive;
* :mod:`.mlf`      -- the Model Library Format-like tar (writer, reader, safe extraction);
* :mod:`.project`  -- ``tvmc micro create-project | build | flash`` over the templates;
* :mod:`.runner`   -- ``tvmc run --device micro`` on the host or under QEMU.

The command line is :mod:`tvm_mixq.cli.tvmc` (console script ``tvmc``, or ``python -m tvm_mixq``).
"""
from .mlf import MlfArchive, MlfError, read_mlf, write_mlf
from .project import TEMPLATES, ProjectError, build_project, create_project, flash_project, load_project
from .runner import RunOutcome, run_project
from .target import CompileTarget, TargetError, parse_target

__all__ = ["TEMPLATES", "CompileTarget", "MlfArchive", "MlfError", "ProjectError", "RunOutcome", "TargetError",
           "build_project", "create_project", "flash_project", "load_project", "parse_target", "read_mlf",
           "run_project", "write_mlf"]
