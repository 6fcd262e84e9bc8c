"""Word lists the synthetic catalog is drawn from.

The genre vocabulary covers every umbrella and subgenre the owner's brief names (its
"Sourcing Strategy"), spelled the way Spotify spells micro-genres: some carry hyphens or "&"
("k-pop", "r&b", "drum & bass") so the crawler's normalisation (lowercase, hyphen to space,
"&" to "and") is exercised. The umbrella names here are the simulator's ground truth only;
the crawler has its own umbrella rules in ``seeds/`` and never reads this module.
"""

from __future__ import annotations

# umbrella -> Spotify-style micro-genres; the first entry is the umbrella's plain name.
UMBRELLA_GENRES: dict[str, tuple[str, ...]] = {
    "Pop": ("pop", "dance pop", "electropop", "hyperpop", "synthpop", "teen pop", "art pop"),
    "Rock": ("rock", "classic rock", "alternative rock", "album rock", "soft rock", "glam rock"),
    "Indie & Alternative": ("indie", "indie rock", "indie pop", "modern alternative rock",
                            "garage rock revival", "shoegaze"),
    "Hip-Hop & Rap": ("hip hop", "hip-hop", "rap", "trap", "boom bap", "grime", "drill",
                      "southern hip hop", "gangsta rap"),
    "R&B & Soul": ("r&b", "contemporary r&b", "soul", "neo soul", "motown", "new jack swing"),
    "Electronic & EDM": ("edm", "electronic", "big room", "electro house", "dubstep", "trance",
                         "progressive house", "brostep"),
    "House": ("house", "deep house", "tech house", "chicago house", "acid house"),
    "Techno": ("techno", "detroit techno", "minimal techno", "hard techno", "industrial techno"),
    "Drum & Bass": ("drum and bass", "drum & bass", "liquid funk", "jungle", "neurofunk"),
    "Latin": ("latin", "latin pop", "urbano latino", "salsa", "bachata", "cumbia", "latin trap"),
    "Reggaeton": ("reggaeton", "dembow", "reggaeton flow", "perreo"),
    "Metal & Hard Rock": ("metal", "metalcore", "hard rock", "thrash metal", "heavy metal",
                          "nu metal", "power metal"),
    "Punk & Emo": ("punk", "punk rock", "pop punk", "emo", "hardcore punk", "skate punk"),
    "Country & Americana": ("country", "outlaw country", "alt country", "americana",
                            "country rock", "contemporary country", "bluegrass", "red dirt"),
    "Afrobeats & Amapiano": ("afrobeats", "afrobeat", "amapiano", "afropop", "azonto"),
    "K-pop & J-pop": ("k-pop", "j-pop", "k-pop boy group", "k-pop girl group", "j-rock",
                      "city pop"),
    "Bollywood & Desi": ("bollywood", "bhangra", "desi pop", "filmi", "punjabi pop"),
    "Funk & Disco": ("funk", "disco", "nu disco", "boogie", "p funk", "post-disco"),
}

# Umbrellas whose artists sometimes carry a genre of the other (cross-over artists).
NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "Pop": ("Electronic & EDM", "R&B & Soul", "K-pop & J-pop"),
    "Rock": ("Indie & Alternative", "Metal & Hard Rock", "Punk & Emo"),
    "Indie & Alternative": ("Rock", "Pop"),
    "Hip-Hop & Rap": ("R&B & Soul", "Reggaeton"),
    "R&B & Soul": ("Hip-Hop & Rap", "Funk & Disco", "Pop"),
    "Electronic & EDM": ("House", "Techno", "Drum & Bass", "Pop"),
    "House": ("Electronic & EDM", "Techno", "Funk & Disco"),
    "Techno": ("House", "Electronic & EDM"),
    "Drum & Bass": ("Electronic & EDM",),
    "Latin": ("Reggaeton", "Pop"),
    "Reggaeton": ("Latin", "Hip-Hop & Rap"),
    "Metal & Hard Rock": ("Rock", "Punk & Emo"),
    "Punk & Emo": ("Rock", "Metal & Hard Rock"),
    "Country & Americana": ("Rock",),
    "Afrobeats & Amapiano": ("Hip-Hop & Rap", "House"),
    "K-pop & J-pop": ("Pop",),
    "Bollywood & Desi": ("Pop",),
    "Funk & Disco": ("R&B & Soul", "House"),
}

