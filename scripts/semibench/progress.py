"""What a benchmark process says on stderr while it works (stdout is the report)."""
import sys


class Progress:
    """Workload start and end lines; a percentage in place when stderr is a terminal.

    *mode* is ``'plain'`` (a line each), ``'tty'`` (one line rewritten) or ``'none'``.
    """

    def __init__(self, label, mode):
        self.label, self.mode, self.name = label, mode, ''

    def start(self, name):
        self.name = name
        if self.mode == 'plain':
            self._write(f'{self.label}: {name} ...\n')
        elif self.mode == 'tty':
            self._write(f'\r\x1b[K{self.label}: {name} ')

    def step(self, done, total):
        if self.mode == 'tty':
            spinner = '|/-\\'[done % 4]
            self._write(f'\r\x1b[K{self.label}: {self.name} {spinner} {100 * done // total}%')

    def end(self, seconds):
        if self.mode == 'plain':
            self._write(f'{self.label}: {self.name} done in {seconds:.3f}s\n')
        elif self.mode == 'tty':
            self._write(f'\r\x1b[K{self.label}: {self.name} done in {seconds:.3f}s\n')

    def note(self, text):
        if self.mode != 'none':
            self._write(('\r\x1b[K' if self.mode == 'tty' else '') + f'{self.label}: {text}\n')

    @staticmethod
    def _write(text):
        sys.stderr.write(text)
        sys.stderr.flush()
