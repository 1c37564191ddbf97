from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

from podium.core.errors import Invalid, LoadError
from podium.runtimes.base import RuntimeConfig
from podium.runtimes.sklearn import SklearnRuntime

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


def loaded(path: Path, *, trust_pickle: bool = False) -> SklearnRuntime:
    runtime = SklearnRuntime(RuntimeConfig(model_name="iris", trust_pickle=trust_pickle))
    runtime.load(path)
    return runtime


def test_skops_model_predicts_one_row_and_many(iris_skops: Path) -> None:
    runtime = loaded(iris_skops)
    assert runtime.health()
    assert runtime.predict(SETOSA, {}) == [0]
    assert runtime.predict([SETOSA, VIRGINICA], {}) == [0, 2]
    assert all(type(v) is int for v in runtime.predict([SETOSA, VIRGINICA], {}))


def test_probabilities_are_label_maps(iris_skops: Path) -> None:
    [probs] = loaded(iris_skops).predict([SETOSA], {"return_probabilities": True})
    assert set(probs) == {"0", "1", "2"}
    assert max(probs, key=probs.__getitem__) == "0"
    assert sum(probs.values()) == pytest.approx(1.0)


def test_batch_answers_each_request_in_order(iris_skops: Path) -> None:
    runtime = loaded(iris_skops)
    assert runtime.predict_batch([SETOSA, [VIRGINICA, SETOSA], [SETOSA]], {}) == [
        [0],
        [2, 0],
        [0],
    ]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([1.0, 2.0, 3.0], "needs 4 features, got 3"),
        ([[1.0, 2.0, 3.0, 4.0], [1.0]], "same length"),
        ({"a": 1}, "trained without feature names"),
        ("hello", "inputs must be"),
        ([], "inputs must be"),
    ],
)
def test_bad_inputs_are_invalid(iris_skops: Path, inputs: object, message: str) -> None:
    with pytest.raises(Invalid, match=message) as caught:
        loaded(iris_skops).predict(inputs, {})
    assert caught.value.field == "inputs"


def test_return_probabilities_must_be_a_bool(iris_skops: Path) -> None:
    with pytest.raises(Invalid) as caught:
        loaded(iris_skops).predict(SETOSA, {"return_probabilities": "yes"})
    assert caught.value.field == "parameters.return_probabilities"


def test_tensor_metadata_and_infer(iris_skops: Path) -> None:
    runtime = loaded(iris_skops)
    assert runtime.capabilities.tensor
    meta = runtime.v2_metadata()
    [spec] = meta.inputs
    assert (spec.name, spec.datatype, spec.shape) == ("input-0", "FP64", (-1, 4))
    assert spec.allows("FP32")
    assert [(o.name, o.datatype, o.shape) for o in meta.outputs] == [
        ("predict", "INT64", (-1,)),
        ("predict_proba", "FP64", (-1, 3)),
    ]
    x = np.array([SETOSA, VIRGINICA], dtype=np.float32)
    out = runtime.infer({"input-0": x}, {})
    assert out["predict"].tolist() == [0, 2]
    assert out["predict_proba"].shape == (2, 3)
    assert set(runtime.infer({"input-0": x}, {}, frozenset({"predict"}))) == {"predict"}


def test_pickle_is_refused_without_trust(iris_pickle: Path) -> None:
    with pytest.raises(LoadError) as caught:
        loaded(iris_pickle)
    assert str(caught.value) == (
        "model.joblib is a pickle, which runs code when loaded; refusing to load it. "
        "Set trust_pickle: true on the endpoint to allow it, or save the model with skops"
    )


def test_pickle_loads_when_trusted(iris_pickle: Path) -> None:
    assert loaded(iris_pickle, trust_pickle=True).predict(VIRGINICA, {}) == [2]


def test_skops_with_foreign_types_is_refused(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y = load_iris(return_X_y=True)
    pipe = make_pipeline(
        FunctionTransformer(func=collections.OrderedDict), LogisticRegression(max_iter=500)
    )
    pipe.steps[1][1].fit(x, y)
    sio.dump(pipe, tmp_path / "model.skops")
    with pytest.raises(LoadError, match=r"not from scikit-learn.*collections\.OrderedDict"):
        loaded(tmp_path)


def test_missing_model_file_lists_what_was_found(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hi")
    with pytest.raises(LoadError, match=r"no scikit-learn model file .* found: README\.md"):
        loaded(tmp_path)


def test_a_model_file_path_works_too(iris_skops: Path) -> None:
    assert loaded(iris_skops / "model.skops").predict(SETOSA, {}) == [0]


def test_rows_by_feature_name(tmp_path: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    model.feature_names_in_ = np.array(names, dtype=object)  # as if fitted on a DataFrame
    joblib.dump(model, tmp_path / "model.pkl")
    runtime = loaded(tmp_path, trust_pickle=True)
    setosa = dict(zip(names, SETOSA, strict=True))
    virginica = dict(zip(names, VIRGINICA, strict=True))
    assert runtime.predict(setosa, {}) == [0]
    assert runtime.predict([virginica, setosa], {}) == [2, 0]
    with pytest.raises(Invalid, match="missing features: petal_width"):
        runtime.predict({k: v for k, v in setosa.items() if k != "petal_width"}, {})
    with pytest.raises(Invalid, match="unknown features: colour"):
        runtime.predict(setosa | {"colour": 1}, {})
