"""autolabel: bootstrap dataset labels from foundation models; route the doubtful ones to humans."""

__version__ = "0.1.0"
