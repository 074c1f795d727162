"""Token sets derived from a model's vocabulary."""

from __future__ import annotations

# Characters that make a token a number: digits, and the symbols that only ever sit next
# to digits in speech (WhisperX's choice, so its users get the text they expect).
NUMERAL_CHARACTERS = frozenset("0123456789%$£")

_numerals: dict[str, tuple[int, ...]] = {}  # model directory -> its numeral tokens


def numeral_tokens(loaded) -> tuple[int, ...]:
    """Every text token of a loaded model that writes a digit (or %, $, £).

    Suppressing them makes Whisper spell numbers out ("twenty five" for "25"), as
    WhisperX's ``suppress_numerals`` does. ~0.1 s the first time per model, then cached.
    """
    path = loaded.info.path
    if path not in _numerals:
        from faster_whisper.tokenizer import Tokenizer

        model = loaded.model
        eot = Tokenizer(model.hf_tokenizer, model.model.is_multilingual).eot
        texts = model.hf_tokenizer.decode_batch([[i] for i in range(eot)])
        _numerals[path] = tuple(i for i, text in enumerate(texts) if NUMERAL_CHARACTERS.intersection(text))
    return _numerals[path]
