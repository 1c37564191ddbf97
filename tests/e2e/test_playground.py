"""The playground tab in Chromium: a JSON call to an iris endpoint, and a streamed chat
with the tiny test LLM; each shows its answer and its request record."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.server import ServerProcess, wait_running
from tests.support.tiny_models import build_tiny_gpt2, png_base64

IRIS = "play-iris"
LLM = "play-gpt"


@pytest.fixture(scope="module")
def iris(server: ServerProcess, iris_model: str) -> Iterator[str]:
    with server.client() as client:
        client.deploy({"name": IRIS, "model": iris_model})
        wait_running(client, IRIS)
    yield IRIS
    with server.client() as client:
        client.delete(IRIS)


def test_a_json_call_shows_the_answer_and_its_record(page: Any, iris: str) -> None:
    page.goto(f"/#/endpoints/{iris}/playground")
    body = page.get_by_label("Request body (JSON)")
    example = {"inputs": [[5.1, 3.5, 1.4, 0.2]]}  # an example for a sklearn model
    expect(body).to_have_value(json.dumps(example, indent=2))

    body.fill("{not json")  # checked before it is sent
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_contain_text("Not valid JSON")

    body.fill('{"inputs": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}')
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_test_id("answer-status")).to_have_text("HTTP 200")
    expect(page.get_by_test_id("answer-body")).to_contain_text("0")
    expect(page.get_by_test_id("answer-body")).to_contain_text("2")
    record = page.get_by_test_id("request-record")
    expect(record.get_by_test_id("record-status")).to_have_text("200")
    expect(record.get_by_test_id("record-latency")).to_contain_text("ms")


def test_an_image_is_sent_as_base64_inputs(page: Any, iris: str, tmp_path: Path) -> None:
    """The image mode sends the picture as base64 `inputs` (what image tasks take); an
    iris model refuses it, and the refusal is shown as it came, with its record."""
    png = tmp_path / "gradient.png"
    png.write_bytes(base64.b64decode(png_base64()))
    page.errors.allow("422")  # the refused call, as Chromium logs it
    page.goto(f"/#/endpoints/{iris}/playground")
    page.get_by_label("Mode").select_option("image")
    page.get_by_label("Image").set_input_files(str(png))
    expect(page.get_by_role("img", name="gradient.png")).to_be_visible()  # the preview
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_test_id("answer-status")).to_have_text("HTTP 422")
    expect(page.get_by_test_id("answer-body")).to_contain_text("inputs")
    expect(page.get_by_test_id("record-status")).to_contain_text("422")


@pytest.fixture(scope="module")
def llm(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The tiny GPT-2 of the tests, pushed to the model repository and served by the
    transformers runtime (its OpenAI chat routes)."""
    folder = build_tiny_gpt2(Path(tmp_path_factory.mktemp("play-gpt")) / "gpt2")
    with server.client() as client:
        client.push_model(folder, LLM, framework="transformers")
        client.deploy(
            {"name": LLM, "model": LLM, "framework": "transformers", "task": "text-generation"}
        )
        wait_running(client, LLM, timeout=180)
    yield LLM
    with server.client() as client:
        client.delete(LLM)


