"""Who spoke when: speaker labels for transcribed files and for live streams, on the CPU.

Offline (``diarize``): speech regions come from Silero VAD (the transcript's segments if
VAD finds nothing); each region is covered by 1.6 s windows every 0.8 s (the encoder's own
partial length; a shorter region is one zero-padded window), each window gets a d-vector
from ``speaker_encoder``, and the windows are clustered by average-linkage agglomeration on
cosine distance, cut at ``THRESHOLD``; the speaker count is then decided over the whole
recording (clusters with little of the speech fold into their nearest, clusters on average
closer than ``SEPARATION_DISTANCE`` merge, and a recording whose windows are on average
farther apart than ``SPREAD_DISTANCE`` keeps two at least) within the caller's
``min_speakers``/``max_speakers``, and windows move to their nearest centroid. With two speakers or more,
1.0 s windows every 0.25 s are then embedded over the speech and labelled by a Viterbi
pass against centroids of their own length (``resegment``): they place turns of a second
or two that the 1.6 s windows blur. Every 10 ms of speech takes the label of the nearest
such window centre; runs of one label are the speaker turns, short flips inside another
speaker's speech are smoothed. Words are fitted into the speech regions and
segments span their words (``fit_to_speech``: Whisper runs words across pauses) and are
cut where a pause lies between two words (``split_at_pauses``), then
words take the speaker they overlap most (the nearest turn if they overlap none). Segments
are then split at the word where the speaker changes (``split_at_turns``; ``speaker_runs``
is the same cut for any face that groups words itself), so nothing a user reads holds two speakers.

Live (``StreamingDiarizer``): each completed segment is embedded whole and given the
nearest speaker's label if close enough, else a new one; a speaker's centroid is the mean
of its segments, so labels stay stable for the whole stream. A segment with word timings
is also compared chunk by chunk (>= 1.6 s of words) with the known speakers, and cut
where its chunks belong to different ones (``LiveSpeakers.split``).

Tuned and measured over generated mixes: ``scripts/bench_diarization.py --mixes``.

Everything here is blocking numpy work: it runs on the pool's scheduler, never on the
event loop (``diarize_upload`` at upload priority for REST faces, ``LiveSpeakers`` at final
priority for a stream's completed segments).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..core.decodes import Segment, Word
from ..core.pcm import SAMPLE_RATE, PcmDecoder
from ..errors import InvalidRequest
from .decoding import split_at_gaps
from .pool import ModelPool, Priority
from .speaker_encoder import (
    PARTIAL_FRAMES,
    PARTIAL_SAMPLES,
    SpeakerEncoder,
    mel_frames,
    normalize_volume,
    shared_encoder,
    volume_gain,
)

log = logging.getLogger(__name__)

WINDOW_SECONDS = PARTIAL_SAMPLES / SAMPLE_RATE  # 1.6 s
STEP_SECONDS = WINDOW_SECONDS / 2
FRAME_SECONDS = 0.01
# Cosine distance at which the average-linkage tree is cut. On the shared conversations
# 90% of same-speaker window pairs are closer than 0.32 and 90% of different-speaker pairs
# farther than 0.37; the cut may split one voice where it drifts (that is undone below).
THRESHOLD = 0.35
# A cluster of fewer windows than this is never a speaker of its own: its windows join the
# nearest cluster, unless min_speakers asks for more clusters. Not 2: a region just over
# 1.6 s is two windows 0.1 s apart, i.e. one observation, and in a short recording (where
# the share below asks for 2) such a pair was a second speaker: the one voice of
# ``multilingual/deepspeech_ru_sample`` (5.7 s, 5 windows) came back as two. Binds only
# recordings of 20 windows or fewer (~16 s of speech); a speaker there needs ~2.4 s.
MIN_CLUSTER_WINDOWS = 3
# Nor is a cluster holding less than this share of the windows (capped at MIN_CLUSTER_CAP
# windows, ~7 s of speech, so that a long recording's quiet speaker is still found): one
# voice drifts along a recording and the tree always has a few windows near its top.
MIN_CLUSTER_SHARE = 0.1
MIN_CLUSTER_CAP = 8
# Clusters on average (over all their windows' pairs) closer than this are one speaker: JFK
# in a reverberant hall splits into halves 0.35 apart; the closest pair of different
# readers in the generated mixes' tune split was 0.37-0.40 apart.
SEPARATION_DISTANCE = 0.39
# A recording whose windows lie on average (over all pairs) farther apart than this holds
# two voices at least, whatever the tree's cut says; one voice's windows lie closer. Why: two
# similar readers in short overlapping turns are found as one, since their clusters lie no
# farther apart than the halves of one reader's drifting voice (0.36-0.38 against
# 0.36-0.39: ``SEPARATION_DISTANCE`` cannot part them), but all their windows' pairs
# together are farther apart than any one reader's: over the tune mixes' 1.6 s windows the
# mean distance was 0.22-0.29 for the five one-reader recordings (the Sonnet 0.293) and
# 0.28-0.32 for the three two-reader ones found as one. Only with at least
# SPREAD_MIN_WINDOWS windows (~16 s of speech): a short recording's mean is noisy.
SPREAD_DISTANCE = 0.305
SPREAD_MIN_WINDOWS = 20
# The tree is cut higher than THRESHOLD where that gives more clusters of a real share
# (``_fullest_cut``): a voice in short overlapping turns, whose windows hold some of the
# other voices, falls apart at the threshold into clusters each too small to count (their
# windows then went to the other speakers) and comes together higher up. In a tune mix of
# four speakers (4spk-long-overlap-0) the threshold's cut was clusters of 20, 20, 14, 4, 3,
# 3, 2 ... windows (8 needed), JFK's 11 among the small ones. Tune: count right 84.8 % ->
# 87.9 %, segments' DER 7.56 % -> 6.71 %, no one-reader recording split.
FULLEST_CUT = True
# Each window then moves to its nearest centroid (a few k-means rounds on the sphere).
REFINE = True
# Silero's regions are padded like this (Whisper's own VAD pads 400 ms): a word's onset
# and release are quieter than the VAD's threshold but belong to the turn.
SPEECH_PAD_MS = 250
# A live segment farther than this from every known speaker's centroid starts a new one.
# Fed the conversations' VAD regions one by one, 0.25-0.35 keeps the two speakers apart
# and 0.35 finds the three (0.3 splits one off, 0.4 merges two).
STREAM_THRESHOLD = 0.35
# A live segment shorter than this is too short to found a new speaker.
STREAM_MIN_NEW_SECONDS = 1.0
MAX_SPEAKERS = 32
# A turn shorter than this with the same other speaker on both sides, less than
# FLIP_GAP seconds away, is a flip of the labels, not a turn, unless its windows are
# farther than FLIP_FAR from that speaker's centroid. Not 1 s: with the speaker counts of
# the fullest cut, real turns of 0.5-1 s (short turns cut by 0.3 s overlaps) were being
# relabelled (tune mixes 6.71 % -> 6.40 % with 0.5 s, the same with 0; the conversations
# unchanged).
FLIP_SECONDS = 0.5
FLIP_GAP = 0.5
FLIP_FAR = 0.3
# Where two neighbouring windows (0.8 s apart) belong to different speakers, this many
# more windows are embedded between them and each takes the nearer of the two speakers,
# so a turn's edge is placed to ~0.4 s rather than ~0.8 s (``refine_boundaries``). On the
# tune mixes one took the segments' DER from 9.9 % to 9.7 % (7.9 % to 7.6 % with the true
# speaker count given) for 7 % more windows; three gained 0.06 points more for 22 %.
BOUNDARY_WINDOWS = 1
# Whisper's word timings run across pauses (a word after a pause often starts where the
# one before it ended) and stop short of a turn's last syllable. With diarization, words
# are fitted to the speech regions (``fit_to_speech``): clamped into the region they
# overlap most, the first and last word of a region stretched towards its edges by at most
# this (Silero's pad), and segments then span their words. On the tune mixes this took the
# segments' DER from 13.5 % to 10.1 % (false alarm 3.6 % -> 1.7 %, missed 4.7 % -> 3.2 %).
FIT_STRETCH = SPEECH_PAD_MS / 1000
# A segment whose words are fitted to the speech (``fit_to_speech``) can still span a pause
# where nobody speaks (Whisper's segments run across a sentence's pauses: the Sonnet's 1.8 s
# after "One."); a reader of the subtitles sees text during silence, and the DER counts it as
# false alarm. So a segment is cut between two words where at least this much of the gap
# between them lies outside every Silero region (``split_at_pauses``): with Silero's 0.25 s
# pad on each side, a real pause of ~0.8 s. Tune mixes, against the noise-aware reference
# (``harness.mixes.NOISE_MARGIN``): 6.47 % -> 5.33 % (false alarm 2.99 -> 1.85 %); 0.1-0.4
# within 0.02 points, 0.5 5.49 %, 1.0 6.39 %. Against the -40 dB-of-peak reference, which
# marks those pauses speech, 6.40 -> 7.12 %.
PAUSE_SPLIT_SECONDS = 0.3
# Live, with diarization, finals are decoded with word timings (to split a segment at a
# word), and faster-whisper then ends a segment where its last word ends: short of the
# last syllable. The last segment of an utterance (a pause follows: the endpointer saw
# silence) ends this much later, as ``fit_to_speech`` stretches an upload's words. On the
# shared conversations over the WebSocket the completed segments' DER (0.25 s collar) was
# 0.6 % / 0.5 % with segment times from Whisper's timestamps, 3.3 % / 4.8 % with word times.
LIVE_END_STRETCH = FIT_STRETCH
# Re-segmentation (``resegment``), once the speakers are known: where speakers take turns
# without a pause (short turns that overlap), most 1.6 s windows hold two voices (on the
# tune mixes of short overlapping turns only 9-31 % of them hold one voice for >= 90 % of
# their length). Shorter windows at a denser step hold one voice more often and, with
# each speaker's centroid taken from windows of the same length, place more of the speech
# with the right speaker (with the true centroids, 1.0 s windows put 91.2 % of the tune
# mixes' speech with its speaker, 1.6 s ones 88.8 %); a Viterbi pass over each region's
# windows, with a cost for each change of speaker, keeps one noisy short window from
# flipping the label. The count is not redone: it stays the 1.6 s windows'. This replaces
# ``refine_boundaries`` (used when RESEGMENT_SECONDS is 0). On the tune mixes (decoded as
# uploads) the segments' DER went from 9.25 % to 8.88 % (confusion 5.0 % -> 4.6 %; where
# the count is right 1.4 % -> 0.9 %); 0.8/1.2 s windows and steps of 0.4/0.8 s were within
# 0.4 points, 0.5 s steps cost 20 % fewer frames than 0.4 s for 0.03 points.
# Every 0.25 s, not 0.5 s (with the cost of a change halved, so that a flip of a given
# length costs what it did): tune mixes with the pause split, noise-aware reference 5.33 % ->
# 4.93 % (confusion 2.93 -> 2.59 %), -40 dB reference 7.12 -> 6.87 %; twice the 1.0 s
# windows (diarization +31 % of its time; embedding more only near the turns the first
# pass found gained as much, 4.95 %, for +14 %, but is a second pass: not kept).
RESEGMENT_SECONDS = 1.0
RESEGMENT_STEP = 0.25
# The cost of a change of speaker between two neighbouring short windows, in units of
# cosine similarity to a centroid (at the 0.5 s step: 0.05 and 0.1 scored alike, 0.25 +0.2
# points, 0.5 +1.9 points: the short turns are real; at 0.25 s, tune: 0 / 0.015 / 0.03 /
# 0.05 / 0.07 / 0.1: 4.81 / 4.86 / 4.89 / 4.93 / 5.03 / 5.15 %: the mixes' turns are all
# real, so less smoothing always wins there; 0.05 keeps 0.1's cost per second).
SWITCH_PENALTY = 0.05
# The centroids are taken again from the pass's labels and the pass repeated, this many
# times in all (no new d-vectors: free; tune 8.88 % -> 8.78 % for 3, within noise).
RESEGMENT_ROUNDS = 3


@dataclass
class SpeakerTurn:
    start: float
    end: float
    speaker: str


@dataclass
class Diarization:
    turns: list[SpeakerTurn]
    segments: list[Segment]  # copies of the input with ``speaker`` set on segments and words
    # per speaker: the L2-normalised mean d-vector of its windows (WhisperX's speaker_embeddings)
    embeddings: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def speakers(self) -> list[str]:
        return sorted({t.speaker for t in self.turns})


def speaker_name(index: int) -> str:
    return f"SPEAKER_{index:02d}"


def check_speaker_bounds(min_speakers: int | None, max_speakers: int | None) -> None:
    """The one validation of ``min_speakers``/``max_speakers`` every face uses."""
    for name, value in (("min_speakers", min_speakers), ("max_speakers", max_speakers)):
        if value is not None and not 1 <= value <= MAX_SPEAKERS:
            raise InvalidRequest(f"{name} must be between 1 and {MAX_SPEAKERS}", param=name)
    if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
        raise InvalidRequest("min_speakers must not exceed max_speakers", param="min_speakers")


# ----------------------------------------------------------------------------- clustering


def cosine_distances(embeddings: np.ndarray) -> np.ndarray:
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    return np.clip(1.0 - unit @ unit.T, 0.0, 2.0).astype(np.float64)


def average_linkage(distances: np.ndarray) -> list[tuple[int, int, float]]:
    """Average-linkage merges ``(a, b, height)`` in increasing height, by the
    nearest-neighbour chain (O(n^2), exact for average linkage, which is reducible).

    ``a`` and ``b`` are indices of original items, one from each merged cluster.
    """
    n = len(distances)
    d = np.array(distances, np.float64)
    np.fill_diagonal(d, np.inf)
    sizes = np.ones(n)
    active = np.ones(n, bool)
    merges: list[tuple[int, int, float]] = []
    chain: list[int] = []
    while len(merges) < n - 1:
        if not chain:
            chain.append(int(np.flatnonzero(active)[0]))
        a = chain[-1]
        row = np.where(active, d[a], np.inf)
        row[a] = np.inf
        b = int(np.argmin(row))
        if len(chain) > 1 and row[chain[-2]] <= row[b]:
            b = chain[-2]
        if len(chain) > 1 and b == chain[-2]:
            chain.pop()
            chain.pop()
            merges.append((a, b, float(d[a, b])))
            merged = (sizes[a] * d[a] + sizes[b] * d[b]) / (sizes[a] + sizes[b])
            d[a, :] = merged
            d[:, a] = merged
            d[a, a] = np.inf
            d[b, :] = np.inf
            d[:, b] = np.inf
            sizes[a] += sizes[b]
            active[b] = False
        else:
            chain.append(b)
    merges.sort(key=lambda m: m[2])
    return merges


def cluster(
    embeddings: np.ndarray,
    threshold: float | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
) -> np.ndarray:
    """Cluster labels 0..k-1 (numbered in order of first appearance) for each embedding.

    The average-linkage tree is cut where merges exceed ``threshold``; a cluster holding
    less than ``MIN_CLUSTER_SHARE`` of the windows (or under ``MIN_CLUSTER_WINDOWS``) is
    not a speaker: its windows join the nearest big cluster. The count is thus decided
    over the whole recording, by where the bulk of the speech falls, and not by one
    stray window far from the rest (one voice varies along a recording, and the tree
    always has such windows near its top). The speaker bounds, when given, move the cut
    until the count of big clusters is within them; so does a recording whose windows lie
    on average farther apart than ``SPREAD_DISTANCE`` (two voices at least). Each window
    then goes to the nearest centroid (average linkage chains along a slowly changing
    voice; this undoes it).
    """
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, int)
    threshold = THRESHOLD if threshold is None else threshold
    distances = cosine_distances(embeddings)  # n x n: computed once (an hour is ~4500 windows)
    merges = average_linkage(distances) if n > 1 else []
    low, high = min_speakers or 1, max_speakers or MAX_SPEAKERS
    # the mean over all pairs, without an index of them (an hour's 4500 windows: 10 M pairs)
    spread = (
        (float(distances.sum()) - float(np.trace(distances))) / (n * (n - 1))
        if n >= SPREAD_MIN_WINDOWS
        else 0.0
    )
    if low < 2 <= high and SPREAD_DISTANCE and spread > SPREAD_DISTANCE:
        low = 2  # two voices at least (see SPREAD_DISTANCE)
    count = n - sum(1 for _, _, h in merges if h <= threshold)
    if FULLEST_CUT:
        count = _fullest_cut(n, merges, count)
    labels = _cut(embeddings, merges, count, low)
    found = len(np.unique(labels))
    step = 1 if found < low else -1
    while not low <= found <= high and 1 <= count + step <= n:
        count += step
        labels = _cut(embeddings, merges, count, low)
        found = len(np.unique(labels))
        if step == 1 and found > high or step == -1 and found < low:
            break
    labels = _merge_inseparable(distances, labels, low)
    labels = _nearest_centroid(embeddings, labels)
    numbering: dict[int, int] = {}
    return np.array([numbering.setdefault(int(label), len(numbering)) for label in labels])


class _Forest:
    """The tree's clusters as its merges join them: each window's cluster is named by its
    root window (union-find), and each root knows its cluster's size."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def root(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        """Put the cluster of ``a`` into the cluster of ``b`` (named by ``b``'s root)."""
        ra, rb = self.root(a), self.root(b)
        self.parent[ra] = rb
        self.size[rb] += self.size[ra]


def _least_windows(n: int) -> int:
    """The fewest windows (of ``n``) a cluster must hold to be a speaker of its own."""
    return max(MIN_CLUSTER_WINDOWS, min(int(np.ceil(MIN_CLUSTER_SHARE * n)), MIN_CLUSTER_CAP))


def _fullest_cut(n: int, merges: Sequence[tuple[int, int, float]], count: int) -> int:
    """The cluster count, at most ``count`` (the cut at the threshold), whose cut of the
    tree holds the most clusters of ``_least_windows`` or more; of equals, the finest.
    See ``FULLEST_CUT``."""
    least = _least_windows(n)
    forest = _Forest(n)

    def join(a: int, b: int) -> int:
        """Merge the clusters of ``a`` and ``b``; the change in the count of big ones."""
        ra, rb = forest.root(a), forest.root(b)
        before = (forest.size[ra] >= least) + (forest.size[rb] >= least)
        forest.join(ra, rb)
        return int(forest.size[rb] >= least) - before

    for a, b, _ in merges[: n - count]:
        join(a, b)
    big = sum(1 for i in range(n) if forest.parent[i] == i and forest.size[i] >= least)
    best, best_count = big, count
    for a, b, _ in merges[n - count :]:
        big += join(a, b)
        count -= 1
        if big > best:
            best, best_count = big, count
    return best_count


def _merge_inseparable(distances: np.ndarray, labels: np.ndarray, keep_at_least: int) -> np.ndarray:
    """Clusters merged, closest pair first, while two are on average (over all their
    windows' pairs) nearer than ``SEPARATION_DISTANCE``. The tree's cut at ``THRESHOLD``
    splits one voice where it drifts (JFK in a reverberant hall: two halves 0.35 apart);
    once stray windows are folded in, the clusters left are compared as wholes."""
    labels = labels.copy()
    while len(ids := np.unique(labels)) > max(keep_at_least, 1):
        member = [labels == k for k in ids]
        closest, pair = SEPARATION_DISTANCE, None
        for i in range(len(ids)):
            for j in range(i + 1, len(ids)):
                between = float(distances[np.ix_(member[i], member[j])].mean())
                if between < closest:
                    closest, pair = between, (ids[i], ids[j])
        if pair is None:
            break
        labels[labels == pair[1]] = pair[0]
    return labels


def _nearest_centroid(embeddings: np.ndarray, labels: np.ndarray, rounds: int = 2) -> np.ndarray:
    """Each window moved to its nearest cluster centroid (a few k-means rounds on the
    unit sphere); clusters keep their identities and none is emptied."""
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    for _ in range(rounds if REFINE else 0):
        ids = np.unique(labels)
        if len(ids) < 2:
            break
        centroids = np.stack([unit[labels == k].mean(axis=0) for k in ids])
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        moved = ids[np.argmax(unit @ centroids.T, axis=1)]
        if len(np.unique(moved)) < len(ids) or np.array_equal(moved, labels):
            break
        labels = moved
    return labels


def _cut(
    embeddings: np.ndarray, merges: Sequence[tuple[int, int, float]], count: int, keep_at_least: int
) -> np.ndarray:
    """The tree cut into ``count`` clusters, small clusters then folded in."""
    n = len(embeddings)
    count = min(max(count, 1), n)
    forest = _Forest(n)
    for a, b, _ in merges[: n - count]:
        forest.join(a, b)
    labels = np.array([forest.root(i) for i in range(n)])
    return _absorb_small(embeddings, labels, keep_at_least)


def _absorb_small(embeddings: np.ndarray, labels: np.ndarray, keep_at_least: int) -> np.ndarray:
    """Move the windows of clusters smaller than ``MIN_CLUSTER_WINDOWS`` to the nearest
    remaining centroid, smallest clusters first, keeping at least ``keep_at_least``."""
    ids, sizes = np.unique(labels, return_counts=True)
    least = _least_windows(len(labels))
    if sizes.max() < least:
        least = int(sizes.max())  # all small: the biggest stay
    big = ids[sizes >= least]
    small = ids[sizes < least]
    if len(small) == 0:
        return labels
    keep = max(keep_at_least - len(big), 0)
    by_size = small[np.argsort(-sizes[sizes < least], kind="stable")]
    kept, moved = by_size[:keep], by_size[keep:]
    if len(moved) == 0:
        return labels
    targets = np.concatenate([big, kept])
    centroids = np.stack([embeddings[labels == k].mean(axis=0) for k in targets])
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    out = labels.copy()
    for index in np.flatnonzero(np.isin(labels, moved)):
        out[index] = targets[int(np.argmax(centroids @ embeddings[index]))]
    return out


# ----------------------------------------------------------------------------- regions and windows


def speech_regions(audio: np.ndarray, segments: Sequence[Segment] = ()) -> list[tuple[float, float]]:
    """Speech in seconds: Silero VAD's regions, or the segments' spans if it finds none."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    found = get_speech_timestamps(
        audio,
        VadOptions(min_silence_duration_ms=250, speech_pad_ms=SPEECH_PAD_MS, min_speech_duration_ms=200),
    )
    regions = [(r["start"] / SAMPLE_RATE, r["end"] / SAMPLE_RATE) for r in found]
    if not regions:
        regions = [(s.start, s.end) for s in segments if s.end > s.start]
    return regions


