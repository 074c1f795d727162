"""What every face passes through before any audio is decoded: API keys, per-key limits
and (soon) metrics, in one place."""
