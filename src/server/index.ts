/** logline/server: the HTTP API as a Hono app or a running server, for embedding in an application. */
export { type AppOptions, createApp, type LoglineApp, readYourWrites, type ServerEnv } from './app.js';
export { type ApiKey, type KeyRing, loadKeys, parseKeys } from './auth.js';
export { seedDemo } from './demo.js';
export { openApiDocument } from './schemas.js';
export { DEFAULT_HOST, DEFAULT_PORT, DEFAULT_STORE, type RunningServer, type ServeOptions, startServer } from './serve.js';
export { DEFAULT_SSE, type SseSettings } from './sse.js';
