"""The create wizard (#/new) in Chromium: an sklearn endpoint created through its steps and
watched until running, a 422 shown next to the input it names, state kept going back, no
wizard for a token without `deploy`, the lists read per step visit (not on a timer), a
Hugging Face model with a token secret (the summary's YAML is the body Create sends), and
an uploaded model with a variable from a secret."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from playwright.sync_api import expect

from tests.support.container_image import build_test_image, remove_image
from tests.support.models import train_iris_skops
from tests.support.server import ServerProcess

PREFIX = "create-wiz"


@pytest.fixture
def cleanup(server: ServerProcess) -> Iterator[list[str]]:
    """Names of endpoints a test made; deleted afterwards so the shared server stays light."""
    names: list[str] = []
    yield names
    with server.client() as client:
        for name in names:
            with contextlib.suppress(Exception):  # never made (a failed test), or gone
                client.delete(name)


def open_wizard(page: Any) -> None:
    page.goto("/#/new")
    expect(page.get_by_role("heading", name="Create endpoint")).to_be_visible()


def pick_sklearn_and_iris(page: Any, model: str) -> None:
    """Step 1 (searched) and step 2 (the repository model, latest version)."""
    page.get_by_label("Search frameworks").fill("tabular")
    expect(page.get_by_test_id("framework-onnx")).to_be_hidden()
    page.get_by_test_id("framework-sklearn").click()
    page.get_by_role("button", name="Next").click()
    page.locator('[data-field="model"] select').select_option(model)
    expect(page.locator('[data-field="model.version"] select')).to_be_visible()
    page.get_by_role("button", name="Next").click()


def next_to(page: Any, step: str) -> None:
    """Press Next until the step `step` shows."""
    while not page.locator(f'[data-step="{step}"]').is_visible():
        page.get_by_role("button", name="Next").click()


def test_create_an_sklearn_endpoint_and_watch_it_run(
    page: Any, iris_model: str, cleanup: list[str]
) -> None:
    name = f"{PREFIX}-iris"
    cleanup.append(name)
    open_wizard(page)
    pick_sklearn_and_iris(page, iris_model)

    # 3. the default instance type, with its price
    expect(page.get_by_test_id("instance-cpu-small")).to_contain_text("$0.050/h")
    expect(page.get_by_test_id("instance-cpu-small").get_by_role("radio")).to_be_checked()
    next_to(page, "scaling")
    page.get_by_label("Min replicas").fill("1")
    page.get_by_label("Max replicas").fill("2")
    next_to(page, "summary")

    page.get_by_label("Endpoint name").fill(name)
    yaml = page.get_by_test_id("yaml")
    for line in (
        f"name: {name}",
        f"model: {iris_model}",
        "framework: sklearn",
        "instance_type: cpu-small",
        "min_replicas: 1",
        "max_replicas: 2",
    ):
        expect(yaml).to_contain_text(line)
    expect(page.get_by_test_id("price")).to_contain_text("up to $0.100/h at 2")

    page.get_by_role("button", name="Create endpoint").click()
    expect(page).to_have_url(f"{page.url.split('#')[0]}#/endpoints/{name}")
    header = page.locator(".page-header")
    expect(header).to_contain_text(name)
    expect(header.locator(".badge")).to_have_text("running", timeout=90_000)


def test_a_refused_value_is_shown_next_to_its_input(page: Any, iris_model: str) -> None:
    page.errors.allow("422")  # the refused create, which the page shows
    open_wizard(page)
    pick_sklearn_and_iris(page, iris_model)
    next_to(page, "scaling")
    page.get_by_label("Min replicas").fill("3")
    page.get_by_label("Max replicas").fill("2")
    next_to(page, "summary")
    page.get_by_label("Endpoint name").fill(f"{PREFIX}-bad")
    page.get_by_role("button", name="Create endpoint").click()

    # the wizard goes back to the Scaling step, the API's message under Max replicas
    # (the field the API names: `scaling.max_replicas`)
    expect(page.locator('[data-step="scaling"]')).to_be_visible()
    error = page.locator('[data-field="scaling.max_replicas"] .field-error')
    expect(error).to_contain_text("must not exceed max_replicas")
    expect(page.get_by_test_id("step-scaling")).to_have_class(re.compile(r"\bhas-error\b"))

    # fixed; then a variable name the API refuses: its message is under that row's input
    page.get_by_label("Min replicas").fill("1")
    next_to(page, "env")
    page.get_by_role("button", name="Add variable").click()
    page.get_by_label("Variable 1 name").fill("bad key")
    page.get_by_label("Variable 1 value").fill("x")
    page.get_by_test_id("step-summary").click()
    expect(page.get_by_test_id("yaml")).to_contain_text("min_replicas: 1")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator('[data-step="env"]')).to_be_visible()
    row = page.locator('[data-field="env.bad key"] .field-error')
    expect(row).to_contain_text("is not a valid key")
    expect(page.locator('[data-field="scaling.min_replicas"] .field-error')).to_have_count(0)


def container_input(page: Any, field: str) -> Any:
    """The runtime step's input (or select) for `container.FIELD`."""
    return page.locator(f'[data-field="container.{field}"]').locator("input, select")


