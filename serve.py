"""The dashboard's server: `streamlit run serve.py` (what `./manage dashboard` runs) serves app.py.

Three things only a server can do, which a Streamlit script cannot:
- Set the HttpOnly session cookie. A script runs over the WebSocket and can set no cookie at all, and
  JavaScript cannot set an HttpOnly one. So after the sign-in form succeeds, app.py draws an invisible
  image whose URL is /api/session?ticket=T; this route trades the one-time ticket (a minute, once) for
  the cookie. A reload, a typed URL or a shared link then sends the cookie with the WebSocket
  handshake, where app.py reads it (st.context.cookies) and finds the session record in the store.
- Turn off Streamlit's legacy pages/ mode before the first visitor: a folder named pages/ makes a fresh
  server run page files without app.py until some session has run st.navigation. The pages refuse to
  draw in that mode anyway (pages/_ui.py through_app); here it never starts.
- Build what the first page reads before the first visitor comes (pages/_warm.py: at 1M runs in
  PostgreSQL that is seconds of indices and tables). The server answers once it is done; a failure there
  is logged and the pages report it themselves.

st.App is Streamlit's own way to add routes (streamlit 1.67, starlette).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from contextlib import asynccontextmanager

import streamlit as st
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from streamlit.runtime.pages_manager import PagesManager

from agentlearn import sessions
from agentlearn.settings import Settings
from storage import open_repository

PagesManager.uses_pages_directory = False  # read once, when the first session starts


def _repo():
    settings = Settings.from_env()
    return open_repository(str(settings.store_dir), settings.database_url)


_REPO = None


def _session_cookie(request: Request) -> Response:
    """Trade a fresh sign-in ticket for the HttpOnly session cookie (204), or refuse (403)."""
    global _REPO
    # Only the dashboard's own page may ask: a cross-site image could otherwise sign a visitor in as
    # whoever made the ticket (browsers send Sec-Fetch-Site; the ticket itself is a one-time secret).
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return Response(status_code=403)
    _REPO = _REPO or _repo()
    value = sessions.claim(_REPO, request.query_params.get("ticket", ""))
    if value is None:
        return Response(status_code=403)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.set_cookie(sessions.COOKIE, value, max_age=sessions.TTL_S, path="/", httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")
    return response


@asynccontextmanager
async def _warm_first(_app):
    from pages import _warm

    started = time.perf_counter()
    # Said on the terminal: on a big store the server answers only after this (a first build at 1M runs: 40 s).
    print("  Reading the store for the first page…", file=sys.stderr, flush=True)
    try:
        await asyncio.to_thread(_warm.warm)
        print(f"  First page ready in {time.perf_counter() - started:.1f} s.", file=sys.stderr, flush=True)
    except Exception:  # noqa: BLE001 - the pages show what is wrong with the store; the server still starts
        logging.getLogger("agentlearn").exception("building the first page before serving failed")
    yield


app = st.App("app.py", routes=[Route(sessions.CLAIM_PATH, _session_cookie)], lifespan=_warm_first)
