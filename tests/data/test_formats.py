"""Formats people have that were refused or missed: .oga and AIFF, audio-only files under video extensions,
files libsndfile cannot decode but FFmpeg can, tiny WAVs, BigTIFF. Every file is real: written by ffmpeg,
soundfile or by hand (BigTIFF, which Pillow cannot write), or the freedesktop sound theme's own .oga files."""

from __future__ import annotations

import glob
import os
import shutil
import struct
import subprocess

import numpy as np
import pytest
import soundfile as sf

from gemb2.data.discover import FileEntry, discover, modality_of
from gemb2.data.pool import FileDone, failure_reason, load_file_events
from gemb2.data.segments import LoadError, LoadSpec
from gemb2.data.sniff import sniff
from gemb2.parts import SAMPLE_RATE, Audio, item_modality
from tests.data.readback import load, peak_hz
from tests.media import ffmpeg, tone
from tests.system import PROBES, need_debian

FREEDESKTOP = os.path.dirname(PROBES["sound-theme-freedesktop"])


def samples(segs) -> np.ndarray:
    assert segs and all(len(s.parts) == 1 and isinstance(s.parts[0], Audio) for s in segs)
    return np.concatenate([s.parts[0].samples for s in segs])


def sine(path, *args: str, rate: int = 44100, seconds: float = 3.0) -> str:
    """An 800 Hz tone encoded by ffmpeg with the given output options."""
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=800:sample_rate={rate}:duration={seconds}", *args, str(path))
    return str(path)


# --- .oga and AIFF ---

@pytest.mark.parametrize("name,fmt,subtype", [("a.aiff", "AIFF", "PCM_16"), ("a.aif", "AIFF", "PCM_24"),
                                              ("a.aifc", "AIFF", "FLOAT")])
def test_aiff_is_audio(tmp_path, name, fmt, subtype):
    sf.write(tmp_path / name, tone(2.0, 22050, freq=500.0), 22050, format=fmt, subtype=subtype)
    assert modality_of(name) == "audio" and sniff(str(tmp_path / name)) == "audio"  # FORM....AIFF / AIFC
    [seg] = load(tmp_path / name)
    assert abs(len(seg.parts[0].samples) - 2 * SAMPLE_RATE) <= 2
    assert abs(peak_hz(seg.parts[0].samples) - 500.0) < 2.0
    assert [e.modality for e in discover([str(tmp_path)])] == ["audio"]


def test_oga_made_by_ffmpeg_is_audio(tmp_path):
    path = sine(tmp_path / "bell.oga", "-c:a", "libvorbis", "-f", "ogg")
    assert modality_of(path) == "audio"
    x = samples(load(path))
    assert abs(len(x) - 3 * SAMPLE_RATE) < 0.05 * SAMPLE_RATE and abs(peak_hz(x) - 800.0) < 5.0


def test_freedesktop_sound_theme_oga_files(tmp_path):
    need_debian("sound-theme-freedesktop")
    files = sorted(glob.glob(os.path.join(FREEDESKTOP, "*.oga")))
    found = [e for e in discover([FREEDESKTOP]) if isinstance(e, FileEntry)]
    inode = lambda p: (os.stat(p).st_dev, os.stat(p).st_ino)  # noqa: E731 (some are hard links of others)
    assert {inode(e.path) for e in found if e.modality == "audio"} == {inode(p) for p in files}
    for path in files:
        with sf.SoundFile(path) as f:
            seconds = f.frames / f.samplerate
        x = samples(load(path))
        assert abs(len(x) / SAMPLE_RATE - seconds) < 0.02, path
        assert np.abs(x).max() > 0.01, path  # sound, not silence


# --- audio-only files under video extensions ---

def _has_encoder(name: str) -> bool:
    need_debian("ffmpeg")
    exe = shutil.which("ffmpeg")
    out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.startswith(" "))