def test_a_container_image_endpoint_refused_then_created_and_listed(
    page: Any, server: ServerProcess, iris_model: str, cleanup: list[str]
) -> None:
    """Framework `container`: an image name the API refuses is shown under Image; fixed,
    the endpoint is created with its `container` block (min replicas 0: no container starts
    here) and listed."""
    name = f"{PREFIX}-box"
    cleanup.append(name)
    secret = f"{PREFIX}-registry"
    image = build_test_image("ctr-surface-wizard")
    with server.client() as client:
        client.set_secret(secret, "not-a-real-registry-password")
    try:
        page.errors.allow("422")
        open_wizard(page)
        page.get_by_label("Search frameworks").fill("OCI")
        page.get_by_test_id("framework-container").click()
        page.get_by_role("button", name="Next").click()
        page.locator('[data-field="model"] select').select_option(iris_model)
        next_to(page, "runtime")
        expect(page.get_by_test_id("blocker")).to_have_text("Enter the image to run.")
        container_input(page, "image").fill("Not A Valid Image!")
        container_input(page, "port").fill("8080")
        container_input(page, "health_route").fill("/health")
        container_input(page, "pull_policy").select_option("never")
        container_input(page, "model_mount").fill("/models")
        container_input(page, "registry_secret").select_option(secret)
        next_to(page, "scaling")
        page.get_by_label("Min replicas").fill("0")
        next_to(page, "summary")
        page.get_by_label("Endpoint name").fill(name)
        yaml_box = page.get_by_test_id("yaml")
        for line in ("framework: container", "container:", "pull_policy: never"):
            expect(yaml_box).to_contain_text(line)
        page.get_by_role("button", name="Create endpoint").click()

        # back on the runtime step, the API's message under the Image input
        expect(page.locator('[data-step="runtime"]')).to_be_visible()
        error = page.locator('[data-field="container.image"] .field-error')
        expect(error).to_contain_text("is not an image reference")
        expect(page.get_by_test_id("step-runtime")).to_have_class(re.compile(r"\bhas-error\b"))

        container_input(page, "image").fill(image)
        page.get_by_test_id("step-summary").click()
        sent = yaml.safe_load(page.locator('[data-testid="yaml"] code').text_content() or "")
        assert sent["container"] == {
            "image": image,
            "port": 8080,
            "health_route": "/health",
            "pull_policy": "never",
            "registry_secret": secret,
            "model_mount": "/models",
        }
        page.get_by_role("button", name="Create endpoint").click()
        expect(page).to_have_url(re.compile(rf"#/endpoints/{name}$"))
        shown = page.get_by_test_id("container-image")  # the overview says what runs
        expect(shown).to_contain_text(f"{image} · port 8080, health /health, pull never")
        expect(shown).to_contain_text(f"registry secret {secret}, model at /models")

        with server.client() as client:
            stored = client.endpoint(name).spec
        assert stored.framework == "container" and stored.container is not None
        assert stored.container.model_dump(mode="json") == {
            **sent["container"],
            "command": None,
            "args": [],
            "env": {},
        }
        page.goto("/#/endpoints")
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    finally:
        with server.client() as client:
            with contextlib.suppress(Exception):
                client.delete(name)
            with contextlib.suppress(Exception):
                client.delete_secret(secret)
        remove_image(image)


