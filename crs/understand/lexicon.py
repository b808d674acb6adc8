"""Word lists the understanding rules use: cue words, genre synonyms, title aliases.

Kept apart from the rules in ``crs.understand.nlu`` so they can be read and extended on their own.
"""

from __future__ import annotations

MAX_TITLE_TOKENS = 10

# Words that are also film titles but almost never mean one in a request.
COMMON_WORDS = frozenset(
    """
    a about above after again against all alone also always am an and another any anything are around as at
    away back bad be because been before being best better between big both but by can come could day did do
    does doing done down during each even ever every everything few film films find for from fun funny get
    give go going good great had has have having he her here hers him his home how i if in into is it its
    just kind know last let life like little long look lot love made make many maybe me mine more most movie
    movies much must my myself need never new next nice night no none nor not nothing now of off old on once
    one only or other our out over own please pick recommend right same say see seen show similar so some
    something soon still such suggest sure take than thank thanks that the their them then there these they
    thing think this those though time to today too try two under until up us very want was watch watched
    way we well were what when where which while who whom why will with without would yes yet you your yours
    tonight weekend okay ok hi hello hey nope sorry tired bored free alone together family friends kids don
    fan fans t s ve ll re d m didn doesn isn wasn won aren couldn wouldn haven hasn hadn weren shouldn
    """.split()
)

# Surface forms -> genre names as the demo catalog spells them. Only forms whose genre
# exists in the catalog are used; every catalog genre also matches its own name.
GENRE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "sci fi": ("Science Fiction",),
    "scifi": ("Science Fiction",),
    "sf": ("Science Fiction",),
    "science fiction": ("Science Fiction",),
    "romantic": ("Romance",),
    "romances": ("Romance",),
    "love story": ("Romance",),
    "love stories": ("Romance",),
    "rom com": ("Romance", "Comedy"),
    "romcom": ("Romance", "Comedy"),
    "romantic comedy": ("Romance", "Comedy"),
    "romantic comedies": ("Romance", "Comedy"),
    "scary": ("Horror",),
    "horrors": ("Horror",),
    "funny": ("Comedy",),
    "comedies": ("Comedy",),
    "comedic": ("Comedy",),
    "animation": ("Animated",),
    "animated": ("Animated",),
    "cartoon": ("Animated",),
    "cartoons": ("Animated",),
    "anime": ("Animated",),
    "documentaries": ("Documentary",),
    "docs": ("Documentary",),
    "biopic": ("Biography",),
    "biopics": ("Biography",),
    "biographical": ("Biography",),
    "superheroes": ("Superhero",),
    "super hero": ("Superhero",),
    "kids": ("Family",),
    "children": ("Family",),
    "dramas": ("Drama",),
    "dramatic": ("Drama",),
    "film noir": ("Noir",),
    "mysteries": ("Mystery",),
    "whodunit": ("Mystery",),
    "thrillers": ("Thriller",),
    "westerns": ("Western",),
    "cowboy": ("Western",),
    "musicals": ("Musical",),
    "war movies": ("War",),
    "war films": ("War",),
    "kung fu": ("Martial Arts",),
    "crime": ("Crime",),
    "gangster": ("Crime",),
    "heist": ("Crime",),
    "spies": ("Spy",),
    "espionage": ("Spy",),
    "slashers": ("Slasher",),
    "adventures": ("Adventure",),
    "sports": ("Sports",),
    "sport": ("Sports",),
    "historical": ("Historical",),
    "period": ("Historical",),
    "fantasies": ("Fantasy",),
    "supernatural": ("Supernatural",),
    "teen": ("Teen",),
    "disaster": ("Disaster",),
    "courtroom": ("Legal",),
    "erotic": ("Erotic",),
    "political": ("Political",),
    "satire": ("Satire",),
}

