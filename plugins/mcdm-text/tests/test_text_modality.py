"""The text modality: captions -> token ids, clear errors, the null caption, training captions."""

import numpy as np
import pytest
import torch

from mcdm.errors import ConditionError
from mcdm_text.tokens import CONTEXT_LENGTH, decode, null_tokens, tokenizer
from text_fixtures import one_thread, text  # noqa: F401  (fixtures)

CAPTION = "This woman has long blond hair and blue eyes. She is smiling."


def test_prepare_gives_the_token_ids_of_the_caption(text):
    tokens = text.prepare(CAPTION, size=32)
    assert tokens.shape == (CONTEXT_LENGTH,) and tokens.dtype == torch.long
    tok = tokenizer()
    assert tokens[0] == tok.sot_token_id
    end = int((tokens == tok.eot_token_id).nonzero()[0])
    assert (tokens[end + 1:] == 0).all()
    assert decode(tokens) == "this woman has long blond hair and blue eyes . she is smiling ."
    assert torch.equal(text.prepare(decode(tokens), size=32), tokens)  # round trip


@pytest.mark.parametrize("raw", [None, 3, b"blond hair", ["blond hair"], np.array(["blond hair"])])
def test_a_non_string_is_refused(text, raw):
    with pytest.raises(ConditionError, match="expected a caption string, got"):
        text.prepare(raw, size=32)


@pytest.mark.parametrize("raw", ["", "   \n"])
def test_an_empty_caption_is_refused(text, raw):
    with pytest.raises(ConditionError, match="caption is empty"):
        text.prepare(raw, size=32)


def test_a_caption_longer_than_the_context_is_refused_with_its_token_count(text):
    longest_fitting = " ".join(["hair"] * (CONTEXT_LENGTH - 2))
    assert text.prepare(longest_fitting, size=32)[-1] == tokenizer().eot_token_id
    with pytest.raises(ConditionError, match=f"{CONTEXT_LENGTH + 1} tokens long .* context of {CONTEXT_LENGTH}"):
        text.prepare(longest_fitting + " hair", size=32)


def test_null_condition_is_the_empty_caption(text):
    cond = text.prepare(CAPTION, size=32)
    null = text.null_condition(cond)
    assert torch.equal(null, null_tokens()) and null.dtype == cond.dtype
    assert null[:2].tolist() == [tokenizer().sot_token_id, tokenizer().eot_token_id] and (null[2:] == 0).all()
    batch = torch.stack([cond, cond])
    assert torch.equal(text.null_condition(batch), null.expand(2, -1))


def test_training_captions_are_full_or_partial_and_always_fit(text):
    from mcdm.data.captions import parse_caption
    from mcdm.data.synthfaces import SynthFaces

    faces = SynthFaces(size=32, split="train", length=12)
    rng = np.random.default_rng(0)
    full = partial = 0
    for sample in faces:
        for _ in range(5):
            caption = text.condition_from_sample(sample, rng)
            text.prepare(caption, size=32)  # fits the context
            stated = parse_caption(caption)
            truth = {k: getattr(sample.attributes, k) for k in stated}
            assert stated == truth  # a partial caption is still true
            if caption in sample.captions:
                full += 1
            else:
                partial += 1
    assert full > partial > 0
    again = [text.condition_from_sample(faces[0], np.random.default_rng(1)) for _ in range(2)]
    assert again[0] == again[1]  # the rng decides, nothing else


def test_a_sample_without_captions_is_an_error(text):
    from mcdm.data.sample import FaceSample

    sample = FaceSample(image=np.zeros((32, 32, 3), np.uint8), mask=None, sketch=None, name="photo-7")
    with pytest.raises(ConditionError, match="'photo-7' has no captions"):
        text.condition_from_sample(sample, np.random.default_rng(0))


def test_default_architecture_is_small_and_cross_attends_at_the_lower_resolutions(text, monkeypatch):
    monkeypatch.delenv("MCDM_TEXT_CLIP", raising=False)
    from mcdm_text.denoiser import TextUNetDenoiser

    config = text.denoiser_config(sample_size=32, image_channels=3)
    assert config["clip_path"] is None and config["text_cfg"]["context_length"] == CONTEXT_LENGTH
    denoiser = TextUNetDenoiser.build(**config)
    unet = denoiser.unet
    assert 1_000_000 < sum(p.numel() for p in unet.parameters()) < 2_000_000
    assert unet.config.cross_attention_dim == config["text_cfg"]["width"]
    assert list(unet.config.down_block_types) == ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]
    monkeypatch.setenv("MCDM_TEXT_CLIP", "/models/clip")
    assert text.denoiser_config(sample_size=32, image_channels=3)["clip_path"] == "/models/clip"