def test_going_back_from_the_summary_keeps_what_was_entered(page: Any, iris_model: str) -> None:
    open_wizard(page)
    pick_sklearn_and_iris(page, iris_model)
    page.get_by_text("Custom resources").click()
    page.get_by_label("CPUs").fill("0.5")
    page.get_by_label("Memory").fill("1Gi")
    expect(page.get_by_test_id("custom-price")).to_contain_text("cpu-small $0.050/h")
    next_to(page, "env")
    page.get_by_role("button", name="Add variable").click()
    page.get_by_label("Variable 1 name").fill("LOG_LEVEL")
    page.get_by_label("Variable 1 value").fill("debug")
    next_to(page, "summary")
    page.get_by_label("Endpoint name").fill(f"{PREFIX}-kept")
    yaml = page.get_by_test_id("yaml")
    expect(yaml).to_contain_text("cpus: 0.5")
    expect(yaml).to_contain_text("LOG_LEVEL: debug")

    page.get_by_role("button", name="Back").click()
    expect(page.get_by_label("Variable 1 name")).to_have_value("LOG_LEVEL")
    expect(page.get_by_label("Variable 1 value")).to_have_value("debug")
    page.get_by_role("button", name="Back").click()
    page.get_by_role("button", name="Back").click()
    page.get_by_role("button", name="Back").click()
    expect(page.get_by_label("CPUs")).to_have_value("0.5")
    expect(page.get_by_label("Memory")).to_have_value("1Gi")
    page.get_by_test_id("step-model").click()
    expect(page.locator('[data-field="model"] select')).to_have_value(iris_model)
    page.get_by_test_id("step-framework").click()
    expect(page.get_by_test_id("framework-sklearn").get_by_role("radio")).to_be_checked()

    page.get_by_test_id("step-summary").click()
    expect(page.get_by_label("Endpoint name")).to_have_value(f"{PREFIX}-kept")
    expect(yaml).to_contain_text("memory: 1Gi")
    expect(yaml).to_contain_text("LOG_LEVEL: debug")


def test_a_token_without_deploy_gets_no_wizard(page_as: Any, server: ServerProcess) -> None:
    with server.client() as client:
        reader = client.create_token(f"{PREFIX}-reader", ["read"])
    page = page_as(reader.token)
    page.goto("/#/new")
    expect(page.get_by_test_id("no-deploy")).to_contain_text("deploy")
    expect(page.get_by_role("button", name="Create endpoint")).to_have_count(0)
    expect(page.get_by_role("button", name="Next")).to_have_count(0)


def test_models_and_secrets_are_read_per_step_visit_not_on_a_timer(
    page: Any, iris_model: str
) -> None:
    reads: list[str] = []

    def note(request: Any) -> None:
        path = urlparse(request.url).path
        if path in ("/api/v1/models", "/api/v1/secrets"):
            reads.append(path)

    page.on("request", note)
    page.clock.install()  # the page's timers run only when the test says
    page.reload()
    with page.expect_response(lambda r: urlparse(r.url).path == "/api/v1/models"):
        open_wizard(page)  # read once when the wizard opens
    models = reads.count("/api/v1/models")
    assert models == 1
    page.get_by_test_id("framework-sklearn").click()
    page.get_by_role("button", name="Next").click()
    expect(page.locator('[data-field="model"] select option', has_text=iris_model)).to_have_count(1)

    # a minute on the Model step reads nothing by itself (it polled every 5 s); entering
    # the step again reads its lists (the Model step its models and secrets, the
    # Environment step its secrets), and so does a Reload button
    page.locator('[data-field="model"] select').select_option(iris_model)
    page.clock.run_for(60_000)
    page.get_by_role("button", name="Next").click()
    with page.expect_response(lambda r: urlparse(r.url).path == "/api/v1/models"):
        page.get_by_test_id("step-model").click()
    assert reads.count("/api/v1/models") == models + 2  # entering the step twice
    with page.expect_response(lambda r: urlparse(r.url).path == "/api/v1/models"):
        page.get_by_test_id("reload-models").click()
    assert reads.count("/api/v1/models") == models + 3
    secrets = reads.count("/api/v1/secrets")
    next_to(page, "env")
    expect(page.get_by_test_id("reload-secrets")).to_be_enabled()
    page.clock.run_for(60_000)
    assert reads.count("/api/v1/models") == models + 3
    with page.expect_response(lambda r: urlparse(r.url).path == "/api/v1/secrets"):
        page.get_by_test_id("reload-secrets").click()
    assert reads.count("/api/v1/secrets") == secrets + 2  # the step's entry, the button


