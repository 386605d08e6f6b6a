"""Every sparsity predictor on real MiniLM attention, raw and mapped to the engine.

For each predictor and budget (keys per query), over every layer and head of the evaluation texts:

* ``raw``: the predicted mask as is;
* ``mapped``: each head's mask mapped to an engine pattern of about the same keys per query
  (:func:`swattn.sw.mapper.map_masks`), what the engine would run: a
  :class:`~swattn.sw.spec.pattern.HybridPattern`, or with the mapper's ``max_bands`` /
  ``max_columns`` above one band / no column an :class:`~swattn.sw.spec.keyset.EngineForm` with
  bands beside the window and key-only columns where they cover more (``form_choice``, below);
* ``int8``: the mapped patterns run through the int8 golden model (quantised Q, K, V), at the
  table budget only, to show the share of the error that quantisation adds.

Metrics (means over texts, layers and heads):

* ``sparsity``: fraction of query-key pairs not computed;
* ``mass_recall``: attention probability mass (dense softmax) inside the mask, per query;
* ``entmax_recall``: fraction of the entmax-1.5 graph inside the mask (Sparsefinder's recall);
* ``out_rel_err``: ||O_sparse - O_dense||_F / ||O_dense||_F of each head's attention output, with
  the dense model's inputs to that layer (layer by layer, no accumulation);
* ``emb_cos``: cosine between the sentence embedding with that attention in all six layers
  (predictions made online from the sparse model's own Q, K) and the dense embedding;
* ``coverage`` (mapped): the fraction of the predicted entries the mapped pattern covers.

``by_tokens`` holds the mapped ``coverage``, ``emb_cos`` and ``sparsity`` per predictor and budget
at each text length: the main run's, and those of ``more_tokens`` (other lengths, with texts of
their own, the predictors fitted again on calibration texts of that length), measured just as in
the main run.

How each head's form is chosen where the mapper may use bands and columns (``form_choice``,
``swattn eval --form-choice``):

* ``cover`` (the default): the form covering the most of the predicted mask, bands and columns
  wherever they add cover. More cover of the prediction is not always a smaller attention error:
  where the predictor's extra keys carry little of the attention, the budget they take from the
  window costs accuracy;
* ``calibrated``: per budget, layer and head, the form is chosen on the calibration texts (the
  first :data:`CHOICE_TEXTS`). Each head's predicted mask is mapped with the window and globals
  alone and with the bands and columns asked for, each mapping's attention output is compared
  with dense attention (``out_rel_err``, summed over the texts), and the head takes bands and
  columns only where their error is lower (:func:`choose_forms`). Heads that each come closer
  to their own attention can still, together, move the sentence embedding further from the
  dense one, so the choice is then checked as a whole: it is kept only where it raises the
  embedding cosine on those calibration texts, text by text, by more than chance explains (a
  one-sided paired t-test of the per-text cosines against those with the window and globals in
  every head, p below :data:`CHOICE_ALPHA`; a higher mean alone is not enough, as the texts'
  cosines differ by several hundredths), else every head keeps the window and globals
  (:func:`keep_if_closer`). Every mapped pattern of that predictor and budget then takes its
  head's form: the mapped metrics, the embedding cosine, the int8 run and the other text
  lengths (there chosen again on that length's calibration texts). The chosen form covers at
  least what the window and globals cover, so the map cover never falls below the
  window-and-globals mapper's. The mapped rows and ``by_tokens`` rows then hold
  ``keyset_heads``, the heads (of ``heads``, layers x heads) mapped with bands and columns,
  ``keyset_heads_by_error``, those the attention error alone chose, and, where any did,
  ``keyset_cos_gain`` and ``keyset_p``, the mean cosine gain of their choice on the calibration
  texts and the test's p-value; ``form_choice_seconds`` holds the time the choice took per
  predictor.

Outputs (``swattn eval``): a table on the terminal, ``--json FILE``, and PNG plots of sparsity
against recall with one point per budget (as Sparsefinder's Pareto plots, :func:`write_plots`)
under ``--out`` (``build/`` by default).
"""

from __future__ import annotations

import math
import time
import zlib
from pathlib import Path

import numpy as np

from .mapper import pattern_mask
from .report import checkout_commit

