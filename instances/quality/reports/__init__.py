"""Quality reports: running a profile's tools, scoring, rendering HTML/JSON/Markdown and trends.
Imports every layer below it (core, testing, impact, checks, app)."""