# Relative share of artists per umbrella, and the decades each umbrella is active in
# (real catalogues have no 1970s amapiano; the crawler must report such cells as unfillable).
UMBRELLA_WEIGHT: dict[str, float] = {
    "Pop": 1.6, "Rock": 1.5, "Indie & Alternative": 1.0, "Hip-Hop & Rap": 1.3,
    "R&B & Soul": 1.0, "Electronic & EDM": 1.0, "House": 0.7, "Techno": 0.5,
    "Drum & Bass": 0.4, "Latin": 0.9, "Reggaeton": 0.5, "Metal & Hard Rock": 0.8,
    "Punk & Emo": 0.6, "Country & Americana": 1.0, "Afrobeats & Amapiano": 0.4,
    "K-pop & J-pop": 0.5, "Bollywood & Desi": 0.5, "Funk & Disco": 0.6,
}
UMBRELLA_FIRST_YEAR: dict[str, int] = {
    "House": 1984, "Techno": 1986, "Drum & Bass": 1992, "Electronic & EDM": 1978,
    "Hip-Hop & Rap": 1979, "Reggaeton": 1995, "Afrobeats & Amapiano": 1970,
    "K-pop & J-pop": 1975, "Punk & Emo": 1975, "Indie & Alternative": 1978,
}

TITLE_WORDS = (
    "Run", "Fire", "Night", "Heart", "Highway", "Gold", "Light", "Rush", "Pulse", "Rebel",
    "Thunder", "Dance", "Forever", "Wild", "Summer", "Electric", "Velocity", "Stride",
    "Motion", "Rise", "Burn", "Dream", "Shadow", "Echo", "River", "Sky", "Storm", "Neon",
    "Sunset", "Midnight", "Freedom", "Runaway", "Tempo", "Breathe", "Chase", "Sprint",
    "Blaze", "Rhythm", "Drive", "Orbit", "Lightning", "Roses", "Paradise", "Gravity",
    "Horizon", "Kingdom", "Satellite", "Diamond", "Wildfire", "Sugar", "Rain", "Mountain",
    "City", "Street", "Ocean", "Magic", "Fever", "Flame", "Crown", "Glory", "Desire",
    "Revolution", "Signal", "Voltage", "Cadence", "Marathon", "Steel", "Velvet", "Comet",
)
TITLE_PATTERNS = (
    "{a}", "{a} {b}", "The {a}", "{a} of {b}", "{a} & {b}", "Don't Stop the {a}",
    "{a} Tonight", "Into the {a}", "{a} Again", "My {a}", "{a} Runner", "Born to {a}",
)
NAME_FIRST = (
    "Luna", "Max", "Rosa", "Kai", "Nina", "Leo", "Ava", "Omar", "Mia", "Jonas", "Zara",
    "Diego", "Yuki", "Ana", "Tariq", "Ingrid", "Malik", "Sofia", "Hiro", "Chloe", "Ravi",
    "Elena", "Kofi", "Lena", "Mateo", "Priya", "Sven", "Amara", "Jin", "Carla",
)
NAME_LAST = (
    "Stone", "Rivers", "Vega", "Nakamura", "Okafor", "Lindqvist", "Santos", "Kim", "Patel",
    "Moreau", "Walker", "Hayes", "Castillo", "Mensah", "Novak", "Reyes", "Fischer", "Byrne",
)
BAND_WORDS = (
    "Wolves", "Machines", "Tigers", "Pilots", "Echoes", "Saints", "Kings", "Ghosts",
    "Lions", "Rockets", "Strangers", "Drivers", "Cowboys", "Dreamers", "Signals", "Twins",
)
# Playlist owners other than the account owner; "spotify" owns editorial lists.
PUBLIC_OWNERS = ("runnerdave", "tempo_tess", "gymrat99", "djkofi", "marathonmaria",
                 "cadence_lab", "nightrunner", "trailqueen")
PLAYLIST_THEMES = ("Running", "Workout", "Cardio", "HIIT", "Power Run", "Tempo Run",
                   "Gym", "Pump Up", "Hits", "Throwbacks", "Interval Training", "Bangers")
EDITORIAL_NAMES = (
    "Workout", "Power Run", "Run Mix", "Cardio", "Beast Mode", "Motivation Mix",
    "Top 50 USA", "Viral 50 USA", "Top 50 Global", "New Music Friday", "Dance Rising",
    "Rock This", "RapCaviar", "Viva Latino", "Today's Top Hits", "Pop Rising", "mint",
    "Fresh Finds", "All Out 70s", "All Out 80s", "All Out 90s", "All Out 2000s",
)
MARKETS = ("US", "CA", "GB", "AU", "DE", "FR", "ES", "MX", "BR", "JP", "KR", "IN", "NG",
           "SE", "NL", "IT")

