"""`judge play`: try models side by side in the browser before reading any score.

`settings.py` holds the sampling controls (bounds shared by flags and the page),
`backends.py` loads what a MODEL argument names (a causal LM streamed through
`factory.llm.streamer`, a sequence classifier, or a provider:model chat model), and
`app.py` serves the page (`page.html`, `page.css`, `page.js`, pasted inline) and its JSON
API on 127.0.0.1.
"""
