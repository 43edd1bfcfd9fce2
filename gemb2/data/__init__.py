"""Files from disk to model-ready parts: discovery, modality detection, streaming loaders, worker pool,
training and evaluation manifests.

discover.py   discover(roots) -> FileEntry | Skipped        the safe, sorted directory walk
sniff.py      sniff(path) -> modality by content            checked against the extension
segments.py   LoadSpec, Segment, LoadError                  what the loaders take and give; segmentation versions
load.py       load_file(entry, modality, spec) -> Segment*  content check, then the loader of the modality
text.py / image.py / audio.py / video.py                    one loader per modality, all streaming
pool.py       load_parallel(entries, spec, workers=N)       spawned workers, bounded memory
limits.py     limit_address_space, resident_bytes           the workers' memory bounds
manifest.py   Manifest(paths) -> Example                    training and evaluation manifests (JSONL)
manifest_items.py  load_item(item, spec) -> parts           a manifest item decoded by the same loaders
"""
