"""Turn the JSON of ``scripts/benchmark --docs`` into the plot and tables of the docs.

    scripts/plot_benchmarks [docs/benchmark-results.json]

writes ``docs/_static/benchmarks.png`` and ``docs/benchmark-results.inc`` (included by
``docs/benchmarks.rst``). Needs matplotlib, the one module of semibench that does
(``pip install -c constraints.txt '.[plot]'``). Nothing in either file is typed by hand: the
tables are report.rst_include's, the bars are the cells of tables.py.
"""
import argparse
import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the non-GUI backend)

from . import goals, report, tables  # noqa: E402

# The footprint measures worth a bar (disk after compact is mostly missing).
FOOTPRINT_BARS = ('disk after fill', 'disk after overwrite', 'peak RSS over data')


def plot(run, path):
    ops = tables.ops_table(run)
    colours = {r['name']: f'C{number}' for number, r in enumerate(ops.columns)}
    figure, (speed, versus, room) = plt.subplots(
        3, 1, figsize=(10, 15), gridspec_kw={'height_ratios': [3, 1.4, 1]})
    plot_speed(speed, run, ops, colours)
    plot_versus(versus, run, ops)
    plot_footprint(room, run, tables.footprint_table(run), colours)
    speed.set_title(f"{run['num_keys']:,} keys of {run['key_size']} bytes, values of "
                    f"{run['value_size']} bytes; Python {run['machine']['python'].split()[0]}, "
                    f"{run['machine']['platform']}, {run['machine']['cpu_count']} CPUs",
                    fontsize='medium')
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def bars(table, labels, columns, field='amount'):
    """For each column index: *field* of its cell in each row of *labels*, 0 for none."""
    missing = [tables.Cell(None, False, None)] * len(table.columns)
    return [[getattr(table.rows.get(label, missing)[index], field) or 0 for label in labels]
            for index in columns]


def grouped_bars(axes, names, series, colours, base=0):
    """Horizontal bars from *base*, one group per name, one bar per entry of *series*."""
    height = 0.8 / max(1, len(series))
    for number, (key, label_text, values) in enumerate(series):
        ys = [i + number * height for i in range(len(names))]
        widths = [value - base if value else 0 for value in values]
        axes.barh(ys, widths, height, left=base, label=label_text, color=colours[key])
    axes.set_yticks([i + 0.4 - height / 2 for i in range(len(names))], names)
    axes.invert_yaxis()
    axes.legend(loc='center left', bbox_to_anchor=(1.01, 0.5), fontsize='small')


def plot_speed(axes, run, ops, colours):
    workloads = list(ops.rows)
    values = bars(ops, workloads, range(len(ops.columns)))
    series = [(r['name'], report.long_label(run, r), row)
              for r, row in zip(ops.columns, values)]
    # dbm.gnu's open reads only a header, so its load rate is off any useful scale:
    # the axis ends at 5x the fastest rate that is not a load, and longer bars are cut.
    limit = 5 * max(v for row in values for w, v in zip(workloads, row) if w != 'load')
    grouped_bars(axes, workloads, series, colours)
    axes.set_xscale('log')
    axes.set_xlim(right=limit)
    height = 0.8 / len(series)
    for number, row in enumerate(values):
        for place, value in enumerate(row):
            if value > limit:
                axes.text(limit, place + number * height, f' {value:.1e} (cut) ',
                          ha='right', va='center', fontsize='x-small', color='white')
    axes.set_xlabel('operations per second (log scale, higher is better)')


def plot_versus(axes, run, ops):
    first = run['results'][0]
    others = [index for index, r in enumerate(ops.columns) if r is not first]
    workloads = [w for w, cells in ops.rows.items() if w in first['workloads']]
    colours = {ops.columns[index]['name']: f'C{number + 1}'
               for number, index in enumerate(others)}
    series = [(ops.columns[index]['name'], f"vs {report.long_label(run, ops.columns[index])}",
               row) for index, row in zip(others, bars(ops, workloads, others, 'ratio'))]
    grouped_bars(axes, workloads, series, colours, base=1)
    axes.set_xscale('log')
    axes.set_xlim(left=0.02)  # a lazy open (dbm.gnu's load) would stretch it to 1e-4
    axes.axvline(1, color='black', linewidth=0.8)
    axes.set_xlabel(f"{first['name']} ops/s ÷ that module's (log scale; right of 1: "
                    f"{first['name']} is faster)")


def plot_footprint(axes, run, footprint, colours):
    # Only the modules at the run's size: a capped one's few MiB would say nothing.
    same = [index for index, r in enumerate(footprint.columns)
            if r['num_keys'] == run['num_keys']]
    series = [(footprint.columns[index]['name'], report.long_label(run, footprint.columns[index]),
               row) for index, row in zip(same, bars(footprint, FOOTPRINT_BARS, same))]
    grouped_bars(axes, FOOTPRINT_BARS, series, colours)
    axes.set_xlabel('MiB (lower is better)')


def main(argv=None):
    parser = argparse.ArgumentParser(prog='scripts/plot_benchmarks', description=__doc__)
    parser.add_argument('results', nargs='?', default=goals.DOCS_JSON)
    parser.add_argument('--png', default=goals.DOCS_PNG)
    parser.add_argument('--rst', default=goals.DOCS_INC)
    parser.add_argument('--baseline', default=goals.BASELINE_JSON,
                        help='the results to judge each ratio to semidbm 0.5.1 against '
                             '(none if the file is not there)')
    args = parser.parse_args(argv)
    document = report.read_document(args.results)
    baseline = (report.read_document(args.baseline)
                if args.baseline and os.path.exists(args.baseline) else None)
    os.makedirs(os.path.dirname(os.path.abspath(args.png)), exist_ok=True)
    plot(document['runs'][0], args.png)
    with open(args.rst, 'w', encoding='utf-8') as out:
        out.write(report.rst_include(document, baseline))
    print(f'wrote {args.png} and {args.rst}')
    return 0