@pytest.mark.parametrize("name,options", [
    ("voice.mp4", ["-c:a", "aac"]),  # an MP4 with only an AAC track
    ("note.mp4", ["-c:a", "aac", "-f", "ipod"]),  # an .m4a-style voice note (brand M4A) named .mp4
    ("voice.m4v", ["-c:a", "aac", "-f", "mp4"]),
    ("opus.webm", ["-c:a", "libopus"]),  # a WebM with only Opus
    ("voice.mkv", ["-c:a", "flac"]),
    ("als.mp4", ["-c:a", "mp4als"]),  # MPEG-4 ALS (lossless) in MP4
])
def test_audio_only_container_under_a_video_extension_is_embedded_as_audio(tmp_path, name, options):
    if "mp4als" in options and not _has_encoder("mp4als"):
        pytest.skip("this ffmpeg has no MPEG-4 ALS encoder (FFmpeg's ALS is a decoder only): no file to test with")
    path = sine(tmp_path / name, *options)
    assert modality_of(path) == "video"
    segs = load(path, audio_window_s=2.0)
    assert [item_modality(s.parts) for s in segs] == ["audio", "audio"]  # the rows are audio rows
    assert [(s.index, s.start) for s in segs] == [(0, 0.0), (1, 2.0)]
    x = samples(segs)
    assert abs(len(x) - 3 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE and abs(peak_hz(x) - 800.0) < 5.0


def test_song_whose_only_picture_is_its_cover_is_audio(tmp_path):
    from PIL import Image as PILImage

    PILImage.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "cover.jpg")
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=800:sample_rate=44100:duration=3", "-i", str(tmp_path / "cover.jpg"),
           "-map", "0:a", "-map", "1", "-c:a", "aac", "-c:v", "copy", "-disposition:v", "attached_pic",
           str(tmp_path / "song.mp4"))
    segs = load(tmp_path / "song.mp4")
    assert [item_modality(s.parts) for s in segs] == ["audio"]
    assert abs(len(samples(segs)) - 3 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE


# --- what libsndfile cannot decode, FFmpeg can ---

def test_gsm_wav_that_libsndfile_cannot_read_is_decoded_by_ffmpeg(tmp_path):
    path = sine(tmp_path / "phone.wav", "-c:a", "gsm_ms", rate=8000)
    with sf.SoundFile(path) as f:  # libsndfile opens it but cannot stream it (it did: "frames must be specified")
        assert f.subtype == "GSM610" and not f.seekable()
    x = samples(load(path))
    assert abs(len(x) - 3 * SAMPLE_RATE) < 0.05 * SAMPLE_RATE and abs(peak_hz(x) - 800.0) < 5.0
    [*_, end] = load_file_events(0, path, "audio", LoadSpec())
    assert isinstance(end, FileDone)


def _with_frame_count(path, frames: int) -> None:
    """Overwrite the frame count of the MP3's LAME/Xing header (a header that disagrees with the stream)."""
    data = bytearray(open(path, "rb").read())
    at = max(data.find(b"Xing"), data.find(b"Info"))
    assert at > 0 and struct.unpack(">I", data[at + 4:at + 8])[0] & 1, "no frame count in the LAME header"
    data[at + 8:at + 12] = struct.pack(">I", frames)
    open(path, "wb").write(bytes(data))


def test_mp3_whose_header_frame_count_is_wrong(tmp_path):
    path = sine(tmp_path / "odd.mp3", "-c:a", "libmp3lame")
    _with_frame_count(path, 1)
    with sf.SoundFile(path) as f:  # libsndfile: no length, no seeking (it was refused with a raw ValueError)
        assert not f.seekable()
    x = samples(load(path))
    assert abs(len(x) - 3 * SAMPLE_RATE) < 0.05 * SAMPLE_RATE and abs(peak_hz(x) - 800.0) < 5.0
    [*_, end] = load_file_events(0, path, "audio", LoadSpec())
    assert isinstance(end, FileDone)


def test_mp3s_joined_by_cat_are_read_to_the_end(tmp_path):
    one = sine(tmp_path / "one.mp3", "-c:a", "libmp3lame")
    (tmp_path / "both.mp3").write_bytes(open(one, "rb").read() * 2)  # cat one.mp3 one.mp3 > both.mp3
    x = samples(load(tmp_path / "both.mp3"))  # libsndfile stopped after the first part's header count: 3 s
    assert abs(len(x) - 6 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    assert np.abs(x[-SAMPLE_RATE:]).max() > 0.1  # the second part is sound (ffmpeg's sine has amplitude 1/8)


def test_mp3s_of_two_rates_and_layouts_joined_by_cat_are_read_to_the_end(tmp_path):
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "3", "-c:a", "libmp3lame",
           str(tmp_path / "a.mp3"))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050", "-ac", "2", "-t", "3", "-c:a", "libmp3lame",
           str(tmp_path / "b.mp3"))
    (tmp_path / "ab.mp3").write_bytes((tmp_path / "a.mp3").read_bytes() + (tmp_path / "b.mp3").read_bytes())
    x = samples(load(tmp_path / "ab.mp3"))  # the resampler refused the second part's frames ("does not match")
    assert abs(len(x) - 6 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    assert abs(peak_hz(x[-2 * SAMPLE_RATE:]) - 440.0) < 5.0  # the second part is the same tone, resampled right


@pytest.mark.parametrize("name", ["mono8k.mp3", "tagged.mp3"])
def test_mp3_at_8khz_mono_and_with_a_big_cover_tag(tmp_path, name):
    if name == "mono8k.mp3":
        path = sine(tmp_path / name, "-ac", "1", "-c:a", "libmp3lame", rate=8000)
    else:
        from PIL import Image as PILImage

        noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), np.uint8)
        PILImage.fromarray(noise).save(tmp_path / "cover.png")  # ~500 KB of ID3v2 APIC before the audio
        ffmpeg("-f", "lavfi", "-i", "sine=frequency=800:sample_rate=44100:duration=3", "-i",
               str(tmp_path / "cover.png"), "-map", "0:a", "-map", "1", "-c:a", "libmp3lame", "-c:v", "copy",
               "-id3v2_version", "3", "-disposition:v", "attached_pic", str(tmp_path / name))
        path = str(tmp_path / name)
    x = samples(load(path))
    assert abs(len(x) - 3 * SAMPLE_RATE) < 0.05 * SAMPLE_RATE and abs(peak_hz(x) - 800.0) < 5.0


