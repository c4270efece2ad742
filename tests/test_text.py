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
