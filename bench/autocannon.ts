/** autocannon (the HTTP load generator of the http and identity benches), typed for what they use. */

export interface AutocannonResult {
  requests: { average: number };
  latency: { p50: number; p99: number };
  '2xx': number;
  non2xx: number;
  errors: number;
  duration: number;
}
export interface AutocannonRequest {
  method?: string;
  path?: string;
  body?: string;
  headers?: Record<string, string>;
  setupRequest?: (request: AutocannonRequest) => AutocannonRequest;
}
export interface AutocannonOptions {
  url: string;
  connections: number;
  /** A fixed number of requests, or … */
  amount?: number;
  /** … a run of this many seconds. */
  duration?: number;
  overallRate?: number;
  requests?: AutocannonRequest[];
}
export type Autocannon = (
  opts: AutocannonOptions,
  done: (error: Error | null, result: AutocannonResult) => void,
) => { on(event: 'response', listener: () => void): void; stop(): void };

// autocannon ships no types; a non-literal specifier keeps TypeScript from looking for them.
const autocannonModule = 'autocannon';
export const loadAutocannon = async (): Promise<Autocannon> => ((await import(autocannonModule)) as { default: Autocannon }).default;

/**
 * Runs autocannon to its end, or until `until` settles (then it is stopped early). autocannon
 * reports its rate on whole-second ticks only, so the elapsed time is taken from the first request
 * to the last response instead.
 */
export function runLoad(
  autocannon: Autocannon,
  opts: AutocannonOptions,
  until?: Promise<unknown>,
): Promise<{ result: AutocannonResult; seconds: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let last = started;
    const instance = autocannon(opts, (error, result) => (error ? reject(error) : resolve({ result, seconds: (last - started) / 1000 })));
    instance.on('response', () => {
      last = performance.now();
    });
    until?.finally(() => instance.stop()).catch(() => {});
  });
}