def windows(
    regions: Sequence[tuple[float, float]], length: float = WINDOW_SECONDS, step: float = STEP_SECONDS
) -> list[tuple[float, float]]:
    """``length`` windows every ``step`` (1.6 s every 0.8 s) inside each region, the last
    one flush with its end; a region shorter than a window is one (shorter) window."""
    out = []
    for start, end in regions:
        if end - start <= length:
            out.append((start, end))
            continue
        count = int(np.ceil((end - start - length) / step)) + 1
        first = np.linspace(start, end - length, count)
        out.extend((float(s), float(s) + length) for s in first)
    return out


def embed_spans(
    encoder: SpeakerEncoder,
    audio: np.ndarray,
    spans: Sequence[tuple[float, float]],
    length: float = WINDOW_SECONDS,
) -> np.ndarray:
    """One d-vector per span (at most ``length`` seconds, 1.6 s at most; shorter ones
    zero-padded to it)."""
    samples = min(int(round(length * SAMPLE_RATE)), PARTIAL_SAMPLES)
    frames = min(int(round(length * 100)), PARTIAL_FRAMES)
    mels = []
    for start, end in spans:
        first = int(start * SAMPLE_RATE)
        piece = audio[first : min(int(end * SAMPLE_RATE), first + samples)]
        piece = np.pad(piece, (0, samples - len(piece)))
        mels.append(mel_frames(piece)[:frames])
    if not mels:
        return np.zeros((0, 256), np.float32)
    return encoder.embed_mels(np.stack(mels))


