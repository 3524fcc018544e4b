"""A tiny dataset with planted patterns whose answers are known, shared by the model tests.

24 items in 4 groups of 6 ("shoes", "coffee", "paint", "towels"). Every user stays in one group
and walks it in cyclic order: item ``g*6 + j`` is always followed by ``g*6 + (j+1) % 6``. Each
item's text names its group's product kind: text, co-occurrence and order agree on the groups.
"""

from __future__ import annotations

import numpy as np

from shopflow.features.sequences import InteractionData, ItemSide
from shopflow.store.idmap import IdMap

GROUPS = 4
PER_GROUP = 6
N_ITEMS = GROUPS * PER_GROUP
TEXTS = [
    "trail running shoe with cushioned sole, lightweight sneaker for runners",
    "arabica coffee beans, dark roast espresso, whole bean bag",
    "acrylic paint set with brushes for canvas painting artists",
    "soft cotton bath towel, absorbent bathroom towel set",
]
VARIANTS = ["size small", "size medium", "size large", "blue", "red", "family pack"]


def group_of(item: int) -> int:
    return item // PER_GROUP


def next_item(item: int) -> int:
    g, j = divmod(item, PER_GROUP)
    return g * PER_GROUP + (j + 1) % PER_GROUP


def planted_data(users_per_group: int = 30, seed: int = 0) -> InteractionData:
    """Cyclic walks within one group per user, with timestamps one minute apart."""
    rng = np.random.default_rng(seed)
    seqs, times = [], []
    for g in range(GROUPS):
        for _ in range(users_per_group):
            start, length = int(rng.integers(PER_GROUP)), int(rng.integers(3, 8))
            seqs.append(np.array([g * PER_GROUP + (start + t) % PER_GROUP for t in range(length)]))
            times.append(
                1_700_000_000.0 + float(rng.integers(0, 86_400 * 30)) + 60.0 * np.arange(length)
            )
    texts: list[str | None] = [
        f"{TEXTS[group_of(i)]}, {VARIANTS[i % PER_GROUP]}" for i in range(N_ITEMS)
    ]
    return InteractionData(
        name="planted",
        users=IdMap([f"u{u}" for u in range(len(seqs))]),
        items=IdMap([f"i{i}" for i in range(N_ITEMS)]),
        sequences=seqs,
        timestamps=times,
        side=ItemSide(text=texts),
    )