DEFAULT_BUDGETS = (16, 32, 64)  #: keys per query swept for the plots
DEFAULT_TABLE_BUDGET = 32  #: the budget shown in the table and run through the golden model
DEFAULT_TEXTS = 3
DEFAULT_CALIBRATION = 8
DEFAULT_TOKENS = 256
DEFAULT_ALSO_TOKENS = (512,)  #: the other text lengths measured by default (``more_tokens``)
#: the mapper's bands (the window counting as one) and key-only columns by default: the window
#: and globals alone. Bands and columns are asked for with --max-bands / --max-columns: the
#: mapper fits them to the predicted mask's cover, which does not always raise the embedding
#: cosine (docs/predictors.md)
DEFAULT_MAX_BANDS, DEFAULT_MAX_COLUMNS = 1, 0
#: how each head's mapped form is chosen where bands or columns are allowed (``form_choice``):
#: the form covering the most of the prediction, or the one with the lower attention error on
#: the calibration texts
FORM_CHOICES = ("cover", "calibrated")
DEFAULT_FORM_CHOICE = "cover"
#: calibration texts (the first ones) on which the calibrated choice is made: each is mapped
#: twice per head and run twice through the model per budget, so this bounds the choice's time
#: (all of the default calibration's: on four, the choice kept bands and columns for two
#: predictor x budget rows whose cosine then fell on the evaluation texts)
CHOICE_TEXTS = 8
#: the calibrated choice keeps bands and columns only where the paired test of the calibration
#: texts' embedding cosines gives a p-value below this (:func:`keep_if_closer`)
CHOICE_ALPHA = 0.05


# --- helpers ------------------------------------------------------------------------------------

def _rel_err(a, b):
    """Per head ||a - b|| / ||b|| for (heads, n, d) arrays."""
    num = np.sqrt(((a - b) ** 2).sum(axis=(-1, -2)))
    den = np.sqrt((b ** 2).sum(axis=(-1, -2)))
    return num / np.maximum(den, 1e-30)


def _with_diagonal(mask):
    """Rows with no key keep their own (never happens for the built-in predictors)."""
    n = mask.shape[-1]
    return mask | (~mask.any(-1, keepdims=True) & np.eye(n, dtype=bool))


class _Dense:
    """What the metrics compare against, for one evaluation text."""

    def __init__(self, trace):
        from .minilm import masked_softmax_attention
        from .predictors.entmax import entmax15_support
        self.trace = trace
        self.probs = [lt.probs.astype(np.float64) for lt in trace.layers]
        self.entmax = [entmax15_support(lt.scores) for lt in trace.layers]
        self.out = [masked_softmax_attention(lt.q, lt.k, lt.v, None) for lt in trace.layers]
        self.embedding = trace.embedding


def _mask_metrics(dense: _Dense, li: int, mask: np.ndarray) -> dict:
    from .minilm import masked_softmax_attention
    lt = dense.trace.layers[li]
    g = dense.entmax[li]
    o = masked_softmax_attention(lt.q, lt.k, lt.v, _with_diagonal(mask))
    return {
        "sparsity": 1.0 - mask.mean(axis=(-1, -2)),
        "mass_recall": (dense.probs[li] * mask).sum(-1).mean(-1),
        "entmax_recall": (g & mask).sum(axis=(-1, -2)) / np.maximum(g.sum(axis=(-1, -2)), 1),
        "out_rel_err": _rel_err(o, dense.out[li]),
    }


class _MapCache:
    """Mappings of masks already seen: static predictors give the same mask to every head and to
    the online run, and the mapper is the costliest step after the model itself."""

    def __init__(self, **kw):
        self.kw, self.memo = kw, {}

    def __call__(self, masks: np.ndarray) -> list:
        from . import mapper
        out = []
        for m in masks:
            key = (m.shape, zlib.crc32(np.packbits(m).tobytes()), int(m.sum()))
            if key not in self.memo:
                self.memo[key] = mapper.map_masks(m[None], **self.kw)[0]
            out.append(self.memo[key])
        if len(self.memo) > 4096:
            self.memo.clear()
        return out


def keysets_asked(mapper_kw: dict) -> bool:
    """Whether ``mapper_kw`` lets the mapper use bands beside the window or columns."""
    return (mapper_kw.get("max_bands", DEFAULT_MAX_BANDS) or 1) > 1 \
        or (mapper_kw.get("max_columns", DEFAULT_MAX_COLUMNS) or 0) > 0


def check_form_choice(form_choice: str, mapper_kw: dict) -> None:
    """ValueError unless ``form_choice`` is one of :data:`FORM_CHOICES` and, for
    ``calibrated``, ``mapper_kw`` allows bands beside the window or columns (there is nothing to
    choose between otherwise)."""
    if form_choice not in FORM_CHOICES:
        raise ValueError(f"form_choice = {form_choice!r}: allowed {', '.join(FORM_CHOICES)}")
    if form_choice == "calibrated" and not keysets_asked(mapper_kw):
        raise ValueError(
            f"form_choice 'calibrated' with max_bands "
            f"{mapper_kw.get('max_bands', DEFAULT_MAX_BANDS)} and max_columns "
            f"{mapper_kw.get('max_columns', DEFAULT_MAX_COLUMNS)}: the mapper gives the window "
            "and globals alone, there is no form to choose; allowed with max_bands 2 or more or "
            "max_columns 1 or more")


