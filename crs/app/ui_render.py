"""HTML and Markdown the UI shows: recommendation cards, the chat message of a turn, and the
profile's version history. Pure functions of plain values.

Nothing from the catalog, the model or the user reaches the page as markup: it goes through
``html.escape`` in HTML, and through ``safe_markdown`` (HTML escaped, then Markdown's
punctuation backslash-escaped, so no link, image, emphasis or code span can form) in Markdown.
The browser's own sanitizer is a second line, not the first."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crs.catalog import Catalog, Item
    from crs.profiles.text import Profile
    from crs.state import BeliefState

ATTRIBUTION = (
    "Movie data: summaries, casts and genres from "
    '<a href="https://en.wikipedia.org/" target="_blank" rel="noopener">Wikipedia</a> and its contributors, '
    '<a href="https://creativecommons.org/licenses/by-sa/4.0/" target="_blank" rel="noopener">CC BY-SA 4.0</a>, '
    'via <a href="https://github.com/prust/wikipedia-movie-data" target="_blank" rel="noopener">wikipedia-movie-data</a>. '
    "No posters are shown."
)

CSS = """
.crs-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 6px 10px !important;
            gap: 4px !important; }
.crs-card h4 { margin: 0 0 2px 0; font-size: 1.05em; }
.crs-card .meta { font-size: 0.85em; opacity: 0.85; }
.crs-card .why { font-size: 0.85em; font-style: italic; }
.crs-card .liked { font-size: 0.85em; color: var(--color-accent); }
.crs-card-buttons button { min-width: 0 !important; }
.crs-empty { opacity: 0.75; }
.crs-attribution { font-size: 0.8em; opacity: 0.75; }
"""

# Markdown punctuation that can start markup: links and images ([ ] !), emphasis (* _ ~),
# code (`), headings (#), tables (|), the backslash itself; < > & are HTML-escaped first.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]!#|~{}])")

EMPTY_CARDS = (
    '<p class="crs-empty">No recommendations yet. Tell me a film you loved, or what you are in the mood for.</p>'
)


def reason_line(item: Item, belief: BeliefState, catalog: Catalog) -> str:
    """One line on why a film was picked: the first liked attribute it matches."""
    from crs.reply.answers import reasons

    why = reasons(item, belief, catalog)
    if not why:
        return "Close to what you described."
    line = why[0]
    return line[0].upper() + line[1:] + "."


def card_html(item: Item, reason: str, liked: bool = False) -> str:
    """One recommendation card: title and year, genres, Wikipedia link, a reason."""
    title = html.escape(item.label)
    link = (
        f' · <a href="{html.escape(item.url, quote=True)}" target="_blank" rel="noopener">Wikipedia</a>'
        if item.url.startswith(("https://", "http://"))
        else ""
    )
    genres = html.escape(", ".join(item.genres) or "no genre listed")
    liked_html = '<div class="liked">You liked this</div>' if liked else ""
    return (
        f'<div class="crs-card-body" data-item-id="{html.escape(item.id, quote=True)}"><h4>{title}</h4>'
        f'<div class="meta">{genres}{link}</div><div class="why">{html.escape(reason)}</div>{liked_html}</div>'
    )


def safe_markdown(text: object) -> str:
    """``text`` shown literally in Markdown (which also renders HTML): HTML-escaped, and every
    character that could start Markdown markup backslash-escaped. Line breaks are kept."""
    escaped = html.escape(str(text) if text is not None else "", quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", escaped)


def compose_message(reply: str, notes: Sequence[str], steps: Sequence[str]) -> str:
    """The assistant's chat message: notices, the reply, and the tool steps folded away. The
    reply (model output naming catalog titles) and the notices are shown as plain text."""
    parts = [f"_{safe_markdown(n)}_" for n in notes]
    parts.append(safe_markdown(reply) if reply else "…")
    if steps:
        body = "\n".join(f"- {safe_markdown(s)}" for s in steps)
        parts.append(f"<details><summary>Tool steps</summary>\n\n{body}\n</details>")
    return "\n\n".join(parts)


def when(iso: str) -> str:
    """An ISO-8601 time as "2026-11-26 11:31 UTC" (unparseable text is shown as it is)."""
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def profile_status(profile: Profile | None, user: str, local: bool = False) -> str:
    who = f"**{html.escape(user)}**" + (" (one local user, no login)" if local else "")
    if profile is None:
        return f"{who} has no saved profile yet. Describe your taste below and press *Save*."
    return (
        f"{who}: version {profile.version}, saved {html.escape(when(profile.created_at))} "
        f"({html.escape(profile.source)})."
    )


def profile_history(versions: Sequence[Profile]) -> str:
    """A Markdown table of the versions, newest first."""
    if not versions:
        return "_No versions yet._"
    rows = ["| version | saved | source | text |", "|---|---|---|---|"]
    for p in sorted(versions, key=lambda p: -p.version):
        text = " ".join(p.text.split())
        text = text[:90] + ("…" if len(text) > 90 else "")
        cells = [str(p.version), when(p.created_at), p.source, text]
        rows.append("| " + " | ".join(html.escape(c).replace("|", "&#124;") for c in cells) + " |")
    return "\n".join(rows)
