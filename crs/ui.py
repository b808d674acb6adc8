"""The Gradio chat UI, a thin adapter over ``crs.agent.Agent``.

Each browser tab gets its own ``Session`` (held in ``gr.State``); the agent and its models
are shared. Handlers never raise: an error becomes a message in the chat.
"""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from crs.state import FinalEvent, NoticeEvent, Session, StateEvent, TokenEvent, ToolEvent

if TYPE_CHECKING:
    import gradio as gr

    from crs.agent import Agent
    from crs.catalog import Item
    from crs.state import BeliefState

log = logging.getLogger(__name__)

ATTRIBUTION = (
    "Movie data: summaries, casts and genres from "
    '<a href="https://en.wikipedia.org/" target="_blank" rel="noopener">Wikipedia</a> and its contributors, '
    '<a href="https://creativecommons.org/licenses/by-sa/4.0/" target="_blank" rel="noopener">CC BY-SA 4.0</a>, '
    'via <a href="https://github.com/prust/wikipedia-movie-data" target="_blank" rel="noopener">wikipedia-movie-data</a>. '
    "No posters are shown."
)

CSS = """
.crs-cards { display: flex; flex-direction: column; gap: 8px; }
.crs-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; }
.crs-card h4 { margin: 0 0 2px 0; }
.crs-card .meta { font-size: 0.85em; opacity: 0.8; }
.crs-card .why { font-size: 0.85em; }
.crs-attribution { font-size: 0.8em; opacity: 0.75; }
"""

HistoryT = list[dict[str, str]]


def render_cards(items: tuple[Item, ...] | list[Item], reasons: dict[str, tuple[str, ...]] | None = None) -> str:
    if not items:
        return '<div class="crs-cards"><p>No recommendations yet. Tell me what you like.</p></div>'
    cards = []
    for item in items:
        title = html.escape(item.label)
        link = (
            f'<a href="{html.escape(item.url, quote=True)}" target="_blank" rel="noopener">Wikipedia</a>'
            if item.url.startswith(("https://", "http://"))
            else ""
        )
        genres = html.escape(", ".join(item.genres) or "no genre listed")
        summary = html.escape(item.summary[:220] + ("…" if len(item.summary) > 220 else ""))
        why = ", ".join((reasons or {}).get(item.id, ()))
        why_html = f'<div class="why">Matches: {html.escape(why)}</div>' if why else ""
        cards.append(
            f'<div class="crs-card" data-item-id="{html.escape(item.id, quote=True)}"><h4>{title}</h4>'
            f'<div class="meta">{genres} · {link}</div>{why_html}<div>{summary}</div></div>'
        )
    return '<div class="crs-cards">' + "".join(cards) + "</div>"


def render_belief(belief: BeliefState, agent: Agent) -> str:
    def label(kind: str, value: str) -> str:
        if kind == "item":
            item = agent.catalog.get(value)
            return item.label if item else value
        return value

    likes = [label(p.kind, p.value) for p in belief.preferences if p.polarity > 0]
    dislikes = [label(p.kind, p.value) for p in belief.preferences if p.polarity < 0]
    seen = [label("item", i) for i in belief.seen]
    lines = ["**What I know about you**"]
    lines.append("- Likes: " + (", ".join(likes) if likes else "nothing yet"))
    lines.append("- Not for you: " + (", ".join(dislikes) if dislikes else "nothing yet"))
    if seen:
        lines.append("- Already seen: " + ", ".join(seen))
    return "\n".join(lines)


def respond(agent: Agent, text: str, history: HistoryT | None, session: Session | None) -> Iterator[tuple]:
    """One chat turn, streamed: yields (history, cards, belief, session, textbox)."""
    session = session or Session(id=uuid.uuid4().hex)
    history = list(history or [])
    history.append({"role": "user", "content": text if isinstance(text, str) else ""})
    history.append({"role": "assistant", "content": ""})
    cards = render_cards([])
    belief_md = render_belief(session.belief, agent)
    notes: list[str] = []
    steps: list[str] = []
    reply = ""
    try:
        for event in agent.step(session, text):
            if isinstance(event, TokenEvent):
                reply += event.text
            elif isinstance(event, NoticeEvent):
                notes.append(event.message)
            elif isinstance(event, ToolEvent):
                steps.append(f"{event.call.name}: {event.result.summary} ({event.result.seconds:.2f}s)")
            elif isinstance(event, StateEvent):
                belief_md = render_belief(event.belief, agent)
            elif isinstance(event, FinalEvent):
                reply = event.reply or reply
                reasons = {}
                cards = render_cards(event.items, reasons)
                belief_md = render_belief(event.belief, agent)
            history[-1]["content"] = _compose(reply, notes, steps)
            yield history, cards, belief_md, session, ""
    except Exception:  # the server must outlive any bug in a turn
        log.exception("turn failed")
        history[-1]["content"] = (
            _compose(reply, notes, steps) + "\n\n_Sorry, something went wrong on my side; please try again._"
        )
        yield history, cards, belief_md, session, ""


def _compose(reply: str, notes: list[str], steps: list[str]) -> str:
    parts = [f"_{n}_" for n in notes]
    parts.append(reply or "…")
    if steps:
        body = "\n".join(f"- {html.escape(s)}" for s in steps)
        parts.append(f"<details><summary>Tool steps</summary>\n\n{body}\n</details>")
    return "\n\n".join(parts)


def new_conversation(agent: Agent) -> tuple:
    session = Session(id=uuid.uuid4().hex)
    return [], render_cards([]), render_belief(session.belief, agent), session, ""


def build_app(agent: Agent) -> gr.Blocks:
    """Build the Blocks app (not launched)."""
    import gradio as gr

    with gr.Blocks(title="crs: movie recommender") as demo:
        gr.Markdown(
            "## crs: a conversational movie recommender\n"
            "Tell me films you loved and what you don't want: "
            '*"I loved Alien but no romance please"*, *"a comedy from the 90s, nothing with Jim Carrey"*.'
        )
        session = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Chat", height=520, elem_id="crs-chat")
                text = gr.Textbox(placeholder="What are you in the mood for?", show_label=False, elem_id="crs-input")
                with gr.Row():
                    send = gr.Button("Send", variant="primary", elem_id="crs-send")
                    reset = gr.Button("New conversation", elem_id="crs-new")
            with gr.Column(scale=2):
                gr.Markdown("### Recommendations")
                cards = gr.HTML(render_cards([]), elem_id="crs-cards")
                belief = gr.Markdown(render_belief(Session().belief, agent), elem_id="crs-belief")
        gr.HTML(f'<div class="crs-attribution">{ATTRIBUTION}</div>')

        def on_message(message: str, history: HistoryT, sess: Session | None) -> Iterator[tuple]:
            yield from respond(agent, message, history, sess)

        outputs = [chat, cards, belief, session, text]
        limit = agent.cfg.serve.concurrency
        text.submit(on_message, [text, chat, session], outputs, concurrency_limit=limit)
        send.click(on_message, [text, chat, session], outputs, concurrency_limit=limit)
        reset.click(lambda: new_conversation(agent), None, outputs)
    demo.queue(max_size=agent.cfg.serve.max_queue, default_concurrency_limit=agent.cfg.serve.concurrency)
    return demo


def launch(agent: Agent, host: str, port: int, prevent_thread_lock: bool = False) -> gr.Blocks:
    import gradio as gr

    demo = build_app(agent)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        show_error=False,
        prevent_thread_lock=prevent_thread_lock,
        css=CSS,
        theme=gr.themes.Soft(),
        footer_links=["gradio"],
    )
    return demo