def at_speech_level(audio: np.ndarray, regions: Sequence[tuple[float, float]]) -> np.ndarray:
    """The file at resemblyzer's level, measured on speech only (silence would inflate it)."""
    speech = [audio[int(s * SAMPLE_RATE) : int(e * SAMPLE_RATE)] for s, e in regions]
    gain = volume_gain(np.concatenate(speech) if speech else audio)
    return audio if gain == 1.0 else (audio * gain).astype(np.float32)


# ----------------------------------------------------------------------------- turns and assignment


def turns_from_windows(
    regions: Sequence[tuple[float, float]],
    spans: Sequence[tuple[float, float]],
    labels: Sequence[int],
) -> list[SpeakerTurn]:
    """Each 10 ms of every region takes the label of the nearest window centre inside the
    same region; consecutive frames of one label make a turn."""
    centres = np.array([(s + e) / 2 for s, e in spans])
    labels = np.asarray(labels)
    turns: list[SpeakerTurn] = []
    for start, end in regions:
        inside = np.flatnonzero((centres >= start - 1e-6) & (centres <= end + 1e-6))
        if len(inside) == 0:
            continue
        times = np.arange(start, end, FRAME_SECONDS) + FRAME_SECONDS / 2
        nearest = inside[np.argmin(np.abs(times[:, None] - centres[inside][None, :]), axis=1)]
        frame_labels = labels[nearest]
        cuts = np.flatnonzero(np.diff(frame_labels)) + 1
        bounds = [start, *(float(times[c] - FRAME_SECONDS / 2) for c in cuts), end]
        for i, first in enumerate([0, *cuts]):
            speaker = speaker_name(int(frame_labels[first]))
            if turns and turns[-1].speaker == speaker and bounds[i] - turns[-1].end < 1e-6:
                turns[-1].end = bounds[i + 1]
            else:
                turns.append(SpeakerTurn(bounds[i], bounds[i + 1], speaker))
    return turns