NEGATORS = frozenset(
    """
    no not never nothing none without neither nor dont don t didn doesn isn wasn aren won cant cannot hate
    hated hates dislike disliked dislikes avoid skip except exclude excluding haven hasn hadn weren least
    minus sans
    """.split()
)
POSITIVE = frozenset(
    """
    like liked likes love loved loves enjoy enjoyed enjoys adore adored want wanted prefer preferred fan
    into favorite favourite favourites favorites recommend more similar dig mood lots plenty care interested
    """.split()
)
NEVER_FLIPPED = frozenset("more lots plenty similar".split())
# Verbs that report experience, not taste: "I haven't seen X" is neither a like nor a dislike.
EXPERIENCE = frozenset(
    "see seen saw watch watched watching heard hear tried read know knew realize remember sure".split()
)
# Negated, these mean eagerness: "can't wait for X", "can't get enough of X".
NEGATED_POSITIVE = frozenset("wait enough".split())
# "anything but X", "everything but X": 'but' is a negator here, not a clause break.
BUT_NEGATING = frozenset("anything everything all nothing".split())
# Two words that rule out what follows: "spare me X", "steer clear of X", "sick of X", "enough with X".
NEGATING_PAIRS = frozenset(
    tuple(p.split())
    for p in "spare me|steer clear|stay away|keep away|away from|sick of|tired of|done with|fed up|enough with|"
    "rather not|pass on|over with|bored of|bored with".split("|")
)
CLAUSE_BREAK = frozenset("but however although though whereas yet".split())
# Evaluations after a mention or of "it": "Alien was boring", "horror is not for me".
POST_NEGATIVE = frozenset(
    """
    boring awful terrible bad worst sucked sucks overrated hated disliked meh dull stupid annoying horrible
    disappointing disappointed disappointment letdown cheesy corny gross lame silly slow depressing confusing
    hate hates dislike dislikes garbage trash trashy cringe cringey cringy cringeworthy snooze snoozefest yawn
    mediocre forgettable pointless unwatchable rubbish bland tedious predictable asleep sleep
    """.split()
)
POST_POSITIVE = frozenset(
    """
    great amazing awesome loved fantastic brilliant excellent favorite favourite favorites favourites good best
    funny hilarious cute classic enjoyed love loves enjoy adore adored fan interested fun cool enjoyable
    entertaining delightful decent solid
    """.split()
)
POST_NEGATIVE_PHRASES = tuple(
    "not for me|no thanks|isn t for me|isn t my|wasn t for me|wasn t my|aren t for me|aren t my|weren t for me|"
    "weren t my|not my|not really my|not one of my|not so much|not that much|not for you|isn t for you|"
    "aren t for you|"
    "a bit much|turns me off|turned me off|let down|not as good|wasn t as good|isn t as good".split("|")
)
# Taking up a suggestion: "I'll check it out", "want to see it".
ACCEPTING = ("check it out", "check that out", "check them out", "want to", "will watch", "ll watch", "my list")
# A sentence that opens like this and names nothing judges the film just named ("Great movie!").
ELLIPTIC = POST_POSITIVE | POST_NEGATIVE | frozenset("but not so really very pretty such what too".split())
# "too" + a word is a complaint ("too slow", "a little too young") unless the word is praise.
NOT_AFTER_TOO = frozenset("i and but so lol haha the a as though me it that is was much many".split())
ANAPHORS = frozenset("it that this them those".split())
AFTER_ANAPHOR = frozenset(
    "was is s wasn isn one movie film too either at all much a so very though lol haha and but".split()
)
# A sentence opening like this asks; a title in it without a taste cue is no preference.
QUESTION_WORDS = frozenset("what whats which who how is was are were".split())
QUESTION_AUX = frozenset("have has did do does".split())
YOU = frozenset("you u ya anyone".split())
ANSWER_NEXT = frozenset("i i m im ive is it that thanks thank sorry but we not haven".split())
# Before these, "like" is the verb ("I like", "don't like"); elsewhere it introduces examples.
SUBJECTS = frozenset("i we you they he she d ll would really also t do did just still".split())
SEEN_CUES = tuple(
    "already seen|already watched|have seen|ve seen|seen it|seen that|watched it|"
    "saw it|already saw|i saw|i watched|seen already|we saw|we watched".split("|")
)

# Spellings people use for titles the catalog writes otherwise.
TITLE_ALIASES = {
    "se7en": "seven",
    "t2": "terminator 2 judgment day",
    "lotr": "lord of the rings fellowship of the ring",
}

