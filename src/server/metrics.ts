/** Prometheus text exposition (format 0.0.4) for the few metrics the server keeps; no client library needed. */

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class Histogram {
  private readonly counts = new Array<number>(BUCKETS.length).fill(0);
  private sum = 0;
  private count = 0;

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= (BUCKETS[i] as number)) (this.counts[i] as number)++;
  }

  render(name: string, help: string): string[] {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    for (let i = 0; i < BUCKETS.length; i++) lines.push(`${name}_bucket{le="${BUCKETS[i]}"} ${this.counts[i]}`);
    lines.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
    return lines;
  }
}

export interface Gauge {
  name: string;
  help: string;
  type?: 'gauge' | 'counter';
  samples: Array<{ labels?: Record<string, string>; value: number | bigint }>;
}

const escapeLabel = (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export function renderGauge(gauge: Gauge): string[] {
  const lines = [`# HELP ${gauge.name} ${gauge.help}`, `# TYPE ${gauge.name} ${gauge.type ?? 'gauge'}`];
  for (const sample of gauge.samples) {
    const labels = sample.labels
      ? `{${Object.entries(sample.labels)
          .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
          .join(',')}}`
      : '';
    lines.push(`${gauge.name}${labels} ${sample.value}`);
  }
  return lines;
}

/** What the server counts as it runs. */
export class ServerMetrics {
  readonly appendLatency = new Histogram();
  /** Appends by outcome: 'ok' or the error code. */
  readonly appends = new Map<string, number>();
  eventsAppended = 0;
  /** HTTP responses by status class. */
  readonly responses = new Map<string, number>();

  countAppend(outcome: string, events: number): void {
    this.appends.set(outcome, (this.appends.get(outcome) ?? 0) + 1);
    if (outcome === 'ok') this.eventsAppended += events;
  }

  countResponse(status: number): void {
    const key = `${Math.floor(status / 100)}xx`;
    this.responses.set(key, (this.responses.get(key) ?? 0) + 1);
  }

  render(extra: Gauge[]): string {
    const lines = [
      ...renderGauge({
        name: 'logline_appends_total',
        help: 'Append requests by outcome (ok or error code).',
        type: 'counter',
        samples: [...this.appends].map(([outcome, value]) => ({ labels: { outcome }, value })),
      }),
      ...renderGauge({
        name: 'logline_events_appended_total',
        help: 'Events appended through this server.',
        type: 'counter',
        samples: [{ value: this.eventsAppended }],
      }),
      ...this.appendLatency.render('logline_append_duration_seconds', 'Latency of successful appends, request to durable commit.'),
      ...renderGauge({
        name: 'logline_http_responses_total',
        help: 'HTTP responses by status class.',
        type: 'counter',
        samples: [...this.responses].map(([status, value]) => ({ labels: { status }, value })),
      }),
      ...extra.flatMap(renderGauge),
    ];
    return `${lines.join('\n')}\n`;
  }
}
