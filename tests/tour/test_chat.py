"""Tour step 5, durable sessions: the Chat Virtual Object."""

import concurrent.futures
import itertools
import re
from typing import Any

import pytest

from dev.harness import Tour, wait_until

pytestmark = pytest.mark.e2e

_keys = itertools.count(1)


def new_key(prefix: str) -> str:
    return f"{prefix}-{next(_keys)}"


def history(stack: Tour, key: str) -> list[dict[str, Any]]:
    resp = stack.http.get(f"/Chat/{key}/get_history")
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()
    return items


def text_of(item: dict[str, Any]) -> str:
    content = item["content"]
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


def test_the_chat_remembers_and_the_history_holds_every_message(stack: Tour) -> None:
    key = new_key("alice")

    first = stack.call(f"Chat/{key}/message", {"message": "My name is Alice."})
    second = stack.call(f"Chat/{key}/message", {"message": "What is my name?"})

    assert first.json() == "Nice to meet you, Alice! I will remember your name."
    assert second.json() == "Your name is Alice."
    items = history(stack, key)
    assert [(i["role"], text_of(i)) for i in items] == [
        ("user", "My name is Alice."),
        ("assistant", "Nice to meet you, Alice! I will remember your name."),
        ("user", "What is my name?"),
        ("assistant", "Your name is Alice."),
    ]


def test_each_key_is_its_own_conversation(stack: Tour) -> None:
    alice, bob = new_key("alice"), new_key("bob")
    stack.call(f"Chat/{alice}/message", {"message": "My name is Alice."})

    answer = stack.call(f"Chat/{bob}/message", {"message": "What is my name?"})

    assert answer.json() == "You have not told me your name yet."
    assert len(history(stack, alice)) == 2 and len(history(stack, bob)) == 2


def test_the_default_message_is_the_tours_poem(stack: Tour) -> None:
    resp = stack.call(f"Chat/{new_key('poet')}/message", {})

    assert resp.status_code == 200
    assert resp.json().startswith("A poem about durable execution:")


def test_concurrent_messages_to_one_chat_queue_up_and_none_is_lost(stack: Tour) -> None:
    key = new_key("busy")

    def send(i: int) -> str:
        resp = stack.call(f"Chat/{key}/message", {"message": f"note {i}"})
        assert resp.status_code == 200, resp.text
        answer: str = resp.json()
        return answer

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(send, range(20)))

    # Each message saw all the ones before it (one at a time per key): positions 1..20, no repeats.
    positions = sorted(int(re.search(r"message (\d+) of", a).group(1)) for a in answers)
    assert positions == list(range(1, 21))
    items = history(stack, key)
    assert len(items) == 40
    for user_item, answer_item in zip(items[::2], items[1::2], strict=True):
        assert user_item["role"] == "user" and answer_item["role"] == "assistant"
        assert f"You said: {text_of(user_item)!r}." in text_of(answer_item)  # never interleaved


def test_get_history_answers_while_a_message_is_in_flight(stack: Tour) -> None:
    key = new_key("slow")
    stack.call(f"Chat/{key}/message", {"message": "first message"})
    stack.llm.fault("llm", count=1, hang=4, status=200)  # the next LLM call takes 4 s
    invocation = stack.send(f"Chat/{key}/message", {"message": "second message"})
    wait_until(lambda: stack.llm_calls("second message"), what="the slow LLM call to start")

    items = history(stack, key)  # a shared handler: not queued behind the running `message`

    assert stack.invocation(invocation)["status"] != "completed"
    assert [text_of(i) for i in items if i["role"] == "user"] == ["first message"]
    assert stack.output(invocation).status_code == 200
    assert len(history(stack, key)) == 4


@pytest.mark.crash
def test_the_history_survives_an_endpoint_crash_and_a_server_restart(stack: Tour) -> None:
    key = new_key("survivor")
    stack.call(f"Chat/{key}/message", {"message": "My name is Mona."})
    before = history(stack, key)

    stack.kill_endpoint()
    stack.restart_endpoint()
    stack.restart_server()

    assert history(stack, key) == before
    assert stack.call(f"Chat/{key}/message", {"message": "What is my name?"}).json() == "Your name is Mona."


def test_clear_starts_the_conversation_over(stack: Tour) -> None:
    key = new_key("forgetful")
    stack.call(f"Chat/{key}/message", {"message": "My name is Nora."})

    assert stack.http.post(f"/Chat/{key}/clear").status_code == 200

    assert history(stack, key) == []
    assert stack.call(f"Chat/{key}/message", {"message": "What is my name?"}).json() == (
        "You have not told me your name yet."
    )
