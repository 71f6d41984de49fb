"""A tiny intent dataset in the on-disk layout of <root>/intent/<name>/ (full.jsonl, splits/)."""

import hashlib
import json
from pathlib import Path

# Each intent has its own words, so a sentence names its intent and tests can check it.
TOPICS = {
    "alarm_set": ("alarm", "wake"), "alarm_remove": ("cancel", "alarm"),
    "music_play": ("play", "song"), "music_likeness": ("love", "song"),
    "weather_query": ("weather", "rain"), "news_query": ("news", "headlines"),
    "card_lost": ("lost", "card"), "card_arrival": ("card", "arrive"),
    "top_up": ("top", "up"), "exchange_rate": ("exchange", "rate"),
    "transfer_fail": ("transfer", "failed"), "pin_blocked": ("pin", "blocked"),
}
SPLITS = {
    "train": ("alarm_set", "alarm_remove", "music_play", "music_likeness", "weather_query",
              "news_query"),
    "valid": ("card_lost", "card_arrival", "top_up"),
    "test": ("exchange_rate", "transfer_fail", "pin_blocked"),
}
FILLERS = ("please", "now", "today", "for me", "right away", "again", "quickly", "soon",
           "if you can", "thanks", "kindly", "at once")


def sentence(label, index):
    first, second = TOPICS[label]
    return f"{first} {FILLERS[index % len(FILLERS)]} {second} number {index} of {label}"


def write_fake_intents(root, name="toy", sentences_per_intent=8, class_splits=2,
                       overrides=None):
    """Writes `<root>/intent/<name>/` and returns the data root.

    Class split 01 is `SPLITS`; split 02 swaps the validation and test intents.
    `overrides` maps a label to its own list of sentences. Like the real data, the folder
    `<root>/intent/` carries a `SHA256SUMS` of its files (see `sign`).
    """
    folder = Path(root) / "intent" / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for label in TOPICS:
        texts = (overrides or {}).get(label) or [
            sentence(label, i) for i in range(sentences_per_intent)]
        lines.extend(json.dumps({"sentence": text, "label": label}) for text in texts)
    (folder / "full.jsonl").write_text("\n".join(lines) + "\n")
    for number in range(1, class_splits + 1):
        split_dir = folder / "splits" / f"{number:02d}"
        split_dir.mkdir(parents=True, exist_ok=True)
        lists = dict(SPLITS)
        if number == 2:
            lists["valid"], lists["test"] = SPLITS["test"], SPLITS["valid"]
        for split, labels in lists.items():
            (split_dir / f"{split}.txt").write_text("\n".join(labels) + "\n")
    sign(root)
    return Path(root)


def sign(root):
    """(Re)writes `<root>/intent/SHA256SUMS` for every file under it, as `sha256sum` would.

    A test that changes a file on purpose to test another check calls this afterwards.
    """
    folder = Path(root) / "intent"
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  ./{p.relative_to(folder).as_posix()}"
             for p in files]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