def boundary_spans(
    regions: Sequence[tuple[float, float]], spans: Sequence[tuple[float, float]], labels: Sequence[int]
) -> list[tuple[tuple[float, float], int, int]]:
    """Windows to embed between each pair of neighbouring windows of one region that have
    different labels: ``BOUNDARY_WINDOWS`` evenly between their centres (kept inside the
    region), each with the two labels it must choose between."""
    centres = np.array([(s + e) / 2 for s, e in spans])
    out = []
    for start, end in regions:
        inside = np.flatnonzero((centres >= start - 1e-6) & (centres <= end + 1e-6))
        inside = inside[np.argsort(centres[inside], kind="stable")]
        for a, b in zip(inside[:-1], inside[1:], strict=True):
            if labels[a] == labels[b]:
                continue
            for k in range(1, BOUNDARY_WINDOWS + 1):
                centre = centres[a] + (centres[b] - centres[a]) * k / (BOUNDARY_WINDOWS + 1)
                first = min(max(centre - WINDOW_SECONDS / 2, start), max(end - WINDOW_SECONDS, start))
                out.append(
                    ((float(first), float(min(first + WINDOW_SECONDS, end))), int(labels[a]), int(labels[b]))
                )
    return out


def refine_boundaries(
    regions: Sequence[tuple[float, float]],
    spans: Sequence[tuple[float, float]],
    embeddings: np.ndarray,
    labels: np.ndarray,
    embed: Callable[[list[tuple[float, float]]], np.ndarray],
) -> tuple[list[tuple[float, float]], np.ndarray, np.ndarray]:
    """``spans``, ``embeddings`` and ``labels`` with the boundary windows added
    (``boundary_spans``), each labelled with the nearer of its two neighbours' centroids.
    The clustering is not redone: these windows only place the turns' edges."""
    extra = boundary_spans(regions, spans, labels)
    if not extra:
        return list(spans), embeddings, labels
    vectors = embed([span for span, _, _ in extra])
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    centroids = {}
    for label in np.unique(labels):
        mean = embeddings[labels == label].mean(axis=0)
        centroids[int(label)] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    chosen = [
        a if unit[i] @ centroids[a] >= unit[i] @ centroids[b] else b for i, (_, a, b) in enumerate(extra)
    ]
    return (
        [*spans, *(span for span, _, _ in extra)],
        np.concatenate([embeddings, vectors.astype(embeddings.dtype)]),
        np.concatenate([labels, np.array(chosen, labels.dtype)]),
    )


