"""kahani's prompt and rubric templates. Not code: this file makes the folder a package so
the templates ship inside the wheel (as `factory.prompt_templates`) and are found with
`importlib.resources`, installed or not."""
