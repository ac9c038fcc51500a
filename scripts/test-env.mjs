// The environment every test, soak and fault-report run gets: NODE_ENV=test (Express's final
// handler stops printing stacks) and memjs's own fallbacks scrubbed, so a developer's MEMCACHIER_* /
// MEMCACHE_* credentials can never point a test at a real server or turn SASL on.
export function testEnv(extra = {}) {
  return {
    ...process.env,
    NODE_ENV: 'test',
    MEMCACHIER_SERVERS: '',
    MEMCACHE_USERNAME: '',
    MEMCACHE_PASSWORD: '',
    MEMCACHIER_USERNAME: '',
    MEMCACHIER_PASSWORD: '',
    ...extra,
  }
}
