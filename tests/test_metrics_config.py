import pytest

from perr.config import TrainConfig, load_config
from perr.metrics import classification_metrics


def test_metrics_against_hand_computed_case():
    # truth 0 0 1 1 2 / pred 0 1 1 1 0: class0 P=1/2 R=1/2 F1=.5; class1 P=2/3 R=1 F1=.8; class2 F1=0
    m = classification_metrics([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["a", "b", "c"])
    assert m["per_class_f1"] == pytest.approx({"a": 0.5, "b": 0.8, "c": 0.0})
    assert m["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert m["micro_f1"] == pytest.approx(3 / 5)
    assert m["weighted_f1"] == pytest.approx((2 * 0.5 + 2 * 0.8 + 0) / 5)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_absent_class_counts_in_macro():
    m = classification_metrics([0, 0], [0, 0], ["a", "b"])
    assert m["micro_f1"] == 1.0 and m["macro_f1"] == 0.5


def test_defaults_are_the_papers_protocol():
    c = TrainConfig()
    assert (c.lr, c.lr_step, c.lr_gamma, c.epochs, c.batch_size) == (5e-3, 15, 0.1, 50, 16)


def test_yaml_then_set_precedence_and_errors(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("epochs: 7\nmodel: lstm\ndrop: [audio]\nlr: 0.001\n")
    c = load_config(f, ["epochs=3", "bf16=true", "drop=person,text"])
    assert (c.epochs, c.model, c.lr, c.bf16, c.drop) == (3, "lstm", 0.001, True, ["person", "text"])
    assert c.dropped_modalities(["person_a", "person_b", "text", "audio"]) == ["person_a", "person_b", "text"]
    with pytest.raises(ValueError, match="unknown config key 'epoch'"):
        load_config(None, ["epoch=3"])
    with pytest.raises(ValueError, match="config key 'epochs'"):
        load_config(None, ["epochs=many"])
    with pytest.raises(ValueError, match="expected key=value"):
        load_config(None, ["epochs"])