class _Caches:
    """The mapper's caches of one evaluation: ``asked`` with the limits asked for, and, for the
    calibrated choice, ``plain`` with the window and globals alone (the same globals and
    dilations); one cache per limits, so that each keeps its hits."""

    def __init__(self, mapper_kw: dict, form_choice: str = DEFAULT_FORM_CHOICE):
        check_form_choice(form_choice, mapper_kw)
        self.form_choice = form_choice
        self.asked = _MapCache(**mapper_kw)
        self.plain = None
        if form_choice == "calibrated":
            self.plain = _MapCache(**{**mapper_kw, "max_bands": DEFAULT_MAX_BANDS,
                                      "max_columns": DEFAULT_MAX_COLUMNS})

    def forms(self, model, pred, cal, budget) -> "_HeadForms":
        """The mapping of ``pred``'s masks at ``budget``: every head by the asked limits
        (``cover``), or each head in the form chosen on the first :data:`CHOICE_TEXTS` of the
        calibration traces ``cal`` (``calibrated``: :func:`choose_forms`, then
        :func:`keep_if_closer` with the embedding cosine of ``model`` on those texts)."""
        if self.plain is None:
            return _HeadForms(self.asked)
        t = time.perf_counter()
        texts = cal[:CHOICE_TEXTS]
        by_error = choose_forms(pred, texts, budget, self.asked, self.plain)
        use, gain, p = keep_if_closer(by_error, lambda u: _embedding_cosines(
            model, pred, texts, budget, _HeadForms(self.asked, self.plain, u)))
        return _HeadForms(self.asked, self.plain, use, time.perf_counter() - t, by_error,
                          gain, p)


class _HeadForms:
    """Maps one layer's head masks ``(li, masks (heads, n, n))`` to a list of
    :class:`~swattn.sw.mapper.Mapping`: by ``asked`` for every head where ``use`` is None, else by
    ``asked`` for the heads ``use[li]`` marks and by ``plain`` for the others."""

    def __init__(self, asked, plain=None, use: np.ndarray | None = None, seconds: float = 0.0,
                 by_error: np.ndarray | None = None, gain: float | None = None,
                 p: float | None = None):
        self.asked, self.plain, self.use, self.seconds = asked, plain, use, seconds
        self.by_error = use if by_error is None else by_error
        self.gain, self.p = gain, p

    def __call__(self, li: int, masks: np.ndarray) -> list:
        if self.use is None:
            return self.asked(masks)
        use = self.use[li]
        out = [None] * len(masks)
        for idx, maps in ((np.flatnonzero(use), self.asked(masks[use])),
                          (np.flatnonzero(~use), self.plain(masks[~use]))):
            for h, m in zip(idx, maps):
                out[h] = m
        return out

    def record(self) -> dict:
        """What the mapped rows say of the choice: nothing for ``cover``, else the heads that
        kept bands and columns (``keyset_heads``) of all layers' heads (``heads``), and those
        whose attention error alone chose them (``keyset_heads_by_error``), and where any did,
        that choice's mean cosine gain on the calibration texts and the test's p-value
        (``keyset_cos_gain``, ``keyset_p``: :func:`keep_if_closer`)."""
        if self.use is None:
            return {}
        out = {"keyset_heads": int(self.use.sum()), "heads": int(self.use.size),
               "keyset_heads_by_error": int(self.by_error.sum())}
        if self.gain is not None:
            out.update(keyset_cos_gain=self.gain, keyset_p=self.p)
        return out


