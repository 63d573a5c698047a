"""The Lab: train variants on a small real data set and test the papers' claims.

    data         the digits, their fixed split, `lab_config` (a config sized for a data set)
    cifar        CIFAR-10/100 from the official python archives, the papers' augmentation
    settings     TrainSettings: how a run trains
    records      RunResult (one run), EpochRecord, GradNorm: frozen, JSON at the edge only
    training     one run (`train`, its RunHooks), evaluation, the training step
    gradients    gradient norms per residual unit at initialisation
    experiments  the ready experiments, `prepare_runs` (a request validated, nothing built)
    running      `run_experiment`: every variant at several seeds, watched as it goes
    results      LabResult: per-seed results, mean and std per variant, export
    spread       mean and std across seeds, and the rule that calls a variant better
    workers      seeds trained in parallel worker processes, cancellable, yielding to measurements
    ray_runs     the runs as tasks on a Ray cluster (`Executor`); Ray is imported only there
    estimate     how long an experiment will take on this machine

Importing the Lab loads neither the data (nor scikit-learn) nor anything of torch._dynamo.
"""
from explorer.lab.data import (DATA_DIR_VAR, DATASET, DATASETS, IN_CHANNELS, INPUT_SIZE, NUM_CLASSES, SHAPES,
                               SPLIT_SEED, VAL_FRACTION, Dataset, Digits, default_data_dir, lab_config,
                               load_data, load_digits)
from explorer.lab.estimate import (REFERENCE, Calibration, TimeEstimate, calibrate,
                                   estimate_seconds, estimate_time)
from explorer.lab.experiments import EXPERIMENTS, Experiment, PreparedRuns, get_experiment, prepare_runs
from explorer.lab.gradients import measure_grad_norms
from explorer.lab.records import EpochRecord, GradNorm, RunResult, RunStatus
from explorer.lab.results import ExperimentResult, LabResult, LabStatus
from explorer.lab.running import ProgressFn, run_experiment
from explorer.lab.settings import (DEFAULT_LR, DEFAULT_SEEDS, MAX_EPOCHS, MAX_SEEDS, PAPER, RECIPES, Device,
                                   Optimizer, Recipe, Schedule, TrainSettings)
from explorer.lab.spread import NO_DIFFERENCE, RULE, Spread, Verdict, format_spread, judge, spread
from explorer.lab.training import (EVAL_BATCH, TRAIN_THREADS, RunHooks, StepGate, StopFn, evaluate,
                                   train, train_step)
from explorer.lab.workers import workers_for

__all__ = [
    "Calibration", "DATASET", "DATASETS", "DATA_DIR_VAR", "Dataset", "Device", "PAPER", "RECIPES", "Recipe",
    "SHAPES", "default_data_dir", "load_data", "DEFAULT_LR", "DEFAULT_SEEDS", "Digits", "EVAL_BATCH", "EXPERIMENTS",
    "EpochRecord", "Experiment", "ExperimentResult", "GradNorm", "IN_CHANNELS", "INPUT_SIZE",
    "LabResult", "LabStatus", "MAX_EPOCHS", "MAX_SEEDS",
    "NO_DIFFERENCE", "NUM_CLASSES", "Optimizer", "PreparedRuns", "ProgressFn", "REFERENCE", "RULE",
    "RunHooks", "RunResult", "RunStatus", "SPLIT_SEED", "Schedule", "Spread", "StepGate", "StopFn", "TRAIN_THREADS",
    "TimeEstimate", "TrainSettings", "VAL_FRACTION", "Verdict", "calibrate", "estimate_seconds",
    "estimate_time", "evaluate", "format_spread", "get_experiment", "judge", "lab_config", "load_digits",
    "measure_grad_norms", "prepare_runs", "run_experiment", "spread", "train", "train_step",
    "workers_for",
]