# Themes people ask for that are no catalog genre: canonical name -> (what people say, word stems
# that show the theme in an item's summary). Multi-word forms only where one word is also an
# evaluation ("slow" in "Alien was slow" judges the film; "slow burn" asks for a pace).
THEMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "time travel": (
        ("time travel", "time traveling", "time travelling", "time traveler", "time machine", "time machines",
         "time loop", "time loops"),
        ("time travel", "time machine", "time loop", "back in time", "travels back", "sent back in", "time-travel"),
    ),
    "space": (
        ("space", "outer space", "space travel", "spaceships", "spaceship", "astronauts", "astronaut"),
        ("space", "astronaut", "spaceship", "spacecraft", "galaxy", "planet"),
    ),
    "aliens": (
        ("aliens", "alien invasion", "extraterrestrials", "extraterrestrial", "ufos", "ufo"),
        ("alien", "extraterrestrial", "ufo"),
    ),
    "zombies": (("zombie", "zombies", "undead"), ("zombie", "undead")),
    "vampires": (("vampire", "vampires"), ("vampire", "dracula")),
    "robots": (
        ("robot", "robots", "androids", "android", "artificial intelligence", "cyborgs", "cyborg"),
        ("robot", "android", "cyborg", "artificial intelligence"),
    ),
    "dinosaurs": (("dinosaur", "dinosaurs"), ("dinosaur",)),
    "high school": (("high school", "highschool"), ("high school", "prom ")),
    "road trip": (("road trip", "road trips", "road movie", "road movies"), ("road trip", "cross-country", "across the country")),
    "true story": (
        ("true story", "true stories", "based on a true story", "real events", "true events"),
        ("true story", "real-life", "true events", "real events", "based on the life"),
    ),
    "dogs": (("dog", "dogs", "puppy", "puppies"), ("dog", "puppy", "puppies")),
    "christmas": (("christmas", "xmas", "holiday season"), ("christmas", "santa")),
    "revenge": (("revenge", "vengeance", "payback"), ("revenge", "avenge", "vengeance")),
    "magic": (("magic", "wizards", "wizard", "witches", "witch", "sorcery"), ("magic", "wizard", "witch", "sorcer")),
    "serial killers": (("serial killer", "serial killers"), ("serial killer",)),
    "world war ii": (
        ("world war ii", "world war 2", "world war two", "second world war", "wwii", "ww2", "nazis"),
        ("world war ii", "second world war", "nazi"),
    ),
    "apocalypse": (
        ("apocalypse", "apocalyptic", "post apocalyptic", "end of the world", "doomsday"),
        ("apocalyp", "end of the world", "nuclear war", "doomsday"),
    ),
    "sharks": (("shark", "sharks"), ("shark",)),
    "monsters": (("monster", "monsters", "creature feature", "creature features"), ("monster", "creature")),
    "twist": (("twist", "twists", "plot twist", "twist ending", "plot twists"), ("twist", "turns out", "revealed to be")),
    "slow": (("slow burn", "slow paced", "slow moving", "slow burning"), ("slow", "meditative", "contemplative", "quiet")),
    "violent": (
        ("violence", "violent", "gore", "gory", "bloody", "bloodshed", "brutal"),
        ("violen", "gore", "gory", "brutal", "bloody", "slasher", "massacre", "murder", "kill"),
    ),
    "dark": (("dark", "bleak", "grim", "depressing movies", "depressing films"), ("dark", "bleak", "grim", "tragic", "disturbing", "horror", "death")),
}  # fmt: skip

# How strongly a cue word says it: "love", "hate", "favorite" weigh more than "like", and
# "kind of", "a bit", "don't mind" less. The strength scales soft preferences; every dislike
# still excludes.
STRONG_CUES = frozenset(
    "love loved loves adore adored favorite favourite favorites favourites hate hated hates obsessed "
    "absolutely really totally huge big passionate stand".split()
)
MILD_CUES = (
    "kind of", "kinda", "sort of", "a bit", "a little", "somewhat", "don t mind", "do not mind", "okay with",
    "ok with", "fine with", "not a big fan", "not a huge fan", "not really into", "maybe",
)  # fmt: skip

# When and with whom a film is watched, not what it is: "something for friday night", "date night
# with my wife". They steer neither the policy (no taste said) nor the retrieval query.
OCCASION_WORDS = frozenset(
    """
    monday tuesday wednesday thursday friday saturday sunday mon tue wed thu fri sat sun night nights
    tonight evening evenings morning afternoon weekend weekends today tomorrow later date week weeks day
    days wife husband girlfriend boyfriend partner mom mum dad parents roommate roommates buddy buddies
    work home couch sofa popcorn rainy lazy long plane flight trip sleepover party birthday anniversary
    """.split()
)

# Words that carry no taste on their own: "recommend me a good movie please", "something for friday night".
FILLER_WORDS = (
    COMMON_WORDS
    | NEGATORS
    | POSITIVE
    | OCCASION_WORDS
    | frozenset(
        "im id ive recommend recommendation recommendations suggestion suggestions watch something anything good "
        "newer older recent different else another one ones ideas idea help pick choose should bored tonight "
        "suggest give tell idk dunno lol haha hmm hmmm umm pls plz thx yo sup whats what wanna gonna kinda "
        "cool awesome nice great options option".split()
    )
)
