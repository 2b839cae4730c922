/**
 * Progress of long jobs (import, export, NDJSON append). On a terminal a one-line progress bar on
 * stderr with the rate and an ETA; everywhere (pipes and logs too) one final summary line on
 * stderr, so a script's log says what a job did and how fast without parsing stdout.
 */

export interface Progress {
  /** `work` is the new total done, in the unit of `total` (bytes, positions); `items` the events (or `noun`s) so far. */
  update(work: number, items: number): void;
  /** Clears the bar and prints `logline: <summary> in <time>, <rate>/s` on stderr. */
  finish(summary: string): void;
}

export interface ProgressOptions {
  /** Total work in `unit`s (file size, head position); unknown for stdin. */
  total: number | undefined;
  unit: 'bytes' | 'positions';
  /** What the items are (default 'events'; `logline keys` counts 'subject keys'). */
  noun?: string;
  stream?: NodeJS.WriteStream;
  /** Injected for tests; Date.now by default. */
  now?: () => number;
}

/** Redrawing more often than this costs more than it tells. */
const REDRAW_MS = 100;

export function startProgress({ total, unit, noun = 'events', stream = process.stderr, now = Date.now }: ProgressOptions): Progress {
  const started = now();
  const terminal = stream.isTTY === true;
  let work = 0;
  let items = 0;
  let drawnAt = 0;
  let drawn = false;
  const draw = () => {
    drawnAt = now();
    drawn = true;
    stream.write(`\r${progressLine({ work, total, unit, items, elapsedMs: drawnAt - started, noun })}\x1b[K`);
  };
  return {
    update(newWork, newItems) {
      work = newWork;
      items = newItems;
      if (terminal && now() - drawnAt >= REDRAW_MS) draw();
    },
    finish(summary) {
      if (terminal && drawn) stream.write('\r\x1b[K');
      stream.write(`logline: ${summaryLine(summary, items, now() - started, noun)}\n`);
    },
  };
}

export interface ProgressState {
  work: number;
  total: number | undefined;
  unit: 'bytes' | 'positions';
  items: number;
  elapsedMs: number;
  /** Default 'events'. */
  noun?: string;
}

/** `[########------] 42% 1.2 MB/3.0 MB · 12,345 events · 8,000 events/s · ETA 0:12` (no bar without a total). */
export function progressLine({ work, total, unit, items, elapsedMs, noun = 'events' }: ProgressState): string {
  const parts: string[] = [];
  const seconds = elapsedMs / 1000;
  if (total) {
    const fraction = Math.min(1, work / total);
    const width = 20;
    const filled = Math.round(fraction * width);
    parts.push(`[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(fraction * 100)}%`);
    parts.push(`${amount(work, unit)}/${amount(total, unit)}`);
  } else {
    parts.push(amount(work, unit));
  }
  parts.push(`${items.toLocaleString('en-US')} ${noun}`, `${rate(items, seconds)} ${noun}/s`);
  // The ETA follows the measured quantity (bytes read, positions passed), which tracks the total.
  if (total && work > 0 && seconds > 0) parts.push(`ETA ${clock(((total - work) / work) * seconds)}`);
  return parts.join(' · ');
}

/** `imported 5 events (5 added) in 0.4 s, 12 events/s`. */
export function summaryLine(summary: string, items: number, elapsedMs: number, noun = 'events'): string {
  const seconds = elapsedMs / 1000;
  return `${summary} in ${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s, ${rate(items, seconds)} ${noun}/s`;
}

function rate(items: number, seconds: number): string {
  if (seconds <= 0) return '0';
  return Math.round(items / seconds).toLocaleString('en-US');
}

function amount(value: number, unit: 'bytes' | 'positions'): string {
  if (unit === 'positions') return `${value.toLocaleString('en-US')} positions`;
  if (value < 1024) return `${value} B`;
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  if (value < 1024 ** 3) return `${(value / 1024 ** 2).toFixed(1)} MiB`;
  return `${(value / 1024 ** 3).toFixed(2)} GiB`;
}

/** Seconds as m:ss or h:mm:ss. */
function clock(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = String(s % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}
