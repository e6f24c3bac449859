"""The voice registry moved to :mod:`indexer.speakers.identity` (identity across takes in one module);
this name stays so that ``from indexer.speakers.voices import VoiceRegistry`` keeps working."""


def __getattr__(name: str):
    from . import identity

    try:
        return getattr(identity, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
