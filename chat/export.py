"""A conversation as a file, and back: an exact JSON export, a readable Markdown transcript.

The JSON export holds `request`, the exact Messages API body the next turn would send under the
current options (replay it with curl), and `exchanges`, every exchange's own request options and
response as returned (thinking blocks and signatures included), with the attached files once in
`attachments`. Loading it back continues the conversation; the app's own key and model list
still decide what is allowed. A plain Messages API body (an older export) loads too.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import math
import re
import uuid
from array import array
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

from chat import blocks
from chat.attachments import EXTENSIONS, MAX_HISTORY_MESSAGES, MB, Attachment, check_attachment
from chat.conversation import Conversation
from chat.errors import ChatError, ErrorKind
from chat.exchange import Exchange, Prompt, Status
from chat.files import FileRef, FileStore
from chat.offline import OFFLINE_MODEL
from chat.options import TurnOptions
from chat.service import ChatService
from chat.store import printable, title_for

log = logging.getLogger(__name__)

EXPORT_FORMAT = "claude-chat-export"
EXPORT_VERSION = 1
USER_BLOCKS = {"text", "image", "document", "tool_result"}
FILE_BLOCKS = {"image", "document"}
REQUEST_OPTIONS = ("model", "max_tokens", "system", "thinking", "output_config", "cache_control", "tools")
DEFAULT_MAX_LOAD_BYTES = 10 * MB  # Guards.max_load_bytes
# An export nests about 10 levels (exchanges, response, content, block, citations...) plus the
# tool inputs Claude wrote; 64 leaves room for those and stays far below Python's recursion
# limit (1000), which the parser, the SDK's encoder and the store's each spend a frame a level on.
MAX_JSON_DEPTH = 64
EXPORT_DEPTH = 10
# Lists and objects: an exported web search exchange holds about 50 (blocks, results, citations,
# and its copy in `request`), so 200 hold about 10,000. The parser builds them in one C call that
# holds the GIL whatever thread it runs in: 100,000 costs about 0.1 s (a million, seconds).
MAX_JSON_CONTAINERS = 100_000
DEFAULT_HISTORY_EXCHANGES = MAX_HISTORY_MESSAGES // 2
MAX_DIGITS = 19  # a 64-bit integer: every count, size and token total fits
FILE_NAME_LIMIT = 100
LOADED_TITLE = "Loaded chat"
OFFLINE_HEADING = "Offline demo model"
OFFLINE_MARK = "*Offline demo model: canned reply, not Claude.*"
STOPPED_MARK = "*Stopped: you stopped this answer; what arrived is shown.*"
STOPPED_EMPTY_MARK = "*Stopped: you stopped this answer before any of it arrived.*"
_ONE_BRACKET = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_STEPS = bytes.maketrans(b"[]", b"\x01\xff")  # +1 and -1 as signed bytes
_NUL_ESCAPE = re.compile(r"(\\+)u0000")  # a backslash run first: escaped backslashes, or a NUL
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# Control characters (C0, DEL, C1), lone surrogates and bidirectional overrides, which can
# make a title or a name read as something else.


def export_data(service: ChatService, conversation: Conversation, options: TurnOptions) -> dict[str, Any]:
    """The export: the next request under these options, every exchange, and the files they refer to."""
    files = service.files
    attachments = {
        ref.sha256: {"name": ref.name, "media_type": ref.media_type, "data": _b64(files.read(ref))}
        for exchange in conversation.exchanges
        for ref in exchange.prompt.files
        if files.path(ref.sha256).exists()
    }
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "request": {**service.request(conversation, options), "stream": True},
        "exchanges": [exchange.to_dict() for exchange in conversation.exchanges],
        "attachments": attachments,
    }


def export_json(service: ChatService, conversation: Conversation, options: TurnOptions) -> str:
    """The export as indented JSON."""
    return json.dumps(export_data(service, conversation, options), indent=2, ensure_ascii=False) + "\n"


def export_markdown(conversation: Conversation) -> str:
    """A readable transcript: who said what, with which model and files, and how each answer ended."""
    lines = ["# Conversation with Claude", ""]
    system = None
    for exchange in conversation.exchanges:
        asked = str(exchange.request.get("system", ""))
        if asked and asked != system:
            lines += ["*System prompt:*", "", *_quoted(asked), ""]
        system = asked
        lines += ["## You", ""]
        if exchange.prompt.files:
            lines += [f"*Attached: {', '.join(ref.name for ref in exchange.prompt.files)}*", ""]
        lines += [exchange.prompt.text, ""] if exchange.prompt.text.strip() else []
        heading = (
            OFFLINE_HEADING if exchange.model == OFFLINE_MODEL else f"Claude ({exchange.model or 'no model'})"
        )
        lines += [f"## {heading}", "", *answer_markdown(exchange), ""]
    return "\n".join(lines)


def answer_markdown(exchange: Exchange) -> list[str]:
    """One answer as Markdown lines: whether Claude gave it, every block, cited sources, how it ended."""
    lines: list[str] = [OFFLINE_MARK, ""] if exchange.model == OFFLINE_MODEL else []
    sources = blocks.Sources()
    texts: list[blocks.TextPart] = []

    def flush() -> None:
        if texts:
            lines.extend([blocks.joined_text(texts, sources.marker), ""])
            texts.clear()

    for part in blocks.parts(exchange.content):
        if isinstance(part, blocks.TextPart):
            texts.append(part)
            continue
        flush()
        lines += [*_part_markdown(part), ""]
    flush()
    if sources.cited:
        lines += ["Sources:", "", *(f"{n}. [{c.title or c.url}]({c.url})" for n, c in sources.cited), ""]
    if exchange.status is Status.STOPPED:
        lines.append(STOPPED_MARK if exchange.content else STOPPED_EMPTY_MARK)
        return lines
    if not exchange.content:
        lines += ["*(no answer)*", ""]
    if exchange.status is Status.FAILED:
        lines.append(f"*Failed: {exchange.error.message if exchange.error else 'the answer did not finish'}*")
    return lines


def read_export(
    path: str | Path,
    files: FileStore,
    *,
    max_bytes: int = DEFAULT_MAX_LOAD_BYTES,
    max_messages: int = MAX_HISTORY_MESSAGES,
) -> list[Exchange]:
    """The exchanges of an export file, read no further than its size limit (see `load_export`)."""
    name = printable(Path(path).name) or "The file"
    try:
        with open(path, "rb") as stream:
            data = stream.read(max_bytes + 1)  # one byte more tells a file over the limit
    except (OSError, ValueError) as error:
        reason = getattr(error, "strerror", None) or "it cannot be opened"
        raise _bad(f"{name} could not be read: {reason}.") from None
    return load_export(data, files, name, max_bytes=max_bytes, max_messages=max_messages)


def load_export(
    data: bytes | str,
    files: FileStore,
    name: str = "The file",
    *,
    max_bytes: int = DEFAULT_MAX_LOAD_BYTES,
    max_messages: int = MAX_HISTORY_MESSAGES,
) -> list[Exchange]:
    """The exchanges of an export (or of a plain Messages API body); ChatError says what is wrong.

    The file is refused past `max_bytes`, past MAX_JSON_DEPTH levels of nesting (checked before
    parsing: a parser recurses once per level), with numbers no record holds, or with more than
    `max_messages` messages (two per exchange). A NUL character is dropped (no database column
    keeps one); names of files and titles are reduced to a printable last path part.
    """
    name = printable(name) or "The file"
    payload = _parsed(data, name, max_bytes)
    if not isinstance(payload, Mapping):
        raise _bad(f"{name} is not a conversation export: it has no list of messages.")
    try:
        if payload.get("format") == EXPORT_FORMAT:
            exchanges = _exchanges(payload, files, name, max_messages)
        else:
            exchanges = _from_messages(payload, files, name, max_messages)
    except ChatError:
        raise
    except OSError as error:  # the data folder, not the file: nothing of it is kept
        log.error("could not store the files of %s", name, exc_info=error)
        raise _bad(f"{name} could not be loaded: its files could not be stored ({error.strerror}).") from None
    except (ArithmeticError, AttributeError, KeyError, TypeError, ValueError, RecursionError) as error:
        # A shape no check above foresaw: still the file's fault, said as such.
        log.warning("could not load %s: %s: %s", name, type(error).__name__, error)
        raise _bad(f"{name} is not a valid conversation: part of it has an unexpected shape.") from None
    for number, exchange in enumerate(exchanges):
        exchange.context = number
    return exchanges


def loaded_title(exchanges: Sequence[Exchange]) -> str:
    """The title of a loaded conversation: its first prompt's first line, printable."""
    first = next((e.prompt.text for e in exchanges if e.prompt.text.strip()), "")
    return printable(title_for(first)) or LOADED_TITLE