def test_flac_cut_short_is_read_by_ffmpeg_past_where_libsndfile_fails(tmp_path):
    x = tone(20.0, 16000, freq=440.0)[:, 0]
    sf.write(tmp_path / "whole.flac", x, 16000)
    data = (tmp_path / "whole.flac").read_bytes()
    (tmp_path / "part.flac").write_bytes(data[: len(data) // 2])  # a partial download
    with sf.SoundFile(tmp_path / "part.flac") as f, pytest.raises(sf.LibsndfileError, match="lost sync"):
        f.read(len(x))  # libsndfile fails part way (the file was refused: "flac decoder lost sync")
    got = samples(load(tmp_path / "part.flac", audio_window_s=4.0))
    assert len(got) > 9.5 * SAMPLE_RATE  # about half of the 20 s, where libsndfile gives up at 8.2 s
    assert np.abs(got - x[: len(got)]).max() < 1e-3  # the same samples on both sides of the decoders' seam


# --- tiny files ---

@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("n", [4, 5])
def test_wav_of_a_few_samples_is_embedded(tmp_path, rate, n):
    sf.write(tmp_path / "tick.wav", np.full((n, 2), 0.3, np.float32), rate)
    [seg] = load(tmp_path / "tick.wav")  # the resampler swallowed inputs this short: "no audio samples"
    s = seg.parts[0].samples
    assert len(s) == max(1, round(n * SAMPLE_RATE / rate))
    assert 0.2 < float(s.mean()) < 0.4


def test_mp3_of_a_few_samples_is_embedded(tmp_path):
    path = sine(tmp_path / "blip.mp3", "-c:a", "libmp3lame", seconds=0.0005)  # 22 samples at 44.1 kHz
    [seg] = load(path)
    assert 1 <= len(seg.parts[0].samples) <= 0.001 * SAMPLE_RATE + 1


# --- BigTIFF ---

def write_bigtiff(path, rgb: np.ndarray, big_endian: bool, declared: tuple[int, int] | None = None) -> None:
    """A minimal uncompressed RGB BigTIFF (header 'II+\\0' / 'MM\\0+', 8-byte offsets, 20-byte IFD entries);
    `declared` (h, w) overrides the size its header states."""
    h, w = declared or rgb.shape[:2]
    e = ">" if big_endian else "<"
    data_at = 16 + 8 + 20 * 10 + 8  # header, entry count, 10 entries, next-IFD offset
    # (tag, type, values): types 3 SHORT, 4 LONG, 16 LONG8; every value fits inline (8 bytes)
    entries = [(256, 4, [w]), (257, 4, [h]), (258, 3, [8, 8, 8]), (259, 3, [1]), (262, 3, [2]),
               (273, 16, [data_at]), (277, 3, [3]), (278, 4, [h]), (279, 16, [rgb.size]), (284, 3, [1])]
    ifd = struct.pack(e + "Q", len(entries))
    for tag, kind, values in entries:
        inline = struct.pack(e + {3: "H", 4: "I", 16: "Q"}[kind] * len(values), *values).ljust(8, b"\0")
        ifd += struct.pack(e + "HHQ", tag, kind, len(values)) + inline
    header = (b"MM" if big_endian else b"II") + struct.pack(e + "HHHQ", 43, 8, 0, 16)
    open(path, "wb").write(header + ifd + struct.pack(e + "Q", 0) + rgb.tobytes())


@pytest.mark.parametrize("big_endian", [False, True], ids=["II", "MM"])
def test_bigtiff_is_an_image(tmp_path, big_endian):
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[:, 12:, 2] = 250
    path = tmp_path / "scan.tif"
    write_bigtiff(path, rgb, big_endian)
    assert open(path, "rb").read(4) == (b"MM\0+" if big_endian else b"II+\0")
    assert sniff(str(path)) == "image"
    [seg] = load(path, image_size=16)
    px = seg.parts[0].pixels  # (16, 16, 3): the centre 16 columns, blue from column 4 on
    assert px[8, 1].tolist() == [200, 0, 0] and px[8, 14].tolist() == [200, 0, 250]


@pytest.mark.parametrize("big_endian", [False, True], ids=["II", "MM"])
def test_bigtiff_bomb_refused_before_decoding(tmp_path, big_endian):
    write_bigtiff(tmp_path / "bomb.tif", np.zeros((4, 4, 3), np.uint8), big_endian, declared=(30000, 30000))
    with pytest.raises(LoadError, match="image too large"):
        load(tmp_path / "bomb.tif", max_image_pixels=10_000_000)


# --- reasons ---

def test_a_decoders_own_exception_is_a_reason_for_a_person():
    reason = failure_reason(ValueError("frames must be specified for non-seekable files"), "/m/a.mp3")
    assert reason == "cannot decode: frames must be specified for non-seekable files"
    assert failure_reason(TypeError(), "/m/a.mp3") == "cannot decode the file"
    reason = failure_reason(RuntimeError("bad header in /m/a.mp3\nmore"), "/m/a.mp3")
    assert reason == "cannot decode: bad header in <file>"  # one line, without the path
    assert failure_reason(OSError(5, "Input/output error"), "/m/a.mp3") == "Input/output error"
    assert failure_reason(MemoryError(), "/m/a.mp3") == "out of memory"
