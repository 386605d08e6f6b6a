"""The specification: the facts that the RTL, the golden model, the testbenches, the host driver
and the board code share.

Its modules import only each other (plus NumPy, the standard library and Amaranth's data layouts),
and nothing else of swattn, so every layer can depend on them without depending on another layer:

* :mod:`.numerics`: number formats, widths, tables and rounding rules of every datapath stage;
* :mod:`.pattern`: the hybrid sliding-window + global-token pattern and its limits;
* :mod:`.engine_params`: the parameters fixed when the engine is elaborated;
* :mod:`.regs`: the configuration register, status and error codes;
* :mod:`.protocol`: the frames of the host link;
* :mod:`.schedule`: the order in which rows stream through the engine;
* :mod:`.errors`: :class:`~.errors.UserError`, the error a user can fix.

Nothing is imported here: import the module you need.
"""
