"""The turn loop: understand -> update belief -> decide -> retrieve and score -> reply."""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import replace

from crs.catalog import Catalog, load_catalog
from crs.config import Config
from crs.llm.base import ChatModel, LLMError, Message
from crs.llm.prompts import Prompts
from crs.llm.registry import load_chat_model
from crs.policy import Act, decide
from crs.profiles.db import ProfileStore, edit_profile
from crs.profiles.text import (
    ProfileError,
    ProfileParse,
    likes_line,
    parse_profile,
    profile_request,
    suppressed_keys,
    with_profile,
)
from crs.rank.candidates import Candidate, lookup_item, retrieve, score
from crs.rank.exclusion import Exclusion
from crs.rank.metadata import StoreError
from crs.rank.scorer import SeqScorer, sequential_scores
from crs.rank.store import ItemStore
from crs.reply import answers, compose
from crs.reply.grounding import GroundingGuard, films_named
from crs.reply.writer_data import fact_line
from crs.resources import index_catalog, load_reader, load_scorer
from crs.state import (
    BeliefState,
    BeliefUpdate,
    Event,
    FinalEvent,
    NoticeEvent,
    Session,
    StateEvent,
    TokenEvent,
    ToolEvent,
    Turn,
    apply,
    dropped_constraints,
    mark_shown,
)
from crs.tools import ToolCalls
from crs.understand import nlu
from crs.understand.extract import llm_extract, merge_rules_first
from crs.understand.intents import Intent, shift_topic, without_forgotten
from crs.understand.lexicon import OCCASION_WORDS
from crs.understand.linker import Linker
from crs.understand.message import Reading, Understander
from crs.understand.reader import MessageReader
from crs.understand.text import tokenize

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


