"""The Kaggle competitions arc-trm packages for (standard library only: `arc-trm --help` lists them
everywhere, the Kaggle image included)."""

# The ARC-AGI-2 competitions arc-trm's notebook is built for (same file names, 4x L4, 12 h, internet
# off). Another slug is allowed with a warning: Kaggle may open a new track.
KNOWN_COMPETITIONS = {
    "arc-prize-2025": "ARC Prize 2025",
    "arc-prize-2026-arc-agi-2": "ARC Prize 2026, ARC-AGI-2 track",
}


def competition_warnings(slug: str) -> list[str]:
    if slug in KNOWN_COMPETITIONS:
        return []
    return [f"competition '{slug}' is not one arc-trm knows ({', '.join(KNOWN_COMPETITIONS)}): the notebook "
            "expects the ARC-AGI-2 file names (arc-agi_test_challenges.json); check the competition's data page"]
