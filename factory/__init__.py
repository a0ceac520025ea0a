"""factory: prompts from templates and word lists, LLM generations, clean datasets."""