def choose_forms(pred, traces, budget: float, asked, plain) -> np.ndarray:
    """Per layer and head, whether the mapping with bands and columns (``asked``) beats the
    window and globals alone (``plain``) on ``traces``.

    ``pred``: a fitted predictor (``pred.predict(LayerInput, budget) -> (heads, n, n)`` bool);
    ``traces``: dense forward passes (:class:`~swattn.sw.minilm.Trace`, with their layers'
    ``q``, ``k``, ``v``), the calibration texts; ``budget``: keys per query (at most each text's
    length); ``asked``, ``plain``: callables that map (heads, n, n) masks to a list of
    :class:`~swattn.sw.mapper.Mapping`. Each head's predicted mask of each text is mapped both
    ways and each mapping's attention output compared with dense attention (the relative error
    of ``out_rel_err``, on the dense model's inputs to that layer); the errors are summed over
    the texts. Returns a (layers, heads) bool array, True where ``asked``'s error is strictly
    lower (a tie, such as both mappings giving the same pattern, keeps the window and globals).
    """
    from .minilm import masked_softmax_attention
    from .predictors.base import LayerInput

    err = None
    for trace in traces:
        b = min(budget, trace.n)
        for li, lt in enumerate(trace.layers):
            mask = pred.predict(LayerInput.from_trace(trace, li), b)
            dense = masked_softmax_attention(lt.q, lt.k, lt.v, None)
            if err is None:
                err = np.zeros((2, len(trace.layers), mask.shape[0]))
            for i, map_fn in enumerate((asked, plain)):
                pmask = np.stack([pattern_mask(m.pattern) for m in map_fn(mask)])
                o = masked_softmax_attention(lt.q, lt.k, lt.v, _with_diagonal(pmask))
                err[i, li] += _rel_err(o, dense)
    if err is None:
        raise ValueError("choose_forms needs at least one calibration trace")
    return err[0] < err[1]


def keep_if_closer(use: np.ndarray, cosines, alpha: float = CHOICE_ALPHA):
    """``use`` (from :func:`choose_forms`) where the model with those heads' bands and columns
    comes closer to the dense model than with the window and globals in every head, else no
    head with bands and columns; with the mean cosine gain and the test's p-value (None, None
    where no head was chosen). ``cosines(use) -> per-text array``: the embedding cosine against
    the dense model on each calibration text with each head in the form ``use`` gives it.

    Heads that each come closer to their own dense attention can together move the sentence
    embedding further from the dense one (their errors add up through the layers after them).
    The texts' cosines differ by several hundredths from one text to the next, so a choice whose
    mean is higher on a few texts may still be lower on others: the choice is kept only where a
    one-sided paired t-test (:func:`scipy.stats.ttest_rel`) of its per-text cosines against the
    window and globals' gives p < ``alpha`` (a gain equal on every text passes, none or a loss
    does not). One text cannot pass (no spread to test)."""
    from scipy.stats import ttest_rel

    window = np.zeros_like(use)
    if not use.any():
        return window, None, None
    chosen, plain = np.asarray(cosines(use), float), np.asarray(cosines(window), float)
    diff = chosen - plain
    gain = float(np.mean(diff))
    if diff.size < 2:
        p = float("nan")
    elif np.ptp(diff) <= 1e-12:  # the same difference on every text: no spread to test
        p = 0.0 if gain > 0 else 1.0
    else:
        p = float(ttest_rel(chosen, plain, alternative="greater").pvalue)
    return (use if p < alpha else window), gain, p


def _embedding_cosines(model, pred, traces, budget: float, forms: "_HeadForms") -> np.ndarray:
    """Per trace of ``traces``, the cosine between the dense embedding and the embedding with
    ``pred``'s masks at ``budget``, mapped by ``forms``, in all six layers (predicted online), as
    the mapped ``emb_cos``."""
    from .minilm import cosine, masked_softmax_attention
    from .predictors.base import LayerInput

    out = []
    for trace in traces:
        b = min(budget, trace.n)

        def mapped_fn(layer, q, k, v, hidden):
            m = pred.predict(LayerInput(layer, q, k, hidden), b)
            pm = np.stack([pattern_mask(mp.pattern) for mp in forms(layer, m)])
            return masked_softmax_attention(q, k, v, pm)

        emb = model.forward(trace.ids, mapped_fn, record=False).embedding
        out.append(cosine(emb, trace.embedding))
    return np.asarray(out, dtype=np.float64)


class _Acc:
    """Accumulates per-head metric arrays and scalars; means on demand."""

    def __init__(self):
        self.vals: dict[str, list] = {}

    def add(self, d: dict):
        for k, v in d.items():
            self.vals.setdefault(k, []).append(np.asarray(v, dtype=np.float64).ravel())

    def means(self) -> dict:
        return {k: float(np.concatenate(v).mean()) for k, v in self.vals.items()}


# --- the evaluation -----------------------------------------------------------------------------

