"""Place-and-route results kept by what determines them, so that no placement is run twice.

nextpnr is deterministic: one netlist, one constraint file, one set of options (the seed among
them) and one nextpnr give one placement and one timing report. A place and route of the ECP5
engine takes 10 to 30 minutes, and the same one is asked for again and again: ``swattn explore``
re-run with one candidate more, ``swattn build --seeds`` over seeds already swept, and the
board's own ``swattn build`` at the seed a sweep just recorded. Each result is therefore kept
under a key made of

* the place-and-route tool: its Python distribution's version for a YoWASP tool, else the
  executable's contents;
* every option except those that only name an output (``--report``, ``--textcfg``, ``--asc``,
  ``--log``) or quiet it;
* the contents of the input files it names (``--json`` netlist, ``--lpf`` / ``--pcf``
  constraints).

An entry holds nextpnr's report, the routed configuration when the run wrote one (what the
bitstream packer reads) and the run's seconds. Only runs that finished (exit 0) are kept; one
stopped by a time limit is run again.

The cache is the folder named by ``SWATTN_PNR_CACHE``, or ``$XDG_CACHE_HOME/swattn/pnr``
(``~/.cache/swattn/pnr``); ``SWATTN_PNR_CACHE=0`` turns it off. Deleting the folder is always
safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

#: options whose value names an output file of the run (not part of the key)
OUTPUT_OPTIONS = ("--report", "--textcfg", "--asc", "--log")
#: options whose value names an input file (its contents are part of the key)
INPUT_OPTIONS = ("--json", "--lpf", "--pcf")
#: flags that change only what is printed
QUIET = ("-q", "--quiet")
#: the routed configuration's option per family's tool (what the packer reads)
CONFIG_OPTIONS = ("--textcfg", "--asc")
#: an entry's files
REPORT, CONFIG, META = "report.json", "routed.config", "meta.json"


def cache_dir(env: dict | None = None) -> Path | None:
    """The cache folder (None: turned off with ``SWATTN_PNR_CACHE=0``)."""
    env = os.environ if env is None else env
    given = env.get("SWATTN_PNR_CACHE")
    if given is not None:
        return None if given.strip() in ("", "0", "off") else Path(given).expanduser()
    base = env.get("XDG_CACHE_HOME") or str(Path("~").expanduser() / ".cache")
    return Path(base) / "swattn" / "pnr"


def _tool_identity(exe: str) -> str:
    """A YoWASP tool by its distribution's version (its WebAssembly is fixed by it), any other
    executable by its contents."""
    from importlib import metadata

    name = Path(exe).name
    if name.startswith("yowasp-"):
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            pass
    path = shutil.which(exe) or exe
    try:
        return f"{name} sha256:{_file_hash(Path(path))}"
    except OSError:
        return f"{name} (unreadable)"


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pairs(argv: list[str]) -> list[tuple[str, str | None]]:
    """nextpnr's options as (option, value or None) pairs: an option's value is the next word
    when that does not start with ``-``."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        has_value = i + 1 < len(argv) and not argv[i + 1].startswith("-")
        out.append((a, argv[i + 1] if has_value else None))
        i += 2 if has_value else 1
    return out


def key(argv: list[str], cwd: Path) -> str:
    """The key of the place and route ``argv`` run in ``cwd`` (see the module's list); the
    options' order does not matter (nextpnr's does not either)."""
    parts = []
    for opt, value in _pairs(argv[1:]):
        if opt in QUIET or opt in OUTPUT_OPTIONS:
            continue
        if opt in INPUT_OPTIONS and value is not None:
            path = Path(cwd) / value
            value = "sha256:" + _file_hash(path) if path.is_file() else f"missing {value}"
        parts.append(f"{opt}={value}" if value is not None else opt)
    h = hashlib.sha256()
    h.update(_tool_identity(argv[0]).encode())
    for part in sorted(parts):
        h.update(b"\0" + part.encode())
    return h.hexdigest()[:32]


def _option(argv: list[str], names) -> str | None:
    for i, a in enumerate(argv[:-1]):
        if a in names:
            return argv[i + 1]
    return None


def lookup(cache: Path | None, argv: list[str], cwd: Path) -> dict | None:
    """The kept result of ``argv`` in ``cwd``, copied to the files the run would have written
    there (its ``--report`` and routed configuration): returns the entry's metadata (``key``,
    ``seconds`` of the run that made it), or None when there is none (or no cache)."""
    if cache is None:
        return None
    k = key(argv, cwd)
    entry = Path(cache) / k
    try:
        meta = json.loads((entry / META).read_text())
    except (OSError, ValueError):
        return None
    report, config = _option(argv, ("--report",)), _option(argv, CONFIG_OPTIONS)
    if config is not None and not (entry / CONFIG).is_file():
        return None  # kept from a run that wrote no configuration: this one needs it
    if report is not None:
        shutil.copyfile(entry / REPORT, Path(cwd) / report)
    if config is not None:
        shutil.copyfile(entry / CONFIG, Path(cwd) / config)
    return dict(meta, key=k)


def store(cache: Path | None, argv: list[str], cwd: Path, seconds: float) -> str | None:
    """Keep the finished run ``argv`` (its report and routed configuration in ``cwd``);
    returns the key (None when there is no cache or no report). Written to a temporary folder
    and renamed, so that a reader on another worker never sees half an entry."""
    if cache is None:
        return None
    report, config = _option(argv, ("--report",)), _option(argv, CONFIG_OPTIONS)
    if report is None or not (Path(cwd) / report).is_file():
        return None
    k = key(argv, cwd)
    entry = Path(cache) / k
    tmp = Path(cache) / f".{k}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copyfile(Path(cwd) / report, tmp / REPORT)
    if config is not None and (Path(cwd) / config).is_file():
        shutil.copyfile(Path(cwd) / config, tmp / CONFIG)
    (tmp / META).write_text(json.dumps({"seconds": round(seconds, 1),
                                        "argv": [Path(argv[0]).name] + argv[1:]}) + "\n")
    if entry.exists():  # a config-less entry replaced by this fuller one
        shutil.rmtree(entry, ignore_errors=True)
    try:
        tmp.rename(entry)
    except OSError:  # another worker kept the same run at the same moment
        shutil.rmtree(tmp, ignore_errors=True)
    return k
