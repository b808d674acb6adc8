"""The HTTP API served by ``crs serve`` beside the page (the page is mounted at ``/`` of the same app).

- ``POST /v1/chat/completions``: OpenAI-compatible, streamed (server-sent events) or not. The
  conversation lives on the server, keyed by a session id the client sends (the ``X-Session-Id``
  header, else the request's ``user`` field); only the last user message of ``messages`` is read.
  Without an id a new session is started; its id comes back in the ``X-Session-Id`` header and in
  the response's ``crs`` field, which also carries the act, the recommended items, the belief and
  any notices (in a stream: on the last chunk).
- ``POST /v1/recommend``: ``{"message": ..., "session": ...}`` -> ``{"reply", "act", "items", "belief",
  "notices", "session"}``.
- ``GET`` / ``PUT /v1/profile/{user}``: a user's saved profile; ``PUT`` takes ``{"text": ...}`` and
  saves a new version.
- ``GET /v1/models``: the one model, ``crs``.

With logins (``[serve] auth``) every call must carry one, as HTTP Basic or as ``Authorization:
Bearer user:password`` (what an OpenAI client sends as its API key); a session and a profile belong
to the login, and another login gets 403 for them. Without logins everything belongs to the local
user. Turns are bounded like the page's (``[serve] concurrency``, ``max_sessions``, ``max_turns``,
``session_idle_minutes``).
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# FastAPI at the top: it reads the handlers' annotations from this module's names (only crs.app.ui.launch
# imports this module, so nothing loads it without a server).
from fastapi import Body, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from crs.app.sessions import bound_turns
from crs.app.ui_core import LOCAL_USER, MAX_PROFILE_CHARS
from crs.state import FinalEvent, NoticeEvent, Session, TokenEvent

if TYPE_CHECKING:
    from crs.agent import Agent

log = logging.getLogger(__name__)

MODEL = "crs"
MAX_ID_CHARS = 200


@dataclass
class _Held:
    session: Session
    lock: threading.Lock = field(default_factory=threading.Lock)  # one turn at a time per session
    used: float = field(default_factory=time.monotonic)


class ApiSessions:
    """Sessions of API clients, by (login, session id): at most ``capacity`` (the least recently
    used goes first), each forgotten after ``idle_seconds`` without a turn."""

    def __init__(self, capacity: int, idle_seconds: float) -> None:
        self.capacity = max(1, capacity)
        self.idle = idle_seconds
        self._held: OrderedDict[tuple[str, str], _Held] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, user: str, sid: str) -> _Held:
        now = time.monotonic()
        with self._lock:
            for key in [k for k, h in self._held.items() if now - h.used > self.idle]:
                del self._held[key]
            held = self._held.get((user, sid))
            if held is None:
                held = self._held[(user, sid)] = _Held(Session(id=sid, user=user))
            self._held.move_to_end((user, sid))
            held.used = now
            while len(self._held) > self.capacity:
                self._held.popitem(last=False)
            return held

    def __len__(self) -> int:
        return len(self._held)


def build_api(agent: Agent, logins: list[tuple[str, str]]) -> FastAPI:
    """The FastAPI app of the HTTP API (the page is mounted on it by ``crs.app.ui.launch``)."""
    from fastapi import FastAPI

    import crs

    serve = agent.cfg.serve
    app = FastAPI(title="crs", version=crs.__version__, docs_url="/v1/docs", openapi_url="/v1/openapi.json")
    sessions = ApiSessions(serve.max_sessions, serve.session_idle_minutes * 60)
    turns = threading.BoundedSemaphore(max(1, serve.concurrency))  # turns run at once, as on the page
    app.state.sessions = sessions

    def login(request: Request) -> str:
        if not logins:
            return LOCAL_USER
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                value = base64.b64decode(value, validate=True).decode("utf-8")
            except ValueError:
                value = ""
        elif scheme.lower() != "bearer":
            value = ""
        user, _, password = value.strip().partition(":")
        for name, secret in logins:
            if hmac.compare_digest(user.encode(), name.encode()) and hmac.compare_digest(
                password.encode(), secret.encode()
            ):
                return name
        raise HTTPException(
            401, "log in: HTTP Basic, or Authorization: Bearer user:password", {"WWW-Authenticate": "Basic"}
        )

    def session_id(request: Request, given: object) -> str:
        sid = request.headers.get("x-session-id") or (given if isinstance(given, str) else "") or uuid.uuid4().hex
        if len(sid) > MAX_ID_CHARS or not sid.isprintable():
            raise HTTPException(400, f"a session id is printable and at most {MAX_ID_CHARS} characters")
        return sid

    def run_turn(held: _Held, message: str) -> Iterator[object]:
        """The turn's events, one turn per session and ``concurrency`` turns at once."""
        with turns, held.lock:
            yield from agent.step(held.session, message)
            bound_turns(held.session, serve.max_turns)

    def extra(held: _Held, final: FinalEvent | None, notices: list[str]) -> dict[str, Any]:
        return {
            "session": held.session.id,
            "act": final.act if final else "error",
            "items": [i.listing() for i in final.items] if final else [],
            "belief": final.belief.to_dict() if final else held.session.belief.to_dict(),
            "notices": notices,
        }

    def whole_turn(held: _Held, message: str) -> dict[str, Any]:
        """A turn run to its end: the reply and ``extra``'s fields."""
        final, notices = None, []
        for event in run_turn(held, message):
            if isinstance(event, NoticeEvent):
                notices.append(event.message)
            elif isinstance(event, FinalEvent):
                final = event
        return {"reply": final.reply if final else ""} | extra(held, final, notices)

    def last_user_message(messages: object) -> str:
        if not isinstance(messages, list):
            raise HTTPException(422, "messages must be a list of {role, content}")
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "user":
                content = m.get("content")
                if isinstance(content, list):  # content parts: the text ones
                    content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
                return content if isinstance(content, str) else ""
        raise HTTPException(422, "messages hold no user message")

    @app.get("/v1/models")
    def models(request: Request) -> dict[str, Any]:
        login(request)
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "crs"}]}

    @app.post("/v1/chat/completions", response_model=None)
    def chat_completions(request: Request, body: dict[str, Any] = Body(...)) -> Any:  # noqa: B008
        user = login(request)
        message = last_user_message(body.get("messages"))
        held = sessions.get(user, session_id(request, body.get("user")))
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        headers = {"X-Session-Id": held.session.id}

        def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
            data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": MODEL,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]} | more  # fmt: skip
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        if body.get("stream"):

            def events() -> Iterator[str]:
                yield chunk({"role": "assistant", "content": ""})
                final, notices = None, []
                for event in run_turn(held, message):
                    if isinstance(event, TokenEvent) and event.text:
                        yield chunk({"content": event.text})
                    elif isinstance(event, NoticeEvent):
                        notices.append(event.message)
                    elif isinstance(event, FinalEvent):
                        final = event
                yield chunk({}, "stop", crs=extra(held, final, notices))
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
        done = whole_turn(held, message)
        reply = done.pop("reply")
        return JSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": MODEL,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                "crs": done,
            },  # fmt: skip
            headers=headers,
        )

    @app.post("/v1/recommend")
    def recommend(request: Request, response: Response, body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        user = login(request)
        message = body.get("message")
        if not isinstance(message, str):
            raise HTTPException(422, 'give the message as {"message": "...", "session": "..."}')
        held = sessions.get(user, session_id(request, body.get("session")))
        response.headers["X-Session-Id"] = held.session.id
        return whole_turn(held, message)

    def own_profile(request: Request, user: str) -> Any:
        if login(request) != user:
            raise HTTPException(403, "a profile can be read and written only by its own login")
        store = getattr(agent, "profiles", None)
        if store is None:
            raise HTTPException(503, "profiles are not available: no profile store is configured")
        return store

    @app.get("/v1/profile/{user}")
    def get_profile(user: str, request: Request) -> dict[str, Any]:
        from crs.profiles.text import ProfileError

        store = own_profile(request, user)
        try:
            current = store.get(user)
        except ProfileError as exc:
            raise HTTPException(400, str(exc)) from None
        if current is None:
            raise HTTPException(404, f"{user} has no profile yet")
        return {"user": user, "text": current.text, "version": current.version, "created_at": current.created_at,
                "source": current.source}  # fmt: skip

    @app.put("/v1/profile/{user}")
    def put_profile(user: str, request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        from crs.profiles.text import ProfileError

        store = own_profile(request, user)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise HTTPException(422, 'give the profile as {"text": "..."}')
        if len(text) > MAX_PROFILE_CHARS:
            raise HTTPException(413, f"the profile is {len(text):,} characters; the limit is {MAX_PROFILE_CHARS:,}")
        try:
            saved = store.save(user, text.strip(), "edit:api")
        except (ProfileError, ValueError) as exc:
            raise HTTPException(400, str(exc)) from None
        return {"user": user, "text": saved.text, "version": saved.version, "created_at": saved.created_at,
                "source": saved.source}  # fmt: skip

    return app
