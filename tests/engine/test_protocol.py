"""The results protocol (lga.engine.protocol): rows x shots x seeds through the engine, shared episodes."""

import numpy as np
import pytest
import torch

from lga.config import load_config

#: the chapter 1 recipe (conv4 frame encoder, ProtoNet) that these small runs change with --set values
CONV4 = "atomic_actions_5way_1shot_protonet_cpu"

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def setup(tiny_atomic_actions, micro_clip_config, tmp_path_factory, one_thread):
    from lga.engine.features import FrozenFeatures
    from lga.models.backbone import load_clip, save_clip_checkpoint
    torch.manual_seed(0)
    clip_dir = tmp_path_factory.mktemp("clip") / "micro"
    save_clip_checkpoint(load_clip(micro_clip_config)[0], clip_dir, micro_clip_config)
    cfg = load_config(CONV4, [
        f"data.root={tiny_atomic_actions}", "data.n_way=3", "data.train_queries=1", "model.encoder=clip",
        f"model.encoder_args={{model: {clip_dir}}}", "model.text=clip", "model.text_args={label_template: '{label}'}",
        "train.epochs=2", "train.steps_per_epoch=4", "train.tasks_per_step=2", "train.milestones=[1]",
        "train.warmup_epochs=0", "train.eval_interval=4", "train.val_episodes=20", "train.lr=3e-3",
        "train.device=cpu", "eval.episodes=60", "eval.batch_episodes=32"])
    return cfg, FrozenFeatures.from_config(cfg, progress=False)


def rows():
    from lga.engine.protocol import Row, ablation_rows
    return [Row("ProtoNet", "protonet", {"metric": "cosine"})] + ablation_rows(["full LGA"], num_heads=2)


def test_protocol_trains_through_the_engine_on_shared_episodes(setup, tmp_path):
    from lga.engine.evaluate import evaluate_checkpoint
    from lga.engine.protocol import row_config, run_protocol
    cfg, feats = setup
    res = run_protocol(cfg, rows(), shots=(1,), seeds=(0, 1), features=feats, out_dir=tmp_path, untrained=True,
                       progress=False, keep_runs=True, workers=1)
    assert res.rows == ["ProtoNet", "full LGA"] and len(res.results) == 4
    assert len({r.episodes for r in res.results.values()}) == 1                 # one set of test episodes
    assert res.trained == {("ProtoNet", 1, 0): False, ("ProtoNet", 1, 1): False,
                           ("full LGA", 1, 0): True, ("full LGA", 1, 1): True}
    assert res.results["ProtoNet", 1, 0] is res.results["ProtoNet", 1, 1]        # nothing to train: scored once
    assert set(res.untrained) == {("full LGA", 1, 0), ("full LGA", 1, 1)}
    # every number is what the engine's own run gives: its best checkpoint, evaluated by lga eval's path
    rcfg = row_config(cfg, rows()[1], 1, 1)
    ckpt = tmp_path / "full_lga" / "k1" / "seed1" / "checkpoints" / "best.safetensors"
    again = evaluate_checkpoint(rcfg, ckpt, episodes=60, progress=False)
    np.testing.assert_array_equal(again.accuracies, res.results["full LGA", 1, 1].accuracies)
    assert res.checkpoints["full LGA", 1, 1] == ckpt and ("ProtoNet", 1, 0) not in res.checkpoints
    from lga.engine.evaluate import evaluate_episodes
    from lga.engine.protocol import load_head
    head = load_head(cfg, rows()[1], 1, 1, ckpt, dim=feats.dim)
    sampler = feats.test.sampler(3, 1, 1, seed=cfg.eval.seed, num_episodes=60)
    direct = evaluate_episodes(head, feats.test.features, feats.test.labels, sampler, progress=False,
                               text_bank=feats.test.bank)
    np.testing.assert_array_equal(direct.accuracies, res.results["full LGA", 1, 1].accuracies)
    init = evaluate_episodes(load_head(cfg, rows()[1], 1, 1, dim=feats.dim), feats.test.features,
                             feats.test.labels, sampler, progress=False, text_bank=feats.test.bank)
    np.testing.assert_array_equal(init.accuracies, res.untrained["full LGA", 1, 1].accuracies)
    assert rcfg.train.seed == 1 and rcfg.data.k_shot == 1 and rcfg.train.backbone == "frozen"
    # the tables
    summary = {(r["row"], r["shot"]): r for r in res.summary()}
    assert summary["ProtoNet", 1]["std"] == 0.0 and summary["ProtoNet", 1]["seeds"] == 2
    m = [100 * res.results["full LGA", 1, s].mean for s in (0, 1)]
    assert summary["full LGA", 1]["mean"] == pytest.approx(np.mean(m))
    assert summary["full LGA", 1]["std"] == pytest.approx(np.std(m, ddof=1))
    cs = res.compare("full LGA", "ProtoNet", 1)
    assert len(cs) == 2 and cs[1].diff == pytest.approx(res.results["full LGA", 1, 1].mean
                                                        - res.results["ProtoNet", 1, 1].mean)
    assert res.holds("full LGA", "ProtoNet", 1) in ("better", "worse", "mixed", "n.s.")
    assert len(res.table()) == 4 and set(res.job_seconds) == set(res.results)


