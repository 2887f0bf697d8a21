"""The toy corpus: English -> French-like sentence pairs from a small grammar, with held-out combinations.

Every pair is built from one sentence *plan* (who does what, tense, statement / negation / question,
where the time adverb goes) rendered twice, once per language, so the translation is exact. The French
side carries what makes translation more than word lookup: gender and number agreement of articles and
adjectives (``la petite voiture rouge``), adjectives before or after the noun, elision (``l'homme``,
``n'aime``, ``qu'a``), ``de`` + article contractions (``près du parc``), verb conjugation in three
tenses, past participles that agree with the subject after ``être`` (``elles sont parties``),
``ne ... pas`` around the verb, ``est-ce que`` questions, and subject-verb inversion in wh-questions
(``que mange le chat ?`` for "what does the cat eat?").

Held-out combinations. A seeded draw picks some adjective+noun pairs, subject+verb pairs and
verb+construction pairs (e.g. "write" in a negated past sentence). Training and validation sentences
contain none of them; every test sentence contains at least one. Every word is seen in training (a test
checks it), but never in those combinations, so the test measures generalization rather than memory.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from yololab.errors import DataError
from yololab.fileio import write_text_atomic

MARKER = "corpus.json"


@dataclass(frozen=True)
class Noun:
    en: str
    en_pl: str
    fr: str
    fr_pl: str
    gender: str  # "m" | "f"
    kind: str  # "animate" | "thing" | "food" | "text" | "place"


@dataclass(frozen=True)
class Adj:
    en: str
    fr: tuple[str, str, str, str]  # masc sg, fem sg, masc pl, fem pl
    before: bool  # French position: before the noun (petit, grand) or after it (most)


@dataclass(frozen=True)
class Verb:
    en: str  # base form
    en_3sg: str
    en_past: str
    fr_present: tuple[str, str, str, str, str, str]  # je tu il nous vous ils
    fr_pp: str  # past participle
    fr_future_stem: str
    objects: tuple[str, ...]  # noun kinds it takes as object; () = intransitive
    etre: bool = False  # forms its past with être (the participle then agrees with the subject)


def _er(stem: str) -> tuple[str, str, str, str, str, str]:
    return (stem + "e", stem + "es", stem + "e", stem + "ons", stem + "ez", stem + "ent")


ANY = ("animate", "thing", "food", "text")
NOUNS = [
    Noun("cat", "cats", "chat", "chats", "m", "animate"),
    Noun("dog", "dogs", "chien", "chiens", "m", "animate"),
    Noun("girl", "girls", "fille", "filles", "f", "animate"),
    Noun("boy", "boys", "garçon", "garçons", "m", "animate"),
    Noun("woman", "women", "femme", "femmes", "f", "animate"),
    Noun("man", "men", "homme", "hommes", "m", "animate"),
    Noun("bird", "birds", "oiseau", "oiseaux", "m", "animate"),
    Noun("horse", "horses", "cheval", "chevaux", "m", "animate"),
    Noun("friend", "friends", "amie", "amies", "f", "animate"),
    Noun("mouse", "mice", "souris", "souris", "f", "animate"),
    Noun("apple", "apples", "pomme", "pommes", "f", "food"),
    Noun("cake", "cakes", "gâteau", "gâteaux", "m", "food"),
    Noun("orange", "oranges", "orange", "oranges", "f", "food"),
    Noun("book", "books", "livre", "livres", "m", "text"),
    Noun("letter", "letters", "lettre", "lettres", "f", "text"),
    Noun("newspaper", "newspapers", "journal", "journaux", "m", "text"),
    Noun("house", "houses", "maison", "maisons", "f", "thing"),
    Noun("car", "cars", "voiture", "voitures", "f", "thing"),
    Noun("ball", "balls", "balle", "balles", "f", "thing"),
    Noun("flower", "flowers", "fleur", "fleurs", "f", "thing"),
    Noun("window", "windows", "fenêtre", "fenêtres", "f", "thing"),
    Noun("tree", "trees", "arbre", "arbres", "m", "thing"),
    Noun("hat", "hats", "chapeau", "chapeaux", "m", "thing"),
    Noun("garden", "gardens", "jardin", "jardins", "m", "place"),
    Noun("park", "parks", "parc", "parcs", "m", "place"),
    Noun("school", "schools", "école", "écoles", "f", "place"),
    Noun("kitchen", "kitchens", "cuisine", "cuisines", "f", "place"),
    Noun("forest", "forests", "forêt", "forêts", "f", "place"),
    Noun("hotel", "hotels", "hôtel", "hôtels", "m", "place"),
]
ADJS = [
    Adj("black", ("noir", "noire", "noirs", "noires"), False),
    Adj("green", ("vert", "verte", "verts", "vertes"), False),
    Adj("red", ("rouge", "rouge", "rouges", "rouges"), False),
    Adj("white", ("blanc", "blanche", "blancs", "blanches"), False),
    Adj("happy", ("heureux", "heureuse", "heureux", "heureuses"), False),
    Adj("small", ("petit", "petite", "petits", "petites"), True),
    Adj("big", ("grand", "grande", "grands", "grandes"), True),
    Adj("pretty", ("joli", "jolie", "jolis", "jolies"), True),
    Adj("young", ("jeune", "jeune", "jeunes", "jeunes"), True),
]
VERBS = [
    Verb("eat", "eats", "ate", ("mange", "manges", "mange", "mangeons", "mangez", "mangent"), "mangé", "manger",
         ("food",)),
    Verb("see", "sees", "saw", ("vois", "vois", "voit", "voyons", "voyez", "voient"), "vu", "verr", ANY),
    Verb("like", "likes", "liked", _er("aim"), "aimé", "aimer", ANY),
    Verb("write", "writes", "wrote", ("écris", "écris", "écrit", "écrivons", "écrivez", "écrivent"), "écrit", "écrir",
         ("text",)),
    Verb("buy", "buys", "bought", ("achète", "achètes", "achète", "achetons", "achetez", "achètent"), "acheté",
         "achèter", ("thing", "food", "text")),
    Verb("find", "finds", "found", _er("trouv"), "trouvé", "trouver", ANY),
    Verb("carry", "carries", "carried", _er("port"), "porté", "porter", ("thing", "food", "text")),
    Verb("want", "wants", "wanted", ("veux", "veux", "veut", "voulons", "voulez", "veulent"), "voulu", "voudr",
         ("thing", "food", "text")),
    Verb("open", "opens", "opened", ("ouvre", "ouvres", "ouvre", "ouvrons", "ouvrez", "ouvrent"), "ouvert",
         "ouvrir", ("text", "thing")),
    Verb("draw", "draws", "drew", _er("dessin"), "dessiné", "dessiner", ANY),
    Verb("sleep", "sleeps", "slept", ("dors", "dors", "dort", "dormons", "dormez", "dorment"), "dormi", "dormir", ()),
    Verb("sing", "sings", "sang", _er("chant"), "chanté", "chanter", ()),
    Verb("dance", "dances", "danced", _er("dans"), "dansé", "danser", ()),
    Verb("run", "runs", "ran", ("cours", "cours", "court", "courons", "courez", "courent"), "couru", "courr", ()),
    Verb("arrive", "arrives", "arrived", _er("arriv"), "arrivé", "arriver", (), etre=True),
    Verb("leave", "leaves", "left", ("pars", "pars", "part", "partons", "partez", "partent"), "parti", "partir", (),
         etre=True),
    Verb("fall", "falls", "fell", _er("tomb"), "tombé", "tomber", (), etre=True),
    Verb("play", "plays", "played", _er("jou"), "joué", "jouer", ()),
]
# pronoun subjects: English, French, person index (0 je .. 5 ils), gender, plural
PRONOUNS = [("I", "je", 0, "m", False), ("you", "tu", 1, "m", False), ("he", "il", 2, "m", False),
            ("she", "elle", 2, "f", False), ("we", "nous", 3, "m", True), ("they", "ils", 5, "m", True)]
AVOIR = ("ai", "as", "a", "avons", "avez", "ont")
ETRE = ("suis", "es", "est", "sommes", "êtes", "sont")
FUTURE = ("ai", "as", "a", "ons", "ez", "ont")
DETS = {  # English (sg, pl) -> French (masc sg, fem sg, pl)
    "the": (("the", "the"), ("le", "la", "les")),
    "a": (("a", "some"), ("un", "une", "des")),
    "my": (("my", "my"), ("mon", "ma", "mes")),
    "this": (("this", "these"), ("ce", "cette", "ces")),
}
PLACES = {"in": "dans", "near": "près de", "behind": "derrière"}
TIMES = {"past": ("yesterday", "hier"), "future": ("tomorrow", "demain"), "present": ("today", "aujourd'hui")}
KINDS = ("statement", "negation", "question", "wh")
TENSES = ("present", "past", "future")
VOWELS = tuple("aeiouhéèêâôîAEIOUHÉ")


def _starts_vowel(word: str) -> bool:
    return word.startswith(VOWELS)


def _join(words: list[str]) -> str:
    """Join French words applying elision (le/la/je/ne/que/de + vowel -> l'/j'/n'/qu'/d') and du/des."""
    out: list[str] = []
    for w in words:
        if out and _starts_vowel(w) and out[-1] in ("le", "la", "je", "ne", "que", "de", "ce"):
            prev = out.pop()
            if prev == "ce":
                out.append("cet " + w)
                continue
            out.append(prev[:-1] + "'" + w)  # l' j' n' qu' d'
            continue
        if out and out[-1] == "de" and w in ("le", "les", "des"):
            out[-1] = {"le": "du", "les": "des", "des": "de"}[w]
            continue
        out.append(w)
    return " ".join(out).replace("' ", "'")


@dataclass
class NP:
    noun: Noun
    det: str
    plural: bool
    adj: Adj | None

    def en(self) -> str:
        det = DETS[self.det][0][self.plural]
        if self.det == "a" and not self.plural and _starts_vowel(self.adj.en if self.adj else self.noun.en):
            det = "an"
        words = [det] + ([self.adj.en] if self.adj else []) + [self.noun.en_pl if self.plural else self.noun.en]
        return " ".join(words)

    def fr_words(self) -> list[str]:
        f = self.noun.gender == "f"
        det = DETS[self.det][1][2 if self.plural else int(f)]
        noun = self.noun.fr_pl if self.plural else self.noun.fr
        adj = self.adj.fr[2 * self.plural + f] if self.adj else None
        words = [noun] if adj is None else [adj, noun] if self.adj.before else [noun, adj]
        if det == "ma" and _starts_vowel(words[0]):
            det = "mon"  # mon amie, mon école
        return [det] + words


@dataclass
class Plan:
    subject: NP | tuple  # an NP or one of PRONOUNS
    verb: Verb
    obj: NP | None
    tense: str
    kind: str
    place: tuple[str, NP] | None
    time: str | None  # None, "front" or "end"

    def person(self) -> int:
        if isinstance(self.subject, tuple):
            return self.subject[2]
        return 5 if self.subject.plural else 2

    def gender_plural(self) -> tuple[str, bool]:
        if isinstance(self.subject, tuple):
            return self.subject[3], self.subject[4]
        return self.subject.noun.gender, self.subject.plural

    def tags(self) -> set[tuple[str, str, str]]:
        """The combinations this sentence contains (what held-out sets are drawn from)."""
        nps = [self.subject if isinstance(self.subject, NP) else None, self.obj, self.place[1] if self.place else None]
        tags = {("adj+noun", np.adj.en, np.noun.en) for np in nps if np is not None and np.adj is not None}
        subj = self.subject[0] if isinstance(self.subject, tuple) else self.subject.noun.en
        tags.add(("subject+verb", subj, self.verb.en))
        tags.add(("verb+frame", self.verb.en, f"{self.kind}/{self.tense}"))
        return tags

    # -- English -------------------------------------------------------------------------------
    def english(self) -> str:
        p, v = self.person(), self.verb
        subj = self.subject[0] if isinstance(self.subject, tuple) else self.subject.en()
        third_sg = p == 2
        aux = {"present": "does" if third_sg else "do", "past": "did", "future": "will"}[self.tense]
        if self.kind == "statement":
            verb = {"present": v.en_3sg if third_sg else v.en, "past": v.en_past, "future": "will " + v.en}[self.tense]
            words = [subj, verb]
        elif self.kind == "negation":
            words = [subj, aux, "not", v.en]
        elif self.kind == "question":
            words = [aux, subj, v.en]
        else:  # wh: what (object) or where (intransitive)
            words = ["what" if v.objects else "where", aux, subj, v.en]
        if self.obj is not None and self.kind != "wh":
            words.append(self.obj.en())
        if self.place is not None and self.kind != "wh":
            words += [self.place[0], self.place[1].en()]
        text = " ".join(words)
        if self.time == "end":
            text += " " + TIMES[self.tense][0]
        elif self.time == "front":
            text = TIMES[self.tense][0] + ", " + text
        return _sentence(text, "?" if self.kind in ("question", "wh") else ".", space_before_mark=False)

    # -- French --------------------------------------------------------------------------------
    def _fr_verb(self, negate: bool) -> list[str]:
        """The conjugated verb group, with ne ... pas around the finite verb when ``negate``."""
        p, v = self.person(), self.verb
        if self.tense == "present":
            finite, rest = v.fr_present[p], []
        elif self.tense == "future":
            finite, rest = v.fr_future_stem + FUTURE[p], []
        else:
            g, pl = self.gender_plural()
            pp = v.fr_pp + ("e" if v.etre and g == "f" else "") + ("s" if v.etre and pl else "")
            finite, rest = (ETRE if v.etre else AVOIR)[p], [pp]
        return (["ne", finite, "pas"] if negate else [finite]) + rest

    def french(self) -> str:
        v = self.verb
        subj = [self.subject[1]] if isinstance(self.subject, tuple) else self.subject.fr_words()
        obj = self.obj.fr_words() if self.obj is not None else []
        place = PLACES[self.place[0]].split() + self.place[1].fr_words() if self.place is not None else []
        if self.kind in ("statement", "negation"):
            words = subj + self._fr_verb(self.kind == "negation") + obj + place
        elif self.kind == "question":
            words = ["est-ce", "que"] + subj + self._fr_verb(False) + obj + place
        else:
            wh = "que" if v.objects else "où"
            if isinstance(self.subject, tuple):  # pronoun: qu'est-ce que tu manges / où est-ce que tu dors
                words = ([wh, "est-ce", "que"] if wh == "que" else ["où", "est-ce", "que"]) + subj + self._fr_verb(False)
            else:  # noun subject: stylistic inversion, que mange le chat / où dort le chat
                words = [wh] + self._fr_verb(False) + subj
        text = _join(words)
        time = TIMES[self.tense][1]
        if self.time == "end":
            text += " " + time
        elif self.time == "front":
            text = time + ", " + text
        return _sentence(text, "?" if self.kind in ("question", "wh") else ".", space_before_mark=True)


def _sentence(text: str, mark: str, space_before_mark: bool) -> str:
    text = text[0].upper() + text[1:]
    return text + (" " if space_before_mark and mark == "?" else "") + mark


def random_np(rng: random.Random, kinds: tuple[str, ...]) -> NP:
    noun = rng.choice([n for n in NOUNS if n.kind in kinds])
    return NP(noun, rng.choice(list(DETS)), rng.random() < 0.35, rng.choice(ADJS) if rng.random() < 0.45 else None)


def random_plan(rng: random.Random) -> Plan:
    verb = rng.choice(VERBS)
    subject = rng.choice(PRONOUNS) if rng.random() < 0.3 else random_np(rng, ("animate",))
    kind = rng.choices(KINDS, weights=(4, 2, 2, 1))[0]
    obj = random_np(rng, verb.objects) if verb.objects else None
    place = None
    if kind != "wh" and rng.random() < 0.3:
        place = (rng.choice(list(PLACES)), random_np(rng, ("place",)))
    time = rng.choice([None, None, "front", "end"]) if kind != "wh" else None
    return Plan(subject, verb, obj, rng.choice(TENSES), kind, place, time)


# Frames whose English verb form occurs in no other frame (the past tense "left", the 3rd person "leaves"):
# holding one out would hide a word from training, not a combination, so they are never held out.
OWN_WORD_FRAMES = ("statement/past", "statement/present")


def all_tags() -> dict[str, list[tuple[str, str, str]]]:
    """Every combination that may be held out, by kind."""
    subjects = [p[0] for p in PRONOUNS] + [n.en for n in NOUNS if n.kind == "animate"]
    frames = [f"{k}/{t}" for k in KINDS for t in TENSES if f"{k}/{t}" not in OWN_WORD_FRAMES]
    return {
        "adj+noun": [("adj+noun", a.en, n.en) for a in ADJS for n in NOUNS],
        "subject+verb": [("subject+verb", s, v.en) for s in subjects for v in VERBS],
        "verb+frame": [("verb+frame", v.en, f) for v in VERBS for f in frames],
    }


def draw_held_out(seed: int, fraction: float) -> set[tuple[str, str, str]]:
    """A seeded ``fraction`` of every kind of combination, at most half the uses of any one word."""
    if not 0 < fraction <= 0.5:
        raise ValueError(f"held_out_fraction must be in (0, 0.5], got {fraction}")
    rng = random.Random(f"held-out-{seed}")
    held: set[tuple[str, str, str]] = set()
    for tags in all_tags().values():
        uses: dict[tuple[int, str], int] = {}
        for tag in tags:
            for pos in (1, 2):
                uses[pos, tag[pos]] = uses.get((pos, tag[pos]), 0) + 1
        taken: dict[tuple[int, str], int] = {}
        for tag in rng.sample(tags, len(tags)):
            if sum(t[0] == tag[0] for t in held) >= max(1, round(len(tags) * fraction)):
                break
            if all(2 * (taken.get((pos, tag[pos]), 0) + 1) <= uses[pos, tag[pos]] for pos in (1, 2)):
                held.add(tag)
                for pos in (1, 2):
                    taken[pos, tag[pos]] = taken.get((pos, tag[pos]), 0) + 1
    return held


def generate(n_train: int, n_val: int, n_test: int, seed: int = 0, held_out_fraction: float = 0.08
             ) -> tuple[dict[str, list[tuple[str, str]]], set[tuple[str, str, str]]]:
    """Splits of distinct sentence pairs: train and val avoid the held-out combinations, test uses them."""
    held = draw_held_out(seed, held_out_fraction)
    rng = random.Random(seed)
    seen: set[str] = set()
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    want = {"train": n_train, "val": n_val, "test": n_test}
    tries, limit = 0, 200 * (n_train + n_val + n_test) + 1000
    while any(len(splits[s]) < want[s] for s in splits):
        tries += 1
        if tries > limit:
            raise DataError(f"the grammar ran out of distinct sentences after {tries} draws "
                            f"({ {s: len(p) for s, p in splits.items()} }); ask for fewer")
        plan = random_plan(rng)
        en = plan.english()
        if en in seen:
            continue
        if plan.tags() & held:
            split = "test"
        else:
            split = "train" if len(splits["train"]) < n_train else "val"
        if len(splits[split]) >= want[split]:
            continue
        seen.add(en)
        splits[split].append((en, plan.french()))
    return splits, held


def write_corpus(out: Path, n_train: int, n_val: int, n_test: int, seed: int, held_out_fraction: float,
                 overwrite: bool) -> dict:
    """Write ``{train,val,test}.{en,fr}`` and ``corpus.json`` (the direction, counts and held-out combinations)."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise DataError(f"{out} is not empty and was not written by `yololab translate synth` "
                            f"(no {MARKER}); choose an empty or new folder")
        if not overwrite:
            raise DataError(f"{out} already holds a toy corpus; pass --overwrite to replace it")
    splits, held = generate(n_train, n_val, n_test, seed, held_out_fraction)
    for split, pairs in splits.items():
        write_text_atomic(out / f"{split}.en", "".join(s + "\n" for s, _ in pairs))
        write_text_atomic(out / f"{split}.fr", "".join(t + "\n" for _, t in pairs))
    meta = {"src_lang": "en", "tgt_lang": "fr", "seed": seed, "held_out_fraction": held_out_fraction,
            "counts": {s: len(p) for s, p in splits.items()},
            "held_out": sorted(" | ".join(t) for t in held)}
    write_text_atomic(out / MARKER, json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    return meta
