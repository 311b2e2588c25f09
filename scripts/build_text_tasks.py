#!/usr/bin/env python3
"""Build the text side of the six tasks as JSON files under src/taskvec/tasks/data/.

The country tasks are derived from the npm package ``countries-list`` (MIT): country names,
capitals, ISO 4217 currency codes and English currency names. The animal and food tasks are
tables curated by hand in this file; every item is an emoji that is checked against the npm
package ``emoji-datasource`` (MIT), which also supplies the ``entity`` key of its picture.

Run without network, after fetching the two packages once, e.g.::

    npm install --prefix /tmp/pkgs countries-list@3 emoji-datasource@16
    python scripts/build_text_tasks.py /tmp/pkgs/node_modules

``packages_dir`` is a folder holding ``countries-list/`` and ``emoji-datasource/`` (a
``node_modules`` folder, or a folder where each ``npm pack`` tarball was unpacked into a folder
of that name). ``--countries-list`` / ``--emoji-datasource`` point at each package directly.
The output is deterministic: the same package versions give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "src" / "taskvec" / "tasks" / "data"
SEED = 20241029  # fixed seed for every split shuffle


def _codes(text: str) -> list[str]:
    """Whitespace-separated ISO codes."""
    return text.split()


# --------------------------------------------------------------------------------------------
# Instructions (Table 1 of the paper)
# --------------------------------------------------------------------------------------------
INSTRUCTIONS = {
    "country_capital": "The capital city of the country:",
    "country_currency": "The last word of the official currency of the country:",
    "animal_latin": "The scientific name of the animal's species in latin:",
    "animal_young": "The term for the baby of the animal:",
    "food_color": "The color of the food:",
    "food_flavor": "The flavor descriptor of the food:",
}

# --------------------------------------------------------------------------------------------
# Countries
# --------------------------------------------------------------------------------------------
# Sovereign UN member states in a fixed, hand-curated order that roughly follows population
# (largest first). This is the "well-known" ranking: the country tasks use the first
# N_VAL + N_TEST eligible countries of this list.
WELL_KNOWN_ORDER = _codes(
    """
