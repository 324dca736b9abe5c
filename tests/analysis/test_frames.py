import math

import numpy as np
import optuna

from hpsearch.analysis.frames import curves_frame, trials_frame


def test_trials_frame_and_curves_frame_work_on_a_plain_optuna_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'plain.db'}"
    study = optuna.create_study(study_name="plain", storage=storage, direction="minimize")

    def objective(trial):
        x = trial.suggest_float("x", 1e-3, 10.0, log=True)
        kind = trial.suggest_categorical("kind", ["a", "b"])
        for step in range(3):
            trial.report(x * (step + 1), step)
        return (math.log10(x)) ** 2 + (kind == "b")

    study.optimize(objective, n_trials=5)
    frame = trials_frame(storage, "plain")
    assert list(frame["number"]) == [0, 1, 2, 3, 4]
    assert set(frame["state"]) == {"COMPLETE"}
    assert np.allclose(frame["log10_x"], np.log10(frame["x"]))
    assert "log10_kind" not in frame.columns
    assert (frame["epochs_run"] == 3).all() and (frame["seconds"] > 0).all()
    assert not frame["diverged"].any() and (frame["round"] == 1).all()
    curves = curves_frame(storage, "plain")
    assert len(curves) == 15 and set(curves["metric"]) == {"intermediate"}