def resegment(
    regions: Sequence[tuple[float, float]],
    spans: Sequence[tuple[float, float]],
    labels: np.ndarray,
    short: Sequence[tuple[float, float]],
    vectors: np.ndarray,
) -> np.ndarray:
    """A label for each of the ``short`` windows (see ``RESEGMENT_SECONDS``): each first
    takes the label of the nearest clustered window (``spans``, ``labels``), the speakers'
    centroids are taken over the short windows so labelled, and then each region's short
    windows are labelled by a Viterbi pass maximising their cosine similarity to their
    speaker's centroid less ``SWITCH_PENALTY`` per change of speaker (``RESEGMENT_ROUNDS``
    times, the centroids taken again from the last pass). A speaker keeps at least one
    window (none disappears here: the count was decided over the whole file)."""
    centres = np.array([(s + e) / 2 for s, e in spans])
    short_centres = np.array([(s + e) / 2 for s, e in short])
    labels = np.asarray(labels)
    first = labels[np.argmin(np.abs(short_centres[:, None] - centres[None, :]), axis=1)]
    ids = np.unique(labels)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out = first
    for _ in range(max(RESEGMENT_ROUNDS, 1)):
        means = []
        for k in ids:
            mine = unit[out == k] if (out == k).any() else unit[first == k]
            mean = mine.mean(axis=0) if len(mine) else np.zeros(unit.shape[1])
            means.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        similarity = unit @ np.stack(means).T  # (windows, speakers)
        out = first.copy()
        for start, end in regions:
            inside = np.flatnonzero((short_centres >= start - 1e-6) & (short_centres <= end + 1e-6))
            inside = inside[np.argsort(short_centres[inside], kind="stable")]
            if len(inside):
                out[inside] = ids[_viterbi(similarity[inside], SWITCH_PENALTY)]
        for k in ids:  # a speaker the pass left without a window keeps its first labelling
            if not (out == k).any():
                out[first == k] = k
    return out