def evaluate(predictors: list[str], budgets: list[float], ids_cal, ids_ev, table_budget: float,
             golden: bool = True, seed: int = 0, mapper_kw: dict | None = None,
             progress=None, more_tokens: dict | None = None, jobs: int | None = 1,
             scheduler: str | None = None, form_choice: str = DEFAULT_FORM_CHOICE) -> dict:
    """Run the evaluation; returns the results dict that ``--json`` writes.

    ``progress(description, advance)`` is called as work completes (optional).
    ``more_tokens``: {tokens: (ids_cal, ids_ev)} of other text lengths at which the mapped
    coverage and embedding cosine are measured too (``by_tokens``).
    ``jobs``: 1 runs every predictor here, one after another; otherwise each predictor is a job
    of a Dask cluster (:mod:`swattn.sw.cluster`: ``jobs`` local worker processes, None: one per
    core, or the cluster at ``scheduler``), with the same results.
    ``form_choice``: how each head's mapped form is chosen, one of :data:`FORM_CHOICES` (the
    module's docstring); ``calibrated`` needs ``mapper_kw`` with ``max_bands`` 2 or more or
    ``max_columns`` 1 or more (ValueError otherwise, before any work).
    """
    from . import minilm

    mapper_kw = mapper_kw or {}
    check_form_choice(form_choice, mapper_kw)
    step = progress or (lambda desc, adv=0: None)
    t0 = time.perf_counter()
    commit = checkout_commit()  # the code that runs (edits made during a long run are not)
    model = minilm.load()
    step("dense forward passes", 0)
    cal = [model.forward(i) for i in ids_cal]
    dense = [_Dense(model.forward(i)) for i in ids_ev]
    step("dense forward passes", 1)

    # quantisation alone: every head through the golden model with a full pattern
    from .spec.pattern import HybridPattern
    base = {}
    if golden:
        acc = _Acc()
        for d in dense:
            n = d.trace.n
            full = HybridPattern(n, n - 1, n - 1)
            for li, lt in enumerate(d.trace.layers):
                o = np.stack([minilm.golden_head(lt.q[h], lt.k[h], lt.v[h], full)
                              for h in range(lt.q.shape[0])])
                acc.add({"out_rel_err": _rel_err(o, d.out[li])})
            emb = model.forward(d.trace.ids, minilm.golden_attention(
                lambda layer, q, k, hidden, full=full: [full] * q.shape[0]),
                record=False).embedding
            acc.add({"emb_cos": minilm.cosine(emb, d.embedding)})
        base = acc.means()
        step("int8 dense baseline", 1)

    # a job per predictor: its fit, every budget on the texts and its cover and cosine at the
    # other lengths; inline, or on the cluster's workers (jobs / scheduler)
    work = [{"name": name, "budgets": budgets, "table_budget": table_budget,
             "golden": golden, "seed": seed, "mapper_kw": mapper_kw,
             "form_choice": form_choice, "ids_cal": ids_cal,
             "ids_ev": ids_ev, "more": sorted((more_tokens or {}).items())}
            for name in predictors]
    lengths = sorted({int(d.trace.n) for d in dense})
    for tokens, _ in work[0]["more"] if work else []:
        step(f"dense forward passes at {tokens} tokens", 1)  # (each predictor's part makes them)
    done = {}
    if jobs == 1 and scheduler is None:
        caches = _Caches(mapper_kw, form_choice)
        for job in work:
            done[job["name"]] = _predictor_part(job, model, cal, dense, caches, step)
    else:
        from .cluster import dask_client, map_jobs

        per_job = (1 + len(budgets) * len(ids_ev)) + sum(
            1 + len(budgets) * len(ev) for _, (_, ev) in work[0]["more"]) if work else 0
        with dask_client(scheduler, jobs) as client:
            for job, part in map_jobs(client, predictor_job, work, label=lambda j: j["name"],
                                      name="eval"):
                done[job["name"]] = part
                step(f"{job['name']}: every budget", per_job)
    rows = [r for name in predictors for r in done[name]["rows"]]
    fit_s = {name: done[name]["fit_s"] for name in predictors}
    by_tokens = []
    if len(lengths) == 1:  # the main run at its one text length
        by_tokens = [{"tokens": lengths[0], "predictor": r["predictor"], "budget": r["budget"],
                      **{k: r[k] for k in BY_TOKENS_METRICS + CHOICE_FIELDS if k in r}}
                     for r in rows if r["variant"] == "mapped"]
    for tokens, _ in sorted((more_tokens or {}).items()):
        if [tokens] == lengths:
            continue
        by_tokens += [r for name in predictors for r in done[name]["more"]
                      if r["tokens"] == tokens]
    out = {
        "config": {"predictors": predictors, "budgets": budgets, "table_budget": table_budget,
                   "texts": len(ids_ev), "calibration_texts": len(ids_cal),
                   "tokens": [int(d.trace.n) for d in dense], "seed": seed,
                   "golden": golden, "mapper": mapper_kw, "form_choice": form_choice,
                   "more_tokens": sorted(more_tokens or {})},
        "int8_dense": base,
        "fit_seconds": fit_s,
        "results": rows,
        "by_tokens": by_tokens,
    }
    if form_choice != DEFAULT_FORM_CHOICE:
        out["form_choice_seconds"] = {name: done[name]["choice_s"] for name in predictors}
    return {**out, "runtime_s": time.perf_counter() - t0, "commit": commit}