def safe_file_name(name: str, fallback: str) -> str:
    """A loaded file's name, safe to show and to write: its last path part, printable, short."""
    last = printable(re.split(r"[\\/]", name)[-1]).strip(". ")
    if len(last) > FILE_NAME_LIMIT:
        stem, dot, suffix = last.rpartition(".")
        suffix = suffix if dot and stem and len(suffix) <= 10 else ""
        last = last[: FILE_NAME_LIMIT - len(suffix) - 1].rstrip(". ") + (f".{suffix}" if suffix else "")
    return last or fallback


def _parsed(data: bytes | str, name: str, max_bytes: int) -> Any:
    """The file's JSON, after the checks that must come before parsing it."""
    if len(data) > max_bytes:
        raise _bad(
            f"{name} is too large to load: this app loads conversation files up to {_mb(max_bytes)}.",
            limit=max_bytes,
        )
    if isinstance(data, bytes):
        try:
            data = data.decode(json.detect_encoding(data))
        except UnicodeDecodeError as error:
            raise _bad(
                f"{name} is not a conversation export: it is not UTF-8 text (byte {error.start + 1} "
                "is not valid)."
            ) from None
    text = _NUL_ESCAPE.sub(_without_nul, data) if "\\u0000" in data else data
    brackets = _brackets(text)
    if len(brackets) // 2 > MAX_JSON_CONTAINERS:  # parsing that many costs seconds of CPU
        if b"[" * (MAX_JSON_DEPTH + 1) in brackets:  # the likelier fault, and as cheap to tell
            raise _bad(_too_deep(name), limit=MAX_JSON_DEPTH)
        raise _bad(
            f"{name} is not a conversation export: it holds more than {MAX_JSON_CONTAINERS:,} lists "
            f"and objects (an export of {DEFAULT_HISTORY_EXCHANGES} exchanges holds about 10,000).",
            limit=MAX_JSON_CONTAINERS,
        )
    if _deeper_than(brackets, MAX_JSON_DEPTH):
        raise _bad(_too_deep(name), limit=MAX_JSON_DEPTH)
    try:
        payload = json.loads(text, parse_int=_whole_number, parse_float=_finite, parse_constant=_no_constant)
    except _NumberError as error:
        raise _bad(f"{name} is not a conversation export: {error}") from None
    except json.JSONDecodeError as error:
        raise _bad(
            f"{name} is not a conversation export: it is not valid JSON ({error.msg}: line "
            f"{error.lineno}, column {error.colno})."
        ) from None
    except RecursionError:  # the pre-check's bound is far below this; kept as a backstop
        raise _bad(_too_deep(name), limit=MAX_JSON_DEPTH) from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise _bad(
                f"{name} is not a conversation export: it holds text that is not valid Unicode "
                "(half of a surrogate pair)."
            ) from None
    return payload


