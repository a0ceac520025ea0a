"""trainer: tokenizers and small GPT models from factory datasets."""
