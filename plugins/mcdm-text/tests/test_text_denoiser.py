"""The unet_text denoiser: frozen text tower, cached encodings, safetensors round trips, clear errors."""

import pytest
import torch

from mcdm.checkpoint import load_model, save_model
from mcdm.errors import CheckpointError, ConditionError, ConfigError
from mcdm_text.tokens import null_tokens, tokenize_batch
from text_fixtures import one_thread, plugins, tiny_clip_config, tiny_denoiser  # noqa: F401  (fixtures)

SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02}
CAPTIONS = ["This woman has long blond hair.", "The man is bald and wears eyeglasses."]


def inputs(batch=2, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, size, size, generator=g), torch.tensor([700] * batch)


class EncoderCalls:
    """Counts the rows the frozen text tower encodes."""

    def __init__(self, denoiser):
        self.rows = []
        denoiser.text_encoder.register_forward_hook(lambda module, args, out: self.rows.append(args[0].shape[0]))


def test_output_depends_on_the_caption(tiny_denoiser):
    denoiser = tiny_denoiser()
    x, t = inputs()
    with torch.no_grad():
        a, b = (denoiser(x, t, tokenize_batch([c, c])) for c in CAPTIONS)
        null = denoiser(x, t, null_tokens().expand(2, -1))
    assert a.shape == x.shape
    assert (a - b).abs().max() > 1e-4 and (a - null).abs().max() > 1e-4


def test_pooled_text_adds_the_caption_to_the_time_embedding(tiny_denoiser):
    plain, pooled = tiny_denoiser(), tiny_denoiser(pooled_text=True)
    assert getattr(plain.unet, "add_embedding", None) is None
    states = pooled.encode_text(tokenize_batch(CAPTIONS))
    with torch.no_grad():
        summaries = pooled.unet.add_embedding(states)  # what joins the time embedding
    assert summaries.shape == (2, pooled.unet.time_embedding.linear_2.out_features)
    assert (summaries[0] - summaries[1]).abs().max() > 1e-3


def test_per_token_states_are_those_of_the_text_transformer_after_ln_final(tiny_denoiser):
    denoiser = tiny_denoiser()
    tokens = tokenize_batch(CAPTIONS)
    states = denoiser.encode_text(tokens)
    enc = denoiser.text_encoder
    x, mask = enc._embeds(tokens)
    expected = enc.ln_final(enc.transformer(x, attn_mask=mask))
    assert states.shape == (2, 64, 32)
    torch.testing.assert_close(states, expected, rtol=1e-4, atol=1e-5)


def test_null_caption_is_encoded_once_and_cached(tiny_denoiser):
    denoiser = tiny_denoiser()
    calls = EncoderCalls(denoiser)
    x, t = inputs(batch=4)
    null = null_tokens().expand(4, -1)
    with torch.no_grad():
        first = denoiser(x, t, null)
        for _ in range(3):  # the same every step: no more encoding
            assert torch.equal(denoiser(x, t, null), first)
        mixed = torch.stack([null[0], *tokenize_batch(CAPTIONS), null[0]])
        denoiser(x, t, mixed)  # only the two new captions are encoded
        denoiser(x, t, mixed)
    assert calls.rows == [1, 2]


def test_cached_states_made_while_sampling_serve_training_too(tiny_denoiser):
    denoiser = tiny_denoiser()
    x, t = inputs()
    tokens = tokenize_batch(CAPTIONS)
    with torch.inference_mode():
        denoiser(x, t, tokens)
    denoiser.train()
    denoiser(x, t, tokens).square().mean().backward()  # no "inference tensor saved for backward" error
    assert all(p.grad is not None for p in denoiser.unet.parameters() if p.requires_grad)


def test_text_tower_stays_frozen_while_the_unet_trains(tiny_denoiser):
    denoiser = tiny_denoiser()
    before = {k: v.clone() for k, v in denoiser.text_encoder.state_dict().items()}
    denoiser.train().requires_grad_(True)
    assert not denoiser.text_encoder.training
    assert not any(p.requires_grad for p in denoiser.text_encoder.parameters())
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=1e-2, weight_decay=0.1)
    x, t = inputs()
    for _ in range(2):
        optimizer.zero_grad()
        denoiser(x, t, tokenize_batch(CAPTIONS)).square().mean().backward()
        optimizer.step()
    after = denoiser.text_encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("pooled_text", [False, True])