class Agent:
    """Shared, read-only resources for all sessions; per-user state lives in ``Session``."""

    def __init__(
        self,
        cfg: Config,
        catalog: Catalog,
        store: ItemStore,
        llm: ChatModel,
        prompts: Prompts | None = None,
        linker: Linker | None = None,
        scorer: SeqScorer | None = None,
        profiles: ProfileStore | None = None,
        reader: MessageReader | None = None,
    ) -> None:
        self.cfg = cfg
        self.profiles = profiles  # users' profiles and conversation logs; None: no profiles
        self.scorer = scorer  # sequential model over the catalog; None: retrieval + popularity
        self.catalog = catalog
        self.store = store
        self.llm = llm
        self.prompts = prompts or Prompts()
        self.linker = linker or Linker(catalog)
        self.understander = Understander(self.linker, reader)  # reader None: the rules read alone
        # What runs with less than was configured, found at start (a missing shipped scorer or reader).
        self.degraded: list[str] = []
        mode = cfg.nlu.llm_extract
        self.use_llm_extraction = mode == "on" or (mode == "auto" and cfg.llm.backend == "openai")

    @classmethod
    def from_config(
        cls, cfg: Config, progress: bool = True, llm: ChatModel | None = None, profiles: bool = True
    ) -> Agent:
        """The agent ``cfg`` describes; ``profiles=False`` reads no user profiles and logs no turns
        (evaluation runs, which must not depend on or fill anyone's profile database)."""
        catalog = load_catalog(cfg.catalog.path, cfg.catalog.format)
        store = ItemStore.from_config(cfg)
        index_catalog(cfg, catalog, store, progress=progress)
        scorer = load_scorer(cfg, catalog)
        profile_store = ProfileStore.from_config(cfg) if profiles else None
        llm = llm or load_chat_model(cfg)
        reader = load_reader(cfg)
        agent = cls(cfg, catalog, store, llm, scorer=scorer, profiles=profile_store, reader=reader)
        if scorer is None and cfg.scorer.checkpoint:
            agent.degraded.append("the shipped sequential scorer is not used: ranking by retrieval and popularity")
        if reader is None and cfg.nlu.reader != "off":
            agent.degraded.append("the learned message reader is not used: the rules read messages alone")
        return agent

    # ---- the turn ------------------------------------------------------------------------

    def step(self, session: Session, text: object) -> Iterator[Event]:
        """Run one turn, yielding events; never raises for bad input or a failing LLM. The turn is
        timed by stage as its events pass (reading and belief, each tool, first token, reply) and,
        with a profile store and a user, logged with its update, belief, tool calls and notices."""
        start = time.perf_counter()
        before = len(session.turns)
        seconds: dict[str, float] = {}
        notices: list[str] = []
        last = start
        for event in self._turn(session, text):
            now = time.perf_counter()
            if isinstance(event, StateEvent):
                seconds["read"] = round(now - start, 4)
            elif isinstance(event, ToolEvent):
                seconds[event.call.name] = round(seconds.get(event.call.name, 0.0) + event.result.seconds, 4)
            elif isinstance(event, NoticeEvent):
                notices.append(event.message)
            elif isinstance(event, TokenEvent):
                seconds.setdefault("first_token", round(now - start, 4))
            elif isinstance(event, FinalEvent):
                seconds["reply"] = round(now - last, 4)
                seconds["total"] = round(now - start, 4)
                if len(session.turns) > before:
                    inner = session.turns[-1].seconds  # understand, llm and guard, timed inside the turn
                    if "understand" in inner and "read" in seconds:
                        inner = inner | {"belief": round(max(0.0, seconds["read"] - inner["understand"]), 4)}
                    session.turns[-1].seconds = inner | seconds
                    self._log_turn(session, event, notices)
            if not isinstance(event, TokenEvent):
                last = now
            yield event

    def _turn(self, session: Session, text: object) -> Iterator[Event]:
        message, notices = clean_message(text, self.cfg.retrieval.max_message_chars)
        for notice in notices:
            yield NoticeEvent(notice)
        if not message:
            reply = "Tell me about a movie you liked, or a genre you're in the mood for."
            yield TokenEvent(reply)
            yield FinalEvent(reply, (), session.belief, "ask")
            return
        turn_no = len(session.turns) + 1
        calls = ToolCalls()
        profile = self._profile(session)
        request = profile_request(message) if self.profiles is not None and session.user else None
        if request is not None:
            yield from self._profile_turn(session, message, request, turn_no)
            return
        started = time.perf_counter()
        reading = self.understander.read(message, session.belief, turn_no)
        stages = {"understand": round(time.perf_counter() - started, 4)}
        intent = reading.intent
        update = reading.update
        if self.use_llm_extraction and not {"ask_item", "ask_why"} & set(reading.acts):
            try:
                extracted = llm_extract(message, self.llm, self.prompts, self.linker, turn_no, calls=calls)
            except LLMError as exc:  # a server that is down must not end the turn: the rules read alone
                log.warning("LLM extraction failed: %s", exc)
                extracted = BeliefUpdate()
                yield NoticeEvent(f"The language model could not read your message ({exc}).", degraded=True)
            yield from calls.take()
            update = merge_rules_first(update, extracted)
        if intent.shift:
            update = shift_topic(update, self._profiled(session.belief, profile, session, update))
        own = apply(session.belief, update)  # what this conversation says; the profile's preferences go under it
        for c in dropped_constraints(session.belief, own, update):
            bound = "from" if c.kind == "year_min" else "up to"
            yield NoticeEvent(f"I no longer keep to films {bound} {c.value}, so that what you asked for can fit.")
        belief = self._profiled(own, profile, session, update)
        yield StateEvent(belief, update)

        act = decide(belief, reading)
        shown: list[Candidate] = []
        if act.kind == "recommend":
            query = self.query_text(reading, belief)
            if intent.critique and session.turns:
                # "something newer": keep searching for what the last request asked for.
                query = "\n".join([query, self.query_text(None, belief, session.turns[-1].user)])
            try:
                shown = self._recommend(query, belief, calls)
            except StoreError as exc:  # a damaged index or a failing Chroma server: the turn still ends
                log.error("item store failed: %s", exc)
                reply = "I cannot search the catalog right now: the item index failed (see the notice)."
                yield NoticeEvent(f"The item index failed: {exc}", degraded=True)
                yield TokenEvent(reply)
                session.belief = own  # what the user said this turn is kept
                session.turns.append(Turn(turn_no, message, reply, "error", (), update, tuple(calls.events)))
                yield FinalEvent(reply, (), belief, "error")
                return
            yield from calls.take()
            if not shown:
                act = decide(belief, reading, found=0)
        elif act.item_id is not None and act.kind in ("answer", "explain"):
            lookup_item(self.catalog, act.item_id, calls=calls)
            yield from calls.take()
        reply_parts: list[str] = []
        about = likes_line(profile, self.catalog) if profile else ""
        for event in self._reply(act, message, belief, shown, intent, profile=about, turn=turn_no, stages=stages):
            if isinstance(event, TokenEvent):
                reply_parts.append(event.text)
            yield event
        reply = "".join(reply_parts).strip()
        items = tuple(c.item for c in shown)
        focus = act.item_id if act.kind in ("answer", "explain", "acknowledge") else None
        down = compose.turned_down(intent, belief, self.catalog, turn_no) if act.kind == "recommend" else None
        if down is not None and down.label in reply:
            focus = down.id  # "What didn't you like about X?": the answer speaks of X
        belief = replace(mark_shown(belief, [i.id for i in items]), **({"focus": focus} if focus else {}))
        session.belief = replace(mark_shown(own, [i.id for i in items]), **({"focus": focus} if focus else {}))
        session.turns.append(
            Turn(
                turn_no,
                message,
                reply,
                act.kind,
                tuple(i.id for i in items),
                update,
                tuple(calls.events),
                seconds=stages,
            )
        )
        yield FinalEvent(reply, items, belief, act.kind)

    # ---- the user's profile ------------------------------------------------------------------

    def _profile(self, session: Session) -> ProfileParse | None:
        """The session user's profile, read into preferences; None without one."""
        if self.profiles is None or not session.user:
            return None
        try:
            stored = self.profiles.get(session.user)
        except ProfileError as exc:
            log.warning("profile of %r not read: %s", session.user, exc)
            return None
        return parse_profile(stored.text, self.linker) if stored else None

    @staticmethod
    def _profiled(
        belief: BeliefState, profile: ProfileParse | None, session: Session, update: BeliefUpdate
    ) -> BeliefState:
        return with_profile(belief, profile, suppressed_keys(session.turns, update)) if profile else belief

    def _profile_turn(self, session: Session, message: str, request: str, turn_no: int) -> Iterator[Event]:
        """Show the profile, or change it with the ``edit_profile`` tool."""
        assert self.profiles is not None
        calls = ToolCalls()
        act = "show_profile" if request == "show" else "edit_profile"
        lifted: tuple[tuple[str, str], ...] = ()
        try:
            if request == "show":
                stored = self.profiles.get(session.user)
                reply = (
                    f"Your profile (version {stored.version}):\n{stored.text}"
                    if stored
                    else "You have no profile yet. Tell me, for example: add that I love westerns."
                )
            else:
                edit = edit_profile(self.profiles, session.user, message, self.linker, calls=calls)
                yield from calls.take()
                reply = edit.message
                lifted = edit.keys
                # The newest statement wins: what this conversation said about the same things goes.
                session.belief = apply(session.belief, BeliefUpdate(retract=edit.keys))
        except ProfileError as exc:
            yield NoticeEvent(str(exc))
            reply = f"I could not change your profile: {exc}"
        yield TokenEvent(reply)
        session.turns.append(Turn(turn_no, message, reply, act, (), BeliefUpdate(), tuple(calls.events), lifted))
        profile = self._profile(session)
        yield FinalEvent(reply, (), self._profiled(session.belief, profile, session, BeliefUpdate()), act)

    def _log_turn(self, session: Session, final: FinalEvent, notices: list[str]) -> None:
        """Log the session's latest turn for research (``crs logs``): message, reply, act, items, the
        update and the belief after it, the tool calls and the stage times."""
        if self.profiles is None or not self.cfg.profile.log_turns:
            return
        user = session.user or "local"  # a chat without a user (its profile is not read) is logged as local
        turn = session.turns[-1]
        saved = turn.to_dict()
        record = {
            "update": saved["update"],
            "belief": final.belief.to_dict(),
            "tools": [
                {"name": e["call"]["name"], "arguments": e["call"]["arguments"]}
                | {k: e["result"][k] for k in ("summary", "seconds", "error")}
                for e in saved["tools"]
            ],
            "seconds": turn.seconds,
            "notices": notices,
        }
        try:
            self.profiles.log_turn(user, session.id, turn.user, turn.reply, turn.act, list(turn.item_ids), record)
        except (ProfileError, OSError, RuntimeError) as exc:  # a full disk must not end the conversation
            log.warning("turn of %r not logged: %s", session.user, exc)

    def respond(self, session: Session, text: object) -> FinalEvent:
        """Run a turn to the end and return its final event."""
        final = None
        for event in self.step(session, text):
            if isinstance(event, FinalEvent):
                final = event
        assert final is not None
        return final

    def read(self, session: Session, text: object) -> Reading:
        """How the agent reads ``text`` in ``session``'s context: the acts, the linked mentions with
        their polarity and what they refer to, and the belief update. No retrieval, no LLM, and the
        session is left unchanged."""
        message, _ = clean_message(text, self.cfg.retrieval.max_message_chars)
        return self.understander.read(message, session.belief, len(session.turns) + 1)

    def query_text(self, reading: Reading | None, belief: BeliefState, text: str = "") -> str:
        """What to search for besides the liked items: what the user wants, not every word typed.
        Liked genres, people and themes, and the message's own describing words from its positive
        clauses ("a heist with a twist", "space pirates"); never rejected words, never what the
        message asks to forget, never names already in the belief, nor when and with whom the film
        is watched ("for friday night")."""
        message = reading.text if reading is not None else text
        words = nlu.positive_text(without_forgotten(message))
        names = [m.text for m in reading.mentions] if reading is not None else []
        for name in names:
            words = words.replace(name, " ")
        describing = [w for w in tokenize(words) if w.norm not in OCCASION_WORDS]
        parts = [" ".join(t.text for t in describing)]
        if belief.liked_genres:
            parts.append("Genres: " + ", ".join(belief.liked_genres))
        people = belief.values("person", 1)
        if people:
            parts.append("Starring " + ", ".join(people))
        keywords = belief.values("keyword", 1)
        if keywords:
            parts.append(", ".join(keywords))
        return "\n".join(p for p in parts if p.strip())

    def _recommend(self, query: str, belief: BeliefState, calls: ToolCalls) -> list[Candidate]:
        exclusion = Exclusion.from_belief(belief)
        broad = not (belief.liked_items or belief.values("person", 1) or belief.values("keyword", 1))
        retrieval = self.cfg.retrieval
        candidates = retrieve(
            self.store,
            self.catalog,
            query,
            k=retrieval.broad_candidates if broad else retrieval.candidates,
            like_ids=belief.liked_items[-3:],
            exclusion=exclusion,
            themes=belief.values("keyword", 1),
            people=belief.values("person", 1),
            calls=calls,
        )
        seq = sequential_scores(self.scorer, belief.liked_items, [c.item.id for c in candidates], calls=calls)
        ranked = score(
            candidates,
            belief,
            k=retrieval.show,
            seq_scores=seq or None,
            exclusion=exclusion,
            weights=self.cfg.scoring,
            broad=broad,
            calls=calls,
        )
        # The last line of defence: nothing the user ruled out is ever shown.
        return [c for c in ranked if exclusion.allows(c.item)]

    def _reply(
        self,
        act: Act,
        message: str,
        belief: BeliefState,
        shown: list[Candidate],
        intent: Intent,
        profile: str = "",
        turn: int = 0,
        stages: dict[str, float] | None = None,
    ) -> Iterator[Event]:
        dislikes = nlu.describe([p for p in belief.preferences if p.polarity < 0], self.catalog)
        quoted = message.replace('"', "'")[:1000]
        allowed = (
            {c.item.id for c in shown} | {p.value for p in belief.preferences if p.kind == "item"} | set(belief.seen)
        )
        required = ""
        lead: tuple[str, str] | None = None  # (sentence, item id): shown before the model's words
        likes, ruled_out = compose.taste(belief, self.catalog)
        if act.kind == "ask":
            note = compose.ask_note(belief)
            messages = self.prompts.render(
                "reply",
                act="ask",
                message=quoted,
                likes=likes,
                dislikes=ruled_out,
                films=[],
                note=note,
                profile=profile,
            )
            fallback = compose.ask_question(belief, self.catalog, turn=len(belief.shown) + len(belief.preferences))
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
        elif act.kind == "acknowledge" and act.item_id and (item := self.catalog.get(act.item_id)):
            yield TokenEvent(
                f"Great choice: enjoy {item.label}! When you want something else, tell me what you're in the mood for."
            )
            return
        elif act.kind == "explain" and act.item_id and (item := self.catalog.get(act.item_id)):
            # The reasons come from the belief and the record; the LLM may word them, but its
            # wording must name the main one, or the plain explanation is shown instead.
            # The 135M local model garbles reasons ("ruled out because it has no time travel"),
            # so it only words them behind a served LLM; locally the plain sentence is shown.
            fallback = answers.explanation(item, belief, self.catalog)
            keys = answers.reason_keys(item, belief, self.catalog)
            if not keys or self.cfg.llm.backend != "openai":
                yield TokenEvent(fallback)
                return
            allowed = allowed | {item.id}
            reasons = answers.reasons(item, belief, self.catalog)
            messages = self.prompts.render("explain", question=quoted, item=item, reasons=reasons)
            required = keys[0]
        elif act.kind == "answer" and act.item_id and (item := self.catalog.get(act.item_id)):
            allowed = allowed | {item.id}
            facts = answers.answer_facts(item, act.about)  # type: ignore[arg-type]
            if not facts.key:  # plots and overviews: the record's own words beat a paraphrase
                yield TokenEvent(facts.text)
                return
            messages = self.prompts.render("answer", question=quoted, facts=facts.context, answer=facts.text)
            fallback, required = facts.text, facts.key
        else:
            top = shown[0].item
            note = compose.recommend_note(intent, belief, self.catalog, turn)
            fallback = f"My top pick for you is {top.label}."
            if getattr(self.llm, "continues_prefix", False):
                # The opener is the agent's, grounded, and shown at once: reading its prompt is most
                # of a local model's time in a turn. The model goes on from it, about the top film, so
                # the other two are given by title and genres only: a prompt of ~200 tokens, not ~300.
                # (With the top film alone the tuned writer adds nothing after the opener.)
                lead = (fallback, top.id)
            films = [fact_line(c.item, brief=lead is not None and n > 0) for n, c in enumerate(shown[:3])]
            messages = self.prompts.render(
                "reply",
                act="recommend",
                message=quoted,
                likes=likes,
                dislikes=ruled_out,
                films=films,
                note=note,
                profile=profile,
            )
            if lead:
                messages = [*messages, Message("assistant", lead[0])]
                fallback = ""
        # Nothing the user ruled out may be praised: rejected genres, people, and the titles of rejected films.
        rejected = [it.title for it in (self.catalog.get(i) for i in belief.disliked_items) if it is not None]
        banned = belief.disliked_genres + belief.values("person", -1) + rejected
        said = lead[0] if lead else ""
        if lead:
            yield TokenEvent(lead[0])
        for event in self._phrase(messages, allowed, fallback, required, banned, stages=stages, lead=lead):
            said += event.text if isinstance(event, TokenEvent) else ""
            yield event
        if act.kind == "recommend":
            top = shown[0].item
            # "I picked it because ...": only when the film the reply named last is the top pick.
            named = films_named(self.linker.mentions(said))
            space = "" if said[-1:].isspace() else " "  # a kept sentence may end with the space before a dropped one
            yield TokenEvent(space + answers.explanation(top, belief, self.catalog, named=named[-1:] == [top.id]))
            if "?" not in said and (question := compose.why_not_question(intent, belief, self.catalog, turn)):
                yield TokenEvent(" " + question)
            lines = [
                f"{n}. {c.item.label}: {', '.join(c.item.genres) or 'no genre listed'}" for n, c in enumerate(shown, 1)
            ]
            yield TokenEvent("\n\nMy picks:\n" + "\n".join(lines))

    def _phrase(
        self,
        messages: list[Message],
        allowed: set[str],
        fallback: str,
        required: str,
        banned: list[str],
        stages: dict[str, float] | None = None,
        lead: tuple[str, str] | None = None,
    ) -> Iterator[Event]:
        """Stream the LLM's wording through the grounding guard; use ``fallback`` when it
        fails, says nothing usable, or (with ``required``) leaves out the fact it must state.
        Sentences naming what the user ruled out (``banned``) are dropped too. The seconds spent
        waiting for the LLM (and for its first words, "llm_first") and in the guard are added to
        ``stages`` ("llm", "guard"). ``lead`` (sentence, item id) was shown already and the model
        continues it: see GroundingGuard.lead."""
        prompt = "\n".join(m.content for m in messages)  # a sentence copied out of any of it is an echo
        guard = GroundingGuard(self.linker, allowed, banned=banned, prompt=prompt)
        if lead:
            guard.lead(*lead)
        emitted: list[str] = []
        times = {"llm": 0.0, "guard": 0.0}
        try:
            clock = time.perf_counter()
            for delta in self.llm.stream(messages, max_new_tokens=self.cfg.llm.max_new_tokens):
                now = time.perf_counter()
                times["llm"] += now - clock
                times.setdefault("llm_first", times["llm"])  # the model reading its prompt: until its first words
                safe = guard.feed(delta)
                times["guard"] += time.perf_counter() - now
                if safe:
                    emitted.append(safe)
                    if not required:
                        yield TokenEvent(safe)
                clock = time.perf_counter()  # the reader's time with a token is neither the LLM's nor the guard's
            times["llm"] += time.perf_counter() - clock
            clock = time.perf_counter()
            tail = guard.flush(drop_fragment=bool(emitted))
            times["guard"] += time.perf_counter() - clock
            if tail:
                emitted.append(tail)
                if not required:
                    yield TokenEvent(tail)
        except LLMError as exc:
            log.warning("LLM failed: %s", exc)
            yield NoticeEvent(f"The language model failed ({exc}); showing a plain answer instead.", degraded=True)
        except Exception:  # a model bug must not end the conversation
            log.exception("LLM crashed")
            yield NoticeEvent("The language model failed; showing a plain answer instead.", degraded=True)
        if stages is not None:
            for stage, spent in times.items():
                stages[stage] = round(stages.get(stage, 0.0) + spent, 4)
        if guard.removed:
            log.info("grounding guard removed %d sentence(s)", len(guard.removed))
        text = "".join(emitted)
        if required:
            # Checked whole before showing: a fact the model got wrong must not flash by.
            yield TokenEvent(text if required.casefold() in text.casefold() else fallback)
        elif not emitted and fallback:
            yield TokenEvent(fallback)
