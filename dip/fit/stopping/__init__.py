"""Stopping a DIP fit near its best, in one home: the noise estimate (:mod:`~dip.fit.stopping.noise`), the auto stop's
discrepancy rule, its budget and its replay on a logged curve (:mod:`~dip.fit.stopping.discrepancy`), ES-WMV and
ES-EMV (:mod:`~dip.fit.stopping.variance`), one report shape for both kinds (:mod:`~dip.fit.stopping.reports`), and
the hooks a task-level fit is given (:mod:`~dip.fit.stopping.hooks`)."""

from dip.fit.stopping.discrepancy import (
    RULES,
    AutoStop,
    Budget,
    Discrepancy,
    auto_stop_of,
    make_rule,
    replay,
    returned_curve_key,
    rule_for,
)
from dip.fit.stopping.hooks import annotate_stops, auto_stop_hook, early_stopping_hook
from dip.fit.stopping.noise import estimate_noise_sigma
from dip.fit.stopping.reports import auto_stop_report, early_stopping_report, stop_report
from dip.fit.stopping.variance import EarlyStopping, EarlyStoppingEMV

__all__ = ["RULES", "AutoStop", "Budget", "Discrepancy", "auto_stop_of", "make_rule", "replay", "returned_curve_key",
           "rule_for", "estimate_noise_sigma", "EarlyStopping", "EarlyStoppingEMV", "stop_report",
           "early_stopping_report", "auto_stop_report", "auto_stop_hook", "early_stopping_hook", "annotate_stops"]
