"""Normalisation shared by indexing and search: both sides of a comparison must meet."""

from indexer.textnorm import content_tokens, normalize_words, phonetic, split_words, tokens


def test_contractions_and_colloquial_forms_meet_the_written_line():
    assert tokens("You're gonna stay, aren't you?") == tokens("You are going to stay, are not you?")
    assert tokens("It's almost 3 in the morning.") == tokens("It is almost three in the morning")


def test_numbers_years_money_percent():
    assert tokens("In 1999 I paid $5,000 - 20% more") == [
        "in", "nineteen", "ninety", "nine", "i", "paid", "five", "thousand", "dollars", "twenty", "percent", "more"]


def test_tokens_remember_their_source_word():
    words = split_words("You're still here? Wow.")
    assert normalize_words(words) == [("you", 0), ("are", 0), ("still", 1), ("here", 2), ("wow", 3)]


def test_dashes_and_ellipses_split_words():
    assert tokens("The director called—sorry...again") == ["the", "director", "called", "sorry", "again"]


def test_phonetic_keys_join_spellings():
    assert phonetic("thom") == phonetic("tom")
    assert phonetic("passions") != phonetic("patience")
    assert phonetic("night") == phonetic("knight")


def test_content_tokens_drop_stopwords_unless_nothing_is_left():
    assert content_tokens(tokens("we have to follow the data")) == ["follow", "data"]
    assert content_tokens(["to", "be"]) == ["to", "be"]


def test_possessives_are_not_contractions():
    """Issue 17: "Maya's" was folded into "maya is", "cause" into "because" and "Em" into "them"."""
    assert tokens("Maya's coffee") == ["mayas", "coffee"]
    assert tokens("Leo's here") != tokens("Leo is here")
    assert tokens("It's Maya's. What's that? There's more.") == [
        "it", "is", "mayas", "what", "is", "that", "there", "is", "more"]
    assert tokens("a good cause") == ["a", "good", "cause"]
    assert tokens("Em, come here") == ["em", "come", "here"]
    # the clipped forms are still the words they stand for, on both sides of a comparison
    assert tokens("'cause I said so") == tokens("because I said so")
    assert tokens("get 'em") == tokens("get them")


def test_wer_uses_whispers_english_normaliser():
    """scripts/eval_asr.py scores WER with Whisper's normaliser, so its figures compare with published ones."""
    import importlib.util
    from pathlib import Path

    from whisper_normalizer.english import EnglishTextNormalizer

    path = Path(__file__).resolve().parents[1] / "scripts" / "eval_asr.py"
    spec = importlib.util.spec_from_file_location("eval_asr", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = "Mr. Smith's colour: 3 o'clock, and I'm gonna go -- Mm-hmm!"
    assert mod.wer_tokens(text) == EnglishTextNormalizer()(text).split()
    assert mod.wer_tokens("Mister Smith's color") == mod.wer_tokens("Mr. Smith's colour")
