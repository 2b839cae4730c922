import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // What a poll waits for does come true; on 2 loaded cores it can take longer than the 1 s default.
    expect: { poll: { timeout: 10_000 } },
    // Store tests share real services (PostgreSQL, NATS) and spawn processes; two workers fit 2 cores.
    maxWorkers: 2,
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: './tsconfig.check.json' },
  },
});
