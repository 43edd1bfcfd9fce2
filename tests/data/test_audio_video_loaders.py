"""Audio and video loaders on real files written by soundfile, OpenCV and the ffmpeg CLI."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from gemb2.data.segments import LoadError, LoadSpec
from gemb2.data.video import sample_step
from gemb2.parts import SAMPLE_RATE, Audio, Video
from tests.data.readback import load, peak_hz
from tests.media import ffmpeg, tone, write_video


def test_stereo_44k_resampled_to_16k_mono(tmp_path):
    sf.write(tmp_path / "a.wav", tone(2.0, 44100, freq=1000.0, channels=2), 44100)
    [seg] = load(tmp_path / "a.wav", "audio")
    (audio,) = seg.parts
    assert isinstance(audio, Audio) and audio.samples.dtype == np.float32
    assert abs(len(audio.samples) - 2 * SAMPLE_RATE) <= 2
    assert abs(peak_hz(audio.samples) - 1000.0) < 2.0
    assert 0.45 < np.abs(audio.samples[1000:-1000]).max() <= 0.51  # mono mean keeps the amplitude
    assert (seg.start, seg.end) == (0.0, pytest.approx(2.0, abs=1e-3))


@pytest.mark.parametrize("ext", ["flac", "ogg"])
def test_flac_and_ogg(tmp_path, ext):
    sf.write(tmp_path / f"a.{ext}", tone(1.0, 22050, freq=500.0), 22050)
    [seg] = load(tmp_path / f"a.{ext}", "audio")
    assert abs(len(seg.parts[0].samples) - SAMPLE_RATE) <= 200
    assert abs(peak_hz(seg.parts[0].samples) - 500.0) < 5.0


def test_long_audio_split_in_windows(tmp_path):
    sf.write(tmp_path / "long.flac", tone(25.0, 16000, freq=300.0), 16000)
    segs = load(tmp_path / "long.flac", "audio", audio_window_s=10.0)
    assert [(s.index, s.start, s.end) for s in segs] == [(0, 0.0, 10.0), (1, 10.0, 20.0), (2, 20.0, 25.0)]
    assert [len(s.parts[0].samples) for s in segs] == [160000, 160000, 80000]


def test_nan_and_inf_samples_become_zero(tmp_path):
    x = tone(0.5, 16000)
    x[100:200] = np.nan
    x[300] = np.inf
    sf.write(tmp_path / "bad.wav", x, 16000, subtype="FLOAT")
    [seg] = load(tmp_path / "bad.wav", "audio")
    s = seg.parts[0].samples
    assert np.isfinite(s).all() and (s[100:200] == 0).all() and s[300] == 0


def test_zero_byte_and_zero_length_wav_refused(tmp_path):
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(LoadError, match=r"empty file \(0 bytes\)"):
        load(tmp_path / "zero.wav", "audio")
    sf.write(tmp_path / "nothing.wav", np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(LoadError, match="no audio samples"):
        load(tmp_path / "nothing.wav", "audio")


@pytest.mark.parametrize("ext,codec", [("m4a", "aac"), ("aac", "aac"), ("mp3", "libmp3lame")])
def test_ffmpeg_encoded_audio(tmp_path, ext, codec):
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=800:sample_rate=48000:duration=3", "-ac", "2",
           "-c:a", codec, str(tmp_path / f"a.{ext}"))
    segs = load(tmp_path / f"a.{ext}", "audio", audio_window_s=2.0)
    assert [s.index for s in segs] == [0, 1]
    total = sum(len(s.parts[0].samples) for s in segs)
    assert abs(total - 3 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE  # encoder padding aside
    assert abs(peak_hz(segs[0].parts[0].samples) - 800.0) < 5.0


def test_video_frames_sampled_at_fps(tmp_path):
    write_video(tmp_path / "v.avi", seconds=10, fps=10, fourcc="MJPG", numbered=True)
    segs = load(tmp_path / "v.avi", "video", video_fps=2.0, video_window_s=4.0, image_size=32)
    assert [(s.index, s.start, s.end) for s in segs] == [(0, 0.0, 4.0), (1, 4.0, 8.0), (2, 8.0, 10.0)]
    v = segs[0].parts[0]
    assert isinstance(v, Video) and v.frames.shape == (8, 32, 32, 3) and v.audio is None
    assert v.times.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    # frame k was written with grey level k: the sampled frames are frames 0, 5, 10, ... (MJPG is lossy)
    assert np.abs(v.frames[:, 16, 16, 0].astype(int) - np.arange(0, 40, 5)).max() <= 3
    assert segs[2].parts[0].frames.shape[0] == 4  # 8.0 .. 9.5


def test_video_frame_cap_spreads_samples(tmp_path):
    write_video(tmp_path / "v.mkv", seconds=6, fps=10, fourcc="FFV1", numbered=True)
    spec = dict(video_fps=5.0, video_window_s=6.0, max_frames=4, image_size=16)
    assert sample_step(LoadSpec(**spec)) == 1.5
    [seg] = load(tmp_path / "v.mkv", "video", **spec)
    v = seg.parts[0]
    assert v.times.tolist() == [0.0, 1.5, 3.0, 4.5]
    assert v.frames[:, 8, 8, 0].tolist() == [0, 15, 30, 45]  # lossless FFV1: exactly frames 0, 15, 30, 45


def test_h264_mp4_with_aac_audio_track(tmp_path):
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-f", "lavfi", "-i",
           "sine=frequency=600:sample_rate=44100", "-t", "5", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-shortest", str(tmp_path / "v.mp4"))
    segs = load(tmp_path / "v.mp4", "video", video_fps=1.0, video_window_s=3.0, image_size=32)
    assert [(s.start, s.end) for s in segs] == [(0.0, 3.0), (3.0, 5.0)]
    a0, a1 = (s.parts[0].audio for s in segs)
    assert a0 is not None and a1 is not None
    assert len(a0.samples) == 3 * SAMPLE_RATE
    assert abs(len(a1.samples) - 2 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    assert abs(peak_hz(a0.samples) - 600.0) < 5.0
    assert segs[0].parts[0].frames.shape == (3, 32, 32, 3)


def test_non_utf8_video_path(tmp_path):
    path = os.path.join(os.fsencode(tmp_path), b"v\xe9.avi")
    write_video(tmp_path / "v.avi", seconds=2, fps=5, fourcc="MJPG", numbered=True)  # OpenCV cannot write to that name
    os.rename(tmp_path / "v.avi", path)
    segs = load(os.fsdecode(path), "video", image_size=16)
    assert len(segs) == 1 and segs[0].parts[0].frames.shape == (2, 16, 16, 3)


def _bframe_video(path, seconds: int = 8) -> str:
    """H.264 with B-frames (x264 veryfast: 3 B-frames, pyramid) and an AAC track: the common web/camera mix."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-f", "lavfi", "-i", "sine=frequency=500",
           "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-shortest", str(path))
    return str(path)


