from speechbench.text import CHARACTERS, normalize


def test_numbers_symbols_and_punctuation_are_spelled_out_or_dropped():
    assert (
        normalize("Press 1, then 22 or the 3rd key.")
        == "press one then twenty two or the third key"
    )
    assert normalize("Press * or #") == "press star or pound"
    assert normalize("Call-Forward on Busy.") == "call forward on busy"


def test_apostrophes_in_words_survive_quotes_do_not():
    assert normalize("It's 'quoted'") == "it's quoted"


def test_output_alphabet_is_closed():
    text = normalize("Ünïcödé — 50% off! (café) & more…")
    assert set(text) <= set(CHARACTERS)
    assert text == "unicode fifty percent off cafe and more"


def test_a_number_beyond_num2words_range_is_spelled_digit_by_digit():
    # Whisper hallucinated "3" followed by ~300 zeros on a generated utterance, and
    # num2words (English up to 10**306) raised OverflowError, which ended a TTS run
    huge = "3" + "0" * 320
    assert normalize(f"say {huge} now") == "say three" + " zero" * 320 + " now"
    assert normalize("1" * 320 + ".5") == "one " * 320 + "point five"
    assert normalize("the 1" + "0" * 320 + "th") == "the one" + " zero" * 320
    assert normalize("3" + "0" * 90) == "three novemvigintillion"  # in range: num2words
