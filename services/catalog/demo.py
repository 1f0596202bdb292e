"""The demo catalog, as data: what the local launcher seeds into catalog and inventory.

Prices are EUR minor units (cents); ``stock`` is the default quantity per SKU for
inventory. Every entry passes CreateProduct's validation (a unit test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DemoProduct:
    sku: str
    name: str
    description: str
    category_id: str
    price_minor: int
    currency: str
    stock: int


def _eur(
    sku: str, name: str, description: str, category_id: str, cents: int, stock: int
) -> DemoProduct:
    return DemoProduct(sku, name, description, category_id, cents, "EUR", stock)


DEMO_PRODUCTS: list[DemoProduct] = [
    # books
    _eur(
        "BK-PRAG-PROG",
        "The Pragmatic Programmer",
        "20th anniversary edition: a classic on the craft of software, from careers to design.",
        "books",
        4299,
        40,
    ),
    _eur(
        "BK-DDD-BLUE",
        "Domain-Driven Design",
        "Tackling complexity in the heart of software: bounded contexts and aggregates.",
        "books",
        5499,
        25,
    ),
    _eur(
        "BK-DDIA",
        "Designing Data-Intensive Applications",
        "Reliable, scalable, maintainable systems: storage, replication and streams.",
        "books",
        4599,
        60,
    ),
    _eur(
        "BK-SRE-GOOGLE",
        "Site Reliability Engineering",
        "How Google runs production systems: SLOs, error budgets, on-call and postmortems.",
        "books",
        3999,
        30,
    ),
    _eur(
        "BK-RELEASE-IT",
        "Release It!",
        "Production-ready software: circuit breakers, bulkheads and timeouts in practice.",
        "books",
        3799,
        35,
    ),
    # coffee-and-tea
    _eur(
        "CT-ESPRESSO-1KG",
        "Espresso Blend Beans 1 kg",
        "Medium-dark roast of Brazilian and Ethiopian arabica with notes of cocoa and hazelnut.",
        "coffee-and-tea",
        2490,
        120,
    ),
    _eur(
        "CT-ETHIOPIA-250",
        "Ethiopia Yirgacheffe 250 g",
        "Washed single-origin light roast: jasmine, bergamot and lemon. Whole beans.",
        "coffee-and-tea",
        1290,
        80,
    ),
    _eur(
        "CT-SENCHA-100",
        "Japanese Sencha 100 g",
        "Steamed green tea from Shizuoka, grassy and sweet. Brew at 70 °C for one minute.",
        "coffee-and-tea",
        990,
        75,
    ),
    _eur(
        "CT-EARLGREY-200",
        "Earl Grey Loose Leaf 200 g",
        "Ceylon black tea scented with natural bergamot oil.",
        "coffee-and-tea",
        850,
        90,
    ),
    _eur(
        "CT-CHAI-TEABAGS",
        "Masala Chai Tea Bags (40)",
        "Assam black tea with cardamom, ginger, cinnamon and clove, in compostable bags.",
        "coffee-and-tea",
        650,
        150,
    ),
    # kitchen
    _eur(
        "KT-FRENCHPRESS-1L",
        "French Press 1 l",
        "Borosilicate glass carafe with a stainless steel frame and a four-layer mesh filter.",
        "kitchen",
        3490,
        45,
    ),
    _eur(
        "KT-GRINDER-BURR",
        "Conical Burr Coffee Grinder",
        "Forty grind settings from espresso to cold brew; steel burrs, 250 g hopper.",
        "kitchen",
        8990,
        20,
    ),
    _eur(
        "KT-CHEF-KNIFE-20",
        "Chef's Knife 20 cm",
        "Forged high-carbon stainless steel blade with a full tang and a walnut handle.",
        "kitchen",
        6900,
        30,
    ),
    _eur(
        "KT-CASTIRON-26",
        "Cast Iron Skillet 26 cm",
        "Pre-seasoned skillet for stove, oven and campfire; lasts generations.",
        "kitchen",
        3990,
        35,
    ),
    _eur(
        "KT-KETTLE-GOOSE",
        "Gooseneck Kettle 0.9 l",
        "Electric pour-over kettle with temperature control from 40 to 100 °C.",
        "kitchen",
        5990,
        25,
    ),
    # electronics
    _eur(
        "EL-HEADPHONES-NC",
        "Noise-Cancelling Headphones",
        "Over-ear wireless headphones with active noise cancelling and 30 hours of battery.",
        "electronics",
        19900,
        15,
    ),
    _eur(
        "EL-KEYBOARD-TKL",
        "Mechanical Keyboard TKL",
        "Tenkeyless layout, hot-swappable tactile switches, USB-C, PBT keycaps.",
        "electronics",
        11900,
        25,
    ),
    _eur(
        "EL-MOUSE-ERGO",
        "Ergonomic Wireless Mouse",
        "Vertical design that keeps the wrist neutral; Bluetooth and USB receiver.",
        "electronics",
        4990,
        40,
    ),
    _eur(
        "EL-USBC-HUB-7",
        "USB-C Hub 7-in-1",
        "HDMI 4K60, two USB-A, USB-C power delivery 100 W, SD and microSD readers, Ethernet.",
        "electronics",
        5490,
        50,
    ),
    _eur(
        "EL-POWERBANK-20K",
        "Power Bank 20,000 mAh",
        "Charges a laptop over USB-C PD at 65 W and a phone at the same time.",
        "electronics",
        4490,
        60,
    ),
    # outdoor
    _eur(
        "OD-TENT-2P",
        "Two-Person Backpacking Tent",
        "Freestanding double-wall tent, 1.6 kg, with two doors and two vestibules.",
        "outdoor",
        24900,
        10,
    ),
    _eur(
        "OD-SLEEPBAG-3S",
        "Three-Season Sleeping Bag",
        "Synthetic insulation rated to -5 °C comfort, packs to the size of a loaf of bread.",
        "outdoor",
        12900,
        18,
    ),
    _eur(
        "OD-HEADLAMP-400",
        "Rechargeable Headlamp 400 lm",
        "Red night mode, lockout for transport, IPX4 rain resistance.",
        "outdoor",
        3490,
        70,
    ),
    _eur(
        "OD-BOTTLE-750",
        "Insulated Bottle 750 ml",
        "Double-walled stainless steel: cold for 24 hours, hot for 12.",
        "outdoor",
        2990,
        100,
    ),
    _eur(
        "OD-TREKPOLES",
        "Carbon Trekking Poles (pair)",
        "Three-section folding poles with cork grips, 280 g each.",
        "outdoor",
        8990,
        22,
    ),
    # stationery
    _eur(
        "ST-NOTEBOOK-A5-DOT",
        "Dotted Notebook A5",
        "192 numbered pages of 100 g/m² paper, lay-flat binding, two ribbon markers.",
        "stationery",
        1990,
        110,
    ),
    _eur(
        "ST-FOUNTAIN-PEN-F",
        "Fountain Pen, Fine Nib",
        "Steel fine nib, piston filler with an ink window, resin barrel.",
        "stationery",
        3900,
        40,
    ),
    _eur(
        "ST-INK-BLUEBLACK",
        "Blue-Black Bottled Ink 50 ml",
        "Water-resistant iron-gall ink that darkens as it dries.",
        "stationery",
        1450,
        55,
    ),
    _eur(
        "ST-DESK-MAT",
        "Felt Desk Mat 80 x 30 cm",
        "Merino wool felt with a non-slip cork underside.",
        "stationery",
        3290,
        35,
    ),
]
