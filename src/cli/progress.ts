/**
 * Progress of a long pass over a table, on stderr (stdout stays the report's, and `--json`'s):
 * a bar with the rate and the time left on a terminal (cli-progress), plain lines at every tenth
 * otherwise, so that a CI log or a pipe gets a few readable lines and no control codes.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number): void;
  stop(): void;
}

const count = (n: number) => Math.round(n).toLocaleString('en-US');

function timeLeft(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s`;
}

/** The verb a bar shows: what it is doing, and what it says of what it has done. */
export interface Verb {
  doing: string;
  done: string;
}

const CHECKING: Verb = { doing: 'checking', done: 'checked' };

/** `what` is the noun counted (`documents of projects`). */
export function progress(
  total: number,
  what: string,
  stream: NodeJS.WriteStream = process.stderr,
  verb: Verb = CHECKING,
  /** Done before the bar started (a resumed run): shown, but not counted in the rate. */
  already = 0,
): Progress {
  const started = performance.now();
  const rate = (done: number) => (done - already) / Math.max((performance.now() - started) / 1000, 1e-3);
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${verb.doing} ${what} [{bar}] {percentage}% | {value}/{total} | {rate}/s | ETA {eta_formatted}`,
        formatValue: (value, _options, type) => (type === 'value' || type === 'total' ? count(value) : String(value)),
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, Math.min(already, total), { rate: '0' });
    return {
      update: (done) => bar.update(Math.min(done, total), { rate: count(rate(done)) }),
      stop: () => bar.stop(),
    };
  }
  let nextTenth = 1;
  return {
    update(done) {
      if (total === 0 || done < (total * nextTenth) / 10) return;
      while (done >= (total * nextTenth) / 10) nextTenth++;
      const perSecond = rate(done);
      const left = done >= total ? '' : `, about ${timeLeft((total - done) / perSecond)} left`;
      stream.write(
        `${verb.done} ${count(done)} of ${count(total)} ${what} (${Math.floor((100 * done) / total)}%, ${count(perSecond)}/s${left})\n`,
      );
    },
    stop() {},
  };
}