#: the mapped metrics of ``by_tokens``
BY_TOKENS_METRICS = ("coverage", "emb_cos", "sparsity")
#: what the mapped and ``by_tokens`` rows say of a calibrated form choice (:class:`_HeadForms`)
CHOICE_FIELDS = (
    "keyset_heads", "heads", "keyset_heads_by_error", "keyset_cos_gain", "keyset_p")


def predictor_job(job: dict) -> dict:
    """One predictor's part of :func:`evaluate` as a job of a cluster (a module-level function
    of plain data: the predictor's name, the settings and the texts' token ids): the dense
    passes of its texts, then :func:`_predictor_part` with one BLAS thread (the cluster's
    workers share the cores)."""
    from threadpoolctl import threadpool_limits

    from . import minilm

    with threadpool_limits(limits=1):
        model = minilm.load()
        cal = [model.forward(i) for i in job["ids_cal"]]
        dense = [_Dense(model.forward(i)) for i in job["ids_ev"]]
        caches = _Caches(job["mapper_kw"], job.get("form_choice", DEFAULT_FORM_CHOICE))
        return _predictor_part(job, model, cal, dense, caches, lambda desc, adv=0: None)


def _predictor_part(job: dict, model, cal, dense, caches: _Caches, step) -> dict:
    """Fit ``job["name"]`` on ``cal`` and measure it at every budget on ``dense`` (raw, mapped
    and, at the table budget, int8), each head mapped in the form ``caches`` chooses for it at
    that budget, then its mapped cover and cosine at each of ``job["more"]``'s other lengths:
    ``{"rows", "fit_s", "choice_s", "more"}`` (``choice_s``: seconds of the calibrated form
    choice, every budget and length)."""
    from . import minilm
    from .predictors.base import LayerInput, make

    name, budgets, seed = job["name"], job["budgets"], job["seed"]
    rows = []
    pred = make(name, seed=seed)
    tf = time.perf_counter()
    pred.fit(cal)
    fit_s = time.perf_counter() - tf
    step(f"fitted {name}", 1)
    choice_s = 0.0
    for budget in budgets:
        if caches.plain is not None:
            step(f"{name} @ {budget:g}: each head's form on the calibration texts", 0)
        forms = caches.forms(model, pred, cal, budget)
        choice_s += forms.seconds
        raw, mapped, int8 = _Acc(), _Acc(), _Acc()
        run_golden = job["golden"] and budget == job["table_budget"]
        for d in dense:
            n = d.trace.n
            b = min(budget, n)
            # layer by layer, on the dense model's inputs
            for li in range(len(d.trace.layers)):
                x = LayerInput.from_trace(d.trace, li)
                mask = pred.predict(x, b)
                raw.add(_mask_metrics(d, li, mask))
                maps = forms(li, mask)
                pmask = np.stack([pattern_mask(m.pattern) for m in maps])
                mm = _mask_metrics(d, li, pmask)
                mm["coverage"] = [m.coverage for m in maps]
                mapped.add(mm)
                if run_golden:
                    lt = d.trace.layers[li]
                    o = np.stack([minilm.golden_head(lt.q[h], lt.k[h], lt.v[h],
                                                     maps[h].pattern)
                                  for h in range(len(maps))])
                    int8.add({"out_rel_err": _rel_err(o, d.out[li]),
                              "sparsity": [m.sparsity for m in maps]})
            # all six layers sparse, predictions from the sparse model's own Q and K
            emb = model.forward(d.trace.ids, minilm.masked_attention(
                lambda layer, q, k, hidden: pred.predict(LayerInput(layer, q, k, hidden), b)),
                record=False).embedding
            raw.add({"emb_cos": minilm.cosine(emb, d.embedding)})
            patterns = {}

            def mapped_fn(layer, q, k, v, hidden):
                m = pred.predict(LayerInput(layer, q, k, hidden), b)
                patterns[layer] = [mp.pattern for mp in forms(layer, m)]
                pm = np.stack([pattern_mask(p) for p in patterns[layer]])
                return minilm.masked_softmax_attention(q, k, v, pm)

            emb = model.forward(d.trace.ids, mapped_fn, record=False).embedding
            mapped.add({"emb_cos": minilm.cosine(emb, d.embedding)})
            if run_golden:
                # the same patterns, int8 numerics: the difference is quantisation's share
                emb = model.forward(d.trace.ids, minilm.golden_attention(
                    lambda layer, q, k, hidden: patterns[layer]), record=False).embedding
                int8.add({"emb_cos": minilm.cosine(emb, d.embedding)})
            step(f"{name} @ {budget:g}", 1)
        for variant, acc in (("raw", raw), ("mapped", mapped), ("int8", int8)):
            if acc.vals:
                rows.append({"predictor": name, "budget": budget, "variant": variant,
                             **acc.means(), **(forms.record() if variant == "mapped" else {})})
    lengths = sorted({int(d.trace.n) for d in dense})
    more = []
    for tokens, (cal_t, ev_t) in job["more"]:
        if [tokens] == lengths:
            continue
        rows_t, s = _cover_and_cosine(model, tokens, [name], budgets, cal_t, ev_t, seed,
                                      caches, step)
        more += rows_t
        choice_s += s
    return {"rows": rows, "fit_s": fit_s, "choice_s": choice_s, "more": more}


