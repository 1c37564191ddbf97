"""The scaling and settings tabs in Chromium: edit the scaling in place (the API's spec
changes; an invalid bound shows the API's error next to its field), and a settings change
that makes a new revision (its diff, then the rollout until running again)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from podium.core.phases import EndpointStatus
from tests.support.server import ServerProcess, wait_running

NAME = "play-scale"


@pytest.fixture(scope="module")
def endpoint(server: ServerProcess, iris_model: str) -> Iterator[str]:
    with server.client() as client:
        client.deploy({"name": NAME, "model": iris_model})
        wait_running(client, NAME)
    yield NAME
    with server.client() as client:
        client.delete(NAME)


def test_edit_the_scaling_in_place(page: Any, server: ServerProcess, endpoint: str) -> None:
    page.goto(f"/#/endpoints/{endpoint}/scaling")
    form = page.get_by_test_id("scaling-form")
    expect(form.get_by_label("Max replicas")).to_have_value("1")

    form.get_by_label("Max replicas").fill("3")
    form.get_by_label("Scale to zero after").fill("10m")
    form.get_by_role("button", name="Save scaling").click()
    expect(page.get_by_role("status").filter(has_text="Saved the scaling")).to_be_visible()
    with server.client() as client:
        scaling = client.endpoint(endpoint).spec.scaling
    assert (scaling.max_replicas, scaling.scale_to_zero_after) == (3, 600)
    expect(form.get_by_label("Scale to zero after")).to_have_value("600")

    page.errors.allow("422")  # the refused save, as Chromium logs it
    form.get_by_label("Min replicas").fill("4")
    form.get_by_label("Max replicas").fill("2")
    form.get_by_role("button", name="Save scaling").click()
    error = form.locator('[data-field="scaling.max_replicas"] .field-error')
    expect(error).to_contain_text("must not exceed max_replicas")
    with server.client() as client:  # nothing was applied
        assert client.endpoint(endpoint).spec.scaling.max_replicas == 3


def test_a_rule_switched_away_from_custom_drops_its_gauge(
    page: Any, server: ServerProcess, endpoint: str
) -> None:
    """The Gauge input is disabled for other metrics, so a gauge typed for a custom rule
    is not sent once the metric changes (the API would refuse it, with no way to clear it)."""
    page.goto(f"/#/endpoints/{endpoint}/scaling")
    form = page.get_by_test_id("scaling-form")
    form.get_by_role("button", name="Add rule").click()
    rule = form.get_by_test_id("scaling-rule").last
    rule.locator('select[name$="-metric"]').select_option("custom")
    rule.locator('input[name$="-gauge"]').fill("my_gauge")
    rule.locator('select[name$="-metric"]').select_option("cpu")
    expect(rule.locator('input[name$="-gauge"]')).to_be_disabled()
    form.get_by_role("button", name="Save scaling").click()
    expect(page.get_by_role("status").filter(has_text="Saved the scaling")).to_be_visible()
    with server.client() as client:
        rules = client.endpoint(endpoint).spec.scaling.rules
        assert [(r.metric, r.gauge) for r in rules] == [("cpu", None)]
        client.update(endpoint, {"scaling": {"rules": []}})


def test_the_scaling_form_keeps_a_change_made_elsewhere(
    page: Any, server: ServerProcess, endpoint: str
) -> None:
    page.goto(f"/#/endpoints/{endpoint}/scaling")
    form = page.get_by_test_id("scaling-form")
    expect(form.get_by_label("Scale down delay")).to_have_value("30")
    with server.client() as client:  # the CLI changes the delay meanwhile
        client.update(endpoint, {"scaling": {"scale_down_delay": 45}})
    expect(page.get_by_test_id("scaling-stale")).to_be_visible()
    form.get_by_label("Max replicas").fill("2")
    form.get_by_role("button", name="Save scaling").click()
    expect(page.get_by_role("status").filter(has_text="Saved the scaling")).to_be_visible()
    with server.client() as client:
        scaling = client.endpoint(endpoint).spec.scaling
    assert (scaling.max_replicas, scaling.scale_down_delay) == (2, 45)
    expect(page.get_by_test_id("scaling-stale")).to_have_count(0)


def test_a_settings_change_shows_its_diff_then_rolls_out(
    page: Any, server: ServerProcess, endpoint: str
) -> None:
    with server.client() as client:
        before = client.endpoint(endpoint).revision
    page.goto(f"/#/endpoints/{endpoint}/settings")
    editor = page.get_by_label("Spec (JSON)")
    spec = json.loads(editor.input_value())
    spec["env"] = {**spec["env"], "PLAY_MODE": "on"}
    spec["timeout_s"] = 30  # applies in place, shown too
    editor.fill(json.dumps(spec, indent=2))
    page.get_by_role("button", name="Review changes").click()

    diff = page.get_by_test_id("diff")
    expect(diff.locator('[data-field="env.PLAY_MODE"]')).to_contain_text('"on"')
    expect(diff.locator('[data-field="timeout_s"]')).to_contain_text("30")
    expect(page.get_by_test_id("revision-note")).to_contain_text("Makes a new revision")
    expect(page.get_by_test_id("revision-note")).to_contain_text("env")
    with page.expect_request(lambda r: r.method == "PATCH") as sent:
        page.get_by_role("button", name="Apply and roll out").click()
    body = sent.value.post_data_json  # only what changed: nothing else is overwritten
    assert body == {"env": spec["env"], "timeout_s": 30}

    rollout = page.get_by_test_id("rollout")
    expect(rollout.get_by_test_id("rollout-revision")).to_have_text(str(before + 1))
    expect(rollout.get_by_test_id("rollout-done")).to_be_visible(timeout=120_000)
    with server.client() as client:
        now = client.endpoint(endpoint)
    assert now.revision == before + 1
    assert now.status is EndpointStatus.RUNNING
    assert now.spec.env == {"PLAY_MODE": "on"} and now.spec.timeout_s == 30


def test_a_field_removed_in_settings_goes_back_to_its_default(
    page: Any, server: ServerProcess, endpoint: str
) -> None:
    with server.client() as client:
        client.update(endpoint, {"labels": {"team": "play"}})
    page.goto(f"/#/endpoints/{endpoint}/settings")
    editor = page.get_by_label("Spec (JSON)")
    expect(editor).to_have_value(re.compile('"team": "play"'))
    spec = json.loads(editor.input_value())
    del spec["labels"]
    editor.fill(json.dumps(spec, indent=2))
    page.get_by_role("button", name="Review changes").click()
    expect(page.get_by_test_id("diff").locator('[data-field="labels.team"]')).to_contain_text(
        "(default)"
    )
    expect(page.get_by_test_id("reset-note")).to_contain_text("labels")
    with page.expect_request(lambda r: r.method == "PATCH") as sent:
        page.get_by_role("button", name="Apply", exact=True).click()
    assert sent.value.post_data_json == {"labels": {}}
    expect(page.get_by_test_id("rollout")).to_contain_text("Applied in place")
    with server.client() as client:
        assert client.endpoint(endpoint).spec.labels == {}


def test_the_settings_defaults_are_the_servers() -> None:
    """settings.js DEFAULTS (what a removed field becomes) equals EndpointSpec's."""
    from podium.core.spec import EndpointSpec

    source = (
        Path(__file__).parents[2] / "src/podium/web/static/js/pages/endpoint/settings.js"
    ).read_text()
    block = re.search(r"export const DEFAULTS = (\{.*?\n\});", source, re.DOTALL)
    assert block
    text = re.sub(r"(\w+):", r'"\1":', block.group(1))
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    defaults = json.loads(text)
    expected = {}
    for name, field in EndpointSpec.model_fields.items():
        if field.is_required() or name == "project":
            continue
        value = field.get_default(call_default_factory=True)
        expected[name] = value.model_dump(mode="json") if hasattr(value, "model_dump") else value
    assert defaults == expected


def test_a_reader_sees_no_write_controls(
    page_as: Any, server: ServerProcess, endpoint: str
) -> None:
    with server.client() as client:
        token = client.create_token("play-reader", ["read"]).token
    page = page_as(token)
    page.goto(f"/#/endpoints/{endpoint}/scaling")
    expect(page.locator(".tab-body")).to_contain_text("needs a token with scope deploy")
    expect(page.get_by_role("button", name="Save scaling")).to_have_count(0)
    page.goto(f"/#/endpoints/{endpoint}/settings")
    expect(page.get_by_test_id("spec")).to_contain_text('"min_replicas"')
    expect(page.get_by_role("button", name="Review changes")).to_have_count(0)
    page.goto(f"/#/endpoints/{endpoint}/playground")
    expect(page.get_by_test_id("playground-denied")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_have_count(0)
    page.goto(f"/#/endpoints/{endpoint}/async")
    expect(page.get_by_test_id("async-denied")).to_be_visible()
