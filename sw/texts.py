"""Real English texts for calibration and evaluation, taken from text installed anyway.

Nothing is copied into the repository: the texts are cut, at run time, from the prose of the
MiniLM package's model card (``model/README.md``) and the docstrings of Python's standard library
modules (and NumPy's). Code, URLs and markup are dropped; the remaining paragraphs of one group of
sources are joined and cut at word boundaries into texts of a fixed number of tokens (128 to 512,
[CLS] and [SEP] included). The same installation always gives the same texts.

Calibration and evaluation texts come from disjoint groups of sources, so no sentence of an
evaluation text was seen while fitting a predictor.
"""

from __future__ import annotations

import importlib
import inspect
import re
from functools import lru_cache

from .minilm import MAX_POSITIONS, model_dir, tokenizer

MIN_TOKENS = 128

#: module docstring sources of each group; members' docstrings (public functions, classes and
#: their methods, in name order) follow each module's own docstring
CALIBRATION_MODULES = ("argparse", "subprocess", "json", "re", "logging", "unittest", "inspect",
                       "collections", "pathlib", "functools", "threading", "pickle", "tarfile",
                       "zipfile", "email.message")
EVALUATION_MODULES = ("statistics", "csv", "heapq", "doctest", "io", "tempfile", "random",
                      "difflib", "typing", "string", "shutil", "sqlite3", "numpy")


class TextError(ValueError):
    """Not enough installed text for the texts asked for, or a length out of range."""


_CODE_LINE = re.compile(r"^\s*(>>>|\.\.\.|\$ |pip |from \w+ import|import \w+|[\w.]+\(.*\)\s*$)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
#: numpydoc section headings ("Parameters ----------")
_SECTION = re.compile(r"\b(?:Parameters|Returns|Yields|Raises|Notes|See Also|Examples|References|"
                      r"Warnings|Attributes|Methods|Other Parameters)\s*-{3,}|-{3,}")
_URL = re.compile(r"https?://\S+")
_MARKUP = re.compile(r"[`*#|=~^<>{}\\]|:(?:func|class|meth|attr|mod|data|exc|ref|term):")


def _clean(doc: str) -> list[str]:
    """Prose paragraphs of a docstring or markdown file: code, tables and headings dropped."""
    doc = re.sub(r"```.*?```", "\n\n", doc, flags=re.S)
    doc = re.sub(r"^---\n.*?\n---\n", "", doc, flags=re.S)  # YAML front matter
    paras = []
    for block in re.split(r"\n\s*\n", doc):
        lines = [ln for ln in block.splitlines() if not _CODE_LINE.match(ln)]
        if not lines or any(ln.startswith("        ") for ln in lines):
            continue  # indented code or a continuation table
        text = " ".join(ln.strip() for ln in lines)
        text = _URL.sub("", _LINK.sub(r"\1", text))
        text = _MARKUP.sub(" ", _SECTION.sub(" ", text))
        text = re.sub(r"\s+", " ", text).strip()
        words = text.split()
        if len(words) < 8:
            continue
        alpha = sum(w.strip(".,;:()'\"!?").isalpha() for w in words) / len(words)
        if alpha < 0.75 or not text[-1] in ".:!?)":
            continue  # parameter lists, tables, signatures
        paras.append(text)
    return paras


def _module_docs(name: str) -> list[str]:
    try:
        mod = importlib.import_module(name)
    except ImportError:
        return []
    docs = [mod.__doc__ or ""]
    for attr in sorted(getattr(mod, "__all__", None) or dir(mod)):
        if attr.startswith("_"):
            continue
        obj = getattr(mod, attr, None)
        if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)
                or callable(obj)):
            continue
        if getattr(obj, "__module__", "") and not str(obj.__module__).startswith(
                name.split(".")[0]):
            continue  # re-exported from another module: its text belongs to that module
        docs.append(inspect.getdoc(obj) or "")
        if inspect.isclass(obj):
            for meth in sorted(vars(obj)):
                if not meth.startswith("_"):
                    docs.append(inspect.getdoc(getattr(obj, meth, None)) or "")
    return docs


@lru_cache(maxsize=2)
def _sources(group: str) -> tuple[tuple[str, ...], ...]:
    """Prose paragraphs per source (the model card, then one module each), deduplicated."""
    if group == "evaluation":
        docs = [[(model_dir() / "README.md").read_text(encoding="utf-8")]]
        names = EVALUATION_MODULES
    else:
        docs, names = [], CALIBRATION_MODULES
    docs += [_module_docs(name) for name in names]
    seen, out = set(), []
    for source in docs:
        paras = []
        for doc in source:
            for p in _clean(doc):
                if p not in seen:  # inherited docstrings repeat
                    seen.add(p)
                    paras.append(p)
        if paras:
            out.append(tuple(paras))
    return tuple(out)


def _cut(stream: str, tokens: int) -> list[str]:
    """Consecutive texts of exactly ``tokens`` tokens, cut at word starts."""
    enc = tokenizer().encode(stream, add_special_tokens=False)
    offsets, toks = enc.offsets, enc.tokens
    body = tokens - 2  # [CLS] and [SEP]
    out, start = [], 0
    while start + body <= len(toks):
        end = start + body
        while end < len(toks) and end > start and toks[end].startswith("##"):
            end -= 1  # never cut inside a word
        if end - start < MIN_TOKENS - 2:  # a long word at the cut: end after it instead
            end = start + body
            while end < len(toks) and toks[end].startswith("##"):
                end += 1
            if end > MAX_POSITIONS - 2 + start:
                break
        out.append(stream[offsets[start][0]:offsets[end - 1][1]])
        start = end
    return out


@lru_cache(maxsize=8)
def _chunks(group: str, tokens: int) -> tuple[str, ...]:
    """All texts of the group, interleaved over its sources so the first few are varied."""
    if not MIN_TOKENS <= tokens <= MAX_POSITIONS:
        raise TextError(f"text length {tokens} tokens is out of range: allowed "
                        f"{MIN_TOKENS}..{MAX_POSITIONS}")
    pools, pending = [], []
    for paras in _sources(group):
        pending.extend(paras)
        cut = _cut("\n".join(pending), tokens)
        if cut:  # a source too short for one text joins the next one
            pools.append(cut)
            pending = []
    out = []
    for i in range(max((len(p) for p in pools), default=0)):
        out.extend(p[i] for p in pools if i < len(p))
    return tuple(out)


def available(group: str, tokens: int) -> int:
    """How many texts of ``tokens`` tokens the group (``calibration``/``evaluation``) offers."""
    return len(_chunks(group, tokens))


def _take(group: str, count: int, tokens: int) -> list[str]:
    chunks = _chunks(group, tokens)
    if not 1 <= count <= len(chunks):
        raise TextError(f"{count} {group} texts of {tokens} tokens asked for: allowed "
                        f"1..{len(chunks)} from the installed text")
    return list(chunks[:count])


def calibration_texts(count: int = 8, tokens: int = 256) -> list[str]:
    """``count`` texts of ``tokens`` tokens (128..512) for fitting predictors."""
    return _take("calibration", count, tokens)


def evaluation_texts(count: int = 4, tokens: int = 256) -> list[str]:
    """``count`` texts of ``tokens`` tokens (128..512), disjoint from the calibration texts."""
    return _take("evaluation", count, tokens)
