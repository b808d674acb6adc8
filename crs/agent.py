"""The turn loop: understand -> update belief -> decide -> retrieve and score -> reply."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import replace

from crs import answers, nlu
from crs.catalog import Catalog, Item, load_catalog
from crs.config import Config, ConfigError
from crs.extract import llm_extract, merge_rules_first
from crs.grounding import GroundingGuard
from crs.intents import Intent, read_intent, shift_topic, without_forgotten
from crs.llm import ChatModel, LLMError, Message, load_chat_model
from crs.policy import Act, decide
from crs.prompts import Prompts
from crs.state import (
    BeliefState,
    Event,
    FinalEvent,
    NoticeEvent,
    Session,
    StateEvent,
    TokenEvent,
    ToolEvent,
    Turn,
    apply,
    mark_shown,
)
from crs.store import IndexReport, ItemStore, first_sentences
from crs.tools import Candidate, retrieve, run_tool, score

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def clean_message(text: object, max_chars: int) -> tuple[str, list[str]]:
    """Normalise a user message; return it with notices about what was changed."""
    notices: list[str] = []
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = unicodedata.normalize("NFC", text)
    cleaned = _CONTROL.sub(" ", text)
    if cleaned != text:
        notices.append("Control characters in your message were removed.")
    cleaned = re.sub(r"[ \t]+", " ", cleaned)
    cleaned = re.sub(r"\s*\n\s*", "\n", cleaned).strip()
    if len(cleaned) > max_chars:
        notices.append(f"Your message was {len(cleaned):,} characters long; only the first {max_chars:,} were read.")
        cleaned = cleaned[:max_chars]
    return cleaned, notices


def index_catalog(
    cfg: Config, catalog: Catalog, store: ItemStore, progress: bool = True, prune: bool = False
) -> tuple[Catalog, IndexReport]:
    """Index the configured part of the catalog (idempotent: unchanged items are skipped)."""
    subset = catalog.filter(cfg.catalog.min_year, cfg.catalog.min_summary_chars)
    report = store.index(subset.items, progress=progress, prune=prune)
    log.info("index: %s", report)
    return subset, report


class Agent:
    """Shared, read-only resources for all sessions; per-user state lives in ``Session``."""

    def __init__(
        self,
        cfg: Config,
        catalog: Catalog,
        store: ItemStore,
        llm: ChatModel,
        prompts: Prompts | None = None,
        linker: nlu.Linker | None = None,
    ) -> None:
        self.cfg = cfg
        self.catalog = catalog
        self.store = store
        self.llm = llm
        self.prompts = prompts or Prompts()
        self.linker = linker or nlu.Linker(catalog)
        mode = cfg.nlu.llm_extract
        if mode not in ("auto", "on", "off"):
            raise ConfigError(f"[nlu] llm_extract must be auto, on or off, not {mode!r}")
        self.use_llm_extraction = mode == "on" or (mode == "auto" and cfg.llm.backend == "openai")

    @classmethod
    def from_config(cls, cfg: Config, progress: bool = True, llm: ChatModel | None = None) -> Agent:
        catalog = load_catalog(cfg.catalog.path, cfg.catalog.format)
        store = ItemStore.from_config(cfg)
        index_catalog(cfg, catalog, store, progress=progress)
        return cls(cfg, catalog, store, llm or load_chat_model(cfg))

    # ---- the turn ------------------------------------------------------------------------

    def step(self, session: Session, text: object) -> Iterator[Event]:
        """Run one turn, yielding events; never raises for bad input or a failing LLM."""
        message, notices = clean_message(text, self.cfg.retrieval.max_message_chars)
        for notice in notices:
            yield NoticeEvent(notice)
        if not message:
            reply = "Tell me about a movie you liked, or a genre you're in the mood for."
            yield TokenEvent(reply)
            yield FinalEvent(reply, (), session.belief, "ask")
            return
        turn_no = len(session.turns) + 1
        tools: list[ToolEvent] = []
        intent = read_intent(message, self.linker, session.belief, turn_no)
        update = nlu.understand(message, self.linker, turn=turn_no)
        if self.use_llm_extraction and intent.kind == "none":
            extracted, event = run_tool(
                "extract",
                lambda text: llm_extract(text, self.llm, self.prompts, self.linker, turn_no),
                lambda out: f"{len(out.preferences)} preferences, {len(out.seen)} seen",
                text=message,
            )
            tools.append(event)
            yield event
            update = merge_rules_first(update, extracted)
        update = update.merged(intent.update)
        if intent.shift:
            update = shift_topic(update, session.belief)
        belief = apply(session.belief, update)
        yield StateEvent(belief, update)

        act = decide(belief, message, intent)
        shown: list[Candidate] = []
        if act.kind == "recommend":
            query = self.query_text(message, belief)
            if intent.critique and session.turns:
                # "something newer": keep searching for what the last request asked for.
                query = "\n".join([query, nlu.positive_text(session.turns[-1].user)])
            shown, tool_events = self._recommend(query, belief)
            tools += tool_events
            yield from tool_events
            if not shown:
                act = Act("no_results", "every candidate was excluded")
        elif act.item_id is not None:
            _, event = run_tool(
                "lookup_item",
                lambda item_id: self.catalog.get(item_id),
                lambda out: f"record of {out.label}" if out else "not in the catalog",
                item_id=act.item_id,
            )
            tools.append(event)
            yield event
        reply_parts: list[str] = []
        for event in self._reply(act, message, belief, shown, intent):
            if isinstance(event, TokenEvent):
                reply_parts.append(event.text)
            yield event
        reply = "".join(reply_parts).strip()
        items = tuple(c.item for c in shown)
        belief = mark_shown(belief, [i.id for i in items])
        session.belief = belief
        session.turns.append(Turn(turn_no, message, reply, act.kind, tuple(i.id for i in items), update, tuple(tools)))
        yield FinalEvent(reply, items, belief, act.kind)

    def respond(self, session: Session, text: object) -> FinalEvent:
        """Run a turn to the end and return its final event."""
        final = None
        for event in self.step(session, text):
            if isinstance(event, FinalEvent):
                final = event
        assert final is not None
        return final

    @staticmethod
    def query_text(message: str, belief: BeliefState) -> str:
        """What to search for besides the liked items: the message's positive words, liked
        genres and people. Rejected words are left out so they do not pull results."""
        parts = [nlu.positive_text(without_forgotten(message))]
        if belief.liked_genres:
            parts.append("Genres: " + ", ".join(belief.liked_genres))
        people = belief.values("person", 1)
        if people:
            parts.append("Starring " + ", ".join(people))
        keywords = belief.values("keyword", 1)
        if keywords:
            parts.append(", ".join(keywords))
        return "\n".join(p for p in parts if p.strip())

    def _recommend(self, query: str, belief: BeliefState) -> tuple[list[Candidate], list[ToolEvent]]:
        events = []
        candidates, event = run_tool(
            "retrieve",
            lambda **kw: retrieve(self.store, self.catalog, **kw),
            lambda out: f"{len(out)} candidates from the item store",
            query=query,
            k=self.cfg.retrieval.candidates,
            year_min=belief.year_min,
            year_max=belief.year_max,
            like_ids=belief.liked_items[-3:],
            exclude_genres=belief.disliked_genres,
            exclude_ids=sorted(belief.excluded_items | set(belief.shown)),
            exclude_people=belief.values("person", -1),
        )
        events.append(event)
        ranked, event = run_tool(
            "score",
            lambda **kw: score(candidates, belief, **kw),
            lambda out: "top: " + ", ".join(c.item.label for c in out[:3]),
            k=self.cfg.retrieval.show,
        )
        events.append(event)
        return [c for c in ranked if self._allowed(c.item, belief)], events

    @staticmethod
    def _allowed(item: Item, belief: BeliefState) -> bool:
        """The last line of defence: nothing the user ruled out is ever shown."""
        if item.id in belief.excluded_items:
            return False
        if any(item.has_genre(g) for g in belief.disliked_genres):
            return False
        year_min, year_max = belief.year_min, belief.year_max
        if (year_min or year_max) and not item.year:
            return False
        if (year_min and item.year < year_min) or (year_max and item.year > year_max):  # type: ignore[operator]
            return False
        banned = {p.casefold() for p in belief.values("person", -1)}
        return not any(c.casefold() in banned for c in item.cast)

    def _reply(
        self, act: Act, message: str, belief: BeliefState, shown: list[Candidate], intent: Intent
    ) -> Iterator[Event]:
        dislikes = nlu.describe([p for p in belief.preferences if p.polarity < 0], self.catalog)
        quoted = message.replace('"', "'")[:1000]
        allowed = (
            {c.item.id for c in shown} | {p.value for p in belief.preferences if p.kind == "item"} | set(belief.seen)
        )
        required = ""
        if act.kind == "ask":
            messages = self.prompts.render("ask", message=quoted, genres=self.catalog.genres()[:6])
            fallback = "What kind of movie are you in the mood for? Tell me a film you loved, or a genre."
        elif act.kind == "no_results":
            # Said plainly: the small local model turns this into an echo of the prompt.
            limits = [d[2:] for d in dislikes]
            if belief.year_min or belief.year_max:
                limits.append(f"years {belief.year_min or '…'}–{belief.year_max or '…'}")
            yield TokenEvent(
                "Nothing left in the catalog fits all of that"
                + (f" ({'; '.join(limits)})" if limits else "")
                + ". Could you relax one of your wishes, or try another genre?"
            )
            return
        elif act.kind == "explain" and act.item_id and (item := self.catalog.get(act.item_id)):
            # The reasons come from the belief and the record; said plainly, they stay true.
            yield TokenEvent(answers.explanation(item, belief, self.catalog))
            return
        elif act.kind == "answer" and act.item_id and (item := self.catalog.get(act.item_id)):
            allowed = allowed | {item.id}
            facts = answers.answer_facts(item, intent.about)
            if not facts.key:  # plots and overviews: the record's own words beat a paraphrase
                yield TokenEvent(facts.text)
                return
            messages = self.prompts.render("answer", question=quoted, facts=facts.context, answer=facts.text)
            fallback, required = facts.text, facts.key
        else:
            top = shown[0].item
            messages = self.prompts.render(
                "recommend",
                message=quoted,
                top=top,
                blurb=first_sentences(top.summary, 2)[:320] or ", ".join(top.genres),
            )
            fallback = f"My top pick for you is {top.label}."
        banned = belief.disliked_genres + belief.values("person", -1)
        yield from self._phrase(messages, allowed, fallback, required, banned)
        if act.kind == "recommend":
            lines = [
                f"{n}. {c.item.label}: {', '.join(c.item.genres) or 'no genre listed'}" for n, c in enumerate(shown, 1)
            ]
            yield TokenEvent("\n\nMy picks:\n" + "\n".join(lines))

    def _phrase(
        self, messages: list[Message], allowed: set[str], fallback: str, required: str, banned: list[str]
    ) -> Iterator[Event]:
        """Stream the LLM's wording through the grounding guard; use ``fallback`` when it
        fails, says nothing usable, or (with ``required``) leaves out the fact it must state.
        Sentences naming what the user ruled out (``banned``) are dropped too."""
        guard = GroundingGuard(self.linker, allowed, banned=banned)
        emitted: list[str] = []
        try:
            for delta in self.llm.stream(messages, max_new_tokens=self.cfg.llm.max_new_tokens):
                safe = guard.feed(delta)
                if safe:
                    emitted.append(safe)
                    if not required:
                        yield TokenEvent(safe)
            tail = guard.flush(drop_fragment=bool(emitted))
            if tail:
                emitted.append(tail)
                if not required:
                    yield TokenEvent(tail)
        except LLMError as exc:
            log.warning("LLM failed: %s", exc)
            yield NoticeEvent(f"The language model failed ({exc}); showing a plain answer instead.")
        except Exception:  # a model bug must not end the conversation
            log.exception("LLM crashed")
            yield NoticeEvent("The language model failed; showing a plain answer instead.")
        if guard.removed:
            log.info("grounding guard removed %d sentence(s)", len(guard.removed))
        text = "".join(emitted)
        if required:
            # Checked whole before showing: a fact the model got wrong must not flash by.
            yield TokenEvent(text if required.casefold() in text.casefold() else fallback)
        elif not emitted:
            yield TokenEvent(fallback)


def new_session(session_id: str = "local", user: str = "local") -> Session:
    return replace(Session(), id=session_id, user=user)
