"""The comparison tables of a run, as data: a row per workload or measure, a cell per module.

Built once here, then rendered by report.py (for the terminal and for the docs), drawn
by plot.py and read by goals.py, so that a number or a ratio has one definition.
A *run* is one entry of the results JSON (runner.new_run, filled by runner.run_all).
"""
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

from .workloads import DISK_POINTS, MIB


class Cell(NamedTuple):
    amount: Optional[float]  # in the table's unit; None: this module has no such number
    compared: bool           # shows a ratio: in every column but the first module's
    ratio: Optional[float]   # the first module's amount / this one's; None: no pair to divide


class Table(NamedTuple):
    unit: str                           # a format spec for the amounts
    columns: List[dict]                 # the results that ran, the first module's first
    rows: Dict[str, Tuple[Cell, ...]]   # label -> a cell per column; rows with an amount

    def column(self, result):
        """The index of *result*'s column (by identity: two rounds can be equal)."""
        return next(i for i, column in enumerate(self.columns) if column is result)

    def ratio(self, label, result):
        """The first module's amount / *result*'s in row *label*, or None."""
        row = self.rows.get(label)
        return row[self.column(result)].ratio if row else None


def rss_over_data(result):
    """Peak RSS less the high-water mark after the data was generated: the store's part."""
    if not result.get('peak_rss_bytes'):
        return None
    return result['peak_rss_bytes'] - result['rss_after_data_bytes']


def _disk(point):
    return lambda result: result['disk_bytes'].get(point)


# The footprint's measures, in bytes (None where a module has no such number).
FOOTPRINT: Dict[str, Callable[[dict], Optional[int]]] = dict(
    [(f'disk {point.replace("_", " ")}', _disk(point)) for point in DISK_POINTS]
    + [('peak RSS', lambda result: result['peak_rss_bytes']),
       ('peak RSS over data', rss_over_data)])


def ran(run):
    return [result for result in run['results'] if 'workloads' in result]


def counterpart(run, result):
    """The first module's result with as many keys as *result*, if the run has one."""
    for candidate in [run['results'][0]] + run['baselines']:
        if candidate['num_keys'] == result['num_keys'] and 'workloads' in candidate:
            return candidate
    return None


def quotient(mine, theirs):
    return mine / theirs if mine and theirs else None


def ops_table(run):
    """ops/s of each workload of run['tests'] that some module ran."""
    rows = {workload: _rate(workload) for workload in run['tests']}
    return _table(run, ',.0f', rows, scale=1)


def footprint_table(run):
    """MiB on disk and in memory: FOOTPRINT's measures that some module has."""
    return _table(run, ',.1f', FOOTPRINT, scale=MIB)


def _rate(workload):
    return lambda result: result['workloads'].get(workload, {}).get('ops_per_sec')


def _table(run, unit, measures, scale):
    columns, first, rows = ran(run), run['results'][0], {}
    for label, value in measures.items():
        cells = tuple(_cell(run, value, result, result is not first, scale)
                      for result in columns)
        if any(cell.amount is not None for cell in cells):
            rows[label] = cells
    return Table(unit, columns, rows)


def _cell(run, value, result, compared, scale):
    amount = value(result)
    if amount is None:
        return Cell(None, False, None)
    mine = compared and counterpart(run, result)
    return Cell(amount / scale, compared, quotient(value(mine), amount) if mine else None)
