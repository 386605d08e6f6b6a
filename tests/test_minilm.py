"""The NumPy MiniLM against transformers (torch), its attention hook, and the texts."""

import os

import numpy as np
import pytest

from swattn.sw import minilm, texts
from swattn.sw.spec.pattern import HybridPattern

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def model():
    return minilm.load()


@pytest.fixture(scope="module")
def reference():
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    ref = transformers.AutoModel.from_pretrained(str(minilm.model_dir()),
                                                 attn_implementation="eager")
    ref.eval()
    return ref


def _sample_texts():
    return [
        "A short sentence about sparse attention accelerators.",
        texts.evaluation_texts(1, 256)[0],
        texts.calibration_texts(1, 512)[0],
    ]


@pytest.mark.parametrize("index", range(3))
def test_matches_transformers(model, reference, index):
    import torch

    text = _sample_texts()[index]
    ids = minilm.tokenize(text)
    ours = model.forward(ids)
    with torch.no_grad():
        out = reference(torch.tensor(ids[None]), output_attentions=True)
    # sentence-transformers' pooling: mean over tokens, then L2 normalisation
    hid = out.last_hidden_state[0].numpy().astype(np.float64)
    emb = hid.mean(axis=0)
    emb /= np.linalg.norm(emb)
    cos = float(emb @ ours.embedding / np.linalg.norm(ours.embedding))
    assert cos >= 0.9999
    assert len(out.attentions) == minilm.LAYERS == len(ours.layers)
    for li, att in enumerate(out.attentions):
        ref = att[0].numpy()
        assert ref.shape == (12, ids.size, ids.size)
        np.testing.assert_allclose(ours.layers[li].probs, ref, atol=1e-4)


def test_tokenizer_matches_transformers():
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(minilm.model_dir()))
    text = texts.evaluation_texts(1, 128)[0]
    assert list(minilm.tokenize(text)) == tok(text)["input_ids"]


def test_hook_dense_and_full_mask_reproduce_the_model(model):
    ids = minilm.tokenize(texts.evaluation_texts(1, 128)[0])
    base = model.forward(ids).embedding
    dense = model.forward(ids, minilm.dense_attention).embedding
    full = model.forward(ids, minilm.masked_attention(
        lambda layer, q, k, h: np.ones((q.shape[0], q.shape[1], q.shape[1]), bool))).embedding
    assert minilm.cosine(dense, base) > 1 - 1e-9
    assert minilm.cosine(full, base) > 1 - 1e-9


def test_hook_changes_every_layer(model):
    """A diagonal-only mask (each token attends to itself) in every layer changes the result,
    and the hook sees all six layers with (12, n, 32) arrays."""
    ids = minilm.tokenize("Each layer should call the hook once.")
    seen = []

    def fn(layer, q, k, v, hidden):
        seen.append((layer, q.shape, hidden.shape))
        return v  # attention to self only: the output is V
    emb = model.forward(ids, fn).embedding
    n = ids.size
    assert [s[0] for s in seen] == list(range(6))
    assert all(s[1] == (12, n, 32) and s[2] == (n, 384) for s in seen)
    diag = model.forward(ids, minilm.masked_attention(
        lambda layer, q, k, h: np.broadcast_to(np.eye(n, dtype=bool), (12, n, n)))).embedding
    np.testing.assert_allclose(emb, diag, atol=1e-6)
    assert minilm.cosine(emb, model.forward(ids).embedding) < 0.99


def test_golden_hook_full_pattern_close_to_float(model):
    ids = minilm.tokenize(texts.evaluation_texts(1, 128)[0])
    n = ids.size
    full = HybridPattern(n, n - 1, n - 1)
    emb = model.forward(ids, minilm.golden_attention(
        lambda layer, q, k, h: [full] * q.shape[0])).embedding
    base = model.forward(ids).embedding
    assert 0.999 < minilm.cosine(emb, base) < 1.0  # int8 costs a little, never nothing


def test_too_long_text_is_a_clear_error():
    with pytest.raises(minilm.ModelError, match="allowed 2..512"):
        minilm.tokenize("word " * 600)


def test_texts_lengths_deterministic_and_disjoint():
    for tokens in (128, 256, 512):
        ev = texts.evaluation_texts(3, tokens)
        cal = texts.calibration_texts(3, tokens)
        for t in ev + cal:
            assert 128 <= minilm.tokenize(t).size <= 512
            assert abs(minilm.tokenize(t).size - tokens) <= 8
        assert not set(ev) & set(cal)
        assert ev == texts.evaluation_texts(3, tokens)
    # no sentence of an evaluation text appears in the calibration texts
    cal_all = " ".join(texts.calibration_texts(texts.available("calibration", 128), 128))
    for t in texts.evaluation_texts(10, 128):
        for sentence in t.split(". "):
            if len(sentence) > 60:
                assert sentence not in cal_all
    with pytest.raises(texts.TextError):
        texts.evaluation_texts(2, 600)