def test_skipping_non_reference_frames_takes_the_same_frames_as_a_full_decode(tmp_path):
    import av

    from gemb2.data.video import _frames, load_video

    path = _bframe_video(tmp_path / "b.mp4")
    spec = LoadSpec(video_fps=1.0, video_window_s=3.0, image_size=32)
    fast = list(load_video(path, spec, skip_nonref=True))
    full = list(load_video(path, spec, skip_nonref=False))
    assert [(s.start, s.end) for s in fast] == [(s.start, s.end) for s in full] == [(0.0, 3.0), (3.0, 6.0), (6.0, 8.0)]
    for a, b in zip(fast, full):
        va, vb = a.parts[0], b.parts[0]
        np.testing.assert_array_equal(va.times, vb.times)
        np.testing.assert_array_equal(va.frames, vb.frames)  # the very same frames, bit for bit
        np.testing.assert_array_equal(va.audio.samples, vb.audio.samples)
    assert fast[0].parts[0].times.tolist() == [0.0, 1.0, 2.0]

    def decoded(skip: bool) -> int:
        with av.open(path) as c:
            return sum(1 for _ in _frames(c, spec, skip))

    assert decoded(False) == 200  # 8 s at 25 fps
    assert decoded(True) < 0.8 * decoded(False)  # non-reference frames far from the 1 s grid were dropped


def test_rotated_phone_video_is_upright_as_opencv_shows_it(tmp_path):
    import cv2

    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           str(tmp_path / "plain.mp4"))
    ffmpeg("-i", str(tmp_path / "plain.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(tmp_path / "rot.mp4"))
    cap = cv2.VideoCapture(str(tmp_path / "rot.mp4"))  # OpenCV applies the display matrix
    ok, bgr = cap.read()
    cap.release()
    assert ok and bgr.shape[:2] == (160, 90)  # portrait
    from gemb2.parts import fit_image

    [seg] = load(tmp_path / "rot.mp4", "video", image_size=32)
    expected = fit_image(np.ascontiguousarray(bgr[:, :, ::-1]), 32)
    assert np.abs(seg.parts[0].frames[0].astype(int) - expected.astype(int)).mean() < 1.0
    [plain] = load(tmp_path / "plain.mp4", "video", image_size=32)
    assert np.abs(plain.parts[0].frames[0].astype(int) - expected.astype(int)).mean() > 10  # rotation mattered


def test_audio_track_in_one_second_blocks_has_the_samples_of_per_frame_resampling(tmp_path):
    import av

    from gemb2.data.audio import av_pcm_blocks

    path = _bframe_video(tmp_path / "b.mp4", seconds=3)
    ours = np.concatenate(list(av_pcm_blocks(path)))
    ref = []
    with av.open(path) as c:  # the plain way: one resampler call and one block per codec frame
        r = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for frame in c.decode(c.streams.audio[0]):
            ref += [o.to_ndarray().reshape(-1) for o in r.resample(frame)]
        ref += [o.to_ndarray().reshape(-1) for o in r.resample(None)]
    ref = np.clip(np.concatenate(ref), -1, 1)
    assert len(ours) == len(ref) and abs(len(ours) - 3 * SAMPLE_RATE) < 0.05 * SAMPLE_RATE
    np.testing.assert_array_equal(ours, ref)