def test_a_hugging_face_model_with_a_token_secret_and_the_yaml_is_what_is_sent(
    page: Any, server: ServerProcess
) -> None:
    secret = f"{PREFIX}-hf-token"
    with server.client() as client:
        client.set_secret(secret, "hf_not-a-real-token")
    # Create's body is kept and answered with a 422 as the API gives it: no Hub download
    # is started on a server without network.
    sent: list[Any] = []

    def refuse(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        sent.append(json.loads(route.request.post_data or "null"))
        problem = {
            "type": "about:blank",
            "title": "Unprocessable Entity",
            "status": 422,
            "detail": "1 invalid field",
            "errors": [
                {"field": "body.env_from_secrets", "message": f"secret '{secret}' is not usable"}
            ],
        }
        route.fulfill(status=422, content_type="application/problem+json", body=json.dumps(problem))

    page.route("**/api/v1/endpoints", refuse)
    page.errors.allow("422")
    open_wizard(page)
    page.get_by_test_id("framework-sklearn").click()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("radio", name="From Hugging Face").click()
    expect(page.get_by_test_id("blocker")).to_have_text("Enter a repository id.")
    page.get_by_label("Repository id").fill("hf://org/model-yes")
    page.get_by_label("Revision").fill("v1.0")
    page.get_by_label("Token secret").select_option(secret)

    next_to(page, "env")
    page.get_by_role("button", name="Add variable").click()
    page.get_by_label("Variable 1 name").fill("HF_TOKEN")
    page.get_by_label("Variable 1 source").select_option("secret")
    expect(page.get_by_test_id("blocker")).to_have_text("Choose the secret for HF_TOKEN.")
    page.get_by_label("Variable 1 secret").select_option(secret)
    # values and keys that YAML would read as something else unless quoted
    for i, (key, value) in enumerate([("on", "0b101"), ("NO", "yes"), ("T", "2024-01-01")], 2):
        page.get_by_role("button", name="Add variable").click()
        page.get_by_label(f"Variable {i} name").fill(key)
        page.get_by_label(f"Variable {i} value").fill(value)
    next_to(page, "summary")
    page.get_by_label("Endpoint name").fill(f"{PREFIX}-hf")
    yaml_box = page.get_by_test_id("yaml")
    expect(yaml_box).to_contain_text("model: hf://org/model-yes@v1.0")
    expect(yaml_box).to_contain_text(f"token_secret: {secret}")
    expect(yaml_box).to_contain_text(f"HF_TOKEN: {secret}")
    summary = yaml.safe_load(page.locator('[data-testid="yaml"] code').text_content() or "")

    page.get_by_role("button", name="Create endpoint").click()
    # the error names the secret: it is put under the variable that uses it
    expect(page.locator('[data-step="env"]')).to_be_visible()
    error = page.locator('[data-field="env_from_secrets.HF_TOKEN"] .field-error')
    expect(error).to_contain_text("is not usable")

    assert len(sent) == 1
    assert summary == sent[0]  # what `podium deploy -f` reads is what Create sent
    assert sent[0]["model"] == "hf://org/model-yes@v1.0"
    assert sent[0]["model_source"] == {"token_secret": secret}
    assert sent[0]["env_from_secrets"] == {"HF_TOKEN": secret}
    assert sent[0]["env"] == {"on": "0b101", "NO": "yes", "T": "2024-01-01"}


def test_upload_a_model_and_create_with_a_variable_from_a_secret(
    page: Any, server: ServerProcess, cleanup: list[str], tmp_path: Path
) -> None:
    name = f"{PREFIX}-up"
    model = f"{PREFIX}-upmodel"
    secret = f"{PREFIX}-db-password"
    cleanup.append(name)
    with server.client() as client:
        client.set_secret(secret, "s3cret")
    file = train_iris_skops(tmp_path) / "model.skops"

    open_wizard(page)
    page.get_by_test_id("framework-sklearn").click()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("radio", name="Upload").click()
    expect(page.get_by_test_id("blocker")).to_have_text("Upload the file first.")
    page.get_by_label("Model name").fill(model)
    page.get_by_label("Model file or archive").set_input_files(str(file))
    page.get_by_role("button", name="Upload", exact=True).click()
    bar = page.get_by_role("progressbar", name="Upload progress")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    uploaded = page.get_by_test_id("uploaded")
    expect(uploaded).to_contain_text(f"{model}:")
    ref = (uploaded.locator("code").text_content() or "").strip()
    # the repository source lists the new model at once (read again after the upload)
    page.get_by_role("radio", name="From the repository").click()
    expect(page.locator('[data-field="model"] select option', has_text=model)).to_have_count(1)
    page.get_by_role("radio", name="Upload").click()
    expect(page.get_by_test_id("uploaded")).to_contain_text(ref)

    next_to(page, "scaling")
    page.get_by_label("Min replicas").fill("0")  # nothing starts: the spec is what is checked
    next_to(page, "env")
    page.get_by_role("button", name="Add variable").click()
    page.get_by_label("Variable 1 name").fill("DB_PASSWORD")
    page.get_by_label("Variable 1 source").select_option("secret")
    page.get_by_label("Variable 1 secret").select_option(secret)
    next_to(page, "summary")
    page.get_by_label("Endpoint name").fill(name)
    expect(page.get_by_test_id("yaml")).to_contain_text(f"model: {ref}")
    expect(page.get_by_test_id("yaml")).to_contain_text(f"DB_PASSWORD: {secret}")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator(".page-header")).to_contain_text(name)

    with server.client() as client:
        ep = client.endpoint(name)
    assert ep.spec.env_from_secrets == {"DB_PASSWORD": secret}
    assert ep.spec.model == ref
    assert ep.spec.scaling.min_replicas == 0
    assert "s3cret" not in (page.content())  # the value is never shown