def test_a_chat_streams_its_answer(page: Any, llm: str) -> None:
    page.goto(f"/#/endpoints/{llm}/playground")
    expect(page.get_by_label("Mode")).to_have_value("chat")
    page.get_by_label("Max tokens").fill("24")
    page.get_by_label("Message").fill("Hello there")
    # Every length the answer's text takes on screen, as it grows.
    page.evaluate(
        """() => {
          window.playLengths = [];
          new MutationObserver(() => {
            const c = document.querySelector('[data-role="assistant"] .play-content');
            if (c) window.playLengths.push(c.textContent.length);
          }).observe(document.querySelector('[data-testid="chat-log"]'),
                     {subtree: true, childList: true, characterData: true});
        }"""
    )
    with page.expect_request("**/v1/chat/completions") as sent:
        page.get_by_role("button", name="Send").click()
    assert sent.value.post_data_json["stream"] is True

    answer = page.locator('[data-role="assistant"] .play-content')
    expect(answer).not_to_have_text("")  # the first tokens arrived (the caret is outside)
    expect(page.get_by_test_id("chat-status")).to_contain_text("HTTP 200")
    expect(page.get_by_test_id("chat-status")).not_to_contain_text("cut off")
    assert answer.inner_text().strip()  # the whole answer, once the stream ended
    lengths = [n for n in page.evaluate("window.playLengths") if n]
    assert len(set(lengths)) >= 2, lengths  # it arrived in pieces, not at once
    record = page.get_by_test_id("request-record")
    expect(record.get_by_test_id("record-status")).to_have_text("200")
    expect(record.get_by_test_id("record-ttft")).to_contain_text("ms")
    tokens_out = int(record.get_by_test_id("record-tokens").inner_text().split("/")[1])
    assert tokens_out > 1


def _chat(page: Any, name: str) -> None:
    page.goto(f"/#/endpoints/{name}/playground")
    page.get_by_label("Mode").select_option("chat")
    page.get_by_label("Message").fill("Hello")


def test_stop_and_leaving_the_tab_abort_the_stream(page: Any, iris: str) -> None:
    """The gateway is held (routed, never answered), as a long answer would be: Stop
    aborts the call, and so does leaving the tab mid-answer."""
    page.route("**/v1/chat/completions", lambda route: None)  # never answers
    _chat(page, iris)
    page.get_by_role("button", name="Send").click()
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_test_id("chat-status")).to_contain_text("stopped")
    expect(page.get_by_role("button", name="Send")).to_be_visible()

    page.get_by_label("Message").fill("Again")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    with page.expect_event("requestfailed", lambda r: "chat/completions" in r.url) as failed:
        page.goto(f"/#/endpoints/{iris}/overview")
    assert "ABORTED" in (failed.value.failure or "").upper()


def test_a_failed_or_cut_off_chat(page: Any, iris: str) -> None:
    """A refused call leaves no empty answer (the next send does not carry one); a stream
    that closes without [DONE] is shown as cut off; Enter during an IME composition does
    not send."""
    page.errors.allow("500")
    answers = iter(
        [
            {"status": 500, "json": {"error": {"message": "the model broke"}}},
            {
                "status": 200,
                "content_type": "text/event-stream",
                "body": 'data: {"choices": [{"delta": {"content": "Hal"}}]}\n\n',
            },
        ]
    )
    page.route("**/v1/chat/completions", lambda route: route.fulfill(**next(answers)))
    _chat(page, iris)
    message = page.get_by_label("Message")
    message.dispatch_event("keydown", {"key": "Enter", "isComposing": True})
    expect(message).to_have_value("Hello")  # not sent mid-composition
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert").filter(has_text="the model broke")).to_be_visible()
    expect(page.locator('[data-role="assistant"]')).to_have_count(0)

    message.fill("Again")
    with page.expect_request("**/v1/chat/completions") as sent:
        page.get_by_role("button", name="Send").click()
    roles = [m["role"] for m in sent.value.post_data_json["messages"]]
    assert roles == ["system", "user", "user"]
    expect(page.locator('[data-role="assistant"] .play-content')).to_have_text("Hal")
    expect(page.get_by_test_id("chat-status")).to_contain_text("cut off")


def test_read_stream_joins_lines_split_across_chunks(page: Any) -> None:
    result = page.evaluate(
        """async () => {
          const { readStream } = await import("/ui/js/pages/endpoint/playground.js");
          const delta = (t) => `data: {"choices": [{"delta": {"content": "${t}"}}]}`;
          const lines = [delta("a") + "\\r\\n", delta("é") + "\\n\\n", "data: [DONE]\\n",
                         delta("never") + "\\n"];
          const bytes = new TextEncoder().encode(lines.join(""));
          // one byte per chunk: every line and the two bytes of "é" are split
          const stream = new ReadableStream({ start(ctl) {
            bytes.forEach((b) => ctl.enqueue(new Uint8Array([b])));
            ctl.close();
          } });
          let text = "";
          const done = await readStream(new Response(stream), (d) => { text += d; });
          const cut = await readStream(new Response(delta("x")), () => {});
          return { text, done, cut };
        }"""
    )
    assert result == {"text": "aé", "done": True, "cut": False}