# Wikidata's English label of the genre item (P136) an artist with each Spotify-style genre
# carries there. Wikidata's genres are broader than Spotify's micro-genres: where an editor
# would file the artist under the parent genre ("brostep" under dubstep, "perreo" under
# reggaeton, "motown" under soul music), the parent's label is used. Every label names genres
# of one umbrella only, so mapping a label back never crosses umbrellas.
WIKIDATA_LABEL: dict[str, str] = {
    # Pop
    "pop": "pop music", "dance pop": "dance-pop", "electropop": "electropop",
    "hyperpop": "hyperpop", "synthpop": "synth-pop", "teen pop": "teen pop",
    "art pop": "art pop",
    # Rock
    "rock": "rock music", "classic rock": "rock music", "alternative rock": "alternative rock",
    "album rock": "rock music", "soft rock": "soft rock", "glam rock": "glam rock",
    # Indie & Alternative
    "indie": "indie rock", "indie rock": "indie rock", "indie pop": "indie pop",
    "modern alternative rock": "indie rock", "garage rock revival": "garage rock revival",
    "shoegaze": "shoegaze",
    # Hip-Hop & Rap
    "hip hop": "hip hop music", "hip-hop": "hip hop music", "rap": "hip hop music",
    "trap": "trap music", "boom bap": "boom bap", "grime": "grime", "drill": "drill music",
    "southern hip hop": "Southern hip hop", "gangsta rap": "gangsta rap",
    # R&B & Soul
    "r&b": "contemporary R&B", "contemporary r&b": "contemporary R&B", "soul": "soul music",
    "neo soul": "neo soul", "motown": "soul music", "new jack swing": "new jack swing",
    # Electronic & EDM
    "edm": "electronic dance music", "electronic": "electronic music",
    "big room": "electronic dance music", "electro house": "electro house",
    "dubstep": "dubstep", "trance": "trance music", "progressive house": "progressive house",
    "brostep": "dubstep",
    # House
    "house": "house music", "deep house": "deep house", "tech house": "tech house",
    "chicago house": "house music", "acid house": "acid house",
    # Techno
    "techno": "techno", "detroit techno": "Detroit techno", "minimal techno": "minimal techno",
    "hard techno": "techno", "industrial techno": "techno",
    # Drum & Bass
    "drum and bass": "drum and bass", "drum & bass": "drum and bass",
    "liquid funk": "liquid funk", "jungle": "jungle music", "neurofunk": "drum and bass",
    # Latin
    "latin": "Latin music", "latin pop": "Latin pop", "urbano latino": "Latin music",
    "salsa": "salsa music", "bachata": "bachata", "cumbia": "cumbia",
    "latin trap": "Latin trap",
    # Reggaeton
    "reggaeton": "reggaeton", "dembow": "dembow", "reggaeton flow": "reggaeton",
    "perreo": "reggaeton",
    # Metal & Hard Rock
    "metal": "heavy metal", "metalcore": "metalcore", "hard rock": "hard rock",
    "thrash metal": "thrash metal", "heavy metal": "heavy metal", "nu metal": "nu metal",
    "power metal": "power metal",
    # Punk & Emo
    "punk": "punk rock", "punk rock": "punk rock", "pop punk": "pop-punk", "emo": "emo",
    "hardcore punk": "hardcore punk", "skate punk": "skate punk",
    # Country & Americana
    "country": "country music", "outlaw country": "outlaw country",
    "alt country": "alternative country", "americana": "Americana",
    "country rock": "country rock", "contemporary country": "country music",
    "bluegrass": "bluegrass music", "red dirt": "country music",
    # Afrobeats & Amapiano
    "afrobeats": "Afrobeats", "afrobeat": "Afrobeat", "amapiano": "amapiano",
    "afropop": "Afropop", "azonto": "azonto",
    # K-pop & J-pop
    "k-pop": "K-pop", "j-pop": "J-pop", "k-pop boy group": "K-pop",
    "k-pop girl group": "K-pop", "j-rock": "Japanese rock", "city pop": "city pop",
    # Bollywood & Desi
    "bollywood": "filmi", "bhangra": "bhangra", "desi pop": "Indian pop", "filmi": "filmi",
    "punjabi pop": "Indian pop",
    # Funk & Disco
    "funk": "funk", "disco": "disco", "nu disco": "nu-disco", "boogie": "boogie",
    "p funk": "P-Funk", "post-disco": "post-disco",
}
# Every label the simulator's Wikidata can answer, sorted: a crawler's label-to-umbrella
# mapping can be tested for covering all of them.
WIKIDATA_LABELS: tuple[str, ...] = tuple(sorted(set(WIKIDATA_LABEL.values()), key=str.lower))
# label -> the Spotify-style genres it stands for, in vocabulary order.
WIKIDATA_LABEL_GENRES: dict[str, tuple[str, ...]] = {
    label: tuple(g for pool in UMBRELLA_GENRES.values() for g in pool
                 if WIKIDATA_LABEL[g] == label)
    for label in WIKIDATA_LABELS}
# label -> the one umbrella its genres belong to (ground truth for tests).
WIKIDATA_LABEL_UMBRELLA: dict[str, str] = {
    label: next(u for u, pool in UMBRELLA_GENRES.items() if genres[0] in pool)
    for label, genres in WIKIDATA_LABEL_GENRES.items()}