def _without_nul(escape: re.Match[str]) -> str:
    backslashes = escape.group(1)
    if len(backslashes) % 2 == 0:
        return escape.group(0)  # escaped backslashes, then the text "u0000"
    return backslashes[:-1]


def _brackets(text: str) -> bytes:
    """The JSON's brackets, both kinds as `[]`, strings and escapes cut out (at C speed)."""
    unescaped = text.replace("\\\\", "").replace('\\"', "")  # then every quote opens or closes a string
    outside = "".join(unescaped.split('"')[::2])
    return outside.encode("utf-8", "surrogatepass").translate(_ONE_BRACKET, _NOT_BRACKETS)


def _deeper_than(brackets: bytes, limit: int) -> bool:
    """True when these brackets nest more than `limit` levels, found without recursing.

    Each round removes
    every pair with nothing inside: one level off everything, so rounds plus what is left is the
    depth. When a round removes little (a file built to need many), one sweep of running totals
    counts the rest. Unbalanced brackets stop it early: the parser then says what is wrong.
    """
    levels = 0
    while brackets:
        if levels >= limit or b"[" * (limit - levels + 1) in brackets:
            return True
        fewer = brackets.replace(b"[]", b"")
        if len(fewer) == len(brackets):
            return False
        levels += 1
        if len(fewer) * 2 > len(brackets):
            return levels + max(accumulate(array("b", fewer.translate(_STEPS))), default=0) > limit
        brackets = fewer
    return False