def _viterbi(scores: np.ndarray, penalty: float) -> np.ndarray:
    """The state sequence maximising the sum of ``scores[t, state]`` less ``penalty`` per
    change of state."""
    count, states = scores.shape
    total = scores[0].copy()
    back = np.zeros((count, states), int)
    for t in range(1, count):
        best = int(np.argmax(total))
        stay = total
        switch = total[best] - penalty
        back[t] = np.where(stay >= switch, np.arange(states), best)
        total = np.maximum(stay, switch) + scores[t]
    path = np.zeros(count, int)
    path[-1] = int(np.argmax(total))
    for t in range(count - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def smooth_flips(
    turns: Sequence[SpeakerTurn],
    spans: Sequence[tuple[float, float]],
    embeddings: np.ndarray,
    centroids: dict[str, np.ndarray],
) -> list[SpeakerTurn]:
    """Turns with short flips relabelled: a turn under ``FLIP_SECONDS`` between two turns
    of one other speaker, each less than ``FLIP_GAP`` away, takes that speaker, unless
    the windows centred in it are farther than ``FLIP_FAR`` from that speaker's centroid
    (a real interjection sounds unlike the speaker around it). Neighbours of one speaker
    are then joined."""
    out = [dataclasses.replace(t) for t in turns]
    centres = np.array([(s + e) / 2 for s, e in spans]) if len(spans) else np.zeros(0)
    for i in range(1, len(out) - 1):
        turn, before, after = out[i], out[i - 1], out[i + 1]
        if (
            turn.end - turn.start >= FLIP_SECONDS
            or before.speaker != after.speaker
            or before.speaker == turn.speaker
            or turn.start - before.end >= FLIP_GAP
            or after.start - turn.end >= FLIP_GAP
        ):
            continue
        inside = (centres >= turn.start) & (centres <= turn.end)
        centroid = centroids.get(before.speaker)
        if inside.any() and centroid is not None:
            vectors = embeddings[inside]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            if float(np.mean(1.0 - vectors @ centroid)) > FLIP_FAR:
                continue
        turn.speaker = before.speaker
    joined: list[SpeakerTurn] = []
    for turn in out:
        if joined and joined[-1].speaker == turn.speaker and turn.start - joined[-1].end < 1e-6:
            joined[-1].end = max(joined[-1].end, turn.end)
        else:
            joined.append(turn)
    return joined


def fit_to_speech(segments: Sequence[Segment], regions: Sequence[tuple[float, float]]) -> list[Segment]:
    """Copies of ``segments`` whose words lie within the speech regions and whose times
    span their words (see ``FIT_STRETCH``): what a user reads then starts and ends where
    the speech does, and a pause between two speakers belongs to neither; a gap between
    two words of one region is given to the word before it. A word that
    overlaps no region, and a segment without words, keep their times."""
    if not regions:
        return list(segments)
    starts = np.array([r[0] for r in regions])
    ends = np.array([r[1] for r in regions])
    words = [w for s in segments for w in s.words or []]
    region: list[int | None] = []
    for word in words:
        shared = np.minimum(ends, word.end) - np.maximum(starts, word.start)
        best = int(np.argmax(shared))
        region.append(best if shared[best] > 0 else None)
    fitted: list[Word] = []
    for i, word in enumerate(words):
        r = region[i]
        if r is None:
            fitted.append(word)
            continue
        start, end = max(word.start, starts[r]), min(word.end, ends[r])
        if i == 0 or region[i - 1] != r:  # the region's first word: its onset is the region's
            start = max(starts[r], start - FIT_STRETCH)
        if i == len(words) - 1 or region[i + 1] != r:
            end = min(ends[r], end + FIT_STRETCH)
        fitted.append(dataclasses.replace(word, start=round(float(start), 3), end=round(float(end), 3)))
    # A region holds no pause of 250 ms or more, so a gap between two of its words is speech
    # Whisper's times left out (a segment's last word ends short of the next segment's
    # first): the word before runs on to the next one. Tune mixes 8.39 -> 8.07 % DER
    # (missed 2.63 -> 2.18 %, false alarm unchanged).
    for i in range(len(fitted) - 1):
        if region[i] is not None and region[i] == region[i + 1] and fitted[i + 1].start > fitted[i].end:
            fitted[i] = dataclasses.replace(fitted[i], end=fitted[i + 1].start)
    out, index = [], 0
    for segment in segments:
        if not segment.words:
            out.append(segment)
            continue
        own = fitted[index : index + len(segment.words)]
        index += len(segment.words)
        out.append(dataclasses.replace(segment, words=own, start=own[0].start, end=own[-1].end))
    return out


def silent_gaps(
    segments: Sequence[Segment], regions: Sequence[tuple[float, float]], seconds: float | None = None
) -> list[tuple[float, float]]:
    """The gaps between consecutive words of one segment of which at least ``seconds``
    (``PAUSE_SPLIT_SECONDS``) lies outside every speech region: pauses nobody speaks in."""
    seconds = PAUSE_SPLIT_SECONDS if seconds is None else seconds
    if not seconds or not regions:
        return []
    starts = np.array([r[0] for r in regions])
    ends = np.array([r[1] for r in regions])
    gaps = []
    for segment in segments:
        words = segment.words or []
        for before, after in zip(words, words[1:]):
            start, end = before.end, after.start
            if end - start < seconds:
                continue
            speech = float(np.clip(np.minimum(ends, end) - np.maximum(starts, start), 0.0, None).sum())
            if end - start - speech >= seconds:
                gaps.append((start, end))
    return gaps


def split_at_pauses(segments: Sequence[Segment], regions: Sequence[tuple[float, float]]) -> list[Segment]:
    """``segments`` cut between two words where the speech regions hold a pause of
    ``PAUSE_SPLIT_SECONDS`` or more (``silent_gaps``), so that no segment spans a silence
    (``decoding.split_at_gaps`` makes the cut: each piece spans its own words and takes
    their text; never inside a word). Used on segments fitted to the speech."""
    gaps = silent_gaps(segments, regions)
    return split_at_gaps(list(segments), gaps) if gaps else list(segments)


def speaker_at(turns: Sequence[SpeakerTurn], start: float, end: float) -> str | None:
    """The speaker who talks most within [start, end], else the one whose turn is nearest."""
    if not turns:
        return None
    overlap: dict[str, float] = {}
    for turn in turns:
        shared = min(end, turn.end) - max(start, turn.start)
        if shared > 0:
            overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
    if overlap:
        return max(overlap, key=overlap.__getitem__)
    middle = (start + end) / 2
    return min(turns, key=lambda t: max(t.start - middle, middle - t.end, 0.0)).speaker


def label_segments(segments: Sequence[Segment], turns: Sequence[SpeakerTurn]) -> list[Segment]:
    """Copies of ``segments`` with ``speaker`` on each segment and each of its words."""
    out = []
    for segment in segments:
        words = None
        if segment.words is not None:
            words = [dataclasses.replace(w, speaker=speaker_at(turns, w.start, w.end)) for w in segment.words]
        speaker = speaker_at(turns, segment.start, segment.end)
        out.append(dataclasses.replace(segment, speaker=speaker, words=words))
    return out


def speaker_runs(words: Sequence[Word]) -> list[list[Word]]:
    """Consecutive words of one speaker: where a segment, utterance or paragraph must be
    split so that it never holds two speakers (a word without a label stays with the run
    before it)."""
    runs: list[list[Word]] = []
    speaker = None  # the current run's speaker: its first labelled word's
    for word in words:
        if runs and (word.speaker is None or word.speaker == (speaker or word.speaker)):
            runs[-1].append(word)
            speaker = speaker or word.speaker
        else:
            runs.append([word])
            speaker = word.speaker
    return runs


def split_at_turns(segments: Sequence[Segment]) -> list[Segment]:
    """Segments split at the word where the speaker changes, numbered again from 0.

    Each piece keeps its words, spans them (the first piece starts where the segment did,
    the last ends where it did) and takes their text; Whisper's text is the words' text
    joined, so punctuation stays on the word it followed. The segment's decoding figures
    (temperature, log probability, ...) are copied to each piece; its tokens are not split
    (a word does not carry its tokens), so they stay with the first piece only. Segments
    without words keep the label of their majority.
    """
    out: list[Segment] = []
    for segment in segments:
        runs = speaker_runs(segment.words or [])
        if len(runs) < 2:
            out.append(dataclasses.replace(segment, id=len(out)))
            continue
        for index, run in enumerate(runs):
            out.append(
                dataclasses.replace(
                    segment,
                    id=len(out),
                    start=segment.start if index == 0 else run[0].start,
                    end=segment.end if index == len(runs) - 1 else run[-1].end,
                    text="".join(w.word for w in run),
                    tokens=segment.tokens if index == 0 else [],
                    words=run,
                    speaker=next((w.speaker for w in run if w.speaker), segment.speaker),
                )
            )
    return out


# ----------------------------------------------------------------------------- entry points


def window_embeddings(
    audio: np.ndarray, segments: Sequence[Segment] = (), encoder: SpeakerEncoder | None = None
) -> tuple[list[tuple[float, float]], list[tuple[float, float]], np.ndarray]:
    """Speech regions, the windows over them and each window's d-vector."""
    regions = speech_regions(audio, segments)
    spans = windows(regions)
    return regions, spans, embed_spans(encoder or shared_encoder(), at_speech_level(audio, regions), spans)


def diarize(
    audio: np.ndarray,
    segments: Sequence[Segment],
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    encoder: SpeakerEncoder | None = None,
    threshold: float | None = None,
) -> Diarization:
    """Speaker turns of 16 kHz ``audio`` and its transcript's segments labelled with them
    and split where the speaker changes."""
    check_speaker_bounds(min_speakers, max_speakers)
    encoder = encoder or shared_encoder()
    regions = speech_regions(audio, segments)
    spans = windows(regions)
    levelled = at_speech_level(audio, regions)
    embeddings = embed_spans(encoder, levelled, spans)
    return diarize_windows(
        regions,
        spans,
        embeddings,
        segments,
        min_speakers,
        max_speakers,
        threshold,
        embed=lambda more, length=WINDOW_SECONDS: embed_spans(encoder, levelled, more, length),
    )


def diarize_windows(
    regions: Sequence[tuple[float, float]],
    spans: Sequence[tuple[float, float]],
    embeddings: np.ndarray,
    segments: Sequence[Segment],
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    threshold: float | None = None,
    embed: Callable[..., np.ndarray] | None = None,
) -> Diarization:
    """``diarize`` from the windows' d-vectors on (the part that touches audio only through
    ``embed(spans, length=WINDOW_SECONDS)``, which gives more windows' d-vectors for
    ``resegment`` or ``refine_boundaries``; without it the turns' edges are the regular
    windows', so an evaluation can re-run the clustering over cached embeddings)."""
    labels = cluster(embeddings, threshold, min_speakers, max_speakers)
    centroids = {}
    for label in np.unique(labels):
        mean = embeddings[labels == label].mean(axis=0)
        centroids[speaker_name(int(label))] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    if embed is not None and RESEGMENT_SECONDS and len(centroids) > 1:
        short = windows(regions, RESEGMENT_SECONDS, RESEGMENT_STEP)
        vectors = embed(short, RESEGMENT_SECONDS)
        turns = turns_from_windows(regions, short, resegment(regions, spans, labels, short, vectors))
    else:
        if embed is not None and BOUNDARY_WINDOWS:
            spans, embeddings, labels = refine_boundaries(regions, spans, embeddings, labels, embed)
        turns = turns_from_windows(regions, spans, labels)
    turns = smooth_flips(turns, spans, embeddings, centroids)
    labelled = label_segments(split_at_pauses(fit_to_speech(segments, regions), regions), turns)
    return Diarization(turns, split_at_turns(labelled), centroids)


async def diarize_upload(
    pool: ModelPool,
    audio: np.ndarray,
    segments: Sequence[Segment],
    min_speakers: int | None = None,
    max_speakers: int | None = None,
) -> Diarization:
    """``diarize`` on the shared scheduler at upload priority: live streams go first."""
    check_speaker_bounds(min_speakers, max_speakers)
    return await pool.scheduler.run(
        lambda: diarize(audio, segments, min_speakers, max_speakers), Priority.UPLOAD
    )


class StreamingDiarizer:
    """Labels a live stream's completed segments, stable for the whole stream.

    It keeps the stream's recent audio (``feed``) and, for each completed segment
    (``label``), embeds the segment's audio and picks the nearest known speaker, or a new
    one when none is within ``threshold`` (and ``max_speakers`` allows). Not thread-safe:
    one stream calls it one segment at a time.
    """

    def __init__(
        self,
        encoder: SpeakerEncoder | None = None,
        threshold: float = STREAM_THRESHOLD,
        max_speakers: int | None = None,
        keep_seconds: float = 120.0,
    ):
        check_speaker_bounds(None, max_speakers)
        self.encoder = encoder or shared_encoder()
        self.threshold = threshold
        self.max_speakers = max_speakers
        self._keep = int(keep_seconds * SAMPLE_RATE)
        self._audio = np.zeros(0, np.float32)
        self._offset = 0  # stream sample index of self._audio[0]
        self._sums: list[np.ndarray] = []  # per speaker: sum of its segments' d-vectors
        self._counts: list[int] = []

    def feed(self, samples: np.ndarray) -> None:
        self._audio = np.concatenate([self._audio, samples]) if len(self._audio) else samples.copy()
        excess = len(self._audio) - self._keep
        if excess > 0:
            self._audio = self._audio[excess:]
            self._offset += excess

    @property
    def speakers(self) -> int:
        return len(self._sums)

    def embed(self, start: float, end: float) -> np.ndarray | None:
        first = max(int(start * SAMPLE_RATE) - self._offset, 0)
        last = min(int(end * SAMPLE_RATE) - self._offset, len(self._audio))
        piece = self._audio[first:last]
        if len(piece) < SAMPLE_RATE // 4:
            return None
        return self.encoder.embed_utterance(normalize_volume(piece))

    def turns(self, start: float, end: float, words: Sequence[Word]) -> list[tuple[list[Word], str | None]]:
        """A completed segment's speakers, split at the word where the speaker changes.

        The segment's words are grouped into chunks of at least a window (1.6 s) and each
        chunk is compared with the speakers known so far; when chunks are nearest (within
        ``threshold``) to different speakers, the segment is cut there and each piece
        counts for its speaker. Otherwise the whole segment is labelled as ``label`` does
        (only a whole segment founds a new speaker: a chunk is too short to say a voice is
        new). Returns (words, speaker) per piece; a single piece holds all the words.
        """
        chunks = _word_chunks(words, WINDOW_SECONDS)
        if len(chunks) < 2 or not self._sums:
            return [(list(words), self.label(start, end))]
        centroids = np.stack([s / np.linalg.norm(s) for s in self._sums])
        nearest: list[int | None] = []
        for chunk in chunks:
            embedding = self.embed(chunk[0].start, chunk[-1].end)
            if embedding is None:
                nearest.append(None)
                continue
            distances = 1.0 - centroids @ embedding
            index = int(np.argmin(distances))
            nearest.append(index if distances[index] <= self.threshold else None)
        if len({n for n in nearest if n is not None}) < 2:
            return [(list(words), self.label(start, end))]
        for i in range(len(nearest)):  # a chunk near no one goes with its neighbour
            if nearest[i] is None:
                nearest[i] = nearest[i - 1] if i else next(n for n in nearest if n is not None)
        pieces: list[tuple[list[Word], int]] = []
        for chunk, index in zip(chunks, nearest, strict=True):
            if pieces and pieces[-1][1] == index:
                pieces[-1][0].extend(chunk)
            else:
                pieces.append((list(chunk), index))
        out = []
        for piece, index in pieces:
            embedding = self.embed(piece[0].start, piece[-1].end)
            if embedding is not None:
                self._sums[index] += embedding
                self._counts[index] += 1
            out.append((piece, speaker_name(index)))
        return out

    def label(self, start: float, end: float) -> str | None:
        """The speaker of the stream's audio between ``start`` and ``end`` seconds."""
        embedding = self.embed(start, end)
        if embedding is None:
            return None
        index = None
        if self._sums:
            centroids = np.stack([s / np.linalg.norm(s) for s in self._sums])
            distances = 1.0 - centroids @ embedding
            index = int(np.argmin(distances))
            full = self.max_speakers is not None and len(self._sums) >= self.max_speakers
            long_enough = end - start >= STREAM_MIN_NEW_SECONDS
            if distances[index] > self.threshold and long_enough and not full:
                index = None
        if index is None:
            self._sums.append(embedding.astype(np.float64))
            self._counts.append(1)
            return speaker_name(len(self._sums) - 1)
        self._sums[index] += embedding
        self._counts[index] += 1
        return speaker_name(index)


def _word_chunks(words: Sequence[Word], seconds: float) -> list[list[Word]]:
    """Consecutive words in chunks spanning at least ``seconds`` (a short tail joins the
    chunk before it)."""
    chunks: list[list[Word]] = []
    for word in words:
        if chunks and chunks[-1][-1].end - chunks[-1][0].start < seconds:
            chunks[-1].append(word)
        else:
            chunks.append([word])
    if len(chunks) > 1 and chunks[-1][-1].end - chunks[-1][0].start < seconds:
        chunks[-2].extend(chunks.pop())
    return chunks


class LiveSpeakers:
    """A live stream's speaker labels, for a transport that sends completed segments.

    The transport feeds it the same bytes it feeds the session (they are decoded the same
    way, sniffing included, so sample indices agree with the session's times) and, before
    sending segments, awaits ``label`` so that every completed segment carries its speaker
    the first time a client sees it. The embedding runs on the scheduler at FINAL priority:
    it is part of delivering a final (tens of milliseconds) and must not wait behind
    uploads or partials.
    """

    def __init__(self, pool: ModelPool, audio_format: str | None = None, max_speakers: int | None = None):
        self.pool = pool
        self.diarizer = StreamingDiarizer(max_speakers=max_speakers)
        self._pcm = PcmDecoder(audio_format)
        self._labels: dict[tuple[float, float, str], str | None] = {}
        # completed segments two speakers share: their pieces, one per turn
        self._pieces: dict[tuple[float, float, str], list] = {}

    def feed(self, data: bytes) -> None:
        self.diarizer.feed(self._pcm.feed(data))

    def end(self) -> None:
        self.diarizer.feed(self._pcm.flush())

    @staticmethod
    def _key(segment) -> tuple[float, float, str]:
        return (segment.start, segment.end, segment.text)

    async def label(self, segments: Sequence) -> None:
        """Label the completed segments not labelled yet, in order. A failure costs the
        label (logged), never the stream."""
        for segment in segments:
            key = self._key(segment)
            if not segment.completed or key in self._labels:
                continue
            try:
                turns = await self.pool.scheduler.run(
                    lambda s=segment: self.diarizer.turns(s.start, s.end, s.words or []), Priority.FINAL
                )
            except Exception:
                log.exception("labelling a segment's speaker failed")
                turns = [(list(segment.words or []), None)]
            pieces = [segment]
            if len(turns) > 1:
                pieces = [
                    dataclasses.replace(
                        segment,
                        start=segment.start if i == 0 else words[0].start,
                        end=segment.end if i == len(turns) - 1 else words[-1].end,
                        text="".join(w.word for w in words),
                        words=[dataclasses.replace(w, speaker=speaker) for w in words],
                        ends_utterance=segment.ends_utterance and i == len(turns) - 1,
                    )
                    for i, (words, speaker) in enumerate(turns)
                ]
            if segment.ends_utterance and LIVE_END_STRETCH:
                pieces[-1] = dataclasses.replace(pieces[-1], end=round(pieces[-1].end + LIVE_END_STRETCH, 3))
            if pieces != [segment]:
                self._pieces[key] = pieces
                for piece, (_, speaker) in zip(pieces, turns, strict=True):
                    self._labels[self._key(piece)] = speaker
            self._labels[key] = turns[0][1] if len(turns) == 1 else None

    def split(self, segments: Sequence) -> list:
        """``segments`` with each completed one that two speakers share replaced by one
        segment per speaker turn (``label`` first decides where), and an utterance's last
        segment ending ``LIVE_END_STRETCH`` later; the rest unchanged."""
        out = []
        for segment in segments:
            out.extend(self._pieces.get(self._key(segment), [segment]) if segment.completed else [segment])
        return out

    def speaker_of(self, segment) -> str | None:
        return self._labels.get(self._key(segment))
