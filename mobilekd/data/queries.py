"""Search queries made from product descriptions: what a shopper types to find a known item.

One query from a description, with `rng` a numpy Generator (so a seed fixes every query):

1. words: the description lower-cased and split on spaces ("LUNCH BAG RED RETROSPOT" ->
   lunch, bag, red, retrospot); a description of one word gives that word.
2. subset (flag SUBSET): keep k of the n words, k uniform in [min(2, n), n]; kept words keep
   their order. The flag is set when k < n.
3. reorder (flag REORDER): with probability `p_reorder`, shuffle the kept words (set when the order
   changed).
4. plural (flag PLURAL): with probability `p_plural`, one word (uniform) changes number: a word
   ending in "s" loses it, "y" after a consonant becomes "ies", s/x/z/ch/sh endings get "es",
   any other word gets "s". Words shorter than 3 letters are left alone.
5. typo (flag TYPO): with probability `p_typo`, one word of at least 4 letters (uniform) gets one
   edit at a uniform position: delete, swap with the next letter, replace or insert a uniform
   letter a-z (the edit kind uniform too).

The query is the words joined by single spaces. Flags are a bitmask, so the benchmark can report
typo and reordered queries separately.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUBSET, REORDER, PLURAL, TYPO = 1, 2, 4, 8
FLAG_NAMES = {SUBSET: "subset", REORDER: "reorder", PLURAL: "plural", TYPO: "typo"}
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class QueryOptions:
    p_reorder: float = 0.3
    p_plural: float = 0.2
    p_typo: float = 0.25


def change_number(word: str) -> str:
    if len(word) < 3:
        return word
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def typo(word: str, rng: np.random.Generator) -> str:
    kind = int(rng.integers(4))
    i = int(rng.integers(len(word)))
    letter = LETTERS[int(rng.integers(26))]
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        i = min(i, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 2:
        return word[:i] + letter + word[i + 1 :]
    return word[:i] + letter + word[i:]


def make_query(description: str, rng: np.random.Generator, opts: QueryOptions = QueryOptions()) -> tuple[str, int]:
    """(query, flags) for one description; see the module docstring for each step."""
    ws = description.lower().split() or [description.lower()]
    n = len(ws)
    flags = 0
    k = int(rng.integers(min(2, n), n + 1))
    keep = np.sort(rng.choice(n, size=k, replace=False))
    if k < n:
        flags |= SUBSET
    q = [ws[i] for i in keep]
    if rng.random() < opts.p_reorder and len(q) > 1:
        order = rng.permutation(len(q))
        if list(order) != list(range(len(q))):
            q = [q[i] for i in order]
            flags |= REORDER
    if rng.random() < opts.p_plural:
        j = int(rng.integers(len(q)))
        changed = change_number(q[j])
        if changed != q[j]:
            q[j], flags = changed, flags | PLURAL
    if rng.random() < opts.p_typo:
        long = [j for j, w in enumerate(q) if len(w) >= 4 and w.isalpha()]
        if long:
            j = long[int(rng.integers(len(long)))]
            q[j], flags = typo(q[j], rng), flags | TYPO
    return " ".join(q), flags


def make_queries(descriptions: list[str], per_item: int, seed: int, opts: QueryOptions = QueryOptions(),
                 item_ids: list[int] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """`per_item` queries for each description: (texts, position (N,), flags (N,)), item-major.

    Item i's queries come from its own generator, seeded with (seed, item_ids[i]), so they do not
    depend on which other items are in the list (a seen item gets the same queries in every split)."""
    texts, items, flags = [], [], []
    for i, d in enumerate(descriptions):
        rng = np.random.default_rng([seed, item_ids[i] if item_ids is not None else i])
        for _ in range(per_item):
            q, f = make_query(d, rng, opts)
            texts.append(q)
            items.append(i)
            flags.append(f)
    return texts, np.asarray(items, dtype=np.int64), np.asarray(flags, dtype=np.int64)
