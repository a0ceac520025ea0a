"""Where the project's shipped data lives: `templates/` and `vocab_lists/` beside the packages."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PROJECT_ROOT / "templates"
VOCAB_DIR = PROJECT_ROOT / "vocab_lists"
PRICES_FILE = Path(__file__).resolve().parent / "prices.toml"
