"""The report of a run: text for the terminal, reST for the docs, JSON for both.

The numbers come from the results and from the tables of tables.py; only the words
and the layout are here. Each text function returns lines, for the caller to print.
"""
import json
import os

from . import goals, interpreters, tables
from .workloads import MIB

OURS = 'semidbm'
FORMAT = 1  # of the results document: {'format': FORMAT, 'runs': [run, ...]}
WIDTH = 22  # of a column of the terminal's tables


def not_run(result):
    """Why *result* has no workloads (a module that would not load, a child that failed)."""
    return result.get('skipped') or result.get('error')


def cell_text(unit, cell):
    """A cell as both tables print it: the amount, then its ratio for the other modules."""
    if cell.amount is None:
        return '-'
    text = format(cell.amount, unit)
    return f'{text} ({ratio_text(cell.ratio)})' if cell.compared else text


def ratio_text(ratio):
    return f'{ratio:.2f}x' if ratio else '-'



def cells_text(table):
    return [[label] + [cell_text(table.unit, cell) for cell in cells]
            for label, cells in table.rows.items()]


# -- the terminal ------------------------------------------------------------------


def header_lines(run):
    found = run['machine']
    lines = [f"Python: {found['python']}",
             f"Platform: {found['platform']}, {found['cpu_count']} CPUs",
             f"num_keys: {run['num_keys']}, key_size: {run['key_size']}, "
             f"value_size: {run['value_size']}, seed: {run['seed']}"]
    if run['rounds'] > 1:
        lines.append(f"rounds: {run['rounds']} (each workload: its fastest round; peak RSS: "
                     f"the highest)")
    return lines


def result_lines(result):
    title = f"{result['name']}  [{result['num_keys']:,} keys]"
    if 'workloads' not in result:
        return ['', f'{title}: not run: {not_run(result)}']
    lines = ['', f"{title}  {result['module']}{under(result)}"]
    lines += [f"{name:<20}: time: {timing['seconds']:9.3f},   "
              f"micros/ops: {timing['micros_per_op']:9.3f},   "
              f"ops/s: {timing['ops_per_sec']:10.3f},  MB/s: {timing['mb_per_sec']:10.3f}"
              for name, timing in result['workloads'].items()]
    lines += [f'{name:<20}: skipped ({why})' for name, why in result['skipped_workloads'].items()]
    lines += [f"disk bytes {point.replace('_', ' ')}: {size:,}"
              for point, size in result['disk_bytes'].items() if size is not None]
    return lines + memory_lines(result) + [f'note: {note}' for note in result['notes']]


def under(result):
    """`` under PyPy 3.9.16 (/usr/bin/pypy3)`` for a contender MODULE@PYTHON."""
    found = result.get('interpreter')
    if not found or not interpreters.split(result['name'])[1]:
        return ''
    return f" under {found['implementation']} {found['version']} ({found['executable']})"


def memory_lines(result):
    lines = []
    if result['peak_rss_bytes']:
        lines.append(f"peak RSS: {result['peak_rss_bytes'] / MIB:.1f} MiB "
                     f"({result['rss_after_data_bytes'] / MIB:.1f} MiB after generating "
                     f"the data)")
    peaks = result.get('peak_rss_by_workload')
    if peaks:
        lines.append('peak RSS by workload (MiB): ' + ', '.join(
            f'{name} {size / MIB:,.0f}' for name, size in peaks.items()))
    return lines


def comparison_lines(run):
    """The tables of a --compare run and a line of ratios per module; none if fewer
    than two modules ran, or not the first."""
    first, ops = run['results'][0], tables.ops_table(run)
    if 'workloads' not in first or len(ops.columns) < 2:
        return []
    name = first['name']
    lines = ['', f"ops/s, higher is better; (Nx) = {name} ops/s / that module's, "
                 f"with {name} run at the same number of keys",
             ] + text_rows([['workload'] + [short_label(first, r) for r in ops.columns]]
                           + cells_text(ops))
    lines += ['', f"MiB, lower is better; (Nx) = {name}'s / that module's"]
    lines += text_rows(cells_text(tables.footprint_table(run))) + ['']
    for other in run['results'][1:]:
        lines.append(ratio_line(ops, name, other) if 'workloads' in other
                     else f"{name} vs {other['name']}: not run: {not_run(other)}")
    return lines


def short_label(first, result):
    if result['num_keys'] == first['num_keys']:
        return interpreters.name_label(result)
    return f"{interpreters.name_label(result)} [{result['num_keys']:,}]"


def text_rows(rows):
    """*rows* of cells as lines: the first column left-aligned, the others right-aligned,
    each at least WIDTH wide and two spaces wider than its longest cell."""
    widths = [max([WIDTH] + [len(row[i]) + 2 for row in rows]) for i in range(len(rows[0]))]
    return [f'{row[0]:<{widths[0]}}' + ''.join(f'{cell:>{width}}' for cell, width
                                               in zip(row[1:], widths[1:])) for row in rows]


