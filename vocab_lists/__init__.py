"""kahani's word lists. Not code: this file makes the folder a package so the lists ship
inside the wheel (as `factory.word_lists`) and are found with `importlib.resources`,
installed or not."""