def test_protocol_numbers_do_not_depend_on_the_worker_count(setup):
    from lga.engine.protocol import run_protocol
    cfg, feats = setup
    one = run_protocol(cfg, rows(), shots=(1, 2), seeds=(0,), features=feats, progress=False, workers=1)
    two = run_protocol(cfg, rows(), shots=(1, 2), seeds=(0,), features=feats, progress=False, workers=2)
    assert one.results.keys() == two.results.keys()
    for key in one.results:
        np.testing.assert_array_equal(one.results[key].accuracies, two.results[key].accuracies)


def test_rows_are_the_books_table():
    from lga.engine.protocol import ablation_rows, baseline_rows, headline_rows
    from lga.models.lga import ABLATION_CHAIN, LGAConfig
    rows = headline_rows()
    names = [r.name for r in rows]
    assert names[:3] == ["ProtoNet", "OTAM", "label-only"] and names[3:] == list(ABLATION_CHAIN)
    assert [r.tuned_name for r in rows[:3]] == [None, "OTAM, tuned", "label-only, tuned"]
    assert rows[1].tune[0] == "lbda" and rows[2].tune[0] == "otam_lbda" and 0.5 in rows[1].tune[1]
    assert not any(r.tune for r in rows[3:])
    assert baseline_rows()[2].head == "label_only" and baseline_rows()[1].head_args["lbda"] == 0.5
    for row in ablation_rows(shot_rule="mean_distance"):
        assert LGAConfig(**row.head_args) == LGAConfig(**{**vars(ABLATION_CHAIN[row.name]),
                                                           "shot_rule": "mean_distance"})


def test_a_tuned_row_chooses_its_parameter_on_validation_and_reports_both(setup):
    """Row.tune: the value of the grid best on validation episodes, the same trained head reported as
    given and as '<name>, tuned'; each number is what evaluate_split gives for that value."""
    from lga.engine.evaluate import evaluate_split
    from lga.engine.protocol import Row, load_head, run_protocol
    cfg, feats = setup
    grid = (0.01, 0.5, 5.0)
    rows = [Row("OTAM", "otam", {"lbda": 0.5}, tune=("lbda", grid)),
            Row("full LGA", "lga", {"num_heads": 2}, tune=("config.alpha", (0.0, 1.0)))]
    res = run_protocol(cfg, rows, shots=(1,), seeds=(0,), features=feats, progress=False, workers=1,
                       keep_runs=False, tune_episodes=30)
    assert res.rows == ["OTAM", "OTAM, tuned", "full LGA", "full LGA, tuned"]
    val = feats.val.sampler(3, 1, 1, seed=cfg.eval.seed, num_episodes=30)
    test = feats.test.sampler(3, 1, 1, seed=cfg.eval.seed, num_episodes=cfg.eval.episodes)
    head = load_head(cfg, rows[0], 1, 0, dim=feats.dim)
    scores = {}
    for v in grid:
        head.lbda = v
        scores[v] = evaluate_split(head, feats.val, val).mean
    tuned = res.tuned["OTAM, tuned", 1, 0]
    assert tuned["parameter"] == "lbda" and tuned["val"] == pytest.approx(scores)
    assert tuned["value"] == max(grid, key=scores.get)
    head.lbda = tuned["value"]
    np.testing.assert_array_equal(res.results["OTAM, tuned", 1, 0].accuracies, evaluate_split(head, feats.test, test).accuracies)
    head.lbda = 0.5                                          # the row as given keeps its own value
    np.testing.assert_array_equal(res.results["OTAM", 1, 0].accuracies, evaluate_split(head, feats.test, test).accuracies)
    # a trained row: the twin is the same checkpoint with the chosen value set after training
    assert res.trained["full LGA, tuned", 1, 0] and res.checkpoints["full LGA, tuned", 1, 0] == res.checkpoints["full LGA", 1, 0]
    assert res.tuned["full LGA, tuned", 1, 0]["value"] in (0.0, 1.0)


def test_a_row_tuning_what_its_head_lacks_fails_naming_it(setup):
    from lga.engine.protocol import Row, run_protocol
    cfg, feats = setup
    with pytest.raises(ValueError, match="'ProtoNet'.*'lbda'"):
        run_protocol(cfg, [Row("ProtoNet", "protonet", {}, tune=("lbda", (0.1,)))], shots=(1,), seeds=(0,),
                     features=feats, progress=False)
    with pytest.raises(ValueError, match="Row.tune"):
        run_protocol(cfg, [Row("OTAM", "otam", {}, tune=("lbda", ()))], shots=(1,), seeds=(0,),
                     features=feats, progress=False)