IN CN US ID PK NG BR BD RU ET MX JP EG PH CD VN IR TR DE TH TZ GB FR ZA IT KE MM CO KR SD
UG ES DZ IQ AR AF YE CA AO UA MA PL UZ MY MZ GH PE SA MG CI NP CM VE NE AU KP SY ML BF LK
MW ZM TD KZ CL RO SO SN GT NL EC KH ZW GN BJ RW BI BO TN SS HT BE JO DO CU AE HN SE CZ TJ
PG AZ GR PT TG IL HU AT BY CH SL LA TM LY KG PY NI BG RS SV CG DK SG LB FI NO LR CF SK OM
IE NZ CR MR KW PA HR GE ER MN UY BA QA NA MD AM JM LT GM AL GA BW LS GW SI GQ MK LV TT BH
TL EE MU CY SZ DJ FJ KM GY BT SB LU ME SR CV MT BN MV BZ BS IS VU BB ST WS LC KI GD VC SC
TO AG FM AD DM MH KN LI MC SM PW NR TV
"""
)

# Left out of both country tasks, with the reason.
EXCLUDED_COUNTRIES = {
    "SY": "national flag changed in 2025; emoji image sets disagree on which flag they draw",
    "ZW": "currency (ZiG, 'Zimbabwe Gold') has no 'last word' unit answer; many currencies in use",
}

# Groups of (near-)identical or mirrored flags. Only the FIRST code of a group (the better
# known country) may be used; the others are dropped from both country tasks, so no split
# can hold two flags of one group. Besides the pairs known by design, the rendered suite
# images were compared pixel-wise (tests/tasks/test_flag_similarity.py): two flags count as
# near-identical when, in some style, under 1 % of pixels (112 px) differ by more than 64 in
# a channel. That found Hungary/Netherlands (0.1 % in noto and twemoji: only the bottom
# band's hue differs, dark green vs dark blue), so Hungary joined the Netherlands group.
NEAR_IDENTICAL_FLAGS: list[list[str]] = [
    ["ID", "MC", "PL"],  # red/white bicolour (Poland is the same flag upside down)
    ["RO", "TD", "AD", "MD"],  # blue/yellow/red vertical tricolour
    ["NL", "LU", "PY", "HU"],  # red/white/blue horizontal tricolour; Hungary: red/white/green
    ["AU", "NZ"],  # blue ensign with Union Jack and Southern Cross
    ["NO", "IS"],  # Nordic cross, colours swapped
    ["IT", "IE", "CI"],  # green/white/red and green/white/orange, Côte d'Ivoire mirrored
    ["SN", "ML", "GN"],  # green/yellow/red vertical tricolour (Guinea mirrored)
    ["RU", "SK", "SI", "RS"],  # white/blue/red horizontal (Serbia reversed)
    ["EG", "IQ", "YE"],  # red/white/black horizontal
    ["SD", "JO"],  # pan-Arab horizontal tricolour with hoist triangle
    ["CO", "EC"],  # yellow/blue/red, double yellow band
    ["AR", "HN", "NI", "SV"],  # blue/white/blue horizontal with central emblem
    ["TR", "TN"],  # red field, white crescent and star
    ["BH", "QA"],  # white serrated band on red/maroon
    ["HT", "LI"],  # blue over red bicolour with emblem
    ["US", "LR"],  # stripes with a blue canton
    ["IN", "NE"],  # saffron/white/green with a central disc
    ["AT", "LV"],  # red/white/red horizontal
    ["GH", "BO"],  # red/yellow/green horizontal
    ["MM", "LT"],  # yellow/green/red horizontal
]

N_VAL_COUNTRIES = 30
N_TEST_COUNTRIES = 100

# Common English name where it differs from the package's name.
COUNTRY_NAME_OVERRIDES = {
    "TR": "Turkey",
    "CZ": "Czech Republic",
    "CV": "Cape Verde",
    "TL": "East Timor",
}

# Capital label overrides: (label, aliases). The package's capital becomes an alias if it differs.
CAPITAL_OVERRIDES = {
    "US": ("Washington", ["Washington, D.C.", "Washington D.C.", "Washington DC"]),
    "MN": ("Ulaanbaatar", ["Ulan Bator"]),
    "SZ": ("Mbabane", ["Lobamba"]),  # executive capital; Lobamba is the royal/legislative one
}

# Extra accepted answers: other official capitals, seats of government, former names.
CAPITAL_ALIASES = {
    "UA": ["Kiev"],
    "KZ": ["Nur-Sultan"],
    "BO": ["La Paz"],
    "ZA": ["Cape Town", "Bloemfontein"],
    "CI": ["Abidjan"],
    "BJ": ["Cotonou"],
    "LK": ["Sri Jayawardenepura Kotte", "Kotte"],
    "MY": ["Putrajaya"],
    "TZ": ["Dar es Salaam"],
    "BI": ["Bujumbura"],
    "MM": ["Nay Pyi Taw", "Naypyitaw"],
    "IN": ["Delhi"],
    "CH": ["Berne"],
    "YE": ["Sanaa"],
    "NL": ["The Hague"],  # seat of government; Amsterdam is the constitutional capital
    "GQ": ["Ciudad de la Paz"],  # the capital being built to replace Malabo
    # Other spellings a model writes (hyphens and spaces between letters are alike to the
    # whole-label and exact metrics, so Port-of-Spain and Nur Sultan need no alias)
    "VN": ["Ha Noi"],
    "TM": ["Ashkhabad"],
    # No alias may equal the country name itself: echoing the query must never score.
}

# Currency: label = last word of the English name of the country's FIRST listed currency,
# lowercased. These override that rule where the last word is not the unit.
CURRENCY_LABEL_OVERRIDES: dict[str, str] = {}

# Accepted alternatives, keyed by label (applied to every country with that label): other
# names, then plurals (the whole-label metric refuses "dollars" for "dollar": a letter goes on).
CURRENCY_ALIASES = {
    "pound": ["sterling", "pounds"],
    "yuan": ["renminbi"],
    "ruble": ["rouble", "rubles", "roubles"],
    "zloty": ["złoty"],
    "krone": ["crown"],
    "krona": ["crown"],
    "koruna": ["crown"],
    "króna": ["crown"],
    "shekel": ["sheqel"],
    "riyal": ["rial", "riyals"],
    "rial": ["riyal", "rials"],
    "hryvnia": ["hryvna"],
    "tugrik": ["tögrög", "tugrug"],
    "guarani": ["guaraní"],
    "lek": ["lekë"],
    "dollar": ["dollars"],
    "euro": ["euros"],
    "franc": ["francs"],
    "peso": ["pesos"],
    "rupee": ["rupees"],
    "shilling": ["shillings"],
    "dinar": ["dinars"],
    "dirham": ["dirhams"],
    "real": ["reais"],
    "sol": ["soles"],
    "loti": ["maloti"],
    "mark": ["marka", "marks"],
}
# Country-specific extra answers (second currency in legal use).
CURRENCY_COUNTRY_ALIASES = {
    "PA": ["dollar"],
    "BT": ["rupee"],
    "LS": ["rand"],
    "NA": ["rand"],
    "HT": ["dollar"],
    "UZ": ["so'm", "sum"],
}

# --------------------------------------------------------------------------------------------
# Animals and foods (hand-curated; each key is an emoji code point sequence, see entity())
# --------------------------------------------------------------------------------------------
# (id, emoji unified, input) ; labels live in the per-task tables below.
ANIMALS = [
    ("dog", "1F415", "dog"),
    ("poodle", "1F429", "poodle"),
    ("cat", "1F408", "cat"),
    ("lion", "1F981", "lion"),
    ("tiger", "1F405", "tiger"),
    ("leopard", "1F406", "leopard"),
    ("horse", "1F40E", "horse"),
    ("zebra", "1F993", "zebra"),
    ("donkey", "1FACF", "donkey"),
    ("cow", "1F404", "cow"),
    ("ox", "1F402", "ox"),
    ("water_buffalo", "1F403", "water buffalo"),
    ("bison", "1F9AC", "bison"),
    ("sheep", "1F411", "sheep"),
    ("ram", "1F40F", "ram"),
    ("goat", "1F410", "goat"),
    ("pig", "1F416", "pig"),
    ("boar", "1F417", "boar"),
    ("koala", "1F428", "koala"),
    ("kangaroo", "1F998", "kangaroo"),
    ("camel", "1F42A", "camel"),
    ("bactrian_camel", "1F42B", "bactrian camel"),
    ("mouse", "1F401", "mouse"),
    ("rat", "1F400", "rat"),
    ("rabbit", "1F407", "rabbit"),
    ("wolf", "1F43A", "wolf"),
    ("fox", "1F98A", "fox"),
    ("bear", "1F43B", "bear"),
    ("polar_bear", "1F43B-200D-2744-FE0F", "polar bear"),
    ("panda", "1F43C", "panda"),
    ("chipmunk", "1F43F-FE0F", "chipmunk"),
    ("gorilla", "1F98D", "gorilla"),
    ("orangutan", "1F9A7", "orangutan"),
    ("giraffe", "1F992", "giraffe"),
    ("hedgehog", "1F994", "hedgehog"),
    ("llama", "1F999", "llama"),
    ("hippopotamus", "1F99B", "hippopotamus"),
    ("raccoon", "1F99D", "raccoon"),
    ("badger", "1F9A1", "badger"),
    ("mammoth", "1F9A3", "mammoth"),
    ("skunk", "1F9A8", "skunk"),
    ("beaver", "1F9AB", "beaver"),
    ("moose", "1FACE", "moose"),
    ("elephant", "1F418", "elephant"),
    ("rhinoceros", "1F98F", "rhinoceros"),
    ("whale", "1F40B", "whale"),
    ("dolphin", "1F42C", "dolphin"),
    ("seal", "1F9AD", "seal"),
    ("otter", "1F9A6", "otter"),
    ("deer", "1F98C", "deer"),
    ("bat", "1F987", "bat"),
    ("hamster", "1F439", "hamster"),
    ("octopus", "1F419", "octopus"),
    ("lobster", "1F99E", "lobster"),
    ("bee", "1F41D", "bee"),
    ("ladybug", "1F41E", "ladybug"),
    ("chicken", "1F414", "chicken"),
    ("rooster", "1F413", "rooster"),
    ("turkey", "1F983", "turkey"),
    ("duck", "1F986", "duck"),
    ("goose", "1FABF", "goose"),
    ("swan", "1F9A2", "swan"),
    ("peacock", "1F99A", "peacock"),
    ("dodo", "1F9A4", "dodo"),
    ("flamingo", "1F9A9", "flamingo"),
    ("eagle", "1F985", "eagle"),
    ("owl", "1F989", "owl"),
    ("penguin", "1F427", "penguin"),
    ("frog", "1F438", "frog"),
    ("butterfly", "1F98B", "butterfly"),
    ("fly", "1FAB0", "fly"),
    ("shark", "1F988", "shark"),
    ("fish", "1F41F", "fish"),
    ("crocodile", "1F40A", "crocodile"),
    ("snake", "1F40D", "snake"),
    ("turtle", "1F422", "turtle"),
    ("oyster", "1F9AA", "oyster"),
    ("cockroach", "1FAB3", "cockroach"),
    ("cricket", "1F997", "cricket"),
    ("spider", "1F577-FE0F", "spider"),
    ("scorpion", "1F982", "scorpion"),
    ("t_rex", "1F996", "T. rex"),
]

# Genus (label) and full binomials / synonyms (aliases). Only animals whose emoji clearly shows
# one genus; generic ones (fish, bird, monkey, deer, whale, shark, snake...) are left out.
ANIMAL_LATIN = {
    "dog": ("Canis", ["Canis familiaris", "Canis lupus familiaris"]),
    "poodle": ("Canis", ["Canis familiaris", "Canis lupus familiaris"]),
    "cat": ("Felis", ["Felis catus"]),
    "lion": ("Panthera", ["Panthera leo"]),
    "tiger": ("Panthera", ["Panthera tigris"]),
    "leopard": ("Panthera", ["Panthera pardus"]),
    "horse": ("Equus", ["Equus caballus", "Equus ferus caballus"]),
    "zebra": ("Equus", ["Equus quagga", "Equus zebra", "Equus grevyi"]),
    "donkey": ("Equus", ["Equus asinus", "Equus africanus asinus"]),
    "cow": ("Bos", ["Bos taurus"]),
    "ox": ("Bos", ["Bos taurus"]),
    "water_buffalo": ("Bubalus", ["Bubalus bubalis"]),
    "bison": ("Bison", ["Bison bison", "Bison bonasus"]),
    "sheep": ("Ovis", ["Ovis aries"]),
    "ram": ("Ovis", ["Ovis aries"]),
    "goat": ("Capra", ["Capra hircus"]),
    "pig": ("Sus", ["Sus domesticus", "Sus scrofa domesticus"]),
    "boar": ("Sus", ["Sus scrofa"]),
    "koala": ("Phascolarctos", ["Phascolarctos cinereus"]),
    "kangaroo": (
        "Macropus",
        ["Macropus giganteus", "Macropus rufus", "Osphranter", "Osphranter rufus"],
    ),
    "camel": ("Camelus", ["Camelus dromedarius"]),
    "bactrian_camel": ("Camelus", ["Camelus bactrianus"]),
    "mouse": ("Mus", ["Mus musculus"]),
    "rat": ("Rattus", ["Rattus rattus", "Rattus norvegicus"]),
    "rabbit": ("Oryctolagus", ["Oryctolagus cuniculus"]),
    "wolf": ("Canis", ["Canis lupus"]),
    "fox": ("Vulpes", ["Vulpes vulpes"]),
    "bear": ("Ursus", ["Ursus arctos"]),
    "polar_bear": ("Ursus", ["Ursus maritimus"]),
    "panda": ("Ailuropoda", ["Ailuropoda melanoleuca"]),
    "chipmunk": ("Tamias", ["Tamias striatus"]),
    "gorilla": ("Gorilla", ["Gorilla gorilla", "Gorilla beringei"]),
    "orangutan": ("Pongo", ["Pongo pygmaeus", "Pongo abelii"]),
    "giraffe": ("Giraffa", ["Giraffa camelopardalis"]),
    "hedgehog": ("Erinaceus", ["Erinaceus europaeus"]),
    "llama": ("Lama", ["Lama glama"]),
    "hippopotamus": ("Hippopotamus", ["Hippopotamus amphibius"]),
    "raccoon": ("Procyon", ["Procyon lotor"]),
    "badger": ("Meles", ["Meles meles", "Taxidea", "Taxidea taxus"]),
    "mammoth": ("Mammuthus", ["Mammuthus primigenius"]),
    "skunk": ("Mephitis", ["Mephitis mephitis"]),
    "beaver": ("Castor", ["Castor canadensis", "Castor fiber"]),
    "moose": ("Alces", ["Alces alces"]),
    "octopus": ("Octopus", ["Octopus vulgaris"]),
    "lobster": ("Homarus", ["Homarus americanus", "Homarus gammarus"]),
    "bee": ("Apis", ["Apis mellifera"]),
    "ladybug": ("Coccinella", ["Coccinella septempunctata"]),
    "chicken": ("Gallus", ["Gallus gallus domesticus", "Gallus domesticus", "Gallus gallus"]),
    "rooster": ("Gallus", ["Gallus gallus domesticus", "Gallus domesticus", "Gallus gallus"]),
    "turkey": ("Meleagris", ["Meleagris gallopavo"]),
    "duck": ("Anas", ["Anas platyrhynchos"]),
    "goose": ("Anser", ["Anser anser", "Branta", "Branta canadensis"]),
    "swan": ("Cygnus", ["Cygnus olor"]),
    "peacock": ("Pavo", ["Pavo cristatus"]),
    "dodo": ("Raphus", ["Raphus cucullatus"]),
    "flamingo": ("Phoenicopterus", ["Phoenicopterus roseus", "Phoenicopterus ruber"]),
    "crocodile": ("Crocodylus", ["Crocodylus niloticus", "Crocodylus porosus"]),
    "t_rex": ("Tyrannosaurus", ["Tyrannosaurus rex"]),
}

# Term for the young (label) and other accepted terms (aliases).
FOAL = ("foal", ["colt", "filly"])
ANIMAL_YOUNG = {
    "dog": ("puppy", ["pup", "whelp"]),
    "poodle": ("puppy", ["pup", "whelp"]),
    "cat": ("kitten", ["kitty"]),
    "lion": ("cub", []),
    "tiger": ("cub", []),
    "leopard": ("cub", []),
    "horse": FOAL,
    "zebra": FOAL,
    "donkey": FOAL,
    "cow": ("calf", []),
    "ox": ("calf", []),
    "water_buffalo": ("calf", []),
    "bison": ("calf", []),
    "sheep": ("lamb", []),
    "ram": ("lamb", []),
    "goat": ("kid", []),
    "pig": ("piglet", ["shoat"]),
    "boar": ("piglet", ["boarlet", "squeaker"]),
    "koala": ("joey", []),
    "kangaroo": ("joey", []),
    "camel": ("calf", []),
    "bactrian_camel": ("calf", []),
    "mouse": ("pup", ["pinky", "kitten"]),
    "rat": ("pup", ["pinky", "kitten"]),
    "rabbit": ("kit", ["kitten", "bunny"]),
    "wolf": ("pup", ["cub", "whelp"]),
    "fox": ("kit", ["cub", "pup"]),
    "bear": ("cub", []),
    "polar_bear": ("cub", []),
    "panda": ("cub", []),
    "giraffe": ("calf", []),
    "hedgehog": ("hoglet", []),
    "llama": ("cria", []),
    "hippopotamus": ("calf", []),
    "raccoon": ("kit", ["cub"]),
    "badger": ("cub", ["kit"]),
    "mammoth": ("calf", []),
    "skunk": ("kit", []),
    "beaver": ("kit", ["kitten"]),
    "moose": ("calf", []),
    "elephant": ("calf", []),
    "rhinoceros": ("calf", []),
    "whale": ("calf", []),
    "dolphin": ("calf", []),
    "seal": ("pup", []),
    "otter": ("pup", ["kit"]),
    "deer": ("fawn", []),
    "bat": ("pup", []),
    "hamster": ("pup", []),
    "chicken": ("chick", []),
    "rooster": ("chick", []),
    "turkey": ("poult", ["chick"]),
    "duck": ("duckling", []),
    "goose": ("gosling", []),
    "swan": ("cygnet", []),
    "peacock": ("peachick", ["chick"]),
    "flamingo": ("chick", []),
    "eagle": ("eaglet", []),
    "owl": ("owlet", []),
    "penguin": ("chick", []),
    "frog": ("tadpole", ["polliwog", "froglet"]),
    "butterfly": ("caterpillar", ["larva"]),
    "fly": ("maggot", ["larva"]),
    "shark": ("pup", []),
    "fish": ("fry", ["fingerling"]),
    "crocodile": ("hatchling", []),
    "snake": ("hatchling", ["snakelet", "neonate"]),
    "turtle": ("hatchling", []),
    "oyster": ("spat", []),
    "cockroach": ("nymph", []),
    "cricket": ("nymph", []),
    "spider": ("spiderling", []),
    "scorpion": ("scorpling", []),
}

FOODS = [
    ("tomato", "1F345", "tomato"),
    ("strawberry", "1F353", "strawberry"),
    ("cherries", "1F352", "cherries"),
    ("apple", "1F34E", "apple"),
    ("green_apple", "1F34F", "green apple"),
    ("chili_pepper", "1F336-FE0F", "chili pepper"),
    ("broccoli", "1F966", "broccoli"),
    ("cucumber", "1F952", "cucumber"),
    ("avocado", "1F951", "avocado"),
    ("peas", "1FADB", "peas"),
    ("lettuce", "1F96C", "lettuce"),
    ("salad", "1F957", "salad"),
    ("banana", "1F34C", "banana"),
    ("lemon", "1F34B", "lemon"),
    ("corn", "1F33D", "corn"),
    ("cheese", "1F9C0", "cheese"),
    ("butter", "1F9C8", "butter"),
    ("tangerine", "1F34A", "tangerine"),
    ("carrot", "1F955", "carrot"),
    ("eggplant", "1F346", "eggplant"),
    ("grapes", "1F347", "grapes"),
    ("blueberries", "1FAD0", "blueberries"),
    ("chocolate", "1F36B", "chocolate"),
    ("chestnut", "1F330", "chestnut"),
    ("pretzel", "1F968", "pretzel"),
    ("cookie", "1F36A", "cookie"),
    ("bread", "1F35E", "bread"),
    ("potato", "1F954", "potato"),
    ("milk", "1F95B", "milk"),
    ("rice", "1F35A", "rice"),
    ("garlic", "1F9C4", "garlic"),
    ("salt", "1F9C2", "salt"),
    ("coffee", "2615", "coffee"),
    ("beer", "1F37A", "beer"),
    ("curry", "1F35B", "curry"),
    ("french_fries", "1F35F", "french fries"),
    ("popcorn", "1F37F", "popcorn"),
    ("bacon", "1F953", "bacon"),
    ("rice_cracker", "1F358", "rice cracker"),
    ("hamburger", "1F354", "hamburger"),
    ("pizza", "1F355", "pizza"),
    ("meat", "1F356", "meat"),
    ("chicken_leg", "1F357", "chicken leg"),
    ("stew", "1F372", "stew"),
    ("hot_dog", "1F32D", "hot dog"),
    ("ramen", "1F35C", "ramen"),
    ("dumpling", "1F95F", "dumpling"),
    ("steak", "1F969", "steak"),
    ("candy", "1F36C", "candy"),
    ("lollipop", "1F36D", "lollipop"),
    ("cake", "1F370", "cake"),
    ("cupcake", "1F9C1", "cupcake"),
    ("doughnut", "1F369", "doughnut"),
    ("ice_cream", "1F368", "ice cream"),
    ("shaved_ice", "1F367", "shaved ice"),
    ("custard", "1F36E", "custard"),
    ("honey", "1F36F", "honey"),
    ("moon_cake", "1F96E", "moon cake"),
    ("dango", "1F361", "dango"),
    ("mango", "1F96D", "mango"),
    ("watermelon", "1F349", "watermelon"),
    ("peach", "1F351", "peach"),
    ("pineapple", "1F34D", "pineapple"),
    ("melon", "1F348", "melon"),
    ("pear", "1F350", "pear"),
    ("bubble_tea", "1F9CB", "bubble tea"),
    ("waffle", "1F9C7", "waffle"),
]

# Dominant colour; only foods whose colour is not in doubt (and whose name does not say it).
FOOD_COLOR = {
    "tomato": ("red", []),
    "strawberry": ("red", []),
    "cherries": ("red", []),
    "apple": ("red", []),
    "chili_pepper": ("red", []),
    "broccoli": ("green", []),
    "cucumber": ("green", []),
    "avocado": ("green", []),
    "peas": ("green", []),
    "lettuce": ("green", []),
    "salad": ("green", []),
    "banana": ("yellow", []),
    "lemon": ("yellow", []),
    "corn": ("yellow", []),
    "cheese": ("yellow", []),
    "butter": ("yellow", []),
    "tangerine": ("orange", []),
    "carrot": ("orange", []),
    "eggplant": ("purple", ["violet"]),
    "grapes": ("purple", ["violet"]),
    "blueberries": ("blue", []),
    "chocolate": ("brown", []),
    "chestnut": ("brown", []),
    "pretzel": ("brown", []),
    "cookie": ("brown", []),
    "bread": ("brown", []),
    "potato": ("brown", []),
    "milk": ("white", []),
    "rice": ("white", []),
    "garlic": ("white", []),
    "salt": ("white", []),
}

SWEET = ("sweet", ["sugary"])
FOOD_FLAVOR = {
    "lemon": ("sour", ["tart", "acidic"]),
    "green_apple": ("sour", ["tart"]),
    "chili_pepper": ("spicy", ["hot", "pungent"]),
    "curry": ("spicy", ["hot", "savory"]),
    "coffee": ("bitter", []),
    "beer": ("bitter", ["hoppy"]),
    # one rule for the salty and savory foods: a salty food is also savory (salt itself aside)
    # and a savory one also salty and umami, so no item takes an answer its neighbour refuses
    "pretzel": ("salty", ["savory"]),
    "french_fries": ("salty", ["savory"]),
    "popcorn": ("salty", ["savory", "buttery"]),
    "bacon": ("salty", ["savory", "smoky"]),
    "salt": ("salty", []),
    "rice_cracker": ("salty", ["savory"]),
    "hamburger": ("savory", ["umami", "salty"]),
    "pizza": ("savory", ["umami", "salty"]),
    "meat": ("savory", ["umami", "salty"]),
    "chicken_leg": ("savory", ["umami", "salty"]),
    "stew": ("savory", ["umami", "salty"]),
    "hot_dog": ("savory", ["umami", "salty"]),
    "ramen": ("savory", ["umami", "salty"]),
    "dumpling": ("savory", ["umami", "salty"]),
    "steak": ("savory", ["umami", "salty"]),
    "candy": SWEET,
    "lollipop": SWEET,
    "chocolate": SWEET,
    "cake": SWEET,
    "cupcake": SWEET,
    "doughnut": SWEET,
    "cookie": SWEET,
    "ice_cream": SWEET,
    "shaved_ice": SWEET,
    "custard": SWEET,
    "honey": SWEET,
    "moon_cake": SWEET,
    "dango": SWEET,
    "strawberry": SWEET,
    "banana": SWEET,
    "mango": SWEET,
    "watermelon": SWEET,
    "peach": SWEET,
    "grapes": SWEET,
    "cherries": SWEET,
    "pineapple": ("sweet", ["sugary", "tangy", "tart", "sour"]),  # tart and sour alike, as for lemon
    "melon": SWEET,
    "pear": SWEET,
    "tangerine": ("sweet", ["sugary", "tangy"]),
    "bubble_tea": SWEET,
    "waffle": SWEET,
}

MAX_EMOJI_VERSION = 15.0  # newer emoji are missing from some image sets
MAX_TEST = 100


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def entity(unified: str) -> str:
    """Emoji code point sequence as lowercase hex joined by '-', without FE0F."""
    return "-".join(cp.lower() for cp in unified.split("-") if cp.upper() != "FE0F")


def flag_entity(alpha2: str) -> str:
    return "-".join(f"{0x1F1E6 + ord(ch) - ord('A'):x}" for ch in alpha2.upper())


def ascii_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def with_folded(label: str, aliases: list[str]) -> list[str]:
    """Aliases plus accent-free spellings of the label and aliases; no duplicates, no label."""
    out: list[str] = []
    for name in [*aliases, ascii_fold(label), *(ascii_fold(a) for a in aliases)]:
        if name != label and name not in out:
            out.append(name)
    return out


def split_items(items: list[dict], n_val: int) -> tuple[list[dict], list[dict]]:
    ordered = sorted(items, key=lambda r: r["id"])
    random.Random(SEED).shuffle(ordered)
    return ordered[:n_val], ordered[n_val : n_val + MAX_TEST]


def stratified_split(items: list[dict], n_val: int) -> tuple[list[dict], list[dict]]:
    """Seeded split that spreads each label over val and test in proportion.

    Items are sorted by id, shuffled with the fixed seed within each label, and given the
    key (position + 0.5) / label size; the n_val items with the smallest keys form val.
    """
    rng = random.Random(SEED)
    keyed = []
    for label in sorted({r["output"] for r in items}):
        group = sorted((r for r in items if r["output"] == label), key=lambda r: r["id"])
        rng.shuffle(group)
        keyed += [((i + 0.5) / len(group), rng.random(), r) for i, r in enumerate(group)]
    keyed.sort(key=lambda k: (k[0], k[1]))
    ordered = [r for _, _, r in keyed]
    val = sorted(ordered[:n_val], key=lambda r: r["id"])
    test = sorted(ordered[n_val : n_val + MAX_TEST], key=lambda r: r["id"])
    return val, test


def n_val_for(n_items: int) -> int:
    return 30 if n_items >= 60 else max(10, round(n_items / 3))


def find_package(packages_dir: Path | None, explicit: Path | None, name: str) -> Path:
    candidates = [explicit] if explicit else []
    if packages_dir:
        candidates += [
            packages_dir / name,
            packages_dir / name / "package",  # an `npm pack` tarball unpacked into <name>/
            packages_dir / "node_modules" / name,
            packages_dir,
        ]
    for cand in candidates:
        pkg = cand / "package.json" if cand else None
        if pkg and pkg.is_file() and json.loads(pkg.read_text(encoding="utf-8")).get("name") == name:
            return cand
    sys.exit(f"cannot find the npm package {name!r} (looked in: {', '.join(map(str, candidates))})")


def package_meta(path: Path) -> dict:
    meta = json.loads((path / "package.json").read_text(encoding="utf-8"))
    return {"name": meta["name"], "version": meta["version"], "license": meta.get("license", "")}


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------
def eligible_countries(countries: dict, flags: set[str]) -> list[str]:
    assert len(set(WELL_KNOWN_ORDER)) == len(WELL_KNOWN_ORDER), "duplicate code in ranking"
    dropped = {code for group in NEAR_IDENTICAL_FLAGS for code in group[1:]}
    chosen = []
    for code in WELL_KNOWN_ORDER:
        if code in EXCLUDED_COUNTRIES or code in dropped:
            continue
        info = countries[code]
        if info.get("partOf") or not info.get("capital") or not info.get("currency"):
            raise SystemExit(f"{code}: not a sovereign country with capital and currency")
        if flag_entity(code) not in flags:
            raise SystemExit(f"{code}: no flag emoji in emoji-datasource")
        chosen.append(code)
    return chosen[: N_VAL_COUNTRIES + N_TEST_COUNTRIES]


def country_input(code: str, countries: dict) -> str:
    return COUNTRY_NAME_OVERRIDES.get(code, countries[code]["name"])


def capital_record(code: str, countries: dict) -> dict:
    package_capital = countries[code]["capital"]
    label, aliases = CAPITAL_OVERRIDES.get(code, (package_capital, []))
    aliases = list(aliases)
    if package_capital != label and package_capital not in aliases:
        aliases.append(package_capital)
    aliases += [a for a in CAPITAL_ALIASES.get(code, []) if a not in aliases]
    return {
        "id": code,
        "input": country_input(code, countries),
        "output": label,
        "aliases": with_folded(label, aliases),
        "entity": flag_entity(code),
    }


def currency_record(code: str, countries: dict, currencies: dict) -> dict:
    iso = countries[code]["currency"][0]
    name = currencies[iso]["name"]
    label = CURRENCY_LABEL_OVERRIDES.get(code, name.split()[-1].lower())
    aliases = list(CURRENCY_ALIASES.get(label, [])) + CURRENCY_COUNTRY_ALIASES.get(code, [])
    if code != "GB" and label == "pound":
        aliases = [a for a in aliases if a != "sterling"]
    return {
        "id": code,
        "input": country_input(code, countries),
        "output": label,
        "aliases": with_folded(label, aliases),
        "entity": flag_entity(code),
        "_currency": f"{iso} {name}",
    }


def emoji_record(item_id: str, unified: str, text: str, table: dict, emoji: dict) -> dict:
    row = emoji.get(unified)
    if row is None:
        raise SystemExit(f"{item_id}: emoji {unified} not in emoji-datasource")
    if row["category"] not in ("Animals & Nature", "Food & Drink"):
        raise SystemExit(f"{item_id}: emoji {unified} is in category {row['category']!r}")
    if float(row["added_in"]) > MAX_EMOJI_VERSION:
        raise SystemExit(f"{item_id}: emoji {unified} is newer than Emoji {MAX_EMOJI_VERSION}")
    label, aliases = table[item_id]
    return {
        "id": item_id,
        "input": text,
        "output": label,
        "aliases": with_folded(label, list(aliases)),
        "entity": entity(unified),
    }


def task_file(name, description, domain, sources, val, test, **extra) -> dict:
    clean = lambda rows: [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]  # noqa: E731
    out = {
        "name": name,
        "description": description,
        "instruction": INSTRUCTIONS[name],
        "domain": domain,
        "sources": sources,
        **extra,
        "val": clean(val),
        "test": clean(test),
    }
    return out


def check(task: dict) -> None:
    ids = [r["id"] for split in ("val", "test") for r in task[split]]
    assert len(ids) == len(set(ids)), f"{task['name']}: duplicate ids"
    entities = [r["entity"] for split in ("val", "test") for r in task[split]]
    assert len(entities) == len(set(entities)), f"{task['name']}: duplicate entities"
    for group in task.get("near_identical_groups", []):
        for split in ("val", "test"):
            present = [r["id"] for r in task[split] if r["id"] in group]
            assert len(present) <= 1, f"{task['name']}/{split}: near-identical flags {present}"


def build(countries_dir: Path, emoji_dir: Path) -> dict[str, dict]:
    cl_meta, em_meta = package_meta(countries_dir), package_meta(emoji_dir)
    countries = json.loads((countries_dir / "countries.min.json").read_text(encoding="utf-8"))
    currencies = json.loads((countries_dir / "currencies.min.json").read_text(encoding="utf-8"))
    emoji_rows = json.loads((emoji_dir / "emoji.json").read_text(encoding="utf-8"))
    emoji = {row["unified"]: row for row in emoji_rows}
    flags = {entity(row["unified"]) for row in emoji_rows if row.get("subcategory") == "country-flag"}

    cl_name = f"npm countries-list {cl_meta['version']}"
    em_name = f"npm emoji-datasource {em_meta['version']}"
    em_source = {
        "name": em_name,
        "license": em_meta["license"],
        "note": "emoji code points (entity) and names; only the data file emoji.json is used",
    }
    tasks: dict[str, dict] = {}

    codes = eligible_countries(countries, flags)
    val_codes, test_codes = split_items([{"id": c} for c in codes], N_VAL_COUNTRIES)
    val_codes, test_codes = [r["id"] for r in val_codes], [r["id"] for r in test_codes]
    groups = {"near_identical_groups": NEAR_IDENTICAL_FLAGS}
    flag_source = {
        "name": em_name,
        "license": em_meta["license"],
        "note": "flag emoji presence check; entity = regional-indicator pair of the ISO code",
    }
    tasks["country_capital"] = task_file(
        "country_capital",
        "Country -> its capital city",
        "flags",
        [
            {
                "name": cl_name,
                "license": cl_meta["license"],
                "note": "country names and capitals; a few capitals/aliases curated by hand",
            },
            flag_source,
        ],
        [capital_record(c, countries) for c in val_codes],
        [capital_record(c, countries) for c in test_codes],
        **groups,
    )
    tasks["country_currency"] = task_file(
        "country_currency",
        "Country -> last word of its official currency's name (lowercase)",
        "flags",
        [
            {
                "name": cl_name,
                "license": cl_meta["license"],
                "note": "ISO 4217 code and English name of each country's first listed "
                "currency; label = last word of that name, lowercased",
            },
            flag_source,
        ],
        [currency_record(c, countries, currencies) for c in val_codes],
        [currency_record(c, countries, currencies) for c in test_codes],
        **groups,
    )

    animal_index = {i: (u, t) for i, u, t in ANIMALS}
    food_index = {i: (u, t) for i, u, t in FOODS}
    specs = [
        (
            "animal_latin",
            "Animal -> genus of its scientific name (binomials as aliases)",
            "animals",
            ANIMAL_LATIN,
            animal_index,
        ),
        ("animal_young", "Animal -> term for its young", "animals", ANIMAL_YOUNG, animal_index),
        ("food_color", "Food -> its dominant colour", "foods", FOOD_COLOR, food_index),
        ("food_flavor", "Food -> its flavour descriptor", "foods", FOOD_FLAVOR, food_index),
    ]
    for name, description, domain, table, index in specs:
        missing = set(table) - set(index)
        assert not missing, f"{name}: ids without an emoji: {sorted(missing)}"
        rows = [emoji_record(i, *index[i], table, emoji) for i in table]
        val, test = stratified_split(rows, n_val_for(len(rows)))
        tasks[name] = task_file(
            name,
            description,
            domain,
            [
                em_source,
                {
                    "name": "hand-curated (taskvec)",
                    "license": "same as this repository",
                    "note": "labels and aliases written by hand for this project",
                },
            ],
            val,
            test,
        )
    for task in tasks.values():
        check(task)
    return tasks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages_dir", nargs="?", type=Path, help="folder holding the npm packages")
    parser.add_argument("--countries-list", type=Path, help="the countries-list package folder")
    parser.add_argument("--emoji-datasource", type=Path, help="the emoji-datasource package folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--only", nargs="*", help="write only these tasks")
    args = parser.parse_args(argv)
    countries_dir = find_package(args.packages_dir, args.countries_list, "countries-list")
    emoji_dir = find_package(args.packages_dir, args.emoji_datasource, "emoji-datasource")
    tasks = build(countries_dir, emoji_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, task in tasks.items():
        if args.only and name not in args.only:
            continue
        path = args.out / f"{name}.json"
        path.write_text(json.dumps(task, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"{path}: val {len(task['val'])}, test {len(task['test'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
