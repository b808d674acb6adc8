"""Natural-language user profiles: text <-> preferences, the SQLite store with its migrations, and LLM-TRSR summaries of long histories."""
