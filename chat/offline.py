"""The offline model: a deterministic Claude stand-in behind the real SDK, for demos with no key."""

from __future__ import annotations

import re
from typing import Any

from chat.models import BUILT_IN_MODELS
from chat.wire import (
    Block,
    Script,
    ScriptedMessage,
    ScriptTransport,
    ServerToolUseBlock,
    Stream,
    TextBlock,
    ThinkingBlock,
    WebSearchResultBlock,
    split_into_chunks,
    web_search_citation,
    web_search_result,
)

OFFLINE_MODEL = "offline-demo"
# Any message with one of these words gets the scripted web search, whether the tool is on or not.
SEARCH_WORDS = re.compile(r"\b(search|latest|today)\b", re.IGNORECASE)
ASKED_TO_SEARCH = re.compile(r"^\s*(please\s+)?search(\s+the\s+web|\s+online)?(\s+for)?\s*[:,]?\s*", re.I)
FILLER_WORDS = {
    "a",
    "an",
    "the",
    "is",
    "are",
    "was",
    "what",
    "whats",
    "who",
    "how",
    "me",
    "for",
    "of",
    "please",
}
SEARCH_TOOL_ID = "srvtoolu_offline_demo"
SEARCH_PAUSE_DELAYS = 20  # the search takes as long as twenty deltas: its box shows for a moment
EXAMPLE_SOURCES = (
    (
        "https://example.com/offline-demo/web-search",
        "Example source: how the offline demo searches",
        "1 day ago",
    ),
    ("https://example.org/offline-demo/citations", "Example source: numbered citations", None),
    ("https://example.net/offline-demo/sources", "Example source: the Sources box", "3 days ago"),
)
CITED = (
    "Any message with search, latest or today in it gets a scripted web search.",
    "Each cited passage gets a numbered link to its page.",
)


def offline_answer(messages: list[dict[str, Any]]) -> str:
    """The reply the offline model gives to a conversation: the same input, the same words."""
    question = " ".join(_text_of(messages[-1]).split()) if messages else ""
    if len(question) > 120:
        question = question[:117] + "..."
    earlier = (len(messages) - 1) // 2
    turns = "no earlier turns" if earlier == 0 else f"{earlier} earlier turn{'s' * (earlier > 1)}"
    return (
        "This is the offline demo model, not Claude, so the answer is canned. "
        f"You asked: \u201c{question}\u201d. The request carried {turns} of this conversation, "
        "exactly as Claude would receive them. To talk to Claude, set ANTHROPIC_API_KEY in .env "
        "and restart the app. Meanwhile this reply shows how streaming behaves: words arrive a few "
        "at a time, stopping an answer keeps whatever has arrived, and the finished message goes into the "
        "conversation history for the next turn."
    )


def search_query(text: str) -> str | None:
    """The query the offline model searches for a message; None when it asks for no search."""
    if not SEARCH_WORDS.search(text):
        return None
    asked = ASKED_TO_SEARCH.sub("", text, count=1)  # "Search the web: ..." asks; the rest is the query
    words = re.findall(r"[\w'-]+", asked.lower())
    kept = [word for word in words if word.replace("'", "") not in FILLER_WORDS]
    return " ".join((kept or words)[:8])


def offline_search(query: str, delay: float = 0.04) -> list[Block]:
    """A scripted web search: the call, its example sources, then text citing two of them."""
    results = [web_search_result(url, title, age) for url, title, age in EXAMPLE_SOURCES]
    (first_url, first_title, _), (second_url, second_title, _) = EXAMPLE_SOURCES[:2]
    first = web_search_citation(first_url, first_title, CITED[0])
    second = web_search_citation(second_url, second_title, CITED[1])
    return [
        TextBlock(
            split_into_chunks("This is the offline demo model, not Claude, so this web search is scripted.")
        ),
        ServerToolUseBlock(SEARCH_TOOL_ID, {"query": query}),
        WebSearchResultBlock(SEARCH_TOOL_ID, results, pause=SEARCH_PAUSE_DELAYS * delay),
        TextBlock(split_into_chunks(f"Here is how an answer from a search for \u201c{query}\u201d looks: ")),
        TextBlock(
            split_into_chunks(
                "the first source says any message with search, latest or today gets a scripted search"
            ),
            [first],
        ),
        TextBlock([", and "]),
        TextBlock(
            split_into_chunks("the second says each cited passage gets a numbered link to its page"), [second]
        ),
        TextBlock(
            split_into_chunks(
                ". The sources are made-up examples, not real pages. To search the web with Claude, set "
                "ANTHROPIC_API_KEY in .env, restart the app and turn on Web search in Settings."
            )
        ),
    ]


def offline_message(request: dict[str, Any], delay: float = 0.04) -> ScriptedMessage:
    """The whole scripted message for one Messages API request body (a search paced by `delay`)."""
    messages = request.get("messages", [])
    blocks: list[Block] = []
    if (request.get("thinking") or {}).get("type") in {"enabled", "adaptive"}:
        thought = "The user is on the offline model. I will explain that and answer in kind."
        blocks.append(ThinkingBlock(split_into_chunks(thought)))
    query = search_query(_text_of(messages[-1])) if messages else None
    if query is None:
        blocks.append(TextBlock(split_into_chunks(offline_answer(messages))))
    else:
        blocks += offline_search(query, delay)
    input_tokens = sum(len(_text_of(m).split()) for m in messages)
    # It answers as itself, whichever model was asked for: the record then says it was not Claude.
    return ScriptedMessage(
        blocks,
        model=OFFLINE_MODEL,
        input_tokens=input_tokens,
        server_tool_use=None if query is None else {"web_search_requests": 1, "web_fetch_requests": 0},
    )


def offline_script(delay: float = 0.04) -> Script:
    """The offline model as a script: every request gets its scripted message, paced."""
    return lambda body: Stream.of(offline_message(body, delay), delay=delay)


def offline_transport(delay: float = 0.04) -> ScriptTransport:
    """An httpx2 transport that answers like the offline model (lists the built-in models, counts tokens)."""
    return ScriptTransport(offline_script(delay), BUILT_IN_MODELS, record=False)


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
