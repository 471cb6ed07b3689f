"""The study report's own wording: how long each gridsize's networks trained, as configured."""
from __future__ import annotations

from ptycho_torch.study.load import parse_config
from ptycho_torch.study.report import training_length


def test_training_length_names_each_gridsizes_own_length_and_the_early_stop() -> None:
    config = parse_config({"gridsizes": [1, 2], "train": {"epochs": None, "max_steps": 2000, "patience": 500},
                           "train_by_gridsize": {2: {"max_steps": 1600}}})
    text = training_length(config)
    assert "gridsize 1: at most 2000 optimizer steps" in text
    assert "gridsize 2: at most 1600 optimizer steps" in text
    assert "500 steps without a new lowest validation loss" in text and "lowest validation loss kept" in text
    fixed = parse_config({"gridsizes": [1], "train": {"steps": 300, "patience": 0, "keep_best": False}})
    assert training_length(fixed) == "300 optimizer steps"
    assert training_length(parse_config({"gridsizes": [1, 2], "train": {"epochs": 10, "patience": 0,
                                                                     "keep_best": False}})) == "10 epochs"


def test_training_length_names_a_gridsizes_own_settings_and_its_start() -> None:
    config = parse_config({"gridsizes": [1, 2], "train": {"epochs": None, "max_steps": 2000, "patience": 500},
                           "train_by_gridsize": {2: {"max_steps": 1000, "encoder": "pattern", "batch_size": 4}},
                           "continue_from": {2: 1}})
    text = training_length(config)
    assert "gridsize 2: at most 1000 optimizer steps" in text
    assert "encoder pattern, batch_size 4" in text
    assert "starting from the weights of the gridsize-1 network of the same dose, overlap and arm" in text