def test_a_large_task_result_is_shown_in_part(page: Any) -> None:
    result = page.evaluate(
        """async () => {
          const { readHead, RESULT_SHOWN } = await import("/ui/js/pages/endpoint/async.js");
          const big = await readHead(new Response("x".repeat(RESULT_SHOWN + 10)), RESULT_SHOWN);
          const small = await readHead(new Response('{"a": 1}'), RESULT_SHOWN);
          return { big: big.text.length, bigCut: big.truncated,
                   small: small.text, smallCut: small.truncated, limit: RESULT_SHOWN };
        }"""
    )
    assert result == {
        "big": result["limit"],
        "bigCut": True,
        "small": '{"a": 1}',
        "smallCut": False,
        "limit": 256 * 1024,
    }


def test_async_task_and_batch_job(page: Any, iris: str, tmp_path: Path) -> None:
    """Start a batch job from the Jobs page (upload, then the job's counts); submit an
    async task from the Async tab and open its result; the job shows there with its
    progress."""
    lines = tmp_path / "lines.jsonl"
    row = json.dumps({"inputs": [[6.7, 3.0, 5.2, 2.3]]})
    lines.write_text(f"{row}\n" * 3)

    page.clock.install()
    page.goto("/#/jobs")
    page.get_by_role("button", name="New batch job").click()
    form = page.get_by_test_id("new-job")
    form.get_by_label("Endpoint").fill(iris)
    form.get_by_label("Input file (JSONL)").set_input_files(str(lines))
    form.get_by_role("button", name="Start job").click()
    detail = page.get_by_test_id("job")
    expect(detail.locator(".badge").first).to_have_text("completed", timeout=60_000)
    expect(page.get_by_test_id("lines-succeeded")).to_have_text("3")
    expect(page.get_by_test_id("file-output")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)  # it has ended
    job_id = page.url.rsplit("/", 1)[-1]
    polls: list[str] = []  # an ended job is not polled again
    page.on("request", lambda r: polls.append(r.url) if r.url.endswith(f"/jobs/{job_id}") else None)
    page.clock.run_for(10_000)
    assert len(polls) <= 1, polls  # at most the one read as the poll stops; not every 2 s
    page.get_by_role("link", name="← Jobs").click()
    expect(page.get_by_test_id("jobs").locator("tbody tr").filter(has_text=job_id)).to_contain_text(
        iris
    )

    page.goto(f"/#/endpoints/{iris}/async")
    page.get_by_role("button", name="New async task").click()
    page.get_by_label("Task body (JSON)").fill('{"inputs": [[5.1, 3.5, 1.4, 0.2]]}')
    page.get_by_role("button", name="Submit task").click()
    expect(page.get_by_role("status").filter(has_text="queued")).to_be_visible()
    tasks = page.get_by_test_id("tasks")
    mine = tasks.locator("tbody tr").filter(has_text="POST /").filter(has_not_text="job line")
    expect(mine.first).to_contain_text("succeeded", timeout=60_000)
    mine.first.get_by_role("button", name="Result").click()
    expect(page.get_by_test_id("task-result-body")).to_have_text("[\n  0\n]")
    expect(page.get_by_test_id("task-result-download")).to_have_attribute(
        "download", re.compile(r"\.result$")
    )
    jobs = page.get_by_test_id("endpoint-jobs")
    expect(jobs.locator("tbody tr").filter(has_text=job_id)).to_contain_text("3 / 3")