def _cover_and_cosine(model, tokens, predictors, budgets, ids_cal, ids_ev, seed,
                      caches: _Caches, step) -> tuple[list[dict], float]:
    """``by_tokens`` rows of one other text length (``tokens``, the length the texts were cut
    to): each predictor fitted on ``ids_cal``, then
    per budget the mapped patterns' coverage and sparsity (layer by layer, from the dense
    model's inputs) and the embedding cosine with them in all six layers (predicted online), as
    the main run measures them, each head in the form ``caches`` chooses on ``ids_cal``; with
    the seconds the choice took."""
    from .predictors.base import LayerInput, make

    cal = [model.forward(i) for i in ids_cal]
    dense = [model.forward(i) for i in ids_ev]
    out, choice_s = [], 0.0
    for name in predictors:
        pred = make(name, seed=seed).fit(cal)
        step(f"fitted {name} at {tokens} tokens", 1)
        for budget in budgets:
            forms = caches.forms(model, pred, cal, budget)
            choice_s += forms.seconds
            acc = _Acc()
            for trace in dense:
                b = min(budget, trace.n)
                for li in range(len(trace.layers)):
                    maps = forms(li, pred.predict(LayerInput.from_trace(trace, li), b))
                    pmask = np.stack([pattern_mask(m.pattern) for m in maps])
                    acc.add({"sparsity": 1.0 - pmask.mean(axis=(-1, -2)),
                             "coverage": [m.coverage for m in maps]})
                (cos,) = _embedding_cosines(model, pred, [trace], budget, forms)
                acc.add({"emb_cos": float(cos)})
                step(f"{name} @ {budget:g}, {tokens} tokens", 1)
            out.append({"tokens": tokens, "predictor": name, "budget": budget, **acc.means(),
                        **forms.record()})
    return out, choice_s


# --- functions for other tools (the demo) -------------------------------------------------------

def best_predictor(results: dict, budget: float | None = None, metric: str = "emb_cos",
                   variant: str = "mapped", include_oracle: bool = False) -> str:
    """The predictor with the highest ``metric`` (mean) for ``variant`` at ``budget`` (default:
    the table budget); the oracle is left out unless asked for. Lower is better for
    ``out_rel_err``."""
    budget = results["config"]["table_budget"] if budget is None else budget
    rows = [r for r in results["results"] if r["variant"] == variant and r["budget"] == budget
            and (include_oracle or r["predictor"] != "oracle") and metric in r]
    if not rows:
        raise ValueError(f"no {variant} results at budget {budget} with metric {metric!r}")
    sign = -1.0 if metric == "out_rel_err" else 1.0
    return max(rows, key=lambda r: (sign * r[metric], r.get("sparsity", 0.0)))["predictor"]


def mapped_patterns(text: str, predictor: str = "dsa", budget: float = DEFAULT_TABLE_BUDGET,
                    limits=None, fitted=None, calibration: int = DEFAULT_CALIBRATION,
                    trace=None):
    """Per layer, per head :class:`~swattn.sw.mapper.Mapping` of ``text`` (at most 512 tokens)
    for one predictor: what the engine would be configured with. ``fitted``: an already fitted
    predictor (else one is fitted on ``calibration`` built-in texts of the text's length, at least
    128 tokens); ``trace``: the dense forward pass of ``text`` when the caller has it."""
    from . import mapper, minilm, texts
    from .predictors.base import LayerInput, make

    ids = minilm.tokenize(text)
    model = minilm.load()
    if fitted is None:
        tokens = min(max(ids.size, texts.MIN_TOKENS), minilm.MAX_POSITIONS)
        fitted = make(predictor).fit([model.forward(minilm.tokenize(t))
                                      for t in texts.calibration_texts(calibration, tokens)])
    if trace is None:
        trace = model.forward(ids)
    b = min(budget, ids.size)
    return [mapper.map_masks(fitted.predict(LayerInput.from_trace(trace, li), b),
                             limits=limits) for li in range(len(trace.layers))]