def test_save_and_load_give_identical_outputs(tiny_denoiser, tmp_path, plugins, pooled_text):
    denoiser = tiny_denoiser(pooled_text=pooled_text)
    assert denoiser.config()["pooled_text"] is pooled_text
    folder = save_model(tmp_path / "text", denoiser, modality="text", schedule_config=SCHEDULE)
    assert (folder / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (folder / "text_encoder" / "model.safetensors").is_file()
    assert not [p for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    loaded = load_model(folder, plugins)
    assert loaded.modality == "text" and loaded.denoiser.config() == denoiser.config()
    x, t = inputs()
    tokens = tokenize_batch(CAPTIONS)
    with torch.no_grad():
        assert torch.equal(loaded.denoiser(x, t, tokens), denoiser(x, t, tokens))
    # the manifest's config builds the same architecture again
    rebuilt = type(denoiser).build(**denoiser.config())
    shapes = {k: v.shape for k, v in denoiser.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == shapes


def test_a_folder_without_its_text_encoder_is_refused(tiny_denoiser, tmp_path, plugins):
    import shutil

    folder = save_model(tmp_path / "text", tiny_denoiser(), modality="text", schedule_config=SCHEDULE)
    shutil.rmtree(folder / "text_encoder")
    with pytest.raises(CheckpointError, match="no text_encoder/ folder"):
        load_model(folder, plugins)


def test_build_takes_the_text_tower_of_a_trained_clip(tmp_path, tiny_clip_config):
    from mcdm_text.clip import build_clip, save_clip
    from mcdm_text.denoiser import TextUNetDenoiser

    torch.manual_seed(0)
    clip = build_clip(tiny_clip_config).eval()
    save_clip(clip, tiny_clip_config, tmp_path / "clip")
    denoiser = TextUNetDenoiser.build(sample_size=16, block_out_channels=(8, 16), clip_path=str(tmp_path / "clip"))
    assert denoiser.text_cfg == tiny_clip_config["text_cfg"]
    clip_text = clip.text.state_dict()
    for key, value in denoiser.text_encoder.state_dict().items():
        assert torch.equal(value, clip_text[key])
    tokens = tokenize_batch(CAPTIONS)
    x, mask = clip.text._embeds(tokens)
    expected = clip.text.ln_final(clip.text.transformer(x, attn_mask=mask))
    torch.testing.assert_close(denoiser.encode_text(tokens), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="differs from the text_cfg of the CLIP"):
        TextUNetDenoiser.build(sample_size=16, clip_path=str(tmp_path / "clip"),
                               text_cfg={**tiny_clip_config["text_cfg"], "width": 64})


def test_bad_conditions_are_refused_by_name(tiny_denoiser):
    denoiser = tiny_denoiser()
    x, t = inputs()
    with pytest.raises(ConditionError, match="needs caption tokens"):
        denoiser(x, t, None)
    with pytest.raises(ConditionError, match="integer token ids"):
        denoiser(x, t, torch.zeros(2, 64))
    with pytest.raises(ConditionError, match=r"shape \(B, 64\), got \(2, 77\)"):
        denoiser(x, t, torch.zeros(2, 77, dtype=torch.long))
    with pytest.raises(ConditionError, match="3 captions for a batch of 2"):
        denoiser(x, t, tokenize_batch(CAPTIONS + CAPTIONS[:1]))


def test_casting_the_module_empties_the_cache(tiny_denoiser):
    denoiser = tiny_denoiser()
    tokens = tokenize_batch(CAPTIONS)
    assert denoiser.encode_text(tokens).dtype == torch.float32
    denoiser.double()
    assert denoiser.encode_text(tokens).dtype == torch.float64


def test_accelerator_cache_reuses_the_same_condition_tensor_without_reading_it(tiny_denoiser):
    # on a GPU the cache never reads token values (that would sync): it recognises the tensor a sampler
    # passes at every step. Exercised here on CPU tensors through the same code path.
    denoiser = tiny_denoiser()
    calls = EncoderCalls(denoiser)
    tokens = tokenize_batch(CAPTIONS)
    first = denoiser._encode_batch(tokens)
    assert denoiser._encode_batch(tokens) is first and calls.rows == [2]
    tokens[1] = tokens[0]  # changed in place: encoded again
    second = denoiser._encode_batch(tokens)
    assert calls.rows == [2, 2] and torch.equal(second[0], second[1])
    denoiser._encode_batch(tokens.clone())  # another tensor: encoded again
    assert calls.rows == [2, 2, 2]
