"""Small talk with memory, for the tour's assistants without tools (Chat, InterruptibleAgent).

The stand-in has no language model; what it shows is that the conversation reaches it: every
answer is built from the messages the agent sent, including earlier turns from the session.
Only agents whose instructions say they are a "helpful assistant" get this: any other agent
without a skill of its own gets the stand-in's loud failure, not small talk.
"""

import re

from dev.offline_llm.conversation import Conversation, Reply

_MY_NAME = re.compile(r"\bmy name is ([A-Za-z][\w'-]*)", re.IGNORECASE)
_ASKS_NAME = re.compile(
    r"\b(what is|what's|do you know|do you remember) my name\b|\bwho am i\b", re.IGNORECASE
)
_ASKS_BEFORE = re.compile(r"\bwhat did i (say|ask|write)\b", re.IGNORECASE)
_ABOUT = re.compile(r"\babout ([^.?!]+)", re.IGNORECASE)


def _poem(topic: str) -> str:
    return (
        f"A poem about {topic}:\n"
        "Each step is written down before it counts,\n"
        "a journal kept by a patient hand;\n"
        "the process falls, the server mounts\n"
        f"the log again, and {topic} still stands."
    )


def chat(conv: Conversation) -> Reply | None:
    if conv.tools or "helpful assistant" not in conv.instructions.lower():
        return None
    said = conv.user_texts()
    text = said[-1].strip() if said else ""
    number = len(said)

    if match := _MY_NAME.search(text):
        return Reply(text=f"Nice to meet you, {match.group(1)}! I will remember your name.")
    if _ASKS_NAME.search(text):
        for earlier in reversed(said[:-1]):
            if match := _MY_NAME.search(earlier):
                return Reply(text=f"Your name is {match.group(1)}.")
        return Reply(text="You have not told me your name yet.")
    if _ASKS_BEFORE.search(text):
        if number < 2:
            return Reply(text="This is the first thing you said in this conversation.")
        return Reply(text=f"Before this, you said: {said[-2]!r}.")
    if "poem" in text.lower():
        about = _ABOUT.search(text)
        return Reply(text=_poem(about.group(1).strip() if about else "this conversation"))
    return Reply(text=f"You said: {text!r}. This is message {number} of our conversation.")
