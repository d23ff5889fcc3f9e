"""The server's HTTP messages: typed request bodies (pydantic, read from bounded raw JSON), the refusal
every route answers with, and the client's address. The WebSocket protocol is
mio.runtime.transports.messages (every message both ways a pydantic model too).
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from mio.server.store import MAX_COMMENT_CHARS

MAX_USER_ID_CHARS = 64


class Refused(Exception):
    """A request the server turns down: HTTP status, machine code and a sentence for the user."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


# -- request bodies ------------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class SessionRequest(_Body):
    character: Annotated[str, StringConstraints(max_length=200)] | None = None
    mode: Annotated[str, StringConstraints(max_length=32)] | None = None
    user_id: Annotated[str, StringConstraints(min_length=1, max_length=MAX_USER_ID_CHARS)] | None = None
    key: Annotated[str, StringConstraints(max_length=1024)] | None = None  # or "Authorization: Bearer KEY"


class RatingRequest(_Body):
    token: Annotated[str, StringConstraints(max_length=256)]
    rating: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, StringConstraints(max_length=MAX_COMMENT_CHARS)] | None = None


BodyT = TypeVar("BodyT", bound=_Body)
FIELD_RULES = {"user_id": f"text of 1 to {MAX_USER_ID_CHARS} characters", "rating": "an integer from 1 to 5",
               "comment": f"text of at most {MAX_COMMENT_CHARS} characters", "token": "the session token (text)",
               "character": "a character id (text)", "mode": "'browser' or 'params'", "key": "the access key (text)"}


def parse_body(raw: bytes, model: type[BodyT]) -> BodyT:
    """A typed body from raw JSON (depth-bounded parser); a Refused naming the field otherwise."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        if err["type"] == "json_invalid":
            raise Refused(400, "bad_json", f"the request body is not JSON ({err['msg'].removeprefix('Invalid JSON: ')})") from None
        if err["type"] in ("model_type", "dict_type", "model_attributes_type"):
            raise Refused(400, "bad_json", "the request body must be a JSON object") from None
        name = str(err["loc"][0]) if err["loc"] else "?"
        code = {"user_id": "bad_user", "rating": "bad_rating", "comment": "bad_rating", "mode": "bad_mode",
                "character": "bad_character"}.get(name, "bad_request")
        what = "is missing" if err["type"] == "missing" else f"must be {FIELD_RULES.get(name, err['msg'])}"
        raise Refused(400, code, f"{name} {what}") from None


def client_address(conn) -> str:
    """The peer's address (uvicorn resolves X-Forwarded-For from trusted proxies only)."""
    client = getattr(conn, "client", None)
    return client.host if client is not None and client.host else "unknown"
