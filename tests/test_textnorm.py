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
