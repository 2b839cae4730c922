/** Progress bars on stderr, only when it is a terminal: pipes and logs stay clean. */
import cliProgress from 'cli-progress';

export interface Progress {
  increment(by: number): void;
  update(value: number): void;
  stop(): void;
}

const QUIET: Progress = { increment() {}, update() {}, stop() {} };

export function progressBar(total: number | undefined, unit: string): Progress {
  if (!process.stderr.isTTY || !total) return QUIET;
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `{bar} {percentage}% | {value}/{total} ${unit} | {eta_formatted}`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { increment: (by) => bar.increment(by), update: (value) => bar.update(value), stop: () => bar.stop() };
}
