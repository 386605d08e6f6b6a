"""``python -m swattn.sw.bench``: the CPU timing worker (:func:`.cpu.cpu_worker`), which
:func:`.cpu.time_cpu` runs in a subprocess pinned to one BLAS thread."""

from .cpu import cpu_worker

cpu_worker()
