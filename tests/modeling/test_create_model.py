import pytest
import torch

import res2net_det


@pytest.mark.parametrize("name", ["res2net50_26w_4s", "res2net50d", "res2next50"])
def test_feature_strides(name):
    model = res2net_det.create_model(name, num_classes=0).eval()
    with torch.no_grad():
        feats = model(torch.zeros(1, 3, 64, 96))
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "res2": (1, 256, 16, 24), "res3": (1, 512, 8, 12), "res4": (1, 1024, 4, 6), "res5": (1, 2048, 2, 3),
    }


def test_unknown_name_lists_variants():
    with pytest.raises(KeyError, match="res2net50_26w_4s"):
        res2net_det.create_model("res2net51")


# ------------------------------------------------------------------ the one variant table
def test_list_models_is_the_table():
    from res2net_det.modeling.res2net import MODEL_TABLE

    assert res2net_det.list_models() == sorted(MODEL_TABLE)
    assert "resnet50" in MODEL_TABLE and MODEL_TABLE["resnet50"].scale == 1 and MODEL_TABLE["resnet50"].base_width == 64


def test_every_row_has_a_registered_named_constructor():
    import inspect
    import typing

    from res2net_det.modeling import model_registry, res2net

    assert set(model_registry._CONSTRUCTORS) == set(res2net.MODEL_TABLE)
    for name in res2net.MODEL_TABLE:
        fn = getattr(res2net, name)  # a plain module-level function, importable by name
        assert model_registry._CONSTRUCTORS[name] is fn and fn.__name__ == name and name in res2net.__all__
        params = inspect.signature(fn).parameters
        assert list(params) == ["weights", "kwargs"]
        assert params["weights"].kind is inspect.Parameter.KEYWORD_ONLY and params["weights"].default is None
        assert typing.get_type_hints(fn)["return"] is res2net.Res2Net
        assert str(res2net.MODEL_TABLE[name].checkpoint) in fn.__doc__  # the row, in the docstring


def test_a_constructor_builds_its_row():
    from res2net_det.modeling.res2net import res2net50_14w_8s, res2next50

    model = res2net50_14w_8s(num_classes=0, layers=(1, 1, 1, 1))
    assert len(model.layer1[0].convs) == 7 and model.layer1[0].convs[0].weight.shape[0] == 14
    grouped = res2next50(num_classes=0, layers=(1, 1, 1, 1))
    assert grouped.layer1[0].convs[0].groups == 8
    with pytest.raises(TypeError):
        res2net50_14w_8s("weights.pth")  # weights is keyword-only


def test_registering_a_name_without_a_row_fails():
    from res2net_det.modeling.res2net import register_model

    def res2net77_1w_1s(*, weights=None, **kwargs):
        raise AssertionError("never built")

    with pytest.raises(KeyError, match="res2net77_1w_1s has no row in MODEL_TABLE"):
        register_model(res2net77_1w_1s)


def test_aliases_and_checkpoint_names_come_from_the_table():
    from res2net_det.modeling.res2net import (
        ALIASES,
        MODEL_TABLE,
        OFFICIAL_CHECKPOINTS,
        VARIANTS,
        official_checkpoint,
        res2net50_v1b_26w_4s,
        res2net50d,
        res2next50,
        res2next50_4s,
        resolve_name,
    )

    # timm's names and the official files' stems, derived from the rows
    assert dict(ALIASES) == {"res2net50d": "res2net50_v1b_26w_4s", "res2net101d": "res2net101_v1b_26w_4s",
                             "res2next50_4s": "res2next50"}
    assert res2net50d is res2net50_v1b_26w_4s and res2next50_4s is res2next50
    assert resolve_name("res2net50d") == "res2net50_v1b_26w_4s"
    assert dict(OFFICIAL_CHECKPOINTS) == {n: v.checkpoint for n, v in MODEL_TABLE.items() if v.checkpoint}
    assert official_checkpoint("res2next50_4s") == "res2next50_4s-6ef7e7bf.pth"
    assert official_checkpoint("res2net50d") == "res2net50_v1b_26w_4s-3cf99910.pth"
    assert official_checkpoint("resnet50") is None
    assert set(VARIANTS) == set(MODEL_TABLE) and VARIANTS["res2next50"]["cardinality"] == 8
    with pytest.raises(TypeError):  # views, not second tables to edit
        OFFICIAL_CHECKPOINTS["res2net50_26w_4s"] = "other.pth"


def test_find_variant_names_an_architecture():
    from res2net_det.modeling.res2net import find_variant

    assert find_variant(50, 26, 4) == "res2net50_26w_4s"
    assert find_variant(50, 64, 1) == "resnet50"
    assert find_variant(101, 26, 4, deep_stem=True, avg_down=True) == "res2net101_v1b_26w_4s"
    assert find_variant(50, 8, 4) is None
