"""Files from disk to model-ready parts: discovery, modality detection, streaming loaders, worker pool.

discover.py   discover(roots) -> FileEntry | Skipped        the safe, sorted directory walk
sniff.py      sniff(path) -> modality by content            checked against the extension
segments.py   load_file(entry, modality, spec) -> Segment*  dispatch, Segment, LoadError
text.py / image.py / audio.py / video.py                    one loader per modality, all streaming
pool.py       load_parallel(entries, spec, workers=N)       spawned workers, bounded memory
spec.py       LoadSpec                                      sizes, rates, windows
"""
