"""The Lab: train variants on a small real data set and test the papers' claims."""
from explorer.lab.experiments import *  # noqa: F401,F403
