"""scripts/soak.py's verdicts from made-up runs: which finals count as lost, which third a
final belongs to, and how RSS growth over the last window is read."""

from __future__ import annotations

from soak import Conversation, Sample, summarize


def sample(t: float, rss: float) -> Sample:
    return Sample(t, rss, rss, 20, 9, t / 10, 1.0, 10, 2)


def test_lost_finals_thirds_and_latency_ratio():
    conversations = [
        # speech ends at 10, 20 (first third of 90 s) and 80 (last third)
        Conversation(0, 0.0, 3, 30.0, True, 0.05, [0.5, 0.6, 0.55], [10.0, 20.0, 80.0], [0.0, 0.1, 0.0]),
        # one final never came, one came with most words wrong: both lost
        Conversation(1, 35.0, 2, 20.0, True, 0.5, [None, 0.7], [40.0, 50.0], [1.0, 0.8]),
        # answered WAIT: no utterances, not a lost final, counted apart
        Conversation(2, 60.0, 3, 30.0, False, error="WAIT"),
    ]
    samples = [sample(t, 400.0) for t in range(0, 91, 10)]
    summary = summarize(conversations, [], samples, 90.0, 60.0)
    thirds = summary["thirds"]
    assert [t["utterances"] for t in thirds] == [2, 2, 1]
    assert thirds[1]["missing_finals"] == 1 and thirds[1]["garbled_finals"] == 1
    assert summary["totals"]["lost_finals"] == 2 and summary["totals"]["refused_or_failed"] == 1
    assert not summary["criteria"]["lost_finals_ok"]
    assert summary["criteria"]["final_p90_ratio"] == round(0.55 / thirds[0]["final_p90"], 3)
    assert summary["criteria"]["final_p90_ok"]


def test_rss_growth_over_the_last_window():
    # 30 minutes: rises in the first 10, then flat within 2 %: levels off
    flat = [sample(t, 300 + min(t, 600) / 6 + (t % 20) / 10) for t in range(0, 1801, 10)]
    criteria = summarize([], [], flat, 1800.0, 1200.0)["criteria"]
    assert criteria["rss_window_minutes"] == 20.0 and criteria["rss_growth_ok"]
    assert abs(criteria["rss_growth"]) < 0.01
    # a steady 1.2 MB a minute from 400 MB: 24 MB (5.8 %) in the last 20 minutes fails
    leak = [sample(t, 400 + 1.2 * t / 60) for t in range(0, 1801, 10)]
    criteria = summarize([], [], leak, 1800.0, 1200.0)["criteria"]
    assert criteria["rss_mb_per_minute"] == 1.2
    assert 0.055 < criteria["rss_growth"] < 0.06 and not criteria["rss_growth_ok"]
