"""Where kahani's shipped data lives: templates, word lists and the price table travel inside
the installed packages (see pyproject.toml), so they are found the same way from a wheel or
from the source tree; users point at their own files with flags."""

from importlib.resources import files
from pathlib import Path


def _package_dir(package: str) -> Path:
    # Installed wheels and editable installs both put the package on the file system.
    return Path(str(files(package)))


TEMPLATES_DIR = _package_dir("factory.prompt_templates")  # the repository's templates/
VOCAB_DIR = _package_dir("factory.word_lists")  # the repository's vocab_lists/
PRICES_FILE = _package_dir("factory") / "prices.toml"
