"""The toy grammar: exact French-like renderings, and held-out combinations kept out of train/val."""

from __future__ import annotations

import json

import pytest

from yololab.errors import DataError
from yololab.translate import toy
from yololab.translate.toy import ADJS, NOUNS, NP, PRONOUNS, VERBS, Plan

N = {n.en: n for n in NOUNS}
A = {a.en: a for a in ADJS}
V = {v.en: v for v in VERBS}
P = {p[0]: p for p in PRONOUNS}


@pytest.mark.parametrize("plan,en,fr", [
    (Plan(NP(N["car"], "the", False, A["small"]), V["see"], NP(N["cat"], "a", True, A["red"]), "present",
          "statement", None, None),
     "The small car sees some red cats.", "La petite voiture voit des chats rouges."),
    (Plan(NP(N["girl"], "the", True, None), V["leave"], None, "past", "negation", None, "front"),
     "Yesterday, the girls did not leave.", "Hier, les filles ne sont pas parties."),
    (Plan(NP(N["cat"], "the", False, None), V["eat"], NP(N["apple"], "a", False, None), "past", "wh", None, None),
     "What did the cat eat?", "Qu'a mangé le chat ?"),
    (Plan(P["she"], V["write"], NP(N["letter"], "my", False, A["white"]), "future", "question",
          ("near", NP(N["park"], "the", False, None)), "end"),
     "Will she write my white letter near the park tomorrow?",
     "Est-ce qu'elle écrira ma lettre blanche près du parc demain ?"),
    (Plan(P["I"], V["like"], NP(N["friend"], "my", False, None), "present", "statement", None, None),
     "I like my friend.", "J'aime mon amie."),
    (Plan(NP(N["man"], "this", False, None), V["open"], NP(N["window"], "the", True, None), "present", "negation",
          None, None),
     "This man does not open the windows.", "Cet homme n'ouvre pas les fenêtres."),
    (Plan(P["you"], V["sleep"], None, "present", "wh", None, None), "Where do you sleep?",
     "Où est-ce que tu dors ?"),
])
def test_renderings(plan, en, fr):
    assert (plan.english(), plan.french()) == (en, fr)


def test_english_determines_the_french():
    import random

    rng, seen = random.Random(5), {}
    for _ in range(20000):
        plan = toy.random_plan(rng)
        assert seen.setdefault(plan.english(), plan.french()) == plan.french(), plan.english()


def test_held_out_combinations_never_in_train_or_val():
    held = toy.draw_held_out(0, 0.08)
    kinds = {t[0] for t in held}
    assert kinds == {"adj+noun", "subject+verb", "verb+frame"}
    for tags in toy.all_tags().values():  # no word loses more than half of its combinations
        for pos in (1, 2):
            for word in {t[pos] for t in tags}:
                uses = [t for t in tags if t[pos] == word]
                assert 2 * sum(t in held for t in uses) <= len(uses)
    splits, held2 = toy.generate(600, 60, 100, seed=0)
    assert held2 == held
    rng_plans = {}  # regenerate the plans to read their tags
    import random
    rng = random.Random(0)
    while len(rng_plans) < 5000:
        plan = toy.random_plan(rng)
        rng_plans.setdefault(plan.english(), plan)
    for split in ("train", "val", "test"):
        for en, _ in splits[split]:
            tags = rng_plans[en].tags()
            assert bool(tags & held) == (split == "test"), (split, en)
    all_en = [en for pairs in splits.values() for en, _ in pairs]
    assert len(all_en) == len(set(all_en)) == 760  # distinct sentences


def test_every_source_word_of_the_test_is_seen_in_training():
    """Held-out combinations, never held-out words: a model cannot be asked to translate a word it never saw.

    (A French form may still be new, e.g. a verb in a person and tense never met together: producing it
    from its stem and ending is part of what the test measures.)
    """
    import re

    splits, _ = toy.generate(4000, 10, 400, seed=3)
    seen = {w for en, _ in splits["train"] for w in re.findall(r"[\w'-]+", en.lower())}
    unseen = {w for en, _ in splits["test"] for w in re.findall(r"[\w'-]+", en.lower())} - seen
    assert not unseen, unseen


def test_write_corpus_refuses_foreign_folders_and_needs_overwrite(tmp_path):
    meta = toy.write_corpus(tmp_path / "c", 50, 5, 10, seed=1, held_out_fraction=0.1, overwrite=False)
    assert meta["counts"] == {"train": 50, "val": 5, "test": 10}
    assert json.loads((tmp_path / "c" / "corpus.json").read_text())["src_lang"] == "en"
    assert len((tmp_path / "c" / "test.fr").read_text().splitlines()) == 10
    with pytest.raises(DataError, match="--overwrite"):
        toy.write_corpus(tmp_path / "c", 50, 5, 10, 1, 0.1, overwrite=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not written by"):
        toy.write_corpus(tmp_path / "mine", 50, 5, 10, 1, 0.1, overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