# --- presentation -------------------------------------------------------------------------------

COLUMNS = (("sparsity", "sparsity"), ("mass_recall", "mass rec."),
           ("entmax_recall", "entmax rec."), ("out_rel_err", "out rel.err"),
           ("emb_cos", "emb. cos"), ("coverage", "map cover"))


def table_rows(results: dict, budget: float | None = None) -> list[dict]:
    budget = results["config"]["table_budget"] if budget is None else budget
    return [r for r in results["results"] if r["budget"] == budget]


def write_plots(results: dict, out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    rows = results["results"]
    preds = results["config"]["predictors"]
    metrics = (("mass_recall", "recall of dense attention mass"),
               ("entmax_recall", "recall of the entmax-1.5 graph"),
               ("emb_cos", "embedding cosine vs dense (6 layers sparse)"))
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, label) in zip(axes, metrics):
        for i, name in enumerate(preds):
            c = colors[i % len(colors)]
            for variant, style in (("raw", "-o"), ("mapped", "--s")):
                pts = sorted((r["sparsity"], r[key]) for r in rows
                             if r["predictor"] == name and r["variant"] == variant and key in r)
                if pts:
                    xs, ys = zip(*pts)
                    ax.plot(xs, ys, style, color=c, ms=4, lw=1.2,
                            label=f"{name}" if variant == "raw" else None,
                            alpha=1.0 if variant == "raw" else 0.6)
        ax.set_xlabel("sparsity (fraction of pairs not computed)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, title="solid: raw mask\ndashed: mapped pattern",
                   title_fontsize=8)
    cfg = results["config"]
    fig.suptitle(f"Sparsity vs recall on all-MiniLM-L6-v2 ({cfg['texts']} texts, budgets "
                 f"{', '.join(f'{b:g}' for b in cfg['budgets'])} keys/query)")
    fig.tight_layout()
    path = out / "eval_pareto.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def json_default(o):
    """``json.dumps``'s ``default`` for the results: NumPy scalars as numbers, NaN as null."""
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and math.isnan(o):
        return None
    raise TypeError(type(o).__name__)


def compare_mappers(base: dict, other: dict) -> dict:
    """Two ``swattn eval`` results of one set of texts and predictors, mapped with different
    mapper settings (``config["mapper"]`` and ``config["form_choice"]``, both in the answer):
    per predictor, budget and text length of both ``by_tokens``, the mapped cover and embedding
    cosine of each, and the count of rows where ``other`` is at least ``base`` (to 4 decimals,
    the table's precision), with the largest drops. Raises ValueError when the two ran on
    different texts, lengths or seeds."""
    for key in ("texts", "calibration_texts", "seed", "predictors", "budgets"):
        if base["config"].get(key) != other["config"].get(key):
            raise ValueError(f"the two evaluations differ in {key}: "
                             f"{base['config'].get(key)!r} and {other['config'].get(key)!r}")
    key = lambda r: (r["predictor"], r["budget"], r["tokens"])  # noqa: E731
    theirs = {key(r): r for r in other["by_tokens"]}
    rows = []
    for r in base["by_tokens"]:
        o = theirs.get(key(r))
        if o is None:
            continue
        rows.append({"predictor": r["predictor"], "budget": r["budget"], "tokens": r["tokens"],
                     "base_coverage": r["coverage"], "other_coverage": o["coverage"],
                     "base_emb_cos": r["emb_cos"], "other_emb_cos": o["emb_cos"]})
    if not rows:
        raise ValueError("the two evaluations have no predictor, budget and length in common")
    out = {"base_mapper": base["config"].get("mapper"), "other_mapper": other["config"].get(
        "mapper"), "base_form_choice": base["config"].get("form_choice", DEFAULT_FORM_CHOICE),
        "other_form_choice": other["config"].get("form_choice", DEFAULT_FORM_CHOICE),
        "rows": rows, "commits": [base.get("commit"), other.get("commit")]}
    for metric in ("coverage", "emb_cos"):
        diffs = [(round(r[f"other_{metric}"], 4) - round(r[f"base_{metric}"], 4), r)
                 for r in rows]
        out[f"{metric}_not_below"] = sum(d >= 0 for d, _ in diffs)
        worst = min(diffs, key=lambda x: x[0])
        out[f"{metric}_worst"] = {"change": worst[0], "predictor": worst[1]["predictor"],
                                  "budget": worst[1]["budget"], "tokens": worst[1]["tokens"]}
    return out