def ratio_line(ops, name, other):
    parts = [f'{workload} {ratio_text(ratio)}' for workload in ops.rows
             for ratio in [ops.ratio(workload, other)] if ratio]
    return (f"{name} vs {interpreters.name_label(other)} [{other['num_keys']:,} keys]: "
            + ', '.join(parts))


# -- the docs: docs/benchmark-results.inc ---------------------------------------------


def rst_include(document, baseline=None):
    """The reST that docs/benchmarks.rst includes: the runs, the targets, the tables;
    with a *baseline* document, each workload's ratio to 0.5.1 there and here."""
    runs = document['runs']
    machine = runs[0]['machine']
    lines = ['.. Generated by scripts/plot_benchmarks from docs/benchmark-results.json;',
             '   do not edit.', '',
             f"Taken on {machine['date']} with Python ``{machine['python']}`` on "
             f"``{machine['platform']}``, {machine['cpu_count']} CPUs, by these runs::", '']
    lines += [f"    {run['command']}" for run in runs] + ['']
    lines += [f'Each target below is met or NOT met by a ratio: {OURS}\'s operations per '
              f'second ÷ the other\'s, in the same run (above 1: {OURS} is faster).', '']
    peer = goals.peer_verdicts(runs)
    if peer:
        lines += [f'Against {goals.PEER}, at {peer[0]:,} keys:', ''] + bullets(peer[1])
    lines += section(f'Against {goals.DUMB}:', goals.dumb_verdicts(runs))
    lines += section('Against the other stores:', goals.rival_verdicts(runs))
    lines += section('The read floor (the index lookup and the slice of the mapped file '
                     'alone, timed in the same process as read_random):',
                     goals.floor_verdicts(runs))
    if baseline:
        lines += section(f"Against the results of {baseline['runs'][0]['machine']['date']} "
                         f"(``docs/benchmark-baseline.json``): each workload's ratio to "
                         f"{goals.PEER} then and now, so that another machine or day "
                         f"does not count:", goals.baseline_verdicts(runs, baseline) or [])
    for run in runs:
        lines += rst_run(run)
    return '\n'.join(lines)


def section(title, sentences):
    """A title and its bullets; nothing if there are no sentences."""
    return [title, ''] + bullets(sentences) if sentences else []


def rst_run(run):
    first = run['results'][0]['name']
    ops, footprint = tables.ops_table(run), tables.footprint_table(run)
    labels = [long_label(run, result) for result in ops.columns]
    return ([f"{run['num_keys']:,} keys of {run['key_size']} bytes, values of "
             f"{run['value_size']} bytes, seed {run['seed']}:", '']
            + list_table(f'ops/s, higher is better; in parentheses {first} ÷ that module, '
                         f'with {first} run at the same number of keys',
                         ['workload'] + labels, cells_text(ops))
            + list_table(f"MiB, lower is better; in parentheses {first}'s ÷ that module's",
                         ['measure'] + labels, cells_text(footprint))
            + bullets(skipped_notes(run)))


def long_label(run, result):
    """A module's name, and its number of keys where not the run's (docs and plot)."""
    if result['num_keys'] == run['num_keys']:
        return interpreters.name_label(result)
    return f"{interpreters.name_label(result)} ({result['num_keys']:,} keys)"


def list_table(title, header, rows):
    lines = [f'.. list-table:: {title}', '   :header-rows: 1', '']
    for row in [header] + rows:
        lines.append(f'   * - {row[0]}')
        lines += [f'     - {cell}' for cell in row[1:]]
    return lines + ['']


def skipped_notes(run):
    """Why a module did not run, the workloads it skipped (one line for the modules that
    skipped a workload for the same reason) and its notes."""
    notes, skipped = [], {}
    for result in run['results']:
        name = interpreters.name_label(result)
        if not_run(result):
            notes.append(f'``{name}`` did not run: {not_run(result)}')
        for workload, reason in result.get('skipped_workloads', {}).items():
            skipped.setdefault((workload, reason), []).append(f'``{name}``')
        notes += [f'``{name}``: {note}' for note in result.get('notes', ())]
    return notes + [f"{', '.join(names)} {'has' if len(names) == 1 else 'have'} no "
                    f'{workload}: {reason}' for (workload, reason), names in skipped.items()]


def bullets(sentences):
    """A reST bullet list, and the blank line after it; nothing for no sentences."""
    return [f'- {sentence}' for sentence in sentences] + [''] if sentences else []


# -- JSON -----------------------------------------------------------------------------


def write_json(path, document):
    """Write *document* to *path*; 0, the exit status of a child that did."""
    with open(path, 'w', encoding='utf-8') as out:
        json.dump(document, out, indent=1)
        out.write('\n')
    return 0


def read_document(path):
    with open(path, encoding='utf-8') as source:
        return json.load(source)


def save_json(path, run, append):
    """Write a results document of *run*, or add *run* to the one at *path*."""
    document = {'format': FORMAT, 'runs': []}
    if append and os.path.exists(path):
        document = read_document(path)
    document['runs'].append(run)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_json(path, document)
