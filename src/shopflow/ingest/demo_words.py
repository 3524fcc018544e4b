"""Word lists and shop layout of the demo shop: category tree, brands, complements, review phrases.

Pure data, no randomness: :mod:`shopflow.ingest.demo_catalogue` and
:mod:`shopflow.ingest.demo_behaviour` draw from these lists with the generator's seeded RNG.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Subcategory:
    """One leaf of the category tree: what its items are called and cost."""

    name: str
    nouns: tuple[str, ...]  # product nouns, singular; the first is the canonical one
    adjectives: tuple[str, ...]
    materials: tuple[str, ...]  # materials or colours
    features: tuple[str, ...]  # description phrases ("with a 6.1-inch screen")
    median_price: float
    use: str  # "everyday photos" -> "Made for everyday photos."


def _sub(
    name: str, nouns: str, adjectives: str, materials: str, features: str, price: float, use: str
) -> Subcategory:
    def split(s: str) -> tuple[str, ...]:
        return tuple(p.strip() for p in s.split("|") if p.strip())

    return Subcategory(
        name, split(nouns), split(adjectives), split(materials), split(features), price, use
    )


# Top category -> its subcategories. 7 top categories x 4-6 subcategories.
CATEGORY_TREE: dict[str, tuple[Subcategory, ...]] = {
    "Electronics": (
        _sub(
            "Smartphones",
            "Smartphone|Phone",
            "Compact|Flagship|Rugged|Slim|Budget",
            "Graphite|Silver|Midnight Blue|Rose Gold|Forest Green",
            "a 6.1-inch OLED screen|a dual camera|all-day battery life|5G connectivity|"
            "fast face unlock",
            620,
            "calls, photos and everything in between",
        ),
        _sub(
            "Phone Cases",
            "Phone Case|Case",
            "Slim|Shockproof|Clear|Leather-look|Magnetic",
            "Silicone|Black|Transparent|Navy|Sand",
            "raised edges that protect the camera|a soft-touch grip|drop protection up to 3 m|"
            "wireless charging support",
            22,
            "keeping your phone safe",
        ),
        _sub(
            "Chargers & Cables",
            "USB-C Charger|Charging Cable|Power Bank",
            "Fast|Braided|Compact|Dual-Port|Travel",
            "White|Black|Nylon|Grey",
            "65 W fast charging|a 2 m tangle-free cable|foldable plug pins|"
            "charging two devices at once",
            19,
            "charging at home and on the road",
        ),
        _sub(
            "Headphones",
            "Headphones|Earbuds",
            "Wireless|Noise-Cancelling|Sport|Studio|Foldable",
            "Black|White|Sage|Navy|Sand",
            "active noise cancelling|30 hours of playback|a clear microphone for calls|"
            "sweat resistance",
            95,
            "music and calls",
        ),
        _sub(
            "Laptops",
            "Laptop|Notebook",
            "Lightweight|Performance|Convertible|Business|Student",
            "Aluminium|Space Grey|Silver|Black",
            "a 14-inch display|16 GB of memory|a backlit keyboard|a 12-hour battery",
            1150,
            "work, study and play",
        ),
        _sub(
            "Laptop Bags",
            "Laptop Sleeve|Laptop Bag",
            "Padded|Slim|Water-Repellent|Urban",
            "Felt|Canvas|Black|Grey|Olive",
            "a padded 14-inch compartment|a front pocket for chargers|a water-repellent shell",
            45,
            "carrying your laptop",
        ),
    ),
    "Cameras & Photo": (
        _sub(
            "Cameras",
            "Camera|Mirrorless Camera",
            "Compact|Mirrorless|Vlogging|Pro|Travel",
            "Black|Silver|Retro Brown|Graphite",
            "a 24 MP sensor|4K video|in-body stabilisation|a flip screen",
            720,
            "travel and everyday photography",
        ),
        _sub(
            "Memory Cards",
            "Memory Card|SD Card|microSD Card",
            "Fast|High-Speed|Pro|Endurance",
            "64 GB|128 GB|256 GB|512 GB",
            "read speeds up to 200 MB/s|4K video recording support|a lifetime warranty",
            26,
            "storing photos and video",
        ),
        _sub(
            "Lenses",
            "Lens|Prime Lens|Zoom Lens",
            "Wide|Portrait|Macro|Telephoto|Fast",
            "35 mm|50 mm|85 mm|18-55 mm|70-200 mm",
            "a bright f/1.8 aperture|quiet autofocus|weather sealing",
            430,
            "sharper pictures",
        ),
        _sub(
            "Tripods",
            "Tripod|Travel Tripod|Monopod",
            "Lightweight|Carbon|Compact|Sturdy",
            "Carbon Fibre|Aluminium|Black",
            "a quick-release plate|a ball head|legs that fold to 35 cm",
            65,
            "steady shots and long exposures",
        ),
    ),
    "Home & Kitchen": (
        _sub(
            "Coffee Makers",
            "Coffee Maker|Espresso Machine|Pour-Over Set",
            "Programmable|Compact|Barista|Classic",
            "Stainless Steel|Matte Black|Cream|Copper",
            "a 15-bar pump|a built-in grinder|a thermal carafe|a milk frother",
            125,
            "better coffee at home",
        ),
        _sub(
            "Coffee Beans",
            "Coffee Beans|Ground Coffee|Espresso Blend",
            "Dark Roast|Medium Roast|Single-Origin|Organic",
            "Colombian|Ethiopian|Brazilian|Kenyan",
            "notes of chocolate and caramel|a bright citrus finish|beans roasted weekly",
            15,
            "your morning cup",
        ),
        _sub(
            "Mugs",
            "Mug|Travel Mug|Cup",
            "Insulated|Handmade|Classic|Oversized",
            "Ceramic|Stoneware|Stainless Steel|Speckled White",
            "a double wall that keeps drinks hot|a leak-proof lid|dishwasher-safe glaze",
            14,
            "coffee and tea",
        ),
        _sub(
            "Cookware",
            "Frying Pan|Saucepan|Dutch Oven|Wok",
            "Non-Stick|Cast-Iron|Tri-Ply|Classic",
            "Stainless Steel|Cast Iron|Enamel Red|Graphite",
            "even heat on every hob|an oven-safe handle|a non-stick coating",
            72,
            "everyday cooking",
        ),
        _sub(
            "Kitchen Knives",
            "Chef's Knife|Knife Set|Paring Knife",
            "Forged|Japanese|Classic|Pro",
            "Damascus Steel|Stainless Steel|Walnut|Black",
            "a razor-sharp edge|a balanced handle|a protective sheath",
            58,
            "precise slicing",
        ),
    ),
    "Fashion": (
        _sub(
            "Sneakers",
            "Sneakers|Running Shoes|Trainers",
            "Lightweight|Classic|Retro|Trail",
            "White|Black|Navy|Grey|Olive",
            "a cushioned sole|breathable mesh|a grippy outsole",
            98,
            "walking and running",
        ),
        _sub(
            "Socks",
            "Socks|Running Socks|Wool Socks",
            "Cushioned|Breathable|Warm|Everyday",
            "Cotton|Merino Wool|Black|White|Striped",
            "a reinforced heel|a seamless toe|moisture wicking",
            12,
            "all-day comfort",
        ),
        _sub(
            "Jackets",
            "Jacket|Rain Jacket|Puffer Jacket",
            "Waterproof|Insulated|Packable|Classic",
            "Navy|Black|Olive|Mustard|Denim",
            "taped seams|a detachable hood|recycled insulation",
            145,
            "cold and wet days",
        ),
        _sub(
            "Backpacks",
            "Backpack|Daypack|Rolltop Backpack",
            "Urban|Water-Repellent|Travel|Mini",
            "Canvas|Black|Olive|Sand|Recycled Nylon",
            "a padded laptop pocket|hidden zip pockets|comfortable straps",
            68,
            "commuting and weekends away",
        ),
    ),
    "Sports & Outdoors": (
        _sub(
            "Tents",
            "Tent|Dome Tent|Backpacking Tent",
            "Lightweight|2-Person|4-Person|Family",
            "Green|Orange|Grey|Sand",
            "a quick-pitch frame|a waterproof fly sheet|two doors and vestibules",
            230,
            "camping trips",
        ),
        _sub(
            "Sleeping Bags",
            "Sleeping Bag|Mummy Sleeping Bag",
            "3-Season|Ultralight|Warm|Compact",
            "Down|Synthetic|Navy|Red",
            "a comfort rating of 2 °C|a compression sack|a full-length zip",
            95,
            "warm nights outdoors",
        ),
        _sub(
            "Yoga Mats",
            "Yoga Mat|Exercise Mat",
            "Non-Slip|Extra-Thick|Travel|Eco",
            "Cork|Natural Rubber|Purple|Teal|Grey",
            "a non-slip surface|alignment lines|a carrying strap",
            36,
            "yoga and stretching",
        ),
        _sub(
            "Water Bottles",
            "Water Bottle|Sports Bottle|Flask",
            "Insulated|Leak-Proof|Squeeze|Wide-Mouth",
            "Stainless Steel|BPA-Free Plastic|Blue|Black|Mint",
            "keeps water cold for 24 hours|a one-hand lid|a wide mouth for ice",
            21,
            "staying hydrated",
        ),
    ),
    "Toys & Games": (
        _sub(
            "Board Games",
            "Board Game|Card Game|Strategy Game",
            "Family|Party|Cooperative|Classic",
            "Wooden|Deluxe|Travel",
            "2 to 6 players|30-minute rounds|easy-to-learn rules",
            34,
            "game nights",
        ),
        _sub(
            "Building Sets",
            "Building Set|Construction Kit|Brick Set",
            "Creative|Technic|Starter|Deluxe",
            "Space|Castle|City|Robot",
            "over 500 pieces|step-by-step instructions|motorised parts",
            52,
            "builders of every age",
        ),
        _sub(
            "Puzzles",
            "Jigsaw Puzzle|Puzzle|3D Puzzle",
            "1000-Piece|Panoramic|Kids|Challenging",
            "Landscape|Map|Wildlife|Art",
            "thick pieces that fit snugly|a poster of the finished picture",
            19,
            "quiet evenings",
        ),
        _sub(
            "Costumes",
            "Costume|Dress-Up Set|Mask",
            "Spooky|Superhero|Classic|Kids",
            "Witch|Pirate|Vampire|Astronaut|Dinosaur",
            "a comfortable one-piece fit|accessories included|machine-washable fabric",
            29,
            "Halloween and parties",
        ),
    ),
    "Beauty": (
        _sub(
            "Skincare",
            "Face Cream|Serum|Cleanser|Moisturiser",
            "Hydrating|Gentle|Brightening|Daily",
            "Aloe|Vitamin C|Hyaluronic|Green Tea",
            "a lightweight texture|no added fragrance|dermatologist-tested formula",
            27,
            "healthy-looking skin",
        ),
        _sub(
            "Fragrance",
            "Eau de Parfum|Eau de Toilette|Perfume",
            "Fresh|Warm|Floral|Woody",
            "Citrus|Vanilla|Cedar|Rose|Amber",
            "long-lasting notes|a refillable bottle|a travel-size spray",
            68,
            "every occasion",
        ),
        _sub(
            "Hair Care",
            "Shampoo|Conditioner|Hair Oil",
            "Repairing|Volumising|Gentle|Nourishing",
            "Argan|Coconut|Keratin|Tea Tree",
            "sulphate-free cleansing|a salon-quality finish|a recyclable bottle",
            17,
            "soft, shiny hair",
        ),
        _sub(
            "Makeup",
            "Lipstick|Mascara|Foundation|Brush Set",
            "Matte|Long-Wear|Natural|Vegan",
            "Nude|Berry|Coral|Classic Red",
            "a creamy finish|buildable coverage|all-day wear",
            23,
            "everyday looks",
        ),
    ),
}

# Brands of each top category: (name, tier). Tier multiplies prices: 0 budget, 1 mid, 2 premium.
BRANDS: dict[str, tuple[tuple[str, int], ...]] = {
    "Electronics": (
        ("Nordhaven", 2),
        ("Voltiq", 1),
        ("Pixelo", 1),
        ("Arcwave", 2),
        ("Brisk", 0),
        ("Lumo", 0),
    ),
    "Cameras & Photo": (
        ("Lumen&Co", 2),
        ("Kadra", 1),
        ("Optiva", 2),
        ("Snapwell", 0),
        ("Fieldglass", 1),
    ),
    "Home & Kitchen": (
        ("Hearthwood", 2),
        ("Casa Verde", 1),
        ("Kettle & Co", 1),
        ("Bramble", 0),
        ("Ostra", 2),
    ),
    "Fashion": (
        ("Northline", 1),
        ("Urbanfolk", 1),
        ("Maison Lyre", 2),
        ("Stride", 0),
        ("Fjellro", 2),
    ),
    "Sports & Outdoors": (
        ("Trailborn", 1),
        ("Summitry", 2),
        ("Flowfit", 0),
        ("Kestrel", 1),
        ("Basecamp", 0),
    ),
    "Toys & Games": (("Playforge", 1), ("Tinker Owl", 0), ("Meeple House", 1), ("Brickwise", 2)),
    "Beauty": (("Velvetine", 2), ("Purely", 0), ("Lumière", 2), ("Botanika", 1), ("Glow Lab", 1)),
}
TIER_PRICE = (0.7, 1.0, 1.5)

# Complementary products bought together: (anchor subcategory, complement subcategory, probability
# that a shopper who buys the anchor also buys one of its complements).
COMPLEMENTS: tuple[tuple[str, str, float], ...] = (
    ("Smartphones", "Phone Cases", 0.7),
    ("Smartphones", "Chargers & Cables", 0.3),
    ("Laptops", "Laptop Bags", 0.55),
    ("Cameras", "Memory Cards", 0.7),
    ("Cameras", "Tripods", 0.25),
    ("Cameras", "Lenses", 0.2),
    ("Headphones", "Chargers & Cables", 0.25),
    ("Coffee Makers", "Coffee Beans", 0.6),
    ("Coffee Makers", "Mugs", 0.25),
    ("Cookware", "Kitchen Knives", 0.3),
    ("Sneakers", "Socks", 0.5),
    ("Tents", "Sleeping Bags", 0.6),
    ("Yoga Mats", "Water Bottles", 0.4),
    ("Hair Care", "Hair Care", 0.35),  # shampoo -> the matching conditioner
)

COUNTRIES: tuple[tuple[str, float, int], ...] = (  # (code, share of users, UTC offset hours)
    ("US", 0.34, -5),
    ("GB", 0.16, 0),
    ("DE", 0.14, 1),
    ("FR", 0.1, 1),
    ("NL", 0.06, 1),
    ("ES", 0.07, 1),
    ("IT", 0.06, 1),
    ("CA", 0.07, -5),
)
DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55+")

# Sessions per local hour of day (relative), and per weekday Monday..Sunday.
HOUR_WEIGHTS: tuple[float, ...] = (
    0.3,
    0.15,
    0.1,
    0.08,
    0.08,
    0.15,
    0.4,
    0.8,
    1.0,
    1.0,
    1.0,
    1.1,
    1.4,
    1.3,
    1.0,
    1.0,
    1.1,
    1.3,
    1.6,
    2.0,
    2.3,
    2.2,
    1.6,
    0.8,
)
WEEKDAY_WEIGHTS: tuple[float, ...] = (1.0, 0.95, 0.95, 1.0, 1.05, 1.3, 1.4)

REVIEW_OPENERS: dict[str, tuple[str, ...]] = {
    "positive": (
        "Love this {noun}!",
        "Excellent {noun}.",
        "Really happy with this {noun}.",
        "Best {noun} I have owned.",
        "Great value {noun}.",
    ),
    "neutral": (
        "Decent {noun}.",
        "It is an okay {noun}.",
        "Average {noun} for the price.",
        "Does the job as a {noun}.",
    ),
    "negative": (
        "Disappointed with this {noun}.",
        "Would not buy this {noun} again.",
        "Poor {noun}.",
        "This {noun} broke quickly.",
    ),
}
REVIEW_DETAILS: dict[str, tuple[str, ...]] = {
    "positive": (
        "Works perfectly and feels well made.",
        "Arrived quickly and looks great.",
        "Exactly as described, highly recommend.",
        "Quality is superb for the money.",
        "I use it every day and it is wonderful.",
    ),
    "neutral": (
        "Some things are good, some are not.",
        "Quality is fine but nothing special.",
        "Delivery was slow but the product is acceptable.",
        "It works, though I expected a bit more.",
    ),
    "negative": (
        "Stopped working after a week.",
        "Cheap materials and it feels flimsy.",
        "Not as described, I am returning it.",
        "Terrible quality, waste of money.",
    ),
}