def _too_deep(name: str) -> str:
    return (
        f"{name} is not a conversation export: it nests more than {MAX_JSON_DEPTH} levels deep "
        f"(a conversation export nests about {EXPORT_DEPTH})."
    )


class _NumberError(ValueError):
    """A number in the file that no export holds."""


def _whole_number(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_DIGITS:
        raise _NumberError(f"it holds a number with more than {MAX_DIGITS} digits ({digits[:12]}...).")
    return int(digits)


def _finite(digits: str) -> float:
    value = float(digits)
    if not math.isfinite(value):
        raise _NumberError(f"it holds a number too large to use ({digits[:24]}).")
    return value


def _no_constant(constant: str) -> float:
    raise _NumberError(f"it holds {constant}, which is not a number JSON allows.")


def loaded_options(
    exchanges: Sequence[Exchange], fallback: TurnOptions, offered: Iterable[str]
) -> TurnOptions:
    """The options to continue with: the last exchange's, where this app allows them."""
    for exchange in reversed(exchanges):
        if exchange.request.get("model"):
            try:
                options = TurnOptions.from_request(exchange.request, fallback)
            except ChatError:
                return fallback
            if options.model not in set(offered):
                options = dataclasses.replace(options, model=fallback.model)
            return options
    return fallback


def _exchanges(payload: Mapping[str, Any], files: FileStore, name: str, max_messages: int) -> list[Exchange]:
    raw = payload.get("exchanges")
    if not isinstance(raw, list) or not raw:
        raise _bad(f"{name} is not a conversation export: it has no exchanges.")
    if len(raw) * 2 > max_messages:
        raise _bad(
            f"{name} holds {len(raw):,} exchanges; this app continues conversations of up to "
            f"{max_messages // 2:,} exchanges ({max_messages:,} messages).",
            limit=max_messages // 2,
        )
    attachments = payload.get("attachments") or {}
    if not isinstance(attachments, Mapping):
        raise _bad(f"{name} is not a valid export: its attachments are not a list of files.")
    exchanges = []
    for number, item in enumerate(raw, start=1):
        where = f"exchange {number}"
        if not isinstance(item, Mapping):
            raise _bad(f"The conversation is not valid: {where} is not an exchange.")
        problem = _exchange_problem(item)
        if problem:
            raise _bad(f"The conversation is not valid: {where} {problem}.")
        try:
            exchange = Exchange.from_dict(item)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise _bad(f"The conversation is not valid: {where} cannot be read ({error}).") from None
        refs = tuple(_stored_ref(ref, attachments, files, where) for ref in exchange.prompt.files)
        exchange.prompt = Prompt(exchange.prompt.text, refs)
        if not (isinstance(item.get("id"), str) and 0 < len(item["id"]) <= 64 and item["id"].isprintable()):
            exchange.id = uuid.uuid4().hex  # the store keys exchanges by an id of at most 64 characters
        exchanges.append(exchange)
    return exchanges


def _exchange_problem(item: Mapping[str, Any]) -> str | None:
    """What is malformed in an exported exchange (every field the app reads), or None."""
    prompt = item.get("prompt")
    if not isinstance(prompt, Mapping) or not isinstance(prompt.get("text", ""), str):
        return "has no prompt text"
    refs = prompt.get("files", [])
    if not isinstance(refs, list) or not all(_is_ref(ref) for ref in refs):
        return "has a malformed file reference"
    if not prompt.get("text", "").strip() and not refs:
        return "has an empty prompt"
    request = item.get("request", {})
    if not isinstance(request, Mapping) or not _typed(request, model=str, system=str, max_tokens=int):
        return "has a malformed request"
    if not _typed(request, thinking=Mapping, output_config=Mapping, tools=list):
        return "has malformed request options"
    status = item.get("status", "complete")
    if not isinstance(status, str) or status not in {status.value for status in Status}:
        return f"has an unknown status {item.get('status')!r}"
    timings = item.get("timings", {})
    if not isinstance(timings, Mapping) or not all(
        value is None or (isinstance(value, int | float) and not isinstance(value, bool))
        for value in timings.values()
    ):
        return "has malformed timings"
    if not isinstance(item.get("error") or {}, Mapping):
        return "has a malformed error"
    return _response_problem(item.get("response"))


def _response_problem(response: Any) -> str | None:
    if response is None:
        return None
    if not isinstance(response, Mapping):
        return "has a malformed answer"
    content, usage = response.get("content"), response.get("usage", {})
    if not isinstance(content, list) or not all(_is_block(block) for block in content):
        return "has an answer with malformed content"
    if not isinstance(usage, Mapping) or not all(_is_usage(key, value) for key, value in usage.items()):
        return "has malformed usage"
    return None


def _is_usage(key: str, value: Any) -> bool:
    """A token count is a whole number; a breakdown (cache_creation, server_tool_use) holds them."""
    if key.endswith("_tokens"):
        return _is_count(value)
    if isinstance(value, Mapping):
        return all(_is_count(count) for count in value.values())
    return value is None or isinstance(value, int | str)


def _is_count(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _is_block(block: Any) -> bool:
    if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
        return False
    if block["type"] == "text" and not isinstance(block.get("text", ""), str):
        return False
    citations = block.get("citations")
    if citations is not None and not (
        isinstance(citations, list) and all(isinstance(c, Mapping) for c in citations)
    ):
        return False
    result = block.get("content")
    return not block["type"].endswith("_tool_result") or isinstance(result, list | Mapping)


def _is_ref(ref: Any) -> bool:
    return (
        isinstance(ref, Mapping)
        and _typed(ref, name=str, media_type=str, sha256=str, size=int)
        and len(str(ref.get("sha256", ""))) == 64
        and all(c in "0123456789abcdef" for c in str(ref.get("sha256", "")))
        and all(key in ref for key in ("name", "media_type", "sha256", "size"))
    )


def _typed(data: Mapping[str, Any], **types: type | Any) -> bool:
    """True when each named field is absent or of its type (a bool is not an int)."""
    for key, kind in types.items():
        if key in data:
            value = data[key]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                return False
    return True


def _stored_ref(ref: FileRef, attachments: Mapping[str, Any], files: FileStore, where: str) -> FileRef:
    ref = dataclasses.replace(ref, name=safe_file_name(ref.name, f"file.{_extension(ref.media_type)}"))
    entry = attachments.get(ref.sha256)
    if entry is None:
        return ref  # it was gone when exported: the history tells Claude the file is unavailable
    if not isinstance(entry, Mapping):
        raise _bad(f"The conversation is not valid: {ref.name} in {where} is not a file.")
    data = _decoded(entry.get("data"), where)
    _check_loaded(Attachment(ref.name, str(entry.get("media_type")), data))
    stored = files.put(ref.name, str(entry.get("media_type")), data)
    if stored.sha256 != ref.sha256:
        raise _bad(f"The conversation is not valid: {ref.name} in {where} does not match its hash.")
    return stored


def _from_messages(
    payload: Mapping[str, Any], files: FileStore, name: str, max_messages: int
) -> list[Exchange]:
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad(f"{name} is not a conversation export: it has no list of messages.")
    if len(messages) > max_messages:
        raise _bad(
            f"{name} holds {len(messages):,} messages; this app continues conversations of up to "
            f"{max_messages:,} messages ({max_messages // 2:,} exchanges).",
            limit=max_messages,
        )
    if not _typed(payload, model=str, system=str, max_tokens=int) or not _typed(
        payload, thinking=Mapping, output_config=Mapping, cache_control=Mapping, tools=list
    ):
        raise _bad(f"{name} is not a valid conversation: its request options are malformed.")
    for number, message in enumerate(messages, start=1):
        _check_message(message, number, "user" if number % 2 else "assistant")
    options = {key: payload[key] for key in REQUEST_OPTIONS if key in payload}
    exchanges = []
    for index in range(0, len(messages), 2):
        prompt = _prompt(messages[index], files)
        answer = messages[index + 1] if index + 1 < len(messages) else None
        if answer is None:
            exchanges.append(Exchange(prompt, dict(options), status=Status.STOPPED))
            continue
        content = answer["content"]
        content = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
        response = {"type": "message", "role": "assistant", "model": options.get("model"), "content": content}
        exchanges.append(Exchange(prompt, dict(options), status=Status.COMPLETE, response=response))
    return exchanges


def _prompt(message: Mapping[str, Any], files: FileStore) -> Prompt:
    content = message["content"]
    if isinstance(content, str):
        return Prompt(content)
    refs, texts = [], []
    for number, block in enumerate(content, start=1):
        if block["type"] in FILE_BLOCKS:
            source = block["source"]
            title = block.get("title")
            named = f"{block['type']}-{number}.{_extension(source['media_type'])}"
            if block["type"] == "document" and isinstance(title, str):
                named = safe_file_name(title, named)
            refs.append(files.put(named, source["media_type"], base64.b64decode(source["data"])))
        elif block["type"] == "text":
            texts.append(str(block.get("text", "")))
    return Prompt("\n\n".join(texts), tuple(refs))


def _check_message(message: Any, number: int, role: str) -> None:
    where = f"message {number}"
    if not isinstance(message, Mapping) or message.get("role") != role:
        raise _bad(f"The conversation is not valid: {where} should be from the {role}.")
    content = message.get("content")
    if isinstance(content, str):
        if not content.strip():
            raise _bad(f"The conversation is not valid: {where} is empty.")
        return
    if not isinstance(content, list) or not content:
        raise _bad(f"The conversation is not valid: {where} has no content.")
    for block in content:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if not isinstance(kind, str) or (role == "user" and kind not in USER_BLOCKS):
            shown = kind if isinstance(kind, str | int | float | None) else type(kind).__name__
            raise _bad(f"The conversation is not valid: {where} has a block of type {shown!r}.")
        if not _is_block(block):
            raise _bad(f"The conversation is not valid: {where} has a malformed {kind} block.")
        if kind in FILE_BLOCKS:
            _check_file_block(block, where)
    if role == "user" and not any(block.get("type") in {"text", *FILE_BLOCKS} for block in content):
        raise _bad(f"The conversation is not valid: {where} has no text.")


def _check_file_block(block: Mapping[str, Any], where: str) -> None:
    source = block.get("source")
    if not isinstance(source, Mapping) or source.get("type") != "base64":
        raise _bad(f"The conversation is not valid: a file in {where} is not base64 data.")
    data = _decoded(source.get("data"), where)
    _check_loaded(Attachment(f"The {block['type']} in {where}", str(source.get("media_type")), data))


def _decoded(data: Any, where: str) -> bytes:
    try:
        return base64.b64decode(str(data or ""), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"The conversation is not valid: a file in {where} is not base64 data.") from None


def _check_loaded(attachment: Attachment) -> None:
    try:
        check_attachment(attachment)
    except ChatError as error:  # a file the export carries, not one being sent: the export is bad
        raise _bad(error.message) from None


def _part_markdown(part: blocks.Part) -> list[str]:
    if isinstance(part, blocks.ThinkingPart):
        return ["*Thinking:*", "", *_quoted(part.text)]
    if isinstance(part, blocks.RedactedThinkingPart):
        return ["*Thinking (redacted by the API)*"]
    if isinstance(part, blocks.ToolCallPart):
        if part.server and part.query:
            return [f"*{blocks.tool_action(part)}: {part.query}*"]
        return [f"*Called the tool `{part.name}` with:*", "", "```json", part.input_json(), "```"]
    if isinstance(part, blocks.ToolResultPart):
        if part.error:
            return [f"*The {blocks.tool_result_name(part).lower()} tool failed: {part.error}*"]
        return ["*Results:*", "", *(f"- [{s.title}]({s.url})" for s in part.sources)]
    if isinstance(part, blocks.OtherBlock):
        return [f"*A block of type `{part.type}` (this app cannot show it)*"]
    return []


def _quoted(text: str) -> list[str]:
    return [f"> {line}" for line in text.splitlines()] or [">"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _extension(media_type: object) -> str:
    return EXTENSIONS.get(str(media_type), "pdf")


def _mb(size: int) -> str:
    return f"{size / MB:.1f} MB"


def _bad(message: str, **facts: Any) -> ChatError:
    return ChatError(ErrorKind.BAD_EXPORT, f"{message} Nothing was loaded.", **facts)
