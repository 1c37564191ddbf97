"""The dashboard's pure JavaScript helpers, run in Chromium (no Node): each test imports a
module of the served page with `page.evaluate` and checks what its functions return.

    create_spec.js  toYaml (read back with PyYAML, as `podium deploy -f` reads it), remapErrors
    api.js          ApiError.forField
    router.js       match, parseHash, href
    ui.js           toCsv (read back with Python's csv)
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def js(browser: Any, server: ServerProcess) -> Iterator[Any]:
    """One page at `/` for the whole module: `js(module, body, arg)` runs `body` (a function
    of the imported module `m` and `arg`) in it and returns its result."""
    context = browser.new_context(base_url=server.url)
    res = context.request.post("/api/v1/session", data={"token": server.token})
    assert res.ok, res.text()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/")

    def run(module: str, body: str, arg: Any = None) -> Any:
        script = f"async (arg) => {{ const m = await import('/ui/js/{module}'); {body} }}"
        return page.evaluate(script, arg)

    yield run
    context.close()
    assert not errors, errors


# ---------------------------------------------------------------- toYaml

# Strings a YAML 1.1 or 1.2 reader would take as something else if written plain, and a
# few that must stay plain strings.
TRICKY = [
    # booleans and nulls, any case (YAML 1.1 has y/n/yes/no/on/off too)
    *("y", "Y", "n", "N", "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off"),
    *("Off", "OFF", "true", "True", "TRUE", "false", "FALSE", "null", "Null", "NULL", "~"),
    # ints in every base, with signs and underscores; YAML 1.1 octal and base 60
    *("0", "7", "-1", "+1", "007", "1_000", "0b101", "0b1_0", "-0b11", "0o17", "0x1F"),
    *("0X1f", "+0x1", "1:30", "190:20:30", "-1:00"),
    # floats, special floats, base-60 floats
    *("1.", ".5", "-.5", "+.5e3", "1e3", "1E-3", "1.5e+10", "3.14", "6.8523015e+5"),
    *(".inf", "-.inf", "+.INF", ".Inf", ".nan", ".NaN", ".NAN", "190:20:30.15", "1_0.5"),
    # dates and timestamps
    *("2024-01-01", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5"),
    *("2001-12-15T02:59:43.1Z", "2002-12-14", "2024-1-1"),
    # indicators and special first characters
    *("=", "=x", "<<", "%x", "*a", "&a", "!x", "!!str", "|", ">", "'", '"', "?x", "? x"),
    *("@x", "`x", "-", "- a", "--", "---", "...", ":", ":x", "#x", "[x]", "{x}", ",x"),
    # spaces, colons, comments, escapes and non-ASCII
    *("", " ", "  ", "\t", " a", "a ", "a  b", "a #b", "a# b", "a: b", "a:", "x:y"),
    *("a\nb", "a\r\nb", "tab\there", 'say "hi"', "back\\slash", "é", "日本", "😀"),
    *("\x00", "\x07", "\x1b", "\x7f", "\x85", "\xa0", "\u2028", "\u2029", "\ufeff"),
    # ordinary ones that stay plain
    *("1Gi", "512Mi", "iris:1", "hf://org/name@main", "http://x:8/y", "debug", "a.b_c-d"),
]

TRICKY_KEYS = [
    *("ON", "yes", "NO", "true", "null", "~", "Y", "n", "1", "0b1", "0o7", "1.5", ".inf"),
    *("2024-01-01", "1:30", "a b", "x:y", "a:", "", " ", "-", "? x", "<<", "=", "#k"),
    *("a\nb", "é", "LOG_LEVEL", "max_model_len", "--flag", "-ngl"),
]

SPECS: list[Any] = [
    {"env": {f"K{i}": v for i, v in enumerate(TRICKY)}},
    {
        "env": {k: "v" for k in TRICKY_KEYS},
        "engine_args": {k: i for i, k in enumerate(TRICKY_KEYS)},
    },
    {"command": {"command": "python", "args": TRICKY}},
    {
        "name": "yes",
        "model": "iris:1",
        "framework": "sklearn",
        "resources": {"cpus": 0.5, "memory": "1Gi", "gpus": 0},
        "scaling": {"min_replicas": 0, "max_replicas": 64, "target_concurrency": 1.5},
        "engine_args": {"enforce_eager": True, "quantize": False, "dtype": "half"},
        "numbers": [0, -1, 1.5, -0.25, 1e21, 1e-7, 123456789012, 2.5e-300, 1.7976931348623157e308],
        "empty": {"list": [], "dict": {}, "str": "", "none": None},
        "nested": [[], {}, [1, [2, ["3"]]], {"a": [{"b": {"c": "on"}}]}, None, "off"],
    },
]


@pytest.mark.parametrize("spec", SPECS, ids=["values", "keys", "list", "spec"])
def test_to_yaml_reads_back_as_the_same_spec(js: Any, spec: Any) -> None:
    text = js("pages/create_spec.js", "return m.toYaml(arg);", spec)
    assert yaml.safe_load(text) == spec, text


def test_to_yaml_quotes_what_only_yaml_1_2_reads_as_a_number(js: Any) -> None:
    # PyYAML (1.1) reads these as strings either way; a 1.2 reader does not
    spec = {"a": "0o17", "b": "0o7", "0o17": "k", "c": "1Gi"}
    text = js("pages/create_spec.js", "return m.toYaml(arg);", spec)
    assert 'a: "0o17"\n' in text
    assert 'b: "0o7"\n' in text
    assert '"0o17": k\n' in text
    assert "c: 1Gi\n" in text  # what needs no quotes is written plain


def test_to_yaml_writes_special_floats(js: Any) -> None:
    body = "return m.toYaml({inf: Infinity, ninf: -Infinity, nan: NaN});"
    back = yaml.safe_load(js("pages/create_spec.js", body))
    assert back["inf"] == math.inf
    assert back["ninf"] == -math.inf
    assert math.isnan(back["nan"])


# ---------------------------------------------------------------- remapErrors

REMAP_STATE = {
    "engineArgs": [{"id": "r1", "key": "max_model_len", "value": "x"}],
    "env": [
        {"id": "r2", "key": "bad key", "source": "value", "value": "1", "secret": ""},
        {"id": "r3", "key": "HF_TOKEN", "source": "secret", "value": "", "secret": "hf-token"},
    ],
}

REMAP_CASES: list[tuple[dict[str, Any], str]] = [
    # a block-level message is put on the sub-field it names first
    (
        {"field": "body.scaling", "message": "max_replicas (2) must be at least min_replicas (3)"},
        "scaling.max_replicas",
    ),
    ({"field": "spec.resources", "message": "gpu_type needs gpus >= 1"}, "resources.gpu_type"),
    ({"field": "batching", "message": "max_wait_ms must be >= 0"}, "batching.max_wait_ms"),
    # a list item's error goes on the list's input
    ({"field": "body.command.args.0", "message": "empty argument"}, "command.args"),
    # the row of a dict block named in quotes: by its key, or a secret by its name
    ({"field": "body.env", "message": "'bad key' is not a valid key"}, "env.bad key"),
    (
        {"field": "env_from_secrets", "message": "secret 'hf-token' not found"},
        "env_from_secrets.HF_TOKEN",
    ),
    (
        {"field": "engine_args", "message": "'max_model_len' must be an int"},
        "engine_args.max_model_len",
    ),
    # nothing to place it on: the path without its prefix
    ({"field": "body.scaling", "message": "something else"}, "scaling"),
    ({"field": "body.env", "message": "'nobody' is not a valid key"}, "env"),
    ({"field": "spec.model", "message": "model 'x' not found"}, "model"),
    ({"field": None, "message": "no field"}, ""),
]


def test_remap_errors_puts_each_422_error_on_its_input(js: Any) -> None:
    errors = [e for e, _ in REMAP_CASES]
    got = js(
        "pages/create_spec.js",
        "return m.remapErrors(arg.errors, arg.s);",
        {"errors": errors, "s": REMAP_STATE},
    )
    assert [g["field"] for g in got] == [want for _, want in REMAP_CASES]
    assert [g["message"] for g in got] == [e["message"] for e in errors]  # messages kept
    # without the wizard's state (no rows), a dict block's error stays on the block
    plain = js("pages/create_spec.js", "return m.remapErrors(arg);", [REMAP_CASES[4][0]])
    assert plain[0]["field"] == "env"
    assert js("pages/create_spec.js", "return m.remapErrors(undefined);") == []


def test_step_of_field_and_is_shown(js: Any) -> None:
    body = """
      const s = {...m.initialState(), ...arg};
      const fw = {name: "sklearn", kind: "builtin", tasks: []};
      return {
        steps: ["framework", "model", "resources.cpus", "scaling.max_replicas", "env.bad key",
                "name", "nope"].map(m.stepOfField),
        shown: ["scaling.max_replicas", "scaling.nope", "env.bad key", "env_from_secrets.HF_TOKEN",
                "env.HF_TOKEN", "resources.cpus", "instance_type", "trust_pickle",
                "model_source.token_secret"].map((f) => m.isShown(f, s, fw)),
      };
    """
    got = js("pages/create_spec.js", body, REMAP_STATE)
    assert got["steps"] == [0, 1, 2, 4, 5, 6, -1]
    assert got["shown"] == [True, False, True, True, False, False, True, False, False]


def test_a_container_image_is_the_spec_container_block_and_its_errors_are_placed(
    js: Any,
) -> None:
    body = """
      const fw = {name: "container", kind: "container", tasks: []};
      const s = {...m.initialState(), ...arg, framework: "container"};
      const bare = {...m.initialState(), framework: "container", repoModel: "iris",
                    image: "localhost/x:1"};
      const errors = m.remapErrors([
        {field: "body.container", message: "this server cannot run container endpoints: …"},
        {field: "body.container", message: "a `container` block with an `image`"},
        {field: "body.container.image", message: "'X' is not an image reference"},
      ], s);
      return {
        spec: m.buildSpec(s, fw, "default"),
        bare: m.buildSpec(bare, fw, "default").container,
        fields: errors.map((e) => e.field),
        shown: errors.map((e) => m.isShown(e.field, s, fw)),
        step: m.stepOfField("container.image"),
        hidden: m.isShown("container.image", s, {name: "command", kind: "command", tasks: []}),
      };
    """
    state = {
        "repoModel": "iris",
        "image": " localhost/podium-test/busybox:1 ",
        "ctrPort": "9000",
        "ctrHealthRoute": "/healthz",
        "pullPolicy": "never",
        "registrySecret": "registry",
        "modelMount": "/models",
    }
    got = js("pages/create_spec.js", body, state)
    assert got["spec"]["container"] == {
        "image": "localhost/podium-test/busybox:1",
        "port": 9000,
        "health_route": "/healthz",
        "pull_policy": "never",
        "registry_secret": "registry",
        "model_mount": "/models",
    }
    assert "command" not in got["spec"] and got["spec"]["framework"] == "container"
    # the server's defaults where nothing was entered
    assert got["bare"] == {"image": "localhost/x:1", "pull_policy": "if_not_present"}
    assert got["fields"] == ["container", "container.image", "container.image"]
    assert got["shown"] == [True, True, True]
    assert got["step"] == 3 and got["hidden"] is False  # the runtime step, container only


# ---------------------------------------------------------------- api.js


def test_api_error_for_field(js: Any) -> None:
    body = """
      const e = new m.ApiError(422, {title: "Unprocessable", detail: "2 errors", errors: arg});
      const one = new m.ApiError(404, {title: "Not found", detail: "no such endpoint",
                                       field: "name"});
      const none = new m.ApiError(500, {title: "Server error"});
      return {
        full: e.forField("spec.scaling.max_replicas"),
        tail: e.forField("scaling.max_replicas"),
        leaf: e.forField("max_replicas"),
        longer: e.forField("body.name"),
        partial: e.forField("replicas"),
        other: e.forField("scaling.min_replicas"),
        one: one.forField("name"), oneErrors: one.errors, oneMessage: one.message,
        none: none.forField("name"), noneMessage: none.message, status: e.status,
      };
    """
    errors = [
        {"field": "spec.scaling.max_replicas", "message": "too many"},
        {"field": "name", "message": "bad name"},
    ]
    got = js("api.js", body, errors)
    assert got["full"] == got["tail"] == got["leaf"] == "too many"
    assert got["longer"] == "bad name"  # "body.name" ends with the error's "name"
    assert got["partial"] is None  # only whole path segments match
    assert got["other"] is None
    assert got["one"] == "no such endpoint"
    assert got["oneErrors"] == [{"field": "name", "message": "no such endpoint"}]
    assert got["none"] is None
    assert got["noneMessage"] == "Server error"
    assert got["status"] == 422


# ---------------------------------------------------------------- router.js


def test_router_match_parse_hash_and_href(js: Any) -> None:
    body = """
      const p = "/endpoints/:name/:tab?";
      return {
        bare: m.match(p, "/endpoints/iris"),
        tab: m.match(p, "/endpoints/iris/monitoring"),
        slash: m.match(p, "/endpoints/iris/"),
        encoded: m.match(p, "/endpoints/a%20b%2Fc/logs"),
        missing: m.match(p, "/endpoints"),
        longer: m.match(p, "/endpoints/a/b/c"),
        other: m.match(p, "/models/iris"),
        fixed: m.match("/new", "/new"),
        root: m.match("/", "/"),
        hash: m.parseHash("#/endpoints/x/requests?project=team&q=a%20b&q2=c+d"),
        empty: m.parseHash(""),
        justHash: m.parseHash("#"),
        noQuery: m.parseHash("#/audit"),
        href: m.href("/endpoints/x",
                      {project: "a b&c", span: "", none: null, undef: undefined, n: 0}),
        hrefBare: m.href("/new"),
        hrefEmpty: m.href("/new", {project: ""}),
      };
    """
    got = js("router.js", body)
    assert got["bare"] == {"name": "iris"}
    assert got["tab"] == {"name": "iris", "tab": "monitoring"}
    assert got["slash"] == {"name": "iris"}
    assert got["encoded"] == {"name": "a b/c", "tab": "logs"}
    assert got["missing"] is None
    assert got["longer"] is None
    assert got["other"] is None
    assert got["fixed"] == {}
    assert got["root"] == {}
    assert got["hash"] == {
        "path": "/endpoints/x/requests",
        "query": {"project": "team", "q": "a b", "q2": "c d"},
    }
    assert got["empty"] == got["justHash"] == {"path": "/", "query": {}}
    assert got["noQuery"] == {"path": "/audit", "query": {}}
    assert got["href"] == "#/endpoints/x?project=a+b%26c&n=0"
    assert got["hrefBare"] == got["hrefEmpty"] == "#/new"
    # what href writes, parseHash reads back
    back = js("router.js", "return m.parseHash(m.href('/x', arg));", {"project": "a b&c=d?e#f"})
    assert back == {"path": "/x", "query": {"project": "a b&c=d?e#f"}}


# ---------------------------------------------------------------- ui.js


def test_to_csv_reads_back_with_python_csv(js: Any) -> None:
    rows: list[dict[str, Any]] = [
        {"a": "plain", "b": 1, "c": "x"},
        {"a": 'say "hi", then go', "b": 2.5, "c": "line one\nline two"},
        {"a": "comma,here", "b": None, "c": "crlf\r\nend"},
        {"a": "", "b": 0, "c": '"'},
        {"a": " spaced ", "b": -1, "c": "é,日本"},
    ]
    body = """
      const columns = [
        {key: "a", label: "A, the \\"first\\""},
        {key: "b", label: "B", value: (r) => r.b},
        {key: "c", label: "C\\nmultiline", csv: (r) => "<" + r.c + ">"},
      ];
      return m.toCsv(columns, arg);
    """
    text = js("ui.js", body, rows)
    assert text.endswith("\r\n")
    back = list(csv.reader(io.StringIO(text, newline="")))
    assert back[0] == ['A, the "first"', "B", "C\nmultiline"]
    assert back[1:] == [
        [r["a"], "" if r["b"] is None else _js_str(r["b"]), f"<{r['c']}>"] for r in rows
    ]


def test_to_csv_defuses_formulas_in_texts_not_numbers(js: Any) -> None:
    """A name or reason starting like a formula is not run by a spreadsheet (OWASP's
    CSV injection rule, as the API's own CSV applies it); a negative number stays one."""
    rows = [{"a": '=HYPERLINK("http://x")', "b": -1}, {"a": "@SUM(A1)", "b": 2}]
    body = """
      return m.toCsv([{key: "a", label: "A"}, {key: "b", label: "B"}], arg);
    """
    back = list(csv.reader(io.StringIO(js("ui.js", body, rows), newline="")))
    assert back[1:] == [['\'=HYPERLINK("http://x")', "-1"], ["'@SUM(A1)", "2"]]


def _js_str(v: Any) -> str:
    """String(v) in JavaScript for the numbers above."""
    return str(int(v)) if float(v).is_integer() else str(v)
