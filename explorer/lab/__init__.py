"""The Lab: train variants on a small real data set and test the papers' claims.

    data         the digits, their fixed split, `lab_config` (a config sized for them)
    settings     TrainSettings: how a run trains
    training     one run (`train`), evaluation, the training step
    gradients    gradient norms per residual unit at initialisation
    experiments  the ready experiments, `run_experiment`, results and their export
    estimate     how long an experiment will take on this machine

Importing the Lab loads neither the data (nor scikit-learn) nor anything of torch._dynamo.
"""
from explorer.lab.data import (DATASET, IN_CHANNELS, INPUT_SIZE, NUM_CLASSES, SPLIT_SEED,
                               VAL_FRACTION, Digits, lab_config, load_digits)
from explorer.lab.estimate import (REFERENCE, Calibration, TimeEstimate, calibrate,
                                   estimate_seconds, estimate_time)
from explorer.lab.experiments import (EXPERIMENTS, Experiment, ExperimentResult, PreparedRuns,
                                      ProgressFn, get_experiment, prepare_runs, run_experiment)
from explorer.lab.gradients import measure_grad_norms
from explorer.lab.settings import DEFAULT_LR, MAX_EPOCHS, Optimizer, Schedule, TrainSettings
from explorer.lab.training import (EVAL_BATCH, TRAIN_THREADS, RunResult, StopFn, evaluate, train,
                                   train_step)

__all__ = [
    "Calibration", "DATASET", "DEFAULT_LR", "Digits", "EVAL_BATCH", "EXPERIMENTS", "Experiment",
    "ExperimentResult", "IN_CHANNELS", "INPUT_SIZE", "MAX_EPOCHS", "NUM_CLASSES", "Optimizer",
    "PreparedRuns", "ProgressFn", "REFERENCE", "RunResult", "SPLIT_SEED", "Schedule", "StopFn",
    "TRAIN_THREADS", "TimeEstimate", "TrainSettings", "VAL_FRACTION", "calibrate", "estimate_seconds",
    "estimate_time", "evaluate", "get_experiment", "lab_config", "load_digits", "measure_grad_norms",
    "prepare_runs", "run_experiment", "train", "train_step",
]
